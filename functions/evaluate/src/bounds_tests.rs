//! Time and size bounds (issue 15): what evaluate refuses, and that it never
//! writes a record for nothing.

use super::*;
use kairos_engine::Applied;
use kairos_store::{MemoryContacts, MemoryQueue};

fn rules() -> kairos_rules::RuleSet {
    kairos_rules::RuleSet::from_yaml(DEFAULT_RULES).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event(id: &str, kind: &str, at: &str, extra: &str) -> Event {
    let json = format!(r#"{{"id":"{id}","contact":"ada@x.test","type":"{kind}","at":"{at}","source":"test"{extra}}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

#[tokio::test]
async fn future_dated_events_are_refused_counted_and_never_stored() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let now = at("2026-11-27T10:00:00Z");
    let traits = r#","traits":{"company_size":5000}"#;
    let events = [
        event("f1", "contact.identified", "2100-01-01T00:00:00Z", traits),
        event("f2", "email.clicked", "2026-11-27T10:05:01Z", ""),
        event("ok", "email.opened", "2026-11-27T10:04:59Z", ""),
    ];
    let outcome = ev.contact("ada@x.test", &events, now).await.unwrap();
    assert_eq!((outcome.applied, outcome.refused_as(Applied::Future)), (1, 2));
    let record = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(record.state.trait_value("company_size"), None);
    // A deployment allowing no skew refuses an event a second ahead.
    let strict = Evaluator {
        max_clock_skew_secs: 0,
        ..Evaluator::new(&rules, &store, &queue)
    };
    let ahead = event("a1", "email.opened", "2026-11-27T10:00:01Z", "");
    assert_eq!(
        strict
            .contact("ada@x.test", &[ahead], now)
            .await
            .unwrap()
            .refused_as(Applied::Future),
        1
    );
}

#[test]
fn the_clock_skew_is_configured_in_whole_seconds_up_to_a_day() {
    let config = |skew: &str| {
        let skew = skew.to_string();
        Config::from_env(move |name| match name {
            "KAIROS_MAX_CLOCK_SKEW_SECS" => Some(skew.clone()),
            "KAIROS_RULES_FILE"
            | "KAIROS_DUE_SHARDS"
            | "KAIROS_RULES_URI"
            | "KAIROS_RULES_REFRESH_SECS"
            | "KAIROS_AUDIT_RETENTION_DAYS" => None,
            _ => Some("x".into()),
        })
    };
    assert_eq!(
        config("").unwrap().max_clock_skew_secs,
        kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS
    );
    assert_eq!(config("60").unwrap().max_clock_skew_secs, 60);
    for bad in ["-1", "86401", "5m"] {
        let err = config(bad).unwrap_err().to_string();
        assert!(err.contains("KAIROS_MAX_CLOCK_SKEW_SECS") && err.contains(bad), "{err}");
    }
}

#[tokio::test]
async fn a_batch_whose_events_are_all_refused_writes_nothing() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let now = at("2026-11-27T10:00:00Z");
    let refused = [
        event("old", "email.opened", "2026-09-01T10:00:00Z", ""),
        event("ahead", "email.opened", "2026-11-28T10:00:00Z", ""),
    ];
    let outcome = ev.contact("ada@x.test", &refused, now).await.unwrap();
    assert_eq!(
        (
            outcome.refused_as(Applied::Stale),
            outcome.refused_as(Applied::Future),
            outcome.version
        ),
        (1, 1, None)
    );
    assert!(store.contacts().is_empty(), "no record is created for refused events");
    assert!(queue.is_empty());
}

#[tokio::test]
async fn an_event_redriven_from_the_dead_letter_queue_at_its_last_day_applies_once() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    // Ingested a day after it happened (a provider's retries), dead-lettered,
    // redriven on the queue's last day, then processed after 4 days in the source queue.
    let happened = at("2026-11-01T10:00:00Z");
    let processed = happened + chrono::Duration::days(1 + 14 + 4);
    let click = event("late", "email.clicked", "2026-11-01T10:00:00Z", "");
    let first = ev
        .contact("ada@x.test", std::slice::from_ref(&click), processed)
        .await
        .unwrap();
    assert_eq!((first.applied, first.refused_as(Applied::Stale)), (1, 0));
    let again = ev.contact("ada@x.test", &[click], processed).await.unwrap();
    assert_eq!((again.applied, again.refused_as(Applied::Duplicate)), (0, 1));
}

#[tokio::test]
async fn an_unsubscribe_redriven_past_the_horizon_still_unsubscribes() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let now = at("2026-11-27T10:00:00Z");
    let delivered = event("d1", "email.delivered", "2026-11-27T09:00:00Z", "");
    ev.contact("ada@x.test", &[delivered], now).await.unwrap();
    assert_eq!(queue.drain().len(), 1, "ada enters gone-quiet");
    let old = event("u1", "email.unsubscribed", "2026-10-01T09:00:00Z", "");
    let outcome = ev.contact("ada@x.test", &[old], now).await.unwrap();
    assert_eq!((outcome.applied, outcome.late), (0, 1));
    let record = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(
        record.state.consent().status(),
        kairos_state::ConsentStatus::Unsubscribed
    );
    let exits: Vec<String> = queue.drain().into_iter().map(|m| m.body).collect();
    assert!(
        exits.len() == 1 && exits[0].contains(r#""change":"exited""#),
        "{exits:?}"
    );
}

/// A queue that refuses every message while `down`.
#[derive(Default)]
struct DownQueue {
    down: std::sync::atomic::AtomicBool,
    inner: MemoryQueue,
}

impl Queue for DownQueue {
    async fn send(&self, messages: &[kairos_store::Message]) -> Result<(), kairos_store::QueueError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            let failed = messages.iter().map(|m| m.id.clone()).collect();
            return Err(kairos_store::QueueError {
                failed,
                reason: "down".into(),
            });
        }
        self.inner.send(messages).await
    }
}

#[tokio::test]
async fn while_transitions_cannot_be_sent_the_outbox_does_not_grow() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), DownQueue::default());
    queue.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let ev = Evaluator::new(&rules, &store, &queue);
    let now = at("2026-11-27T10:00:00Z");
    let click = event("c1", "email.clicked", "2026-11-27T09:59:00Z", "");
    assert!(ev.contact("ada@x.test", &[click], now).await.is_err());
    let delivered = event("d1", "email.delivered", "2026-11-27T09:59:30Z", "");
    assert!(ev
        .contact("ada@x.test", std::slice::from_ref(&delivered), now)
        .await
        .is_err());
    let stored = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(
        stored.outbox.len(),
        1,
        "the delivery waits for the first outbox to be sent"
    );
    // The queue is back: SQS redelivers the delivery; both transitions go, in order.
    queue.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ev.contact("ada@x.test", &[delivered], now).await.unwrap().applied, 1);
    let sent: Vec<String> = queue.inner.drain().into_iter().map(|m| m.body).collect();
    let segments: Vec<String> = sent
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["segment"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(segments, ["engaged-reader", "gone-quiet"], "{sent:?}");
    assert!(store.load("ada@x.test").await.unwrap().unwrap().outbox.is_empty());
}

#[tokio::test]
async fn consent_and_versions_outlive_the_records_expiry() {
    let (rules, store, queue) = (rules(), MemoryContacts::default(), MemoryQueue::default());
    let ev = Evaluator::new(&rules, &store, &queue);
    let now = at("2026-11-27T10:00:00Z");
    let events = [
        event("d1", "email.delivered", "2026-11-27T09:00:00Z", ""),
        event("u1", "email.unsubscribed", "2026-11-27T09:30:00Z", ""),
    ];
    let before = ev.contact("ada@x.test", &events, now).await.unwrap().version.unwrap();
    let later = now + chrono::Duration::days(200);
    assert_eq!(store.expire(later.timestamp()), 1, "the record expired");
    let click = event("c1", "email.clicked", &later.to_rfc3339(), "");
    let outcome = ev.contact("ada@x.test", &[click], later).await.unwrap();
    let record = store.load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(
        record.state.consent().status(),
        kairos_state::ConsentStatus::Unsubscribed
    );
    assert!(outcome.version.unwrap() > before, "versions keep rising");
    assert!(outcome.transitions.iter().all(|t| t.state_version > before));
}
