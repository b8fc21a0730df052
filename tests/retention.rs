//! Retention (issue 15): the template keeps what the engine's retention table
//! says, and nothing expires consent or turns versions back.

mod support;

use base64::Engine;
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;
use kairos_store::ContactStore;
use serde_norway::Value;
use support::writeback::Destinations;
use support::Stack;

fn template() -> Value {
    serde_norway::from_str(kairos::local::TEMPLATE).expect("the template parses")
}

fn retention(template: &Value, queue: &str) -> i64 {
    let value = &template["Resources"][queue]["Properties"]["MessageRetentionPeriod"];
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{queue} has a MessageRetentionPeriod"))
}

#[test]
fn the_queues_keep_messages_as_long_as_the_dedupe_horizon_assumes() {
    let template = template();
    assert_eq!(
        retention(&template, "EventsQueue"),
        kairos_state::EVENTS_QUEUE_RETENTION_SECS
    );
    for dlq in ["EventsDeadLetterQueue", "WritebackDeadLetterQueue"] {
        assert_eq!(
            retention(&template, dlq),
            kairos_state::DEAD_LETTER_RETENTION_SECS,
            "{dlq}"
        );
    }
    let ttl = &template["Resources"]["ContactsTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some("expires_at"));
}

const RULES: &str = r#"
segments:
  - { id: visitor, name: Visitor, purpose: operational, rule: { event: { type: page.viewed, within: 1d } } }
  - id: marketable
    name: Marketable
    rule: { all: [ { event: { type: page.viewed, within: 1d } }, { consent: subscribed } ] }
"#;

const SECRET: &[u8] = b"retention-test-webhook-secret";

/// Unsubscribed, then idle for 200 days: the record expires by TTL (simulated;
/// the ledger's entries are left alone, as if the contact had returned before
/// their 180 days), and a new event finds the contact still unsubscribed, with
/// transitions at versions above every one delivered before, so they are
/// delivered (write-back writes each contact's newest membership).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_and_the_versions_outlive_the_records_expiry() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let (url, receiver) = support::serve_webhook(SECRET).await;
    let file = format!(
        "destinations:\n  - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /t/s}}, mapping: {{url: \"{url}\"}}}}\n"
    );
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(SECRET));
    let writeback = support::writeback::destinations(&file, &[("/t/s", &secret)]).await;
    let day0 = chrono::Utc::now();
    evaluate(&stack, &rules, view("v1", day0), day0).await;
    let unsubscribe = support::event_json("u1", "ada@x.test", "email.unsubscribed", day0);
    evaluate(&stack, &rules, unsubscribe, day0).await;
    // A day later the view leaves its window (what the sweep does).
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let day1 = day0 + chrono::Duration::days(1) + chrono::Duration::minutes(1);
    Evaluator::new(&rules, &store, &queue)
        .contact("ada@x.test", &[], day1)
        .await
        .unwrap();
    assert_eq!(
        deliver(&stack, &writeback, &receiver).await,
        Some(serde_json::json!([])),
        "entered both, then left both: the newest membership is written"
    );
    let before = store.load("ada@x.test").await.unwrap().unwrap().version;

    let day200 = day0 + chrono::Duration::days(200);
    assert_eq!(
        stack.expire_items("contact#", day200.timestamp()).await.len(),
        1,
        "the record expired"
    );
    evaluate(&stack, &rules, view("v2", day200), day200).await;
    let record = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(
        record.state.consent().status(),
        kairos_state::ConsentStatus::Unsubscribed
    );
    assert!(
        record.state.member_since("marketable").is_none(),
        "no consent-gated segment"
    );
    assert!(record.version > before, "{} after {before}", record.version);
    assert_eq!(
        deliver(&stack, &writeback, &receiver).await,
        Some(serde_json::json!(["visitor"])),
        "not dropped as stale"
    );
}

fn view(id: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let json = support::event_json(id, "ada@x.test", "page.viewed", at);
    json.replace(r#""source":"api""#, r#""source":"web","url":"/home""#)
}

/// Sends `body` through the events queue and the evaluate handler.
async fn evaluate(stack: &Stack, rules: &RuleSet, body: String, now: chrono::DateTime<chrono::Utc>) {
    stack.send("EventsQueue", &[body]).await;
    let messages = stack.receive("EventsQueue", 1).await;
    let response = stack.evaluate(rules, &messages, now).await;
    assert!(support::failed(&response).is_empty());
    stack.ack("EventsQueue", &messages, &response).await;
}

/// Runs write-back on what the write-back queue holds; returns the membership
/// the CRM newly received last (`data.members`), if it received anything.
async fn deliver(stack: &Stack, writeback: &Destinations, receiver: &support::Receiver) -> Option<serde_json::Value> {
    let already = receiver.received.lock().unwrap().len();
    let sent = stack.receive("WritebackQueue", 10).await;
    let response = stack.writeback(writeback, &sent).await;
    assert!(support::failed(&response).is_empty());
    stack.ack("WritebackQueue", &sent, &response).await;
    let bodies = receiver.received.lock().unwrap();
    bodies[already..].last().map(|b| b["data"]["members"].clone())
}
