//! The evaluator over a store whose eventually consistent reads are always
//! stale (the record before its latest change): the first read's write
//! loses, the retry reads strongly, and nothing is applied or sent twice.

use super::*;
use kairos_event::{Change, Event, Transition};
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, MemoryContacts, MemoryQueue, StoreError, StoredContact};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Answers every eventually consistent read with the record before its
/// latest change (when there was one), and counts both kinds of read.
#[derive(Default)]
struct Stale {
    inner: MemoryContacts,
    strong: AtomicUsize,
    eventual: AtomicUsize,
}

impl ContactStore for Stale {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.strong.fetch_add(1, Ordering::SeqCst);
        self.inner.load(contact).await
    }

    async fn load_eventually(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.eventual.fetch_add(1, Ordering::SeqCst);
        match self.inner.previous(contact) {
            Some(stale) => Ok(stale),
            None => self.inner.load(contact).await,
        }
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        self.inner.save(contact, expected, record).await
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        self.inner.clear_outbox(contact, version).await
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<kairos_state::SeenId>, StoreError> {
        self.inner.load_seen(contact, days).await
    }
}

impl Stale {
    fn new() -> Stale {
        Stale {
            inner: MemoryContacts::keeping_previous(),
            ..Stale::default()
        }
    }

    /// (strong reads, eventually consistent reads) so far.
    fn reads(&self) -> (usize, usize) {
        (self.strong.load(Ordering::SeqCst), self.eventual.load(Ordering::SeqCst))
    }
}

fn event(id: &str, kind: &str, at: &str) -> Event {
    let json = format!(r#"{{"id":"{id}","contact":"ada@x.test","type":"{kind}","at":"{at}","source":"test"}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-27T10:05:00Z".parse().unwrap()
}

fn sent(queue: &MemoryQueue) -> Vec<Transition> {
    let decode = |m: &kairos_store::Message| match kairos_event::WritebackMessage::decode(m.body.as_bytes()).unwrap() {
        kairos_event::WritebackMessage::Transition(t) => t,
    };
    queue.drain().iter().map(decode).collect()
}

#[tokio::test]
async fn a_stale_first_read_loses_its_write_and_the_retry_reads_strongly() {
    let (rules, store, queue) = (
        RuleSet::from_yaml(DEFAULT_RULES).unwrap(),
        Stale::new(),
        MemoryQueue::default(),
    );
    let ev = Evaluator::new(&rules, &store, &queue);
    let clicked = |id: &str, minute: u32| event(id, "email.clicked", &format!("2026-11-27T10:0{minute}:00Z"));
    let version = || async { store.inner.load("ada@x.test").await.unwrap().unwrap().version };

    assert_eq!(
        ev.contact("ada@x.test", &[clicked("e1", 0)], now())
            .await
            .unwrap()
            .applied,
        1
    );
    assert_eq!(store.reads(), (0, 1), "a new contact: one eventually consistent read");
    let entered = sent(&queue);
    assert_eq!(entered.len(), 1);
    assert_eq!(
        (entered[0].segment.as_str(), entered[0].change),
        ("engaged-reader", Change::Entered)
    );
    let v1 = version().await;

    // Read stale: v1 before its outbox was cleared. The version is current,
    // so the write stands; the outbox is sent again: a repeat of v1's
    // transition, which write-back's ledger drops.
    assert_eq!(
        ev.contact("ada@x.test", &[clicked("e2", 1)], now())
            .await
            .unwrap()
            .applied,
        1
    );
    assert_eq!(store.reads(), (0, 2));
    let repeated = sent(&queue);
    assert_eq!(repeated, entered, "the same transition, the same version");
    let v2 = version().await;
    assert!(v2 > v1);

    // Read stale: v1, an older version. Its write loses; the retry reads strongly.
    let outcome = ev.contact("ada@x.test", &[clicked("e3", 2)], now()).await.unwrap();
    assert_eq!((outcome.applied, outcome.refused.len()), (1, 0));
    assert_eq!(store.reads(), (1, 3));
    let stored = store.inner.load("ada@x.test").await.unwrap().unwrap();
    assert!(stored.version > v2);
    assert!(sent(&queue).is_empty(), "already entered: nothing to send");

    // A redelivery of e2 read stale (v2, which has it): a duplicate on a
    // possibly stale view is confirmed on a strong read before it is dropped.
    let outcome = ev.contact("ada@x.test", &[clicked("e2", 1)], now()).await.unwrap();
    assert_eq!((outcome.applied, outcome.refused.len(), outcome.version), (0, 1, None));
    assert_eq!(store.reads(), (2, 4));
    assert_eq!(
        store.inner.load("ada@x.test").await.unwrap().unwrap(),
        stored,
        "nothing written"
    );
    assert!(sent(&queue).is_empty());
}

#[tokio::test]
async fn without_stale_reads_one_eventually_consistent_read_does() {
    let (rules, queue) = (RuleSet::from_yaml(DEFAULT_RULES).unwrap(), MemoryQueue::default());
    let store = Stale::default(); // keeps nothing earlier: every read is fresh
    let ev = Evaluator::new(&rules, &store, &queue);
    for (id, at) in [("e1", "2026-11-27T10:00:00Z"), ("e2", "2026-11-27T10:01:00Z")] {
        ev.contact("ada@x.test", &[event(id, "email.clicked", at)], now())
            .await
            .unwrap();
    }
    assert_eq!(store.reads(), (0, 2), "a write on a fresh read needs no strong one");
}
