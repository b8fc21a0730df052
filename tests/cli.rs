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
    let (code, stdout, _) = kairos(&["rules", "validate", "rules/segments.yaml"]);
    assert_eq!((code, stdout.trim()), (0, "rules/segments.yaml: ok, 6 segments"));
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
    assert!(stderr.contains("line 14: unknown variant `email.read`"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1],
        r#"{"contact":"bob@globex.test","segments":["comparing-vendors","cross-channel-hot","pricing-intent","sales-ready"],"next_change_at":"2026-11-26T10:05:03Z"}"#
    );
}
