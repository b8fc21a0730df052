//! The event ids a contact's state has applied, for deduplication: a 48-bit
//! hash of each id with the event's time, kept for the dedupe horizon and at
//! most [`MAX_SEEN_IDS`](crate::MAX_SEEN_IDS) of them.
//!
//! When more ids arrive within the horizon than the cap holds, the oldest are
//! forgotten and the *floor* moves past them: an event dated before the floor
//! is then refused as stale, exactly as one older than the horizon, so a
//! forgotten id can never be counted twice.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit hash of an event's (source, id).
pub(crate) type IdHash = [u8; 6];

/// Applied event ids and the floor below which events are refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Seen {
    /// (id hash, event time in unix seconds), sorted by hash.
    ids: Vec<(IdHash, i64)>,
    /// Events dated before this are refused as stale (unix seconds; 0: none).
    floor: i64,
}

impl Seen {
    /// From ids in any order.
    pub(crate) fn from_ids(mut ids: Vec<(IdHash, i64)>, floor: i64) -> Seen {
        ids.sort_unstable();
        ids.dedup_by_key(|(hash, _)| *hash);
        Seen { ids, floor }
    }

    /// How many ids are remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Events dated before this are refused (0: only the horizon applies).
    pub(crate) fn floor(&self) -> i64 {
        self.floor
    }

    /// Records `id` (of an event at `at`); false if it was already recorded.
    pub(crate) fn insert(&mut self, id: IdHash, at: i64) -> bool {
        match self.ids.binary_search_by_key(&id, |(h, _)| *h) {
            Ok(_) => false,
            Err(pos) => {
                self.ids.insert(pos, (id, at));
                true
            }
        }
    }

    /// Forgets ids of events before `oldest` (the horizon).
    pub(crate) fn forget_before(&mut self, oldest: i64) {
        self.ids.retain(|(_, at)| *at >= oldest);
    }

    /// Over `cap`, forgets the oldest ids (an eighth of the cap more, so that
    /// a flood does not trim on every event) and raises the floor past them.
    /// Returns the new floor if it moved.
    pub(crate) fn cap(&mut self, cap: usize) -> Option<i64> {
        if self.ids.len() <= cap {
            return None;
        }
        let keep = cap - cap / 8;
        let mut times: Vec<i64> = self.ids.iter().map(|(_, at)| *at).collect();
        let cut = times.len() - keep;
        let (_, newest_dropped, _) = times.select_nth_unstable(cut - 1);
        let floor = *newest_dropped + 1;
        // Everything before the floor goes, ties with the cut included: those
        // events are refused from now on anyway.
        self.ids.retain(|(_, at)| *at >= floor);
        self.floor = self.floor.max(floor);
        Some(self.floor)
    }

    /// Adds `other`'s ids; the higher floor holds (an id forgotten on either side
    /// must stay refused).
    pub(crate) fn merge(&mut self, other: &Seen) {
        for &(id, at) in &other.ids {
            self.insert(id, at);
        }
        self.floor = self.floor.max(other.floor);
    }
}

/// Encoded as the floor, then the ids ascending by time, each time as the
/// gap from the previous one (small varints).
impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut by_time: Vec<(i64, IdHash)> = self.ids.iter().map(|(h, at)| (*at, *h)).collect();
        by_time.sort_unstable();
        let mut prev = 0i64;
        let gaps: Vec<(i64, IdHash)> = by_time
            .into_iter()
            .map(|(at, h)| {
                let gap = at.wrapping_sub(prev);
                prev = at;
                (gap, h)
            })
            .collect();
        (self.floor, gaps).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
        let (floor, gaps) = <(i64, Vec<(i64, IdHash)>)>::deserialize(d)?;
        let mut at = 0i64;
        let ids = gaps
            .into_iter()
            .map(|(gap, h)| {
                at = at.wrapping_add(gap);
                (h, at)
            })
            .collect();
        Ok(Seen::from_ids(ids, floor))
    }
}
