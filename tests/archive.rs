//! The event archive (issue 18) over moto's Firehose and S3: every event the
//! evaluate function applies reaches the archive, through an archive outage;
//! a replay from the archive equals one from the same events as a file, in
//! both layouts.

mod support;

use chrono::{DateTime, Duration, Utc};
use kairos::archive::Window;
use kairos_evaluate::DEFAULT_RULES;
use kairos_rules::RuleSet;
use kairos_store::{Archive, ArchiveRecord, ContactStore};
use std::collections::BTreeSet;
use support::archive::{archived, create_stream, firehose};
use support::{event_json, failed, sqs_event, Stack};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Events over several days and contacts, with a redelivered duplicate.
fn history(start: DateTime<Utc>) -> Vec<String> {
    let kinds = ["email.opened", "email.clicked", "page.viewed", "email.opened"];
    let contacts = ["ada@acme.test", "bob@globex.test", "cy@initech.test"];
    let mut events: Vec<String> = (0..24)
        .map(|i| {
            let when = start + Duration::hours(7 * i as i64);
            event_json(&format!("e{i}"), contacts[i % 3], kinds[i % 4], when)
        })
        .collect();
    events.push(events[5].clone());
    events
}

#[tokio::test]
async fn every_applied_event_reaches_the_archive_through_an_outage() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    let now = at("2026-11-30T12:00:00Z");
    let bodies = history(now - Duration::days(7));
    stack.send("EventsQueue", &bodies).await;
    let messages = stack.receive("EventsQueue", bodies.len()).await;
    assert_eq!(messages.len(), bodies.len());
    let archive = firehose(&stack, "kairos-archive");
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_millis(300);

    // The stream does not exist yet: the archive is down.
    let mut response = stack.evaluate(&rules, &messages, now).await;
    assert!(
        failed(&response).is_empty(),
        "the state write does not wait for the archive"
    );
    kairos_evaluate::archive_batch(&sqs_event(&messages), &mut response, &archive, deadline()).await;
    let ids: BTreeSet<String> = messages.iter().filter_map(|m| m.message_id.clone()).collect();
    assert_eq!(
        failed(&response).into_iter().collect::<BTreeSet<_>>(),
        ids,
        "every message is redelivered"
    );
    let ada = stack
        .store()
        .load("ada@acme.test")
        .await
        .unwrap()
        .expect("ada's state is written");
    assert!(ada.version > 0);
    assert!(archived(&stack).await.is_empty());

    // The archive is back; SQS redelivers the batch: the state dedupes, the archive gets it.
    create_stream(&stack, "kairos-archive").await;
    let mut response = stack.evaluate(&rules, &messages, now).await;
    kairos_evaluate::archive_batch(&sqs_event(&messages), &mut response, &archive, deadline()).await;
    assert!(failed(&response).is_empty(), "{:?}", failed(&response));
    let again = stack.store().load("ada@acme.test").await.unwrap().unwrap();
    assert_eq!(again.version, ada.version, "the redelivery changed no state");
    stack.ack("EventsQueue", &messages, &response).await;

    let got: BTreeSet<String> = archived(&stack).await.into_iter().map(|e| e.id).collect();
    let sent: BTreeSet<String> = (0..24).map(|i| format!("e{i}")).collect();
    assert_eq!(got, sent, "every applied event is in the archive");
}

/// The events as JSON lines, a file's bytes.
fn file(bodies: &[String]) -> Vec<u8> {
    bodies.join("\n").into_bytes()
}

#[tokio::test]
async fn a_replay_from_the_archive_equals_one_from_the_file_in_both_layouts() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    let bodies = history(at("2026-11-20T08:00:00Z"));
    let expected = kairos::replay::replay(&rules, &file(&bodies), None, true);
    assert!(expected.lines.len() == 3 && expected.rejected.is_empty());

    // Firehose's default layout, as moto writes it (by arrival hour, uncompressed).
    create_stream(&stack, "kairos-archive").await;
    let records: Vec<ArchiveRecord> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| ArchiveRecord {
            id: i.to_string(),
            line: format!("{b}\n").into_bytes(),
        })
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    for half in records.chunks(13) {
        firehose(&stack, "kairos-archive").put(half, deadline).await.unwrap();
    }
    let source = support::archive::source(&stack);
    let from_s3 = kairos::replay::replay_archive(&rules, &source, Window::default(), true)
        .await
        .unwrap();
    assert_eq!(from_s3.lines, expected.lines);

    // The template's layout: gzip objects by event date.
    let dir = std::env::temp_dir().join(format!("kairos-archive-{}", std::process::id()));
    let events: Vec<kairos_event::Event> = bodies
        .iter()
        .map(|b| kairos_event::Event::from_json(b.as_bytes()).unwrap())
        .collect();
    let files = kairos::archive::write_dir(&dir, "part-0", &events).unwrap();
    assert!(files.len() > 5, "one object per event date");
    let source = kairos::archive::Source::Dir(dir.clone());
    let from_dir = kairos::replay::replay_archive(&rules, &source, Window::default(), true).await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(from_dir.unwrap().lines, expected.lines);

    // A window: the same as the file's events inside it, as of its end.
    let window = Window {
        since: Some(at("2026-11-22T00:00:00Z")),
        until: Some(at("2026-11-25T12:00:00Z")),
    };
    let inside: Vec<String> = bodies
        .iter()
        .filter(|b| window.holds(kairos_event::Event::from_json(b.as_bytes()).unwrap().at))
        .cloned()
        .collect();
    let expected = kairos::replay::replay(&rules, &file(&inside), window.until, false);
    let source = support::archive::source(&stack);
    let windowed = kairos::replay::replay_archive(&rules, &source, window, false)
        .await
        .unwrap();
    assert_eq!(windowed.lines, expected.lines);
}

/// Runs the `kairos` binary against the stack's moto with `stdin`.
fn kairos(stack: &Stack, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &stack.moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("KAIROS_ARCHIVE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kairos runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Contacts who opened in the last 30 hours, replacing the example rules.
const CLICKED: &str =
    "segments:\n  - { id: engaged-reader, name: Clicked, rule: { event: { type: email.opened, within: 30h } } }\n";

#[tokio::test]
async fn a_backtested_publish_shows_who_would_enter_and_leave_and_asks_first() {
    let stack = Stack::start().await;
    create_stream(&stack, "kairos-archive").await;
    let bodies = history(at("2026-11-20T08:00:00Z"));
    let records: Vec<ArchiveRecord> = (bodies.iter().enumerate())
        .map(|(i, b)| ArchiveRecord {
            id: i.to_string(),
            line: format!("{b}\n").into_bytes(),
        })
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    firehose(&stack, "kairos-archive")
        .put(&records, deadline)
        .await
        .unwrap();

    // Who is in what under each file, replayed from the file of the same events.
    let members = |rules: &str| -> BTreeSet<(String, String)> {
        let rules = RuleSet::from_yaml(rules).unwrap();
        let out = kairos::replay::replay(&rules, &file(&bodies), None, false);
        let lines = out
            .lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
        lines
            .flat_map(|l| {
                let contact = l["contact"].as_str().unwrap().to_string();
                let segments = l["segments"].as_array().unwrap().clone();
                segments
                    .into_iter()
                    .map(move |s| (s.as_str().unwrap().to_string(), contact.clone()))
            })
            .collect()
    };
    let (old, new) = (members(DEFAULT_RULES), members(CLICKED));
    let entering: BTreeSet<_> = new.difference(&old).cloned().collect();
    let leaving: BTreeSet<_> = old.difference(&new).cloned().collect();
    assert!(
        !entering.is_empty() && !leaving.is_empty(),
        "the change moves someone both ways"
    );

    let dir = std::env::temp_dir().join(format!("kairos-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let new_file = dir.join("clicked.yaml");
    std::fs::write(&new_file, CLICKED).unwrap();
    let rules_uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let archive_uri = format!("s3://{}/events/", support::archive::bucket(&stack));
    let publish = |extra: &[&str], stdin: &str| {
        let mut args = vec!["rules", "publish", new_file.to_str().unwrap(), "--uri", &rules_uri];
        args.extend([
            "--backtest",
            "--archive",
            &archive_uri,
            "--since",
            "2026-11-01T00:00:00Z",
        ]);
        args.extend(extra);
        kairos(&stack, &args, stdin)
    };

    let (code, stdout, stderr) = publish(&[], "n\n");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("[y/N]") && stderr.contains("not published"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut listed = (BTreeSet::new(), BTreeSet::new());
    for line in &lines {
        let segment = line["segment"].as_str().unwrap().to_string();
        let count = |field: &str| line[field].as_u64().unwrap() as usize;
        let n = |set: &BTreeSet<(String, String)>| set.iter().filter(|(s, _)| *s == segment).count();
        assert_eq!(
            (count("entering"), count("leaving")),
            (n(&entering), n(&leaving)),
            "{line}"
        );
        assert_eq!((count("old"), count("new")), (n(&old), n(&new)), "{line}");
        for example in line["examples"].as_array().unwrap() {
            let pair = (segment.clone(), example["contact"].as_str().unwrap().to_string());
            match example["change"].as_str().unwrap() {
                "enter" => listed.0.insert(pair),
                _ => listed.1.insert(pair),
            };
            assert!(
                !example["new"].is_null() || !example["old"].is_null(),
                "explained: {example}"
            );
        }
    }
    // Three examples a change at most: here every contact that moves.
    assert_eq!(listed, (entering, leaving), "the diff lists the contacts that move");
    let object = kairos_store::S3Rules::new(kairos::local::s3_client(&stack.aws), &rules_uri).unwrap();
    use kairos_store::RulesObject;
    assert_eq!(
        object.fetch(None).await.unwrap(),
        kairos_store::Fetched::Missing,
        "not published"
    );

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&new_file, CLICKED).unwrap();
    let (code, stdout, stderr) = publish(&["--yes"], "");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), lines.len() + 1, "the diff, then the version id");
    assert!(matches!(
        object.fetch(None).await.unwrap(),
        kairos_store::Fetched::Object { .. }
    ));
}

/// Each segment's explanation of a stored record's state as of `at`.
fn explained(rules: &RuleSet, record: &kairos_store::StoredContact, at: DateTime<Utc>) -> serde_json::Value {
    let contact = kairos_engine::Contact {
        state: record.state.clone(),
        ..Default::default()
    };
    serde_json::Value::Object(kairos::replay::explanations(rules, &contact, at))
}

#[tokio::test]
async fn a_rebuild_from_the_archive_reproduces_the_live_states_above_their_versions() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    create_stream(&stack, "kairos-archive").await;
    let archive = firehose(&stack, "kairos-archive");
    // Live: each event evaluated at its own time, then archived, as the function does.
    let bodies = history(at("2026-11-20T08:00:00Z"));
    let mut end = at("2026-11-20T08:00:00Z");
    for body in &bodies {
        let when = kairos_event::Event::from_json(body.as_bytes()).unwrap().at;
        end = end.max(when);
        stack.send("EventsQueue", std::slice::from_ref(body)).await;
        let messages = stack.receive("EventsQueue", 1).await;
        let mut response = stack.evaluate(&rules, &messages, when).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        kairos_evaluate::archive_batch(&sqs_event(&messages), &mut response, &archive, deadline).await;
        assert!(failed(&response).is_empty());
        stack.ack("EventsQueue", &messages, &response).await;
    }
    let store = stack.store();
    let contacts = ["ada@acme.test", "bob@globex.test", "cy@initech.test"];
    let mut live = Vec::new();
    for contact in contacts {
        let record = store.load(contact).await.unwrap().expect("a live record");
        // A bug then wipes the state, at a newer version.
        let mut broken = record.clone();
        broken.state = Default::default();
        broken.version += 1;
        store.save(contact, Some(record.version), &broken).await.unwrap();
        live.push((record, broken.version));
    }

    let source = support::archive::source(&stack);
    let done = kairos::rebuild::rebuild(&rules, &source, Window::default(), &store, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (done.contacts, done.events, done.rejected),
        (3, bodies.len() as u64, 0),
        "{done:?}"
    );
    for (contact, (record, broken)) in contacts.iter().zip(&live) {
        let rebuilt = store.load(contact).await.unwrap().unwrap();
        assert!(rebuilt.version > *broken, "{contact}: never backwards");
        assert_eq!(
            explained(&rules, &rebuilt, end),
            explained(&rules, record, end),
            "{contact}"
        );
        assert_eq!(rebuilt.state.consent(), record.state.consent());
        assert_eq!(rebuilt.expires_at, record.expires_at, "{contact}");
    }
    // The same rebuild again changes nothing but the versions.
    let again = kairos::rebuild::rebuild(&rules, &source, Window::default(), &store, Utc::now())
        .await
        .unwrap();
    assert_eq!(again.contacts, 3);
}
