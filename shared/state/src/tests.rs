use super::*;
use chrono::DateTime;
use proptest::prelude::*;

const T0: i64 = 1_795_000_000;

/// An event `e<id>` of `kind` for contact `c` at `at` (a `contact.identified` one sets a `plan` trait).
pub(crate) fn event(id: u32, kind: EventType, at: i64) -> Event {
    let mut e = Event {
        id: format!("e{id}"),
        contact: "c".into(),
        kind,
        name: None,
        at: DateTime::from_timestamp(at, 0).unwrap(),
        source: "test".into(),
        machine: false,
        url: None,
        campaign: None,
        message_id: None,
        properties: Default::default(),
        traits: Default::default(),
    };
    if kind == EventType::ContactIdentified {
        e.traits
            .insert("plan".into(), serde_json::json!(format!("p{}", id % 3)));
    }
    if kind == EventType::ConsentChanged {
        e.properties.insert("status".into(), serde_json::json!("subscribed"));
    }
    e
}

const KINDS: [EventType; 5] = [
    EventType::EmailOpened,
    EventType::PageViewed,
    EventType::ContactIdentified,
    EventType::EmailUnsubscribed,
    EventType::ConsentChanged,
];

fn arb_events() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0u32..400, 0..150)
}

/// Applies events named by id: the same id always means the same event, as
/// with a real redelivery.
fn apply_all(ids: &[u32], now: i64) -> ContactState {
    let mut state = ContactState::default();
    for &id in ids {
        let at = T0 + i64::from(id) * 7919 % (6 * 86_400) - i64::from(id % 5) * 3600;
        let e = event(id, KINDS[id as usize % KINDS.len()], at);
        state.apply(&e, &[u32::from(id % 2 == 0), 9], now);
    }
    state.compact(now);
    state
}

proptest! {
    #[test]
    fn any_order_and_duplicates_give_the_same_state(events in arb_events(), seed in any::<u64>()) {
        let now = T0 + 6 * 86_400;
        let mut shuffled = events.clone();
        shuffled.extend(events.iter().take(10).copied());
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(apply_all(&events, now), apply_all(&shuffled, now));
    }

    #[test]
    fn counts_match_a_brute_force_log_within_an_hour(times in prop::collection::vec(0i64..(80 * 86_400), 1..200), window_h in 1i64..(80 * 24)) {
        let now = T0 + 80 * 86_400;
        let mut state = ContactState::default();
        // Apply in time order, each at its own time, as the live pipeline would.
        let mut sorted = times.clone();
        sorted.sort_unstable();
        for (i, t) in sorted.iter().enumerate() {
            let at = T0 + t;
            state.apply(&event(i as u32, EventType::PageViewed, at), &[1], at);
        }
        state.compact(now);
        let window = window_h * 3600;
        let from = now - window;
        let exact = sorted.iter().filter(|t| T0 + **t > from).count() as u64;
        let next_hour = (from.div_euclid(3600) + 1) * 3600;
        let lower = sorted.iter().filter(|t| T0 + **t >= next_hour).count() as u64;
        let got = state.signal(1).map_or(0, |s| s.count_since(from, now));
        prop_assert!(lower <= got && got <= exact, "got {got}, exact {exact}, lower {lower}");
        if window <= EXACT_HORIZON_SECS && exact <= EXACT_CAP as u64 {
            prop_assert_eq!(got, exact);
        }
    }
}

#[test]
fn duplicate_changes_nothing() {
    let mut state = ContactState::default();
    let e = event(1, EventType::EmailOpened, T0);
    assert_eq!(state.apply(&e, &[3], T0), Applied::Applied);
    let before = state.clone();
    assert_eq!(state.apply(&e, &[3], T0 + 60), Applied::Duplicate);
    assert_eq!(state.signal(3), before.signal(3));
}

#[test]
fn an_id_is_forgotten_after_the_horizon_whatever_is_applied_between() {
    let later = T0 + DEDUPE_HORIZON_SECS + 2 * 3600;
    let copy = event(1, EventType::EmailOpened, later);
    for between in [None, Some(event(2, EventType::PageViewed, T0 + DEDUPE_HORIZON_SECS))] {
        let mut state = ContactState::default();
        state.apply(&event(1, EventType::EmailOpened, T0), &[3], T0);
        if let Some(e) = &between {
            state.apply(e, &[4], e.at.timestamp());
        }
        assert_eq!(
            state.apply(&copy, &[3], later),
            Applied::Applied,
            "between: {between:?}"
        );
        assert_eq!(state.apply(&copy, &[3], later), Applied::Duplicate);
    }
    // Within the horizon, a copy dated later is the same event.
    let mut state = ContactState::default();
    state.apply(&event(1, EventType::EmailOpened, T0), &[3], T0);
    let close = T0 + DEDUPE_HORIZON_SECS - 3600;
    assert_eq!(
        state.apply(&event(1, EventType::EmailOpened, close), &[3], close),
        Applied::Duplicate
    );
}

#[test]
fn stale_event_is_refused() {
    let mut state = ContactState::default();
    let e = event(1, EventType::EmailOpened, T0);
    assert_eq!(state.apply(&e, &[3], T0 + DEDUPE_HORIZON_SECS + 1), Applied::Stale);
    assert!(state.signal(3).is_none());
}

#[test]
fn consent_is_last_writer_wins_by_event_time() {
    let mut state = ContactState::default();
    let unsub = event(1, EventType::EmailUnsubscribed, T0 + 10);
    let resub = event(2, EventType::ConsentChanged, T0 + 5);
    state.apply(&unsub, &[], T0 + 20);
    state.apply(&resub, &[], T0 + 20);
    assert_eq!(state.consent().status(), ConsentStatus::Unsubscribed);
}

#[test]
fn traits_keep_the_latest_value() {
    let mut state = ContactState::default();
    state.apply(&event(2, EventType::ContactIdentified, T0 + 10), &[], T0 + 10);
    state.apply(&event(1, EventType::ContactIdentified, T0), &[], T0 + 10);
    assert_eq!(state.trait_value("plan"), Some(&TraitValue::Text("p2".into())));
}

#[test]
fn round_trips_through_bytes_and_stays_small() {
    let mut state = ContactState::default();
    for i in 0..60 {
        let at = T0 + i * 3 * 3600;
        state.apply(&event(i as u32, EventType::EmailOpened, at), &[1, 2], at);
    }
    let bytes = state.to_bytes();
    assert_eq!(ContactState::from_bytes(&bytes).unwrap(), state);
    assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    assert!(ContactState::from_bytes(&[0xff, 0xff]).is_err());
}

#[test]
fn memberships_stay_sorted_and_keep_their_entry_time() {
    let mut state = ContactState::default();
    for (id, at) in [("m", 3), ("b", 1), ("x", 2), ("b", 9)] {
        state.set_membership(id, true, at);
    }
    state.set_membership("x", false, 4);
    state.set_membership("q", false, 5);
    assert_eq!(state.members(), [("b".to_string(), 1), ("m".to_string(), 3)]);
    assert_eq!((state.member_since("m"), state.member_since("x")), (Some(3), None));
}

#[test]
fn holds_lose_trailing_zeros_and_round_trip() {
    let mut state = ContactState::default();
    state.record_decision(vec![(4, 20), (1, 10)], vec![0, 7, 0, 0]);
    assert_eq!(
        (state.deadlines(), state.holds()),
        (&[(1, 10), (4, 20)][..], &[0, 7][..])
    );
    assert_eq!(ContactState::from_bytes(&state.to_bytes()).unwrap(), state);
}

#[test]
fn format_1_states_written_before_holds_and_member_lists_still_decode() {
    // A state ended where holds now start (an empty list is one 0 byte)...
    let bytes = include_bytes!("../tests/fixtures/v1/empty.bin");
    let state = ContactState::decode(bytes, 1).unwrap();
    assert!(state.holds().is_empty());
    let (before_holds, no_holds) = bytes.split_at(bytes.len() - 1);
    assert_eq!(no_holds, [0]);
    assert_eq!(ContactState::decode(before_holds, 1).unwrap(), state);
    // ...and kept memberships in a map, encoded as the list is.
    let map = std::collections::BTreeMap::from([("a".to_string(), 1i64), ("b".to_string(), 2)]);
    let list = vec![("a".to_string(), 1i64), ("b".to_string(), 2)];
    assert_eq!(postcard::to_stdvec(&map).unwrap(), postcard::to_stdvec(&list).unwrap());
    assert!(ContactState::decode(&before_holds[..before_holds.len() - 1], 1).is_err());
}

#[test]
fn retention_drops_old_signals() {
    let mut state = ContactState::default();
    state.apply(&event(1, EventType::PageViewed, T0), &[5], T0);
    state.compact(T0 + RETENTION_SECS + 3600);
    assert!(state.signal(5).is_none());
}

proptest! {
    #[test]
    fn merging_two_halves_equals_applying_everything_to_one(events in arb_events(), mask in any::<u64>()) {
        let now = T0 + 6 * 86_400;
        let mut distinct = events.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // Each distinct event goes to one side (with its duplicates), as an event
        // has exactly one contact.
        let side = |id: &u32| mask.rotate_left(*id) & 1 == 1;
        let (a, b): (Vec<u32>, Vec<u32>) = events.iter().partition(|id| side(id));
        let mut merged = apply_all(&a, now);
        prop_assert!(merged.absorb("anon:x", &apply_all(&b, now), now + RETENTION_SECS));
        merged.compact(now);
        let mut whole = apply_all(&events, now);
        whole.absorb("anon:x", &ContactState::default(), now + RETENTION_SECS);
        prop_assert_eq!(&merged, &whole);
        // A repeated merge (a retry, a concurrent function) changes nothing.
        prop_assert!(!merged.absorb("anon:x", &apply_all(&b, now), now + RETENTION_SECS));
        prop_assert_eq!(merged, whole);
    }
}

#[test]
fn merged_ids_are_forgotten_after_keep_until() {
    let mut state = ContactState::default();
    assert!(state.absorb("anon:x", &ContactState::default(), T0 + 7200));
    assert!(state.has_merged("anon:x") && !state.has_merged("anon:y"));
    state.compact(T0 + 7200);
    assert!(state.has_merged("anon:x"));
    state.compact(T0 + 3 * 3600);
    assert!(!state.has_merged("anon:x"));
}

#[test]
fn merge_keeps_the_latest_trait_and_consent_from_either_side() {
    let mut known = ContactState::default();
    known.apply(&event(1, EventType::ContactIdentified, T0), &[], T0 + 100);
    known.apply(&event(2, EventType::EmailUnsubscribed, T0 + 50), &[], T0 + 100);
    let mut anonymous = ContactState::default();
    anonymous.apply(&event(5, EventType::ContactIdentified, T0 + 10), &[], T0 + 100);
    anonymous.apply(&event(3, EventType::ConsentChanged, T0 + 20), &[], T0 + 100);
    known.merge(&anonymous);
    assert_eq!(known.trait_value("plan"), Some(&TraitValue::Text("p2".into())));
    assert_eq!(known.consent().status(), ConsentStatus::Unsubscribed);
    assert_eq!(known.consent().since(), T0 + 50);
}

#[test]
fn an_event_dated_beyond_the_skew_is_refused_and_changes_nothing() {
    let mut state = ContactState::default();
    let skew = kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS;
    let mut future = event(1, EventType::ContactIdentified, T0 + skew + 1);
    assert_eq!(state.apply(&future, &[3], T0), Applied::Future);
    future.at = DateTime::from_timestamp(4_102_444_800, 0).unwrap(); // 2100
    assert_eq!(state.apply(&future, &[3], T0), Applied::Future);
    assert_eq!(state, ContactState::default());
    // Within the skew it counts; a deployment may allow less.
    let near = event(2, EventType::EmailOpened, T0 + skew);
    assert_eq!(state.apply_with_skew(&near, &[3], T0, 60), Applied::Future);
    assert_eq!(state.apply(&near, &[3], T0), Applied::Applied);
}

#[test]
fn a_stale_event_still_sets_consent_and_traits_but_counts_nothing() {
    let mut state = ContactState::default();
    let now = T0 + DEDUPE_HORIZON_SECS + 86_400;
    let unsubscribe = event(1, EventType::EmailUnsubscribed, T0);
    assert_eq!(state.apply(&unsubscribe, &[3], now), Applied::Late);
    assert_eq!(state.consent().status(), ConsentStatus::Unsubscribed);
    assert!(state.signal(3).is_none(), "a stale event's occurrence is not counted");
    let identify = event(2, EventType::ContactIdentified, T0);
    assert_eq!(state.apply(&identify, &[3], now), Applied::Late);
    assert_eq!(state.trait_value("plan"), Some(&TraitValue::Text("p2".into())));
    // Applying them again changes nothing: they are registers, not counts.
    assert_eq!(state.apply(&unsubscribe, &[3], now), Applied::Stale);
    assert_eq!(state.apply(&identify, &[3], now), Applied::Stale);
}

#[test]
fn a_consent_reads_back_from_its_order_which_follows_last_writer_wins() {
    let statuses = ConsentStatus::ALL;
    let mut all: Vec<Consent> = statuses
        .iter()
        .flat_map(|s| [Consent::new(*s, T0), Consent::new(*s, T0 + 1)])
        .collect();
    for c in &all {
        assert_eq!(Consent::from_order(c.order()), *c);
    }
    all.sort_by_key(Consent::order);
    for pair in all.windows(2) {
        let mut merged = pair[1];
        merged.merge(&pair[0]);
        assert_eq!(merged, pair[1], "the greater order wins a merge");
    }
    assert_eq!(Consent::default().order(), 0);
}

#[test]
fn the_encoded_parts_add_up_to_the_encoding_and_name_where_the_bytes_go() {
    let ids: Vec<u32> = (0..400).collect();
    let state = apply_all(&ids, T0 + 6 * 86_400);
    let parts = state.encoded_parts();
    let sum: usize = parts.iter().map(|(_, bytes)| bytes).sum();
    assert_eq!(sum, state.to_bytes().len(), "{parts:?}");
    let part = |name: &str| parts.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).unwrap();
    // 400 events within the dedupe horizon: 6 hash bytes and a time gap each.
    assert!(part("event ids (dedupe)") >= 400 * 7, "{parts:?}");
    assert!(
        part("occurrences (hourly buckets)") > 0 && part("occurrences (exact)") > 0,
        "{parts:?}"
    );
    assert_eq!(
        ContactState::default()
            .encoded_parts()
            .iter()
            .map(|(_, b)| b)
            .sum::<usize>(),
        ContactState::default().to_bytes().len()
    );
}
