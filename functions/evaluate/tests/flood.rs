//! One contact flooded through the real evaluate path (issue 15): ordinary
//! traffic mixed with hostile input (events dated in 2100, unique ids by the
//! thousand, trait floods with oversized names and values, anonymous ids linked
//! by the hundred, redeliveries, consent flips): two thirds spread over
//! simulated days, the last third in one burst of unique ids.
//! Every write stays within the item budget, no write fails, and the contact
//! still processes afterwards.
//!
//! `KAIROS_FLOOD_EVENTS` and `KAIROS_FLOOD_DAYS` set the number of events and
//! the days they span (default 20,000 over 90 days, quick enough for `make
//! test` and enough to fill the id cap and the state budget); `make flood`
//! runs a million in release and prints the figures.

use chrono::{DateTime, Duration, Utc};
use kairos_engine::Applied;
use kairos_evaluate::{Evaluator, Outcome, DEFAULT_RULES};
use kairos_event::Event;
use kairos_rules::RuleSet;
use kairos_state::{ConsentStatus, DEDUPE_HORIZON_SECS};
use kairos_store::{ContactStore, MemoryContacts, MemoryQueue, StoreError, StoredContact, ITEM_BUDGET_BYTES};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const VICTIM: &str = "victim@x.test";
const BATCH: usize = 10;

/// The contact store, measuring every record written as DynamoDB counts it.
#[derive(Default)]
struct Measured {
    inner: MemoryContacts,
    largest: AtomicUsize,
    writes: AtomicUsize,
    /// Writes of a state degraded to buckets wider than an hour.
    coarse: AtomicUsize,
}

impl ContactStore for Measured {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.inner.load(contact).await
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        self.largest.fetch_max(record.item_size(contact), Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.coarse
            .fetch_add(usize::from(record.state.bucket_hours() > 1), Ordering::Relaxed);
        self.inner.save(contact, expected, record).await
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        self.inner.clear_outbox(contact, version).await
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<kairos_state::SeenId>, StoreError> {
        self.inner.load_seen(contact, days).await
    }
}

/// xorshift64*: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

/// The `i`-th event of the flood, received at `now`.
fn flood_event(i: u64, now: DateTime<Utc>, rng: &mut Rng) -> Event {
    let fresh = now - Duration::seconds(rng.next(3600) as i64);
    let mut e = json!({"id": format!("e{i}"), "contact": VICTIM, "at": fresh, "source": "flood"});
    let (kind, extra) = match i % 20 {
        0..=4 => {
            let url = ["/pricing", "/compare", "/blog"][rng.next(3) as usize];
            ("page.viewed", json!({ "url": url }))
        }
        5..=7 => ("email.opened", json!({"machine": rng.next(4) == 0})),
        8 => ("email.clicked", json!({})),
        9 => ("email.delivered", json!({})),
        10 => ("chat.message", json!({})),
        11 => ("form.submitted", json!({})),
        12 => ("ad.clicked", json!({})),
        13 => ("track", json!({"name": "Demo Booked"})),
        // Hostile: dated in 2100, as a public write key allows.
        14 | 15 => {
            e["at"] = json!("2100-01-01T00:00:00Z");
            ("contact.identified", json!({"traits": {"plan": "forever"}}))
        }
        // Hostile: a new trait name each time, some too long to store.
        16 => {
            let value = "v".repeat(256 + rng.next(320) as usize);
            (
                "contact.identified",
                json!({"traits": {format!("t{}", rng.next(1 << 20)): value}}),
            )
        }
        // An anonymous visitor linked to the contact, a new one every 200 events.
        17 if i % 200 == 17 => (
            "contact.identified",
            json!({"properties": {"anonymous_id": format!("v{i}")}}),
        ),
        // Late, but within the dedupe horizon (or the floor refuses it).
        17 => {
            e["at"] = json!(now - Duration::seconds(rng.next(DEDUPE_HORIZON_SECS as u64) as i64));
            ("email.opened", json!({}))
        }
        18 => {
            let status = ["subscribed", "unsubscribed"][rng.next(2) as usize];
            ("consent.changed", json!({ "properties": { "status": status } }))
        }
        // A redelivery of an earlier event's id.
        _ => {
            e["id"] = json!(format!("e{}", rng.next(i)));
            ("email.opened", json!({}))
        }
    };
    e["type"] = json!(kind);
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    Event::from_json(e.to_string().as_bytes()).unwrap()
}

/// What the flood's steps did, event by event.
#[derive(Default)]
struct Counts {
    applied: usize,
    duplicate: usize,
    stale: usize,
    late: usize,
    future: usize,
}

fn add(total: &mut Counts, o: &Outcome) {
    total.applied += o.applied;
    total.duplicate += o.refused_as(Applied::Duplicate);
    total.stale += o.refused_as(Applied::Stale);
    total.late += o.late;
    total.future += o.refused_as(Applied::Future);
}

#[tokio::test]
async fn a_flooded_contact_stays_within_its_budget_and_keeps_processing() {
    let setting = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (events, days) = (setting("KAIROS_FLOOD_EVENTS", 20_000), setting("KAIROS_FLOOD_DAYS", 90));
    let (rules, store, queue) = (
        RuleSet::from_yaml(DEFAULT_RULES).unwrap(),
        Measured::default(),
        MemoryQueue::default(),
    );
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let start: DateTime<Utc> = "2026-09-01T00:00:00Z".parse().unwrap();
    // Two thirds spread over the days, then a burst within the last minute.
    let spread = events * 2 / 3;
    let step = Duration::seconds(days as i64 * 86_400) / spread.max(1) as i32;
    let received = |i: u64| {
        start + step * i.min(spread) as i32 + Duration::milliseconds((i.saturating_sub(spread) % 60_000) as i64)
    };
    let (mut rng, mut total, clock) = (Rng(0x9e37_79b9_7f4a_7c15), Counts::default(), Instant::now());
    let mut now = start;
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<Event> = (first..(first + BATCH as u64).min(events))
            .map(|i| flood_event(i, received(i), &mut rng))
            .collect();
        now = received(first + BATCH as u64 - 1);
        let outcome = evaluator.contact(VICTIM, &batch, now).await.expect("no write fails");
        add(&mut total, &outcome);
        queue.drain();
    }
    let elapsed = clock.elapsed();
    let record = store.load(VICTIM).await.unwrap().unwrap();
    let largest = store.largest.load(Ordering::Relaxed);
    println!(
        "flood: {events} events over {days} days in {:.1} s ({:.0} events/s), {} writes ({} with coarser buckets); applied {}, duplicate {}, stale {}, late {}, future {}",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        store.writes.load(Ordering::Relaxed),
        store.coarse.load(Ordering::Relaxed),
        total.applied,
        total.duplicate,
        total.stale,
        total.late,
        total.future
    );
    println!(
        "flood: item budget {ITEM_BUDGET_BYTES} bytes; largest record written {largest} bytes; final {} bytes (state {} bytes); dedupe floor {} h before now",
        record.item_size(VICTIM),
        record.state.to_bytes().len(),
        (now.timestamp() - record.state.stale_before(now.timestamp())) / 3600,
    );
    assert!(largest <= ITEM_BUDGET_BYTES, "largest record {largest} bytes");
    assert!(
        store.coarse.load(Ordering::Relaxed) > 0,
        "the state budget was reached and degraded"
    );
    assert!(
        total.future >= events as usize / 10,
        "hostile future-dated events are refused"
    );
    assert!(
        record
            .state
            .signals()
            .iter()
            .all(|s| s.last_at() <= Some(now.timestamp() + 300)),
        "nothing future-dated was stored"
    );
    assert!(
        record.state.stale_before(now.timestamp()) > now.timestamp() - DEDUPE_HORIZON_SECS,
        "the id flood moved the dedupe floor"
    );

    // The contact still processes: a click and an unsubscribe, just now.
    let after = now + Duration::minutes(1);
    let fresh = |id: &str, kind: &str| {
        let e = json!({"id": id, "contact": VICTIM, "type": kind, "at": after, "source": "sendgrid"});
        Event::from_json(e.to_string().as_bytes()).unwrap()
    };
    let clicked = evaluator
        .contact(VICTIM, &[fresh("after-1", "email.clicked")], after)
        .await
        .unwrap();
    assert_eq!((clicked.applied, clicked.version.is_some()), (1, true));
    evaluator
        .contact(VICTIM, &[fresh("after-2", "email.unsubscribed")], after)
        .await
        .unwrap();
    let record = store.load(VICTIM).await.unwrap().unwrap();
    assert_eq!(record.state.consent().status(), ConsentStatus::Unsubscribed);
    assert!(record.item_size(VICTIM) <= ITEM_BUDGET_BYTES);
}
