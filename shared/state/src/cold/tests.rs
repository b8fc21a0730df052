use super::*;
use crate::{Applied, MAX_SEEN_IDS};
use kairos_event::{Event, EventType};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// 2026-11-26T00:00:00Z: a UTC midnight.
const D0: i64 = 1_795_651_200;

fn open(id: u32, at: i64) -> Event {
    crate::tests::event(id, EventType::EmailOpened, at)
}

/// A contact's record and cold days as a store keeps them, and the
/// evaluator's part around each step, as in production.
#[derive(Default)]
struct Split {
    record: Vec<u8>,
    days: BTreeMap<i64, BTreeSet<SeenId>>,
    /// Cold days read, over every step.
    reads: usize,
}

impl Split {
    /// Loads, ages, reads the cold days the events need, applies them, writes
    /// the cold days then the record; returns what each event did.
    fn step(&mut self, events: &[Event], now: i64) -> Vec<Applied> {
        let mut state = match self.record.is_empty() {
            true => ContactState::default(),
            false => ContactState::from_bytes(&self.record).unwrap(),
        };
        state.age_seen(now, HOT_SEEN_SECS);
        let all = state.seen_bound() + events.len() > MAX_SEEN_IDS;
        let days = match all {
            true => state.cold_days(),
            false => state.cold_days_for(events, now),
        };
        self.reads += days.len();
        let ids: Vec<SeenId> = days
            .iter()
            .flat_map(|d| self.days.get(d).into_iter().flatten())
            .copied()
            .collect();
        state.add_cold_seen(&ids, now, all);
        let applied = events.iter().map(|e| state.apply(e, &[1], now)).collect();
        for (day, ids) in state.cold_writes() {
            self.days.entry(day).or_default().extend(ids);
        }
        self.record = state.to_bytes();
        applied
    }

    fn state(&self) -> ContactState {
        ContactState::from_bytes(&self.record).unwrap()
    }
}

#[test]
fn ids_age_out_of_the_record_into_their_days_and_are_read_back_for_an_old_copy() {
    let mut split = Split::default();
    let now = D0 + 5 * 86_400 + 3600;
    let old = open(1, D0 + 600);
    split.step(&[old.clone(), open(2, D0 + 86_400)], D0 + 86_400 + 60);
    // Days later: the cutoff is the midnight 48 hours back or before.
    assert_eq!(split.step(&[open(3, now - 60)], now), [Applied::Applied]);
    let state = split.state();
    assert_eq!(state.cold_cutoff(), D0 + 3 * 86_400);
    assert_eq!(state.cold_days(), [D0 / 86_400, D0 / 86_400 + 1]);
    assert_eq!(split.days.values().map(BTreeSet::len).sum::<usize>(), 2);
    assert_eq!(state.seen_bound(), 3);
    // The record holds one id now; the cutoff and the two days (their
    // distance back, one tag each) take 12 bytes.
    let parts = state.encoded_parts();
    let part = |name: &str| parts.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(part("event ids (dedupe)"), 1 + 1 + 5 + 5);
    assert_eq!(part("event ids: cold cutoff and days"), 3 + 1 + 2 * (2 + 2));

    // A redelivery of the first event reads its day only, and is a duplicate.
    assert_eq!(state.cold_days_for(std::slice::from_ref(&old), now), [D0 / 86_400]);
    // Nor is a day read for a new event (its tag is in no day), whatever its time.
    assert!(state.cold_days_for(&[open(9, D0 + 60), open(10, now)], now).is_empty());
    assert_eq!(split.step(std::slice::from_ref(&old), now), [Applied::Duplicate]);
    assert_eq!(split.reads, 1);
    // Without the day's ids it would have counted again.
    let mut forgetful = split.state();
    assert_eq!(forgetful.apply(&old, &[1], now), Applied::Applied);
}

#[test]
fn ids_a_step_records_stay_in_the_record_until_a_later_step_moves_them() {
    let mut split = Split::default();
    let now = D0 + 10 * 86_400;
    split.step(&[open(1, now - 60)], now);
    // A late event, dated before the cutoff: applied, kept in the record.
    let late = open(2, now - 5 * 86_400);
    let mut state = split.state();
    state.age_seen(now, HOT_SEEN_SECS);
    assert_eq!(state.apply(&late, &[1], now), Applied::Applied);
    assert!(state.cold_writes().is_empty(), "a cold day never holds an unwritten id");
    split.record = state.to_bytes();
    let mut again = split.state();
    assert_eq!(again.apply(&late, &[1], now), Applied::Duplicate);
    // The next step moves it.
    split.step(&[], now + 60);
    assert_eq!(split.days.values().map(BTreeSet::len).sum::<usize>(), 1);
    assert_eq!(split.step(&[late], now + 120), [Applied::Duplicate]);
}

#[test]
fn a_copy_dated_otherwise_than_its_original_is_found_by_its_tag() {
    let mut split = Split::default();
    split.step(&[open(1, D0 + 60)], D0 + 120);
    let now = D0 + 8 * 86_400;
    split.step(&[open(2, now)], now);
    // The same id on an event of today: its original is in a cold day.
    let reused = open(1, now - 60);
    assert_eq!(
        split.state().cold_days_for(std::slice::from_ref(&reused), now),
        [D0 / 86_400]
    );
    assert_eq!(split.step(&[reused], now), [Applied::Duplicate]);
}

#[test]
fn days_past_the_horizon_are_forgotten() {
    let mut split = Split::default();
    split.step(&[open(1, D0 + 60)], D0 + 120);
    split.step(&[open(2, D0 + 4 * 86_400)], D0 + 4 * 86_400);
    assert_eq!(split.state().cold_days(), [D0 / 86_400]);
    let later = D0 + 86_400 + DEDUPE_HORIZON_SECS;
    split.step(&[open(3, later)], later);
    assert!(!split.state().cold_days().contains(&(D0 / 86_400)));
}

#[test]
fn the_cap_and_the_floor_act_on_every_id_as_if_all_were_in_the_record() {
    // Over 5,000 ids in 10 days, in batches of 50 as the evaluator gets them.
    let mut split = Split::default();
    let mut whole = ContactState::default();
    for batch in 0..110u32 {
        let now = D0 + i64::from(batch) * 7_800;
        let events: Vec<Event> = (0..50).map(|i| open(batch * 50 + i, now - i64::from(i) * 60)).collect();
        // And a copy of an event of a few days before.
        let copy = open(
            (batch.saturating_sub(40)) * 50,
            D0 + i64::from(batch.saturating_sub(40)) * 7_800,
        );
        let events: Vec<Event> = events.into_iter().chain([copy]).collect();
        let expected: Vec<Applied> = events.iter().map(|e| whole.apply(e, &[1], now)).collect();
        assert_eq!(split.step(&events, now), expected, "batch {batch}");
        assert_eq!(
            split.state().stale_before(now),
            whole.stale_before(now),
            "batch {batch}"
        );
    }
    assert!(whole.seen.floor() > 0, "the cap was reached");
    assert!(split.state().seen_bound() <= MAX_SEEN_IDS);
}

proptest! {
    /// Events arriving late, out of order and again, over 40 days: a
    /// redelivery keeps its event's time, and some ids come back on another
    /// event (dated otherwise) within the horizon.
    #[test]
    fn the_split_dedupes_exactly_as_one_state_holding_every_id(
        times in prop::collection::vec(0i64..30 * 86_400, 1..60),
        batches in prop::collection::vec((0i64..86_400, prop::collection::vec((0u32..120, 0usize..8), 0..12)), 1..40),
    ) {
        let mut split = Split::default();
        let mut whole = ContactState::default();
        let mut now = D0;
        for (advance, ids) in batches {
            now += advance;
            let events: Vec<Event> = ids
                .iter()
                .map(|(id, reuse)| {
                    // Mostly the id's own time; now and then another one.
                    let at = times[(*id as usize + (*reuse / 7) * reuse) % times.len()];
                    open(*id, D0 + at)
                })
                .collect();
            let expected: Vec<Applied> = events.iter().map(|e| whole.apply(e, &[1], now)).collect();
            prop_assert_eq!(split.step(&events, now), expected);
        }
    }
}

#[test]
fn ids_that_differ_only_in_their_last_character_get_spread_tags() {
    let tags: BTreeSet<Tag> = (0..1000)
        .map(|i| {
            tag(&crate::seen::fingerprint(crate::id_hash(
                "sendgrid",
                &format!("sg-{i}"),
            )))
        })
        .collect();
    // 1,000 ids over 65,536 tags: about 8 shared by chance.
    assert!(tags.len() > 980, "{} distinct tags", tags.len());
}
