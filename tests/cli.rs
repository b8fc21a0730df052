//! The `kairos` command line's contracts: exit codes and output lines.

use std::process::Command;

fn kairos(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn rules_validate_exits_0_for_the_example_and_1_with_every_problem() {
    let (code, stdout, stderr) = kairos(&["rules", "validate", "rules/segments.yaml"]);
    assert_eq!(
        (code, stdout.trim()),
        (0, "rules/segments.yaml: ok, 6 segments, 3 sequences")
    );
    // Marketing segments with no consent condition are warned about, not refused.
    assert!(
        stderr.contains("rules/segments.yaml: warning: segment `engaged-reader`: segments[2].rule: a marketing segment with no consent condition"),
        "{stderr}"
    );
    assert!(!stderr.contains("`pricing-intent`"), "{stderr}");
    let dir = std::env::temp_dir().join(format!("kairos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "segments:\n  - id: a\n    name: A\n    rule: { all: [ { event: { type: page.seen, within: 1h } }, { segment: b } ] }\n").unwrap();
    let (code, _, stderr) = kairos(&["rules", "validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("segments[0].rule.all[0].event.type: unknown event type `page.seen`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("segments[0].rule.all[1].segment: unknown segment `b`"),
        "{stderr}"
    );
}

#[test]
fn rules_schema_is_the_committed_schema() {
    let (code, stdout, _) = kairos(&["rules", "schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string("shared/rules/rules.schema.json").unwrap();
    assert_eq!(stdout, committed);
}

#[test]
fn replay_prints_one_sorted_line_per_contact() {
    let (code, stdout, stderr) = kairos(&[
        "replay",
        "--rules",
        "rules/segments.yaml",
        "--events",
        "events/demo/events.jsonl",
        "--at",
        "2026-11-25T10:30:00Z",
    ]);
    assert_eq!(code, 1, "the sample has one malformed line");
    assert!(
        stderr.contains("line 14: `type`: unknown variant `email.read`"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1],
        r#"{"contact":"bob@globex.test","segments":["comparing-vendors","cross-channel-hot","pricing-intent","sales-ready"],"next_change_at":"2026-11-26T10:05:03Z"}"#
    );
}

const VECTOR_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
const VECTOR_SIG: &str =
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";

fn normalize_vector(signature: &str, now: &str) -> (i32, String, String) {
    kairos(&[
        "normalize",
        "--provider",
        "sendgrid",
        "--public-key",
        VECTOR_KEY,
        "--header",
        &format!("X-Twilio-Email-Event-Webhook-Signature: {signature}"),
        "--header",
        "X-Twilio-Email-Event-Webhook-Timestamp: 1588788367",
        "--now",
        now,
        "tests/fixtures/esp/sendgrid_signed_minimal_testvector.body",
    ])
}

#[test]
fn normalize_verifies_before_it_parses() {
    // The SDK vector verifies; its body is a test object, not an event array.
    let (code, stdout, stderr) = normalize_vector(VECTOR_SIG, "1588788400");
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(
        stderr.contains("malformed payload: expected a JSON array of SendGrid events"),
        "{stderr}"
    );
    let tampered = VECTOR_SIG.replace("NH2j", "NH3j");
    let (code, _, stderr) = normalize_vector(&tampered, "1588788400");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("verification failed: signature does not verify"),
        "{stderr}"
    );
    let (code, _, stderr) = normalize_vector(VECTOR_SIG, "1588799999");
    assert_eq!(code, 1);
    assert!(stderr.contains("outside the replay window"), "{stderr}");
}

#[test]
fn normalize_prints_canonical_events_of_an_unsigned_sample() {
    let (code, stdout, stderr) = kairos(&[
        "normalize",
        "--provider",
        "sendgrid",
        "--skip-verify",
        "tests/fixtures/esp/sendgrid_open.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let event: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "email.opened");
    assert_eq!(event["contact"], "alex@example.com");
    assert_eq!(event["at"], "2017-12-15T00:59:29Z");
    let (code, _, stderr) = kairos(&[
        "normalize",
        "--provider",
        "sendgrid",
        "tests/fixtures/esp/sendgrid_open.json",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("needs its credential"), "{stderr}");
    let (code, _, stderr) = kairos(&["normalize", "--provider", "nope", "--skip-verify", "Cargo.toml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown provider `nope`"), "{stderr}");
}

#[test]
fn destinations_validate_checks_segments_against_the_rules_and_lists_every_problem() {
    let (code, stdout, stderr) = kairos(&[
        "destinations",
        "validate",
        "events/demo/destinations.yaml",
        "--rules",
        "rules/segments.yaml",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "events/demo/destinations.yaml: ok, 4 destinations: webhook (webhook), hubspot (hubspot), salesforce (salesforce), pipedrive (pipedrive)"
    );
    let dir = std::env::temp_dir().join(format!("kairos-cli-dest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("destinations.yaml");
    let text = std::fs::read_to_string("events/demo/destinations.yaml")
        .unwrap()
        .replace("[sales-ready]", "[sales-ready, vip]")
        .replace("/kairos/demo/pipedrive-token", "0f1e2d3c4b5a");
    std::fs::write(&bad, text).unwrap();
    let (code, _, stderr) = kairos(&[
        "destinations",
        "validate",
        bad.to_str().unwrap(),
        "--rules",
        "rules/segments.yaml",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("2 problems in destinations file"), "{stderr}");
    assert!(
        stderr.contains("destinations[2].segments[1]: unknown segment `vip`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("destinations[3].credentials.api_token: expected an SSM parameter name"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("0f1e2d3c4b5a"),
        "a secret pasted by mistake is not echoed: {stderr}"
    );
}

#[test]
fn destinations_schema_is_the_committed_schema() {
    let (code, stdout, _) = kairos(&["destinations", "schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string("functions/writeback/destinations.schema.json").unwrap();
    assert_eq!(stdout, committed);
}

#[test]
fn log_hash_prints_the_hash_logs_carry_for_a_contact() {
    let out = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["log-hash", " Ada@Example.com "])
        .env("KAIROS_LOG_HASH_KEY", "cli-test-key")
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        kairos_event::log::hash_with(b"cli-test-key", "ada@example.com")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["log-hash", "ada@example.com"])
        .env_remove("KAIROS_LOG_HASH_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// `kairos normalize` runs the route's clock-skew bound: the SendGrid sample,
/// dated 2017-12-15T00:59:29Z, checked as if received a minute and an hour earlier.
#[test]
fn normalize_refuses_events_dated_beyond_the_clock_skew() {
    let sample = "tests/fixtures/esp/sendgrid_open.json";
    let at = 1_513_299_569;
    let minute = (at - 60).to_string();
    let (code, _, stderr) = kairos(&[
        "normalize",
        "--provider",
        "sendgrid",
        "--skip-verify",
        "--now",
        &minute,
        sample,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let hour = (at - 3600).to_string();
    let (code, stdout, stderr) = kairos(&[
        "normalize",
        "--provider",
        "sendgrid",
        "--skip-verify",
        "--now",
        &hour,
        sample,
    ]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("field `at` is 3600 s ahead"), "{stderr}");
}

/// `kairos decide` on the sequences history: Eve's comparison-page click moves
/// her from onboarding to the pricing thread; at night in her zone she waits.
#[test]
fn decide_answers_the_api_s_json_on_a_history() {
    let decide = |at: &str| {
        let args = [
            "decide",
            "--rules",
            "rules/segments.yaml",
            "--events",
            "events/demo/sequences.jsonl",
            "--contact",
            "Eve@Initech.test",
            "--at",
            at,
        ];
        let (code, stdout, stderr) = kairos(&args);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    // Before the click: onboarding's second step waits a day after the welcome.
    let before = decide("2026-11-25T12:00:00Z");
    assert_eq!(before["send"], serde_json::Value::Null);
    assert_eq!(before["reason"], "waiting until 2026-11-25T14:01:00Z", "{before}");
    let after = decide("2026-11-25T15:15:00Z");
    assert_eq!(after["send"]["sequence"], "pricing-intent", "{after}");
    assert_eq!(after["send"]["step"], "comparison");
    assert_eq!(after["reason"], "send");
    assert!(after["decision_id"].as_str().unwrap().starts_with("d-"));
    assert!(
        after["explanation"]
            .as_str()
            .unwrap()
            .contains("`onboarding` (priority 10) outranked"),
        "{after}"
    );
    // 22:00 in New York: quiet hours until 08:00 there (13:00 UTC).
    let night = decide("2026-11-26T03:00:00Z");
    assert_eq!(night["reason"], "quiet hours until 2026-11-26T13:00:00Z", "{night}");
    assert_eq!(night["until"], "2026-11-26T13:00:00Z");
}

#[test]
fn sequences_report_shows_variant_goal_rates_and_the_holdout() {
    let args = [
        "sequences",
        "report",
        "--rules",
        "rules/segments.yaml",
        "--events",
        "events/demo/sequences.jsonl",
    ];
    let (code, stdout, stderr) = kairos(&args);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let variant = |v: &str| {
        report["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["variant"] == v && x["step"] == "welcome")
            .unwrap()
            .clone()
    };
    assert_eq!(
        (variant("long")["sends"].as_u64(), variant("long")["goals"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (variant("short")["sends"].as_u64(), variant("short")["goals"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(report["holdout"]["percent"], 5.0);
    let contacts = report["holdout"]["treated"]["contacts"].as_u64().unwrap()
        + report["holdout"]["held_out"]["contacts"].as_u64().unwrap();
    assert_eq!(contacts, 2);
}
