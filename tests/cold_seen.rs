//! Old event ids kept apart from the contact record (cold days,
//! `kairos_store::cold`), on the template's table in moto server through the
//! real SDK: ids move out of the record into `seen#<contact>#<day>` Binary
//! Sets as they age, a late copy of an old event is found there and
//! refused as a duplicate, a repeated write changes nothing, and an erasure
//! deletes the days, also those an evaluation racing it writes.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use kairos_evaluate::{Erasure, Evaluator, DEFAULT_RULES};
use kairos_event::Event;
use kairos_rules::RuleSet;
use kairos_state::{Applied, HOT_SEEN_SECS};
use kairos_store::{ContactStore, MemoryQueue, StoreError};
use support::Stack;

const ADA: &str = "ada@x.test";

fn open(id: &str, at: DateTime<Utc>) -> Event {
    let json = format!(r#"{{"id":"{id}","contact":"{ADA}","type":"email.opened","at":"{at}","source":"sendgrid"}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

fn day0() -> DateTime<Utc> {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// The elements of a cold day's `ids` set, sorted.
async fn day_ids(stack: &Stack, day: &str) -> Option<Vec<Vec<u8>>> {
    let item = stack.raw_item(&format!("seen#{ADA}#{day}")).await?;
    let Some(AttributeValue::Bs(set)) = item.get("ids") else {
        panic!("`ids` is a binary set: {item:?}");
    };
    assert!(item.contains_key("expires_at"), "{item:?}");
    let mut ids: Vec<Vec<u8>> = set.iter().map(|b| b.as_ref().to_vec()).collect();
    ids.sort();
    Some(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_ids_move_to_their_day_and_still_dedupe_a_late_copy() {
    let stack = Stack::start().await;
    let (store, queue) = (stack.store(), MemoryQueue::default());
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let first = [open("o1", day0()), open("o2", day0() + Duration::hours(1))];
    evaluator
        .contact(ADA, &first, day0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        day_ids(&stack, "2026-11-20").await,
        None,
        "recent ids stay in the record"
    );

    // Four days later, the next event moves them to their day.
    let later = day0() + Duration::days(4);
    evaluator.contact(ADA, &[open("o3", later)], later).await.unwrap();
    let moved = day_ids(&stack, "2026-11-20").await.expect("the day's item");
    assert_eq!(moved.len(), 2);
    assert!(moved.iter().all(|id| id.len() == 8));
    let record = store.load(ADA).await.unwrap().unwrap();
    assert_eq!(record.state.cold_days().len(), 1);
    assert_eq!(record.state.seen_bound(), 3);
    assert_eq!(store.load_seen(ADA, &record.state.cold_days()).await.unwrap().len(), 2);

    // A late copy of the first event reads its day back: a duplicate.
    let copy = evaluator.contact(ADA, &first[..1], later).await.unwrap();
    assert_eq!(
        copy.refused.iter().map(|r| r.why).collect::<Vec<_>>(),
        [Applied::Duplicate]
    );
    assert_eq!(copy.applied, 0);
    // A move written twice (the retry of a write whose answer was lost:
    // its condition then fails) leaves the day as written once.
    let mut record = store.load(ADA).await.unwrap().unwrap();
    record
        .state
        .age_seen((later + Duration::days(3)).timestamp(), HOT_SEEN_SECS);
    let expected = Some(record.version);
    record.version += 1;
    store.save(ADA, expected, &record).await.unwrap();
    let retry = store.save(ADA, expected, &record).await;
    assert!(matches!(retry, Err(StoreError::Conflict)), "{retry:?}");
    assert_eq!(day_ids(&stack, "2026-11-24").await.map(|ids| ids.len()), Some(1));
    assert_eq!(day_ids(&stack, "2026-11-20").await, Some(moved));

    // An evaluation that read the record before the erasure moves a newer id
    // to its day and keeps a consent apart.
    let newer = later + Duration::days(1);
    let consent = format!(
        r#"{{"id":"k1","contact":"{ADA}","type":"consent.changed","at":"{}","source":"form","properties":{{"status":"unsubscribed"}}}}"#,
        newer.to_rfc3339()
    );
    let consent = Event::from_json(consent.as_bytes()).unwrap();
    evaluator
        .contact(ADA, &[open("o4", newer), consent], newer)
        .await
        .unwrap();
    assert!(stack.raw_item(&format!("consent#{ADA}")).await.is_some(), "kept apart");
    let mut racing = store.load(ADA).await.unwrap().unwrap();
    racing
        .state
        .age_seen((newer + Duration::days(4)).timestamp(), HOT_SEEN_SECS);
    racing.consent_kept = None;
    let read_at = Some(racing.version);
    racing.version += 1;

    // The erasure deletes the days with the rest.
    let erasure = Erasure {
        actor: "test",
        salt: b"salt",
        window_secs: 86_400,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
    };
    let erased = evaluator.erase(ADA, &erasure, later).await.unwrap();
    assert!(erased.complete && erased.deliveries >= 1, "{erased:?}");
    assert_eq!(day_ids(&stack, "2026-11-20").await, None);
    assert_eq!(day_ids(&stack, "2026-11-24").await, None);

    // The racing save, after the erasure: its day written first, then its record refused
    // by the tombstone; the day it wrote is taken back, nothing names Ada.
    let lost = store.save(ADA, read_at, &racing).await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");
    assert_eq!(day_ids(&stack, "2026-11-25").await, None);
    assert_eq!(stack.raw_item(&format!("consent#{ADA}")).await, None);
}
