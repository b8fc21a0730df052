use super::*;
use crate::{handle, Outcome};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use kairos_event::Event;
use kairos_event::Transition;
use kairos_rules::RuleSet;
use kairos_store::{AuditTrail, MemoryContacts, MemoryQueue, SegmentCounters};
use std::sync::atomic::{AtomicU64, Ordering};

const RULES: &str = "segments:\n  - id: browsing\n    name: Browsing\n    rule: { event: { type: page.viewed, count: { gte: 3 }, within: 1d } }\n";

fn now() -> DateTime<Utc> {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

/// A page view `minutes` before [`now`].
fn view(id: &str, contact: &str, minutes: i64) -> Event {
    let at = (now() - chrono::Duration::minutes(minutes)).to_rfc3339();
    let json =
        format!(r#"{{"id":"{id}","contact":"{contact}","type":"page.viewed","at":"{at}","source":"web","url":"/p"}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

/// A Segment `identify` of `contact` carrying `anonymous`, `minutes` before [`now`].
fn identify(id: &str, contact: &str, anonymous: &str, minutes: i64) -> Event {
    let at = (now() - chrono::Duration::minutes(minutes)).to_rfc3339();
    let json = format!(
        r#"{{"id":"{id}","contact":"{contact}","type":"contact.identified","at":"{at}","source":"segment",
        "properties":{{"anonymous_id":"{anonymous}"}},"traits":{{"plan":"pro"}}}}"#
    );
    Event::from_json(json.as_bytes()).unwrap()
}

struct Fixture {
    rules: RuleSet,
    store: Yielding,
    queue: MemoryQueue,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        Fixture {
            rules: RuleSet::from_yaml(RULES).unwrap(),
            store: Yielding {
                inner: MemoryContacts::default(),
                seed: AtomicU64::new(seed),
            },
            queue: MemoryQueue::default(),
        }
    }

    fn evaluator(&self) -> Evaluator<'_, Yielding, MemoryQueue> {
        Evaluator::new(&self.rules, &self.store, &self.queue)
    }

    /// Processes `events` as the handler does: one call per contact key.
    async fn run(&self, events: &[Event]) -> Outcome {
        self.run_at(events, now()).await
    }

    async fn run_at(&self, events: &[Event], now: DateTime<Utc>) -> Outcome {
        let contact = events[0].contact.clone();
        assert!(events.iter().all(|e| e.contact == contact));
        self.evaluator().contact(&contact, events, now).await.unwrap()
    }

    async fn record(&self, contact: &str) -> StoredContact {
        self.store.load(contact).await.unwrap().expect("record stored")
    }

    /// Page views counted for `contact` within the last day.
    async fn views(&self, contact: &str) -> serde_json::Value {
        let state = self.record(contact).await.state;
        let evaluation = self.rules.evaluate(&state, now().timestamp());
        evaluation.verdicts[0].explanation.observed.as_ref().unwrap().to_json()
    }

    fn sent(&self) -> Vec<Transition> {
        let bodies = self.queue.drain();
        let decode = |body: &str| match kairos_event::WritebackMessage::decode(body.as_bytes()).unwrap() {
            kairos_event::WritebackMessage::Transition(t) => t,
        };
        bodies.iter().map(|m| decode(&m.body)).collect()
    }
}

/// MemoryContacts that yields to the scheduler a pseudo-random number of times
/// before each operation, so `join!`ed evaluations interleave differently per seed.
struct Yielding {
    inner: MemoryContacts,
    seed: AtomicU64,
}

impl Yielding {
    async fn shuffle(&self) {
        let s = self.seed.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        for _ in 0..(s.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 62) {
            tokio::task::yield_now().await;
        }
    }
}

impl ContactStore for Yielding {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.shuffle().await;
        self.inner.load(contact).await
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        self.shuffle().await;
        self.inner.save(contact, expected, record).await
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        self.inner.clear_outbox(contact, version).await
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<kairos_state::SeenId>, StoreError> {
        self.inner.load_seen(contact, days).await
    }
}

#[tokio::test]
async fn anonymous_views_then_identify_count_for_the_contact() {
    let f = Fixture::new(0);
    f.run(&[view("v1", "anon:x", 30), view("v2", "anon:x", 20)]).await;
    let out = f.run(&[identify("i1", "ada", "x", 10), view("v3", "ada", 5)]).await;
    assert_eq!(out.merged, ["anon:x"]);
    assert_eq!(f.views("ada").await, serde_json::json!(3));
    assert_eq!(f.record("anon:x").await.merged_into.as_deref(), Some("ada"));
    let sent = f.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].contact.as_str(), sent[0].segment.as_str()),
        ("ada", "browsing")
    );
}

/// A visitor counted in a segment while anonymous is counted out by the
/// freeze and in by its contact's merge: one member, not two.
#[tokio::test]
async fn a_linked_member_is_counted_once_in_the_segment_counters() {
    let f = Fixture::new(0);
    let members = || async {
        let counts = f.store.inner.segment_counts("browsing", &[]).await.unwrap();
        counts.members
    };
    f.run(&[
        view("v1", "anon:x", 40),
        view("v2", "anon:x", 30),
        view("v3", "anon:x", 20),
    ])
    .await;
    assert_eq!(members().await, 1);
    let out = f.run(&[identify("i1", "ada", "x", 10)]).await;
    assert_eq!(out.merged, ["anon:x"]);
    assert_eq!(f.views("ada").await, serde_json::json!(3));
    assert_eq!(members().await, 1, "the visitor, once");
    let trail = f.store.inner.audit("anon:x", None, 10).await.unwrap().entries;
    let exit = trail
        .iter()
        .find(|e| e.cause == "link")
        .expect("the freeze's exit entry");
    assert_eq!(
        (exit.segment.as_deref(), exit.change),
        (Some("browsing"), Some(kairos_event::Change::Exited))
    );
    // Erasing the contact counts it out once: its frozen visitor is not a member any more.
    let erasure = crate::Erasure {
        actor: "dpo",
        salt: b"salt",
        window_secs: 86_400,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
    };
    let evaluator = Evaluator::new(&f.rules, &f.store.inner, &f.queue);
    let erased = evaluator.erase("ada", &erasure, now()).await.unwrap();
    assert_eq!((erased.complete, erased.anonymous), (true, 1));
    assert_eq!(members().await, 0);
}

#[tokio::test]
async fn identify_then_anonymous_views_count_for_the_contact() {
    let f = Fixture::new(0);
    f.run(&[identify("i1", "ada", "x", 10)]).await;
    let linked = f.record("anon:x").await.version;
    let out = f.run(&[view("v1", "anon:x", 30), view("v2", "anon:x", 20)]).await;
    assert_eq!(
        (out.applied, out.merged.len()),
        (2, 0),
        "re-keyed to ada; the empty link was merged already"
    );
    f.run(&[view("v3", "anon:x", 5)]).await;
    assert_eq!(f.views("ada").await, serde_json::json!(3));
    let anonymous = f.record("anon:x").await;
    assert_eq!(anonymous.version, linked, "never written after the link");
    assert_eq!(anonymous.state, kairos_state::ContactState::default());
    assert!(f.sent().iter().all(|t| t.contact == "ada"));
}

/// Every order of three deliveries (anonymous views, the identify, more
/// anonymous views) gives the same state for the contact.
#[tokio::test]
async fn every_arrival_order_gives_the_same_contact_state() {
    let batches = [
        vec![view("v1", "anon:x", 50), view("v2", "anon:x", 40)],
        vec![identify("i1", "ada", "x", 30)],
        vec![view("v3", "anon:x", 20)],
    ];
    let mut states = Vec::new();
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let f = Fixture::new(0);
        for i in order {
            f.run(&batches[i]).await;
        }
        assert_eq!(f.views("ada").await, serde_json::json!(3), "order {order:?}");
        assert!(f.record("ada").await.state.member_since("browsing").is_some());
        states.push((order, f.record("ada").await.state));
    }
    for (order, state) in &states[1..] {
        assert_eq!(state, &states[0].1, "order {order:?} differs from {:?}", states[0].0);
    }
}

#[tokio::test]
async fn redelivered_identify_batch_does_not_count_twice() {
    let f = Fixture::new(0);
    f.run(&[view("v1", "anon:x", 30), view("v2", "anon:x", 20)]).await;
    let batch = || {
        let mut event = SqsEvent::default();
        event.records = [identify("i1", "ada", "x", 10), view("v3", "ada", 5)]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some(e.to_json());
                m
            })
            .collect();
        event
    };
    assert!(handle(batch(), &f.evaluator(), now())
        .await
        .batch_item_failures
        .is_empty());
    let first = f.record("ada").await;
    f.sent();
    assert!(handle(batch(), &f.evaluator(), now())
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(f.record("ada").await, first);
    assert_eq!(f.views("ada").await, serde_json::json!(3));
    assert!(f.sent().is_empty());
    // A redelivered anonymous view, re-keyed to ada, is a duplicate too.
    f.run(&[view("v2", "anon:x", 20)]).await;
    assert_eq!(f.record("ada").await, first);
}

/// The anonymous id is frozen into `ada`, then the function dies before
/// `ada`'s write: the next event involving the link heals it, counting once.
#[tokio::test]
async fn a_crash_between_freeze_and_merge_is_healed() {
    for heal_with_identify in [true, false] {
        let f = Fixture::new(0);
        f.run(&[view("v1", "anon:x", 30), view("v2", "anon:x", 20)]).await;
        let mut frozen = Vec::new();
        let links = vec!["anon:x".to_string()];
        let state = kairos_state::ContactState::default();
        f.evaluator()
            .freeze_links("ada", &state, &links, &mut frozen, now())
            .await
            .unwrap();
        assert_eq!(f.record("anon:x").await.merged_into.as_deref(), Some("ada"));
        assert!(
            f.store.load("ada").await.unwrap().is_none(),
            "the crash: ada not written"
        );
        if heal_with_identify {
            f.run(&[identify("i1", "ada", "x", 10)]).await;
        } else {
            f.run(&[view("v2", "anon:x", 20), view("v3", "anon:x", 5)]).await;
        }
        let expected = if heal_with_identify { 2 } else { 3 };
        assert_eq!(f.views("ada").await, serde_json::json!(expected));
        assert!(f.record("ada").await.state.has_merged("anon:x"));
    }
}

#[tokio::test]
async fn one_batch_can_link_several_anonymous_ids() {
    let f = Fixture::new(0);
    f.run(&[view("v1", "anon:x", 30)]).await;
    f.run(&[view("v2", "anon:y", 25), view("v3", "anon:y", 20)]).await;
    let out = f
        .run(&[
            identify("i1", "ada", "x", 10),
            identify("i2", "ada", "y", 9),
            identify("i3", "ada", "z", 8),
        ])
        .await;
    assert_eq!(
        out.merged,
        ["anon:x", "anon:y", "anon:z"],
        "x, y and the not-yet-seen z"
    );
    assert_eq!(f.views("ada").await, serde_json::json!(3));
    for key in ["anon:x", "anon:y", "anon:z"] {
        let frozen = f.record(key).await;
        assert_eq!(frozen.merged_into.as_deref(), Some("ada"), "{key}");
        assert_eq!(frozen.next_change_at, None, "{key}: never evaluated again");
    }
}

#[tokio::test]
async fn the_first_link_wins() {
    let f = Fixture::new(0);
    f.run(&[view("v1", "anon:x", 30)]).await;
    f.run(&[identify("i1", "ada", "x", 20)]).await;
    let out = f.run(&[identify("i2", "bob", "x", 10)]).await;
    assert!(out.merged.is_empty());
    f.run(&[view("v2", "anon:x", 5)]).await;
    assert_eq!(f.views("ada").await, serde_json::json!(2));
    assert_eq!(f.views("bob").await, serde_json::json!(0));
    assert_eq!(f.record("anon:x").await.merged_into.as_deref(), Some("ada"));
}

/// Deliveries processed concurrently, interleaved at every storage call in a
/// different way per seed, lose nothing and count nothing twice.
#[tokio::test]
async fn concurrent_interleavings_lose_nothing() {
    for seed in 0..300 {
        let f = Fixture::new(seed);
        let batches = [
            vec![view("v1", "anon:x", 50), view("v2", "anon:x", 40)],
            vec![identify("i1", "ada", "x", 30), view("v3", "ada", 25)],
            vec![view("v4", "anon:x", 20)],
            vec![view("v5", "anon:x", 10), view("v1", "anon:x", 50)],
        ];
        let (a, b, c, d) = tokio::join!(
            f.run(&batches[0]),
            f.run(&batches[1]),
            f.run(&batches[2]),
            f.run(&batches[3]),
        );
        let applied = a.applied + b.applied + c.applied + d.applied;
        assert_eq!(applied, 6, "seed {seed}: each event applied once somewhere");
        assert_eq!(f.views("ada").await, serde_json::json!(5), "seed {seed}");
        let merged = [&a, &b, &c, &d].iter().map(|o| o.merged.len()).sum::<usize>();
        assert_eq!(merged, 1, "seed {seed}");
        let entered = f.sent().into_iter().filter(|t| t.contact == "ada").count();
        assert_eq!(entered, 1, "seed {seed}: ada enters once");
    }
}

/// 100 days after the link the contact no longer lists the anonymous id (all it
/// merged is past retention), but the frozen record still re-keys its events.
#[tokio::test]
async fn a_link_outlives_the_contacts_memory_of_it() {
    let f = Fixture::new(0);
    f.run(&[view("v1", "anon:x", 30)]).await;
    f.run(&[identify("i1", "ada", "x", 10)]).await;
    let later = now() + chrono::Duration::days(100);
    let mut event = view("v9", "anon:x", 0);
    event.at = later;
    let out = f.run_at(&[event], later).await;
    assert_eq!((out.applied, out.merged.len()), (1, 0));
    let ada = f.record("ada").await;
    assert!(!ada.state.has_merged("anon:x"));
    let count = f.rules.evaluate(&ada.state, later.timestamp()).verdicts[0]
        .explanation
        .observed
        .clone();
    assert_eq!(count, Some(kairos_rules::Observation::Count(1)));
}
