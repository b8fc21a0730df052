use super::*;
use aws_lambda_events::sqs::SqsMessage;
use kairos_event::{Change, Transition};
use kairos_rules::RuleSet;
use kairos_store::{MemoryContacts, MemoryQueue, Message, QueueError};
use std::sync::atomic::{AtomicBool, Ordering};

fn message(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(body.to_string());
    m
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = messages;
    e
}

fn event(id: &str, contact: &str, kind: &str, at: &str) -> String {
    format!(r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{at}","source":"test"}}"#)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn failed_ids(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn rules() -> RuleSet {
    RuleSet::from_yaml(DEFAULT_RULES).unwrap()
}

fn sent(queue: &MemoryQueue) -> Vec<Transition> {
    queue
        .drain()
        .iter()
        .map(
            |m| match kairos_event::WritebackMessage::decode(m.body.as_bytes()).unwrap() {
                kairos_event::WritebackMessage::Transition(t) => t,
            },
        )
        .collect()
}

#[tokio::test]
async fn malformed_message_fails_only_itself() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let input = batch(vec![
        message(
            "m1",
            &event("e1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z"),
        ),
        message("m2", r#"{"id":"e2","contact":"bob","type":"email.teleported"}"#),
        message("m3", "not json"),
        message(
            "m4",
            &event("e4", "bob@x.test", "email.clicked", "2026-11-27T10:00:00Z"),
        ),
    ]);
    let response = handle(input, &ev, at("2026-11-27T10:00:05Z")).await;
    assert_eq!(failed_ids(&response), ["m2", "m3"]);
    assert_eq!(store.contacts(), ["ada@x.test", "bob@x.test"]);
    let transitions = sent(&queue);
    assert_eq!(transitions.len(), 2);
    assert!(transitions
        .iter()
        .all(|t| t.segment == "engaged-reader" && t.change == Change::Entered));
}

#[tokio::test]
async fn redelivered_batch_changes_nothing() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let make = || {
        batch(vec![
            message("m1", &event("e1", "ada@x.test", "email.opened", "2026-11-27T10:00:00Z")),
            message(
                "m2",
                &event("e2", "ada@x.test", "email.clicked", "2026-11-27T10:01:00Z"),
            ),
        ])
    };
    handle(make(), &ev, at("2026-11-27T10:02:00Z")).await;
    let first = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(sent(&queue).len(), 1);
    let response = handle(make(), &ev, at("2026-11-27T10:03:00Z")).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(store.load("ada@x.test").await.unwrap().unwrap(), first);
    assert!(queue.is_empty());
}

/// A queue that fails while `down` is set, like SQS during an outage or a
/// function dying between the DynamoDB write and the send.
#[derive(Default)]
struct FlakyQueue {
    down: AtomicBool,
    inner: MemoryQueue,
}

impl Queue for FlakyQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError {
                failed: messages.iter().map(|m| m.id.clone()).collect(),
                reason: "down".into(),
            });
        }
        self.inner.send(messages).await
    }
}

#[tokio::test]
async fn outbox_survives_a_failed_send_and_is_sent_once_on_retry() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), FlakyQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let make = || {
        batch(vec![message(
            "m1",
            &event("e1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z"),
        )])
    };
    queue.down.store(true, Ordering::SeqCst);
    let response = handle(make(), &ev, at("2026-11-27T10:00:01Z")).await;
    assert_eq!(failed_ids(&response), ["m1"]);
    let stored = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(stored.outbox.len(), 1, "the transition is kept with the state");

    queue.down.store(false, Ordering::SeqCst);
    let response = handle(make(), &ev, at("2026-11-27T10:00:30Z")).await;
    assert!(response.batch_item_failures.is_empty());
    let delivered = sent(&queue.inner);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].state_version, stored.version);
    assert!(store.load("ada@x.test").await.unwrap().unwrap().outbox.is_empty());
    handle(make(), &ev, at("2026-11-27T10:01:00Z")).await;
    assert!(queue.inner.is_empty(), "nothing is sent twice once the outbox is clear");
}

#[tokio::test]
async fn exits_are_emitted_with_explanations() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let pricing = |id: &str, t: &str| {
        let mut e = kairos_event::Event::from_json(event(id, "u1", "page.viewed", t).as_bytes()).unwrap();
        e.url = Some("https://x.test/pricing".into());
        e
    };
    let now = at("2026-11-27T10:05:00Z");
    let out = ev
        .contact(
            "u1",
            &[
                pricing("p1", "2026-11-27T10:00:00Z"),
                pricing("p2", "2026-11-27T10:04:00Z"),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(out.transitions.len(), 1);
    let entered = &out.transitions[0];
    assert_eq!(
        (entered.segment.as_str(), entered.change),
        ("pricing-intent", Change::Entered)
    );
    assert!(
        entered
            .summary
            .contains("url contains \"/pricing\" within 1d = 2 [count >= 2: yes]"),
        "{}",
        entered.summary
    );
    assert_eq!(entered.trigger.as_ref().unwrap().id, "p2");
    // The whole membership travels with it (format 2 on the queue).
    assert_eq!(entered.members.as_deref(), Some(&["pricing-intent".to_string()][..]));
    assert!(sent(&queue)[0].members.is_some());
    let entered_version = entered.state_version;
    let record = store.load("u1").await.unwrap().unwrap();
    assert_eq!(record.next_change_at, Some(at("2026-11-28T10:00:00Z").timestamp()));

    let booked: kairos_event::Event = serde_json::from_str(
        r#"{"id":"b1","contact":"u1","type":"track","name":"Demo Booked","at":"2026-11-27T11:00:00Z","source":"api"}"#,
    )
    .unwrap();
    let out = ev.contact("u1", &[booked], at("2026-11-27T11:00:01Z")).await.unwrap();
    assert_eq!(out.transitions.len(), 1);
    assert_eq!(out.transitions[0].change, Change::Exited);
    assert_eq!(out.transitions[0].state_version, entered_version + 1);
    assert_eq!(
        out.transitions[0].members.as_deref(),
        Some(&[][..]),
        "an exit carries what is left"
    );
}

#[test]
fn config_names_the_missing_variable() {
    let err = Config::from_env(|name| (name == "KAIROS_TABLE").then(|| "t".to_string())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable KAIROS_WRITEBACK_QUEUE_URL is required"
    );
    let optional = [
        "KAIROS_RULES_FILE",
        "KAIROS_MAX_CLOCK_SKEW_SECS",
        "KAIROS_DUE_SHARDS",
        "KAIROS_RULES_URI",
        "KAIROS_RULES_REFRESH_SECS",
        "KAIROS_AUDIT_TABLE",
        "KAIROS_AUDIT_RETENTION_DAYS",
    ];
    let env = |name: &str| (!optional.contains(&name)).then(|| format!("{name}-value"));
    let ok = Config::from_env(env).unwrap();
    assert_eq!(ok.table, "KAIROS_TABLE-value");
    assert_eq!(ok.rules.fingerprint(), rules().fingerprint(), "the embedded rules");
    assert_eq!(ok.due_shards, kairos_store::DEFAULT_DUE_SHARDS);
    assert_eq!(ok.audit_table, None);
    assert_eq!(ok.audit_retention_days, 400);
    let shards = |value: &'static str| {
        Config::from_env(move |name| match name {
            "KAIROS_DUE_SHARDS" => Some(value.to_string()),
            _ => env(name),
        })
    };
    assert_eq!(shards("32").unwrap().due_shards, 32);
    let err = shards("1001").unwrap_err().to_string();
    assert_eq!(
        err,
        "environment variable KAIROS_DUE_SHARDS is invalid: `1001`: expected a whole number from 1 to 1000"
    );
}

#[test]
fn a_bad_rules_file_is_refused_with_its_path_and_every_problem() {
    let dir = std::env::temp_dir().join(format!("kairos-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, "segments: []\n").unwrap();
    let env = |file: &std::path::Path| {
        let file = file.display().to_string();
        move |name: &str| {
            Some(if name == "KAIROS_RULES_FILE" {
                file.clone()
            } else {
                "x".into()
            })
        }
    };
    let err = Config::from_env(env(&path)).unwrap_err().to_string();
    assert!(
        err.starts_with("environment variable KAIROS_RULES_FILE is invalid: ")
            && err.contains("bad.yaml")
            && err.contains("expected at least one segment"),
        "{err}"
    );
    let missing = Config::from_env(env(&dir.join("none.yaml"))).unwrap_err().to_string();
    assert!(
        missing.contains("cannot read") && missing.contains("none.yaml"),
        "{missing}"
    );
}

#[tokio::test]
async fn passing_time_is_acted_on_by_a_sweep() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let click =
        kairos_event::Event::from_json(event("c1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z").as_bytes())
            .unwrap();
    ev.contact("ada@x.test", &[click], at("2026-11-27T10:00:00Z"))
        .await
        .unwrap();
    let before_due = ev.contact("ada@x.test", &[], at("2026-11-29T09:59:59Z")).await.unwrap();
    assert_eq!(before_due, Outcome::default(), "nothing is due yet");
    let swept = ev.contact("ada@x.test", &[], at("2026-11-29T10:00:00Z")).await.unwrap();
    assert_eq!(swept.transitions.len(), 1);
    assert_eq!(
        (swept.transitions[0].segment.as_str(), swept.transitions[0].change),
        ("engaged-reader", Change::Exited)
    );
    assert!(swept.transitions[0].trigger.is_none());
}

/// A typical active contact over 90 days under the example rules: two newsletters
/// a week (delivered, one human and one machine open), a click and five page views
/// a week, two pricing views a month. Its state must stay near 1 KB.
#[tokio::test]
async fn a_typical_active_contact_stays_within_one_kilobyte() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let start = at("2026-08-01T09:00:00Z");
    let mut n = 0;
    let mut largest = 0;
    for day in 0..90i64 {
        let mut events = Vec::new();
        let mut push = |kind: &str, minute: i64, extra: &str| {
            n += 1;
            let t = start + chrono::Duration::days(day) + chrono::Duration::minutes(minute);
            let json = format!(
                r#"{{"id":"e{n}","contact":"ada@x.test","type":"{kind}","at":"{}","source":"test"{extra}}}"#,
                t.to_rfc3339()
            );
            events.push(kairos_event::Event::from_json(json.as_bytes()).unwrap());
        };
        if day % 7 == 1 || day % 7 == 4 {
            push("email.delivered", 0, "");
            push("email.opened", 1, r#","machine":true"#);
            push("email.opened", 90, "");
        }
        if day % 7 == 2 {
            push("email.clicked", 30, "");
        }
        if day % 7 < 5 {
            push("page.viewed", 120, r#","url":"https://x.test/blog""#);
        }
        if day % 15 == 3 {
            push("page.viewed", 125, r#","url":"https://x.test/pricing""#);
        }
        let now = start + chrono::Duration::days(day) + chrono::Duration::hours(12);
        ev.contact("ada@x.test", &events, now).await.unwrap();
        let size = store.load("ada@x.test").await.unwrap().unwrap().state.to_bytes().len();
        largest = largest.max(size);
    }
    eprintln!("typical active contact: {n} events in 90 days, largest state {largest} bytes");
    assert!(largest <= 1024, "state grew to {largest} bytes");
}

#[tokio::test]
async fn a_transition_is_triggered_by_the_event_its_segment_reads() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let parse = |json: String| kairos_event::Event::from_json(json.as_bytes()).unwrap();
    let click = parse(event("c1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z"));
    let mut view = parse(event("v1", "ada@x.test", "page.viewed", "2026-11-27T10:01:00Z"));
    view.url = Some("https://x.test/blog".into());
    // The page view is the batch's latest event, but engaged-reader reads clicks, not views.
    let out = ev
        .contact("ada@x.test", &[view, click], at("2026-11-27T10:02:00Z"))
        .await
        .unwrap();
    let entered: Vec<(&str, Option<&str>)> = out
        .transitions
        .iter()
        .map(|t| (t.segment.as_str(), t.trigger.as_ref().map(|t| t.id.as_str())))
        .collect();
    assert_eq!(entered, [("engaged-reader", Some("c1"))]);
}

#[tokio::test]
async fn a_rules_change_re_decides_a_stored_contact_in_full() {
    let (before, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let parse = |json: String| kairos_event::Event::from_json(json.as_bytes()).unwrap();
    let events = [
        parse(event("d1", "ada@x.test", "email.delivered", "2026-11-27T09:00:00Z")),
        parse(event("c1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z")),
    ];
    let old = Evaluator::new(&before, &store, &queue);
    old.contact("ada@x.test", &events, at("2026-11-27T10:01:00Z"))
        .await
        .unwrap();
    let members = |r: &kairos_store::StoredContact| -> Vec<String> {
        r.state.members().iter().map(|(id, _)| id.clone()).collect()
    };
    let stored = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(members(&stored), ["engaged-reader", "gone-quiet"]);
    queue.drain();

    // engaged-reader now needs two clicks, gone-quiet is gone, delivered is new.
    let after = RuleSet::from_yaml(
        "segments:
  - { id: engaged-reader, name: E, rule: { event: { type: email.clicked, count: { gte: 2 }, within: 2d } } }
  - { id: delivered, name: D, rule: { last: { type: email.delivered, within: 90d } } }
",
    )
    .unwrap();
    let new = Evaluator::new(&after, &store, &queue);
    let out = new.redecide("ada@x.test", at("2026-11-27T10:02:00Z")).await.unwrap();
    let changes: Vec<(&str, Change, &str)> = out
        .transitions
        .iter()
        .map(|t| (t.segment.as_str(), t.change, t.rule_version.as_str()))
        .collect();
    let versions: Vec<&str> = after.segments().map(|s| s.version).collect();
    assert_eq!(
        changes,
        [
            ("engaged-reader", Change::Exited, versions[0]),
            ("delivered", Change::Entered, versions[1]),
            ("gone-quiet", Change::Exited, "removed"),
        ]
    );
    assert!(out
        .transitions
        .iter()
        .all(|t| t.trigger.is_none() && Some(t.state_version) == out.version));
    assert_eq!(sent(&queue), out.transitions, "sent from the outbox");
    let stored = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(members(&stored), ["delivered"]);
    assert!(stored.outbox.is_empty());
    let again = new.redecide("ada@x.test", at("2026-11-27T10:03:00Z")).await.unwrap();
    assert_eq!(again, Outcome::default(), "decided once under the new rules");
}

const CLICKED_7D: &str =
    "segments:\n  - { id: clicked, name: C, rule: { event: { type: email.clicked, within: 7d } } }\n";
const CLICKED_TWICE: &str =
    "segments:\n  - { id: clicked, name: C, rule: { event: { type: email.clicked, count: { gte: 2 }, within: 7d } } }\n";

#[tokio::test]
async fn a_record_decided_under_newer_rules_is_refused_retryably_and_left_as_it_is() {
    let (old, new) = (
        RuleSet::from_yaml(CLICKED_7D).unwrap(),
        RuleSet::from_yaml(CLICKED_TWICE).unwrap(),
    );
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let newer = Evaluator {
        rules_seq: 2,
        ..Evaluator::new(&new, &store, &queue)
    };
    let click =
        Event::from_json(event("e1", "ada@x.test", "email.clicked", "2026-11-27T10:00:00Z").as_bytes()).unwrap();
    let now = at("2026-11-27T10:01:00Z");
    newer.contact("ada@x.test", &[click], now).await.unwrap();
    let before = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(before.rules_seq, 2);

    let older = Evaluator {
        rules_seq: 1,
        ..Evaluator::new(&old, &store, &queue)
    };
    let err = older.redecide("ada@x.test", now).await.unwrap_err();
    assert!(matches!(err, ContactError::RulesBehind { record: 2, ours: 1 }), "{err}");
    assert!(!err.is_permanent(), "a retry (after a refresh) can succeed");
    assert_eq!(
        store.load("ada@x.test").await.unwrap().unwrap(),
        before,
        "nothing written"
    );
    // Through the handler: the contact's message fails for a retry.
    let input = batch(vec![message(
        "m1",
        &event("e2", "ada@x.test", "email.clicked", "2026-11-27T10:00:30Z"),
    )]);
    let response = handle(input, &older, now).await;
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(store.load("ada@x.test").await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn an_instance_behind_refreshes_its_rules_first_and_retries_only_if_still_behind() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let published = kairos_store::MemoryRules::default();
    published.publish(CLICKED_7D);
    let t0 = at("2026-11-27T10:00:00Z");
    let (a, b) = (
        LiveRules::new(&published, rules(), 30),
        LiveRules::new(&published, rules(), 30),
    );
    assert_eq!(a.versioned(t0.timestamp()).await.1, 1, "instance A reads version 1");
    published.publish(CLICKED_TWICE);
    let click = |id: &str, at: &str| batch(vec![message(id, &event(id, "ada@x.test", "email.clicked", at))]);

    // Instance B reads version 2 and decides ada under it.
    let now = t0 + chrono::Duration::seconds(5);
    let (response, _) = handle_live(click("m1", "2026-11-27T10:00:01Z"), &b, &store, &queue, 300, now).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(store.load("ada@x.test").await.unwrap().unwrap().rules_seq, 2);
    assert!(sent(&queue).is_empty(), "one click: not in `clicked` under version 2");

    // Instance A, within its refresh interval, meets that record: it refreshes
    // at once and evaluates under version 2, never under version 1.
    let (response, in_force) = handle_live(click("m2", "2026-11-27T10:00:02Z"), &a, &store, &queue, 300, now).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(
        in_force.fingerprint(),
        RuleSet::from_yaml(CLICKED_TWICE).unwrap().fingerprint()
    );
    let entered: Vec<_> = sent(&queue).into_iter().map(|t| (t.segment, t.change)).collect();
    assert_eq!(
        entered,
        [("clicked".to_string(), Change::Entered)],
        "two clicks under version 2"
    );

    // An instance whose object lags (nothing newer to read) leaves the message for a retry.
    let lagging = kairos_store::MemoryRules::default();
    lagging.publish(CLICKED_7D);
    let c = LiveRules::new(&lagging, rules(), 30);
    let before = store.load("ada@x.test").await.unwrap().unwrap();
    let (response, _) = handle_live(click("m3", "2026-11-27T10:00:03Z"), &c, &store, &queue, 300, now).await;
    assert_eq!(failed_ids(&response), ["m3"]);
    assert_eq!(
        store.load("ada@x.test").await.unwrap().unwrap(),
        before,
        "nothing written"
    );
    assert!(sent(&queue).is_empty());
}
