//! The event ids kept apart from the record: the record keeps only the ids of
//! recent events (those dated from the *cold cutoff* on, a UTC midnight at
//! least [`HOT_SEEN_SECS`] back) and the floor; older ids, kept only for
//! late events and dead-letter redrives (up to the 21-day
//! [`DEDUPE_HORIZON_SECS`]), live in one small item per contact and day of
//! the event's time, written when they age out of the record, read only for
//! events dated before the cutoff. Every event rewrote them all before: they
//! were three quarters of an active contact's record (`docs/soak.md`).
//!
//! The engine sees the same ids as before: the evaluator reads the cold days
//! of the batch's old events into the state before the step
//! ([`ContactState::add_cold_seen`]), and all of them when the cap
//! ([`MAX_SEEN_IDS`](crate::MAX_SEEN_IDS)) could be reached or an anonymous
//! record is merged, so the cap and the floor act on every id.
//!
//! The order of writes loses nothing: [`ContactState::age_seen`] marks the
//! ids *already in the stored record* that are dated before the cutoff;
//! the store writes them to their days first ([`ContactState::cold_writes`],
//! idempotent), then the record without them. A crash in between leaves
//! them in both; a lost race leaves ids in the days that any later record
//! still holds (ids leave a record only by moving or being forgotten). The
//! ids of events applied by this step stay in the record until a later
//! step moves them: a cold day never holds an id whose record write failed.
//!
//! The record keeps the cutoff and, per cold day, how many ids were written
//! to it (an upper bound on what it holds within the horizon): which days to
//! read, and whether the cap could be reached without reading them.

use std::collections::BTreeMap;

use crate::seen::{push_varint, varint, Entry};
use crate::{ContactState, DEDUPE_HORIZON_SECS};

const DAY: i64 = 86_400;

/// The record keeps the ids of events dated from the UTC midnight at or
/// before this long ago (seconds; 48 hours: 48 to 72 hours of ids, see
/// `docs/soak.md` for 24, 48 and 72); older ones move to their days.
pub const HOT_SEEN_SECS: i64 = 48 * 3600;

/// One remembered event id, as a cold day stores it: the 40-bit fingerprint
/// of the event's (source, id) and the event's time (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeenId {
    /// The fingerprint (`seen.rs`).
    pub fingerprint: [u8; 5],
    /// The event's time (unix seconds).
    pub at: i64,
}

/// Where a remembered id is kept. Not encoded: an id read from the record is
/// [`Place::Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Place {
    /// In the stored record.
    #[default]
    Record,
    /// In the stored record and dated before the cutoff: written to its day
    /// before the record's next write, which leaves it out.
    Moving,
    /// Read from a cold day for this step.
    Cold,
    /// Recorded (or merged) by this step: written with the record.
    New,
}

impl Place {
    /// Whether the record's encoding holds an id kept here.
    pub(crate) fn in_record(self) -> bool {
        matches!(self, Place::Record | Place::New)
    }
}

/// The cold days a record knows of.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColdDays {
    /// Ids dated before this day (days since 1970-01-01, UTC) are in their
    /// cold day or still in the record (0: none moved yet).
    through: i64,
    /// (day, ids written to it), ascending by day.
    days: Vec<(i64, u32)>,
    /// Every cold day was read into the state (not encoded): the counts are
    /// recounted from what is left of them.
    complete: bool,
}

/// Equal when they know the same cutoff and days.
impl PartialEq for ColdDays {
    fn eq(&self, other: &ColdDays) -> bool {
        (self.through, &self.days) == (other.through, &other.days)
    }
}

impl ColdDays {
    /// The cutoff's day and the days' byte string (for each day ascending:
    /// its distance back from the cutoff, then its count, both LEB128), with
    /// the ids moving now counted in.
    pub(crate) fn encoded(&self, ids: &[Entry]) -> (i64, Vec<u8>) {
        let mut counts: BTreeMap<i64, u32> = match self.complete {
            true => BTreeMap::new(),
            false => self.days.iter().copied().collect(),
        };
        let cold = |e: &&Entry| e.place == Place::Moving || (self.complete && e.place == Place::Cold);
        for e in ids.iter().filter(cold) {
            *counts.entry(e.at.div_euclid(DAY)).or_default() += 1;
        }
        let mut bytes = Vec::with_capacity(counts.len() * 3);
        for (day, count) in counts.into_iter().filter(|(_, c)| *c > 0) {
            push_varint(&mut bytes, self.through.wrapping_sub(day) as u64);
            push_varint(&mut bytes, u64::from(count));
        }
        (self.through, bytes)
    }

    /// Reads what [`ColdDays::encoded`] wrote.
    pub(crate) fn decode(through: i64, mut bytes: &[u8]) -> Option<ColdDays> {
        let mut days = Vec::new();
        while !bytes.is_empty() {
            let back = varint(&mut bytes)?;
            let count = u32::try_from(varint(&mut bytes)?).ok()?;
            days.push((through.wrapping_sub(back as i64), count));
        }
        days.sort_unstable();
        Some(ColdDays {
            through,
            days,
            complete: false,
        })
    }
}

impl ContactState {
    /// Moves the cutoff to the UTC midnight at or before `now - hot_secs`
    /// (never back), marks the record's ids dated before it to be written to
    /// their days ([`ContactState::cold_writes`]) and left out of the
    /// record's encoding, and forgets the days past the dedupe horizon. The
    /// evaluator calls it on the record it loaded, before the step.
    pub fn age_seen(&mut self, now: i64, hot_secs: i64) {
        let cold = &mut self.seen.cold;
        cold.through = cold.through.max((now - hot_secs).div_euclid(DAY));
        let horizon_day = (now - DEDUPE_HORIZON_SECS).div_euclid(DAY);
        cold.days.retain(|(day, _)| *day >= horizon_day);
        let cutoff = cold.through * DAY;
        for e in &mut self.seen.ids {
            if e.place == Place::Record && e.at < cutoff {
                e.place = Place::Moving;
            }
        }
    }

    /// Ids of events dated before this (unix seconds) may be in a cold day
    /// rather than in the record (0: none).
    pub fn cold_cutoff(&self) -> i64 {
        self.seen.cold.through * DAY
    }

    /// Every cold day ids were written to within the horizon (days since
    /// 1970-01-01, UTC), ascending.
    pub fn cold_days(&self) -> Vec<i64> {
        self.seen.cold.days.iter().map(|(day, _)| *day).collect()
    }

    /// The cold days to read before applying events dated at `times` as of
    /// `now`: those of the events dated before the cutoff and not refused as
    /// stale, that ids were written to.
    pub fn cold_days_for(&self, times: impl IntoIterator<Item = i64>, now: i64) -> Vec<i64> {
        let (from, until) = (self.stale_before(now), self.cold_cutoff());
        let known = self.cold_days();
        let mut days: Vec<i64> = times
            .into_iter()
            .filter(|at| (from..until).contains(at))
            .map(|at| at.div_euclid(DAY))
            .filter(|day| known.binary_search(day).is_ok())
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }

    /// At most how many ids the contact remembers, in the record and its
    /// cold days: the cap cannot be reached while this plus the ids a step
    /// adds stays within [`MAX_SEEN_IDS`](crate::MAX_SEEN_IDS).
    pub fn seen_bound(&self) -> usize {
        let cold: u64 = self.seen.cold.days.iter().map(|(_, n)| u64::from(*n)).sum();
        self.seen.len().saturating_add(usize::try_from(cold).unwrap_or(usize::MAX))
    }

    /// Adds ids read from cold days as of `now` (those not refused as stale
    /// anyway, dated before the cutoff), for this step only: they are not
    /// written again. `complete`: every cold day was read, so the days'
    /// counts are recounted from what is left after the step.
    pub fn add_cold_seen(&mut self, ids: &[SeenId], now: i64, complete: bool) {
        let (from, until) = (self.stale_before(now), self.cold_cutoff());
        for id in ids.iter().filter(|id| (from..until).contains(&id.at)) {
            self.seen.insert_cold(id.fingerprint, id.at);
        }
        self.seen.cold.complete |= complete;
    }

    /// Whether every cold day was read into this state.
    pub fn cold_complete(&self) -> bool {
        self.seen.cold.complete
    }

    /// The ids to write to their cold days before the record is written
    /// (the record's encoding leaves them out): (day, ids), ascending by day.
    pub fn cold_writes(&self) -> Vec<(i64, Vec<SeenId>)> {
        let mut days: BTreeMap<i64, Vec<SeenId>> = BTreeMap::new();
        for e in self.seen.ids.iter().filter(|e| e.place == Place::Moving) {
            let id = SeenId {
                fingerprint: e.hash,
                at: e.at,
            };
            days.entry(e.at.div_euclid(DAY)).or_default().push(id);
        }
        days.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
