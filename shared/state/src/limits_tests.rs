//! Every list in a state is capped, and the whole is held to its budget.

use super::*;
use chrono::DateTime;
use serde_json::json;

const T0: i64 = 1_795_000_000;

fn event(id: &str, kind: EventType, at: i64) -> Event {
    let json = json!({"id": id, "contact": "c", "type": kind.as_str(), "at": DateTime::from_timestamp(at, 0).unwrap(), "source": "test"});
    let mut e = Event::from_json(json.to_string().as_bytes()).unwrap();
    if kind == EventType::ContactIdentified {
        e.traits.insert(format!("t-{id}"), json!(id));
    }
    e
}

#[test]
fn traits_are_capped_by_count_keeping_the_latest_in_any_order() {
    let events: Vec<Event> = (0..MAX_TRAITS as i64 + 10)
        .map(|i| event(&format!("{i:03}"), EventType::ContactIdentified, T0 + i))
        .collect();
    let mut forward = ContactState::default();
    let mut backward = ContactState::default();
    for e in &events {
        forward.apply(e, &[], T0 + 1000);
    }
    for e in events.iter().rev() {
        backward.apply(e, &[], T0 + 1000);
    }
    assert_eq!(forward, backward);
    assert_eq!(forward.traits.len(), MAX_TRAITS);
    assert!(forward.trait_value("t-009").is_none() && forward.trait_value("t-010").is_some());
}

#[test]
fn a_trait_too_long_to_store_is_refused_by_name() {
    let mut state = ContactState::default();
    let mut e = event("1", EventType::ContactIdentified, T0);
    e.traits
        .insert("bio".into(), json!("x".repeat(MAX_TRAIT_VALUE_BYTES + 1)));
    e.traits.insert("n".repeat(MAX_TRAIT_NAME_BYTES + 1), json!(1));
    assert_eq!(refused_traits(&e).count(), 2);
    assert!(refused_traits(&e).any(|n| n == "bio"));
    state.apply(&e, &[], T0);
    assert_eq!(state.traits.len(), 1, "only the short trait is stored");
}

#[test]
fn past_the_id_cap_the_oldest_are_forgotten_and_older_events_refused() {
    let mut state = ContactState::default();
    let now = T0 + 10_000;
    for i in 0..MAX_SEEN_IDS as i64 + 1 {
        assert_eq!(
            state.apply(&event(&i.to_string(), EventType::PageViewed, T0 + i), &[1], now),
            Applied::Applied
        );
    }
    assert!(state.seen.len() <= MAX_SEEN_IDS);
    let floor = state.stale_before(now);
    assert!(floor > now - DEDUPE_HORIZON_SECS && floor <= T0 + MAX_SEEN_IDS as i64);
    // A redelivery of a forgotten id is refused, not counted twice; newer events still count.
    assert_eq!(
        state.apply(&event("0", EventType::PageViewed, T0), &[1], now),
        Applied::Stale
    );
    assert_eq!(
        state.apply(&event("new", EventType::PageViewed, now), &[1], now),
        Applied::Applied
    );
    let bytes = state.to_bytes();
    assert_eq!(
        ContactState::from_bytes(&bytes).unwrap().stale_before(now),
        floor,
        "the floor is stored"
    );
}

#[test]
fn merges_stop_at_the_cap() {
    let mut state = ContactState::default();
    for i in 0..MAX_MERGED {
        assert!(state.absorb(&format!("anon:{i}"), &ContactState::default(), T0));
    }
    assert!(state.merged_full());
    assert!(!state.absorb("anon:one-more", &ContactState::default(), T0));
    assert!(!state.has_merged("anon:one-more"));
}

#[test]
fn occurrences_stored_far_in_the_future_are_dropped_at_compaction() {
    let mut state = ContactState::default();
    let mut signal = SignalState::new(4);
    signal.record(T0);
    signal.record(4_102_444_800); // 2100, stored before events were bounded in time
    state.signals.push(signal);
    state.compact(T0);
    let signal = state.signal(4).unwrap();
    assert_eq!((signal.last_at(), signal.count_since(0, i64::MAX)), (Some(T0), 1));
}

/// A state with `signals` signals, each with an occurrence in every hour of the retention.
fn full(signals: u32, now: i64) -> ContactState {
    let mut state = ContactState::default();
    let hours = RETENTION_SECS / 3600;
    for key in 0..signals {
        let mut signal = SignalState::new(key);
        for h in 0..hours {
            signal.record(now - h * 3600 - 7);
        }
        state.signals.push(signal);
    }
    state.compact(now);
    state
}

#[test]
fn an_oversized_state_is_coarsened_to_fit_keeping_every_occurrence() {
    let now = T0;
    let mut state = full(20, now);
    let counts = |s: &ContactState| s.signals().iter().map(|s| s.count_since(0, now)).collect::<Vec<_>>();
    let before = counts(&state);
    assert!(state.to_bytes().len() > STATE_BUDGET_BYTES);
    let fitted = state.fit(STATE_BUDGET_BYTES);
    assert!(fitted.degraded() && fitted.after <= STATE_BUDGET_BYTES, "{fitted:?}");
    assert_eq!(fitted.after, state.to_bytes().len());
    assert!(fitted.bucket_hours.is_some() && fitted.floor.is_none() && fitted.traits_dropped == 0);
    assert_eq!(counts(&state), before, "coarser buckets, same counts");
    // A state within the budget is left alone.
    let again = state.clone().fit(STATE_BUDGET_BYTES);
    assert!(!again.degraded());
}

#[test]
fn when_buckets_are_not_enough_ids_then_traits_give_way() {
    let now = T0 + 100_000;
    let mut state = full(2, now);
    for i in 0..MAX_SEEN_IDS as i64 {
        state.apply(&event(&format!("v{i}"), EventType::PageViewed, now - i), &[], now);
        state.apply(
            &event(&format!("i{i}"), EventType::ContactIdentified, now - i),
            &[],
            now,
        );
    }
    let fitted = state.fit(1_000);
    assert!(fitted.after <= 1_000, "{fitted:?}");
    assert_eq!(fitted.exact_kept, Some(0));
    assert!(fitted.floor.is_some_and(|f| f == state.stale_before(now)), "{fitted:?}");
    assert!(fitted.traits_dropped > 0, "{fitted:?}");
}
