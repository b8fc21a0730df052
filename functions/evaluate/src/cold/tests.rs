use crate::{Evaluator, DEFAULT_RULES};
use chrono::{DateTime, Duration, Utc};
use kairos_event::Event;
use kairos_rules::RuleSet;
use kairos_state::Applied;
use kairos_store::{MemoryContacts, MemoryQueue};

fn event(id: &str, contact: &str, at: DateTime<Utc>, properties: &str) -> Event {
    let json = format!(
        r#"{{"id":"{id}","contact":"{contact}","type":"page.viewed","at":"{at}","source":"web","url":"/pricing"{properties}}}"#
    );
    Event::from_json(json.as_bytes()).unwrap()
}

fn day0() -> DateTime<Utc> {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

fn refused(outcome: &crate::Outcome) -> Vec<Applied> {
    outcome.refused.iter().map(|r| r.why).collect()
}

#[tokio::test]
async fn a_copy_of_an_old_event_is_found_in_its_cold_day() {
    let (rules, store, queue) = (
        RuleSet::from_yaml(DEFAULT_RULES).unwrap(),
        MemoryContacts::default(),
        MemoryQueue::default(),
    );
    let ev = Evaluator::new(&rules, &store, &queue);
    for day in 0..6 {
        let at = day0() + Duration::days(day);
        ev.contact("ada", &[event(&format!("v{day}"), "ada", at, "")], at)
            .await
            .unwrap();
    }
    let now = day0() + Duration::days(6);
    let record = kairos_store::ContactStore::load(&store, "ada").await.unwrap().unwrap();
    // The last write (day 5) moved days 0 to 2: the cutoff is the midnight
    // 48 hours back or before.
    assert_eq!(record.state.cold_days().len(), 3);
    assert_eq!(record.state.seen_bound(), 6);
    let copy = ev
        .contact("ada", &[event("v1", "ada", day0() + Duration::days(1), "")], now)
        .await
        .unwrap();
    assert_eq!((refused(&copy), copy.applied), (vec![Applied::Duplicate], 0));
    // A new event of that day still counts.
    let new = ev
        .contact("ada", &[event("w1", "ada", day0() + Duration::days(1), "")], now)
        .await
        .unwrap();
    assert_eq!(new.applied, 1);
}

#[tokio::test]
async fn a_linked_visitors_old_ids_come_with_its_frozen_record() {
    let (rules, store, queue) = (
        RuleSet::from_yaml(DEFAULT_RULES).unwrap(),
        MemoryContacts::default(),
        MemoryQueue::default(),
    );
    let ev = Evaluator::new(&rules, &store, &queue);
    let old = event("a1", "anon:x", day0(), "");
    ev.contact("anon:x", std::slice::from_ref(&old), day0()).await.unwrap();
    // Days later the visitor's next view moves its first id to a cold day.
    let later = day0() + Duration::days(5);
    ev.contact("anon:x", &[event("a2", "anon:x", later, "")], later)
        .await
        .unwrap();
    assert_eq!(store.cold_ids("anon:x", day0().timestamp().div_euclid(86_400)), 1);
    // Identified: the visitor's record is frozen and merged into ada's.
    let identify = r#","properties":{"anonymous_id":"x"}"#;
    ev.contact("ada", &[event("i1", "ada", later, identify)], later)
        .await
        .unwrap();
    // A late copy of its first view, re-keyed to ada: a duplicate.
    let copy = ev.contact("anon:x", &[old], later).await.unwrap();
    assert_eq!((refused(&copy), copy.applied), (vec![Applied::Duplicate], 0));
}
