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
//! that may hold the batch's ids into the state before the step
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
//! The record keeps the cutoff and, per cold day, a 16-bit tag of each id
//! written to it (a hash of its fingerprint): an event is
//! looked up in the days holding its tag, whatever its time, so a copy
//! dated otherwise than its original (an id reused within the horizon) is
//! still found, as it was with every id in the record. A tag matches a new
//! event's by chance with odds `n / 2^16` for `n` cold ids (about 1% at the
//! 700 of the soak's heaviest contacts): a day read for nothing, never an id
//! missed. The tags also count the ids (an upper bound on what the days
//! hold within the horizon): whether the cap could be reached without
//! reading them. Two bytes an id instead of about seven.

use std::collections::BTreeMap;

use kairos_event::Event;

use crate::seen::{self, push_varint, varint, Entry};
use crate::{id_hash, ContactState, DEDUPE_HORIZON_SECS};

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

/// The 16-bit tag of an id.
pub(crate) type Tag = [u8; 2];

/// An id's tag: the top 16 bits of its fingerprint times an odd constant
/// (Fibonacci hashing), which depend on every fingerprint bit. Not the
/// fingerprint's own first bytes: FNV-1a's top bits barely move with an id's
/// last character, so ids that differ only there (`e1`, `e2`) would share them.
pub(crate) fn tag(hash: &[u8; 5]) -> Tag {
    let value = hash.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let mixed = value.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let top = (mixed >> 48) as u16;
    top.to_be_bytes()
}

/// The cold days a record knows of.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColdDays {
    /// Ids dated before this day (days since 1970-01-01, UTC) are in their
    /// cold day or still in the record (0: none moved yet).
    through: i64,
    /// (day, the tag of each id written to it), ascending by day.
    days: Vec<(i64, Vec<Tag>)>,
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
    /// its distance back from the cutoff and its number of tags, both
    /// LEB128, then the tags), with the ids moving now added.
    pub(crate) fn encoded(&self, ids: &[Entry]) -> (i64, Vec<u8>) {
        let mut days: BTreeMap<i64, Vec<Tag>> = match self.complete {
            true => BTreeMap::new(),
            false => self.days.iter().cloned().collect(),
        };
        let cold = |e: &&Entry| e.place == Place::Moving || (self.complete && e.place == Place::Cold);
        for e in ids.iter().filter(cold) {
            days.entry(e.at.div_euclid(DAY)).or_default().push(tag(&e.hash));
        }
        let mut bytes = Vec::with_capacity(days.values().map(|t| 3 + 2 * t.len()).sum());
        for (day, mut tags) in days.into_iter().filter(|(_, t)| !t.is_empty()) {
            tags.sort_unstable();
            push_varint(&mut bytes, self.through.wrapping_sub(day) as u64);
            push_varint(&mut bytes, tags.len() as u64);
            bytes.extend(tags.iter().flatten());
        }
        (self.through, bytes)
    }

    /// Reads what [`ColdDays::encoded`] wrote.
    pub(crate) fn decode(through: i64, mut bytes: &[u8]) -> Option<ColdDays> {
        let mut days = Vec::new();
        while !bytes.is_empty() {
            let back = varint(&mut bytes)?;
            let count = usize::try_from(varint(&mut bytes)?).ok()?;
            let (tags, rest) = bytes.split_at_checked(count.checked_mul(2)?)?;
            bytes = rest;
            let tags = tags.chunks_exact(2).map(|t| [t[0], t[1]]).collect();
            days.push((through.wrapping_sub(back as i64), tags));
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

    /// The cold days to read before applying `events` as of `now`: those
    /// holding the tag of an event's id, for the events not refused as stale
    /// (whatever their time: a copy may be dated otherwise than its original).
    pub fn cold_days_for(&self, events: &[Event], now: i64) -> Vec<i64> {
        let from = self.stale_before(now);
        let mut days = Vec::new();
        for event in events.iter().filter(|e| e.at.timestamp() >= from) {
            let wanted = tag(&seen::fingerprint(id_hash(&event.source, &event.id)));
            let holding = self
                .seen
                .cold
                .days
                .iter()
                .filter(|(_, tags)| tags.binary_search(&wanted).is_ok());
            days.extend(holding.map(|(day, _)| *day));
        }
        days.sort_unstable();
        days.dedup();
        days
    }

    /// At most how many ids the contact remembers, in the record and its
    /// cold days: the cap cannot be reached while this plus the ids a step
    /// adds stays within [`MAX_SEEN_IDS`](crate::MAX_SEEN_IDS).
    pub fn seen_bound(&self) -> usize {
        let cold: usize = self.seen.cold.days.iter().map(|(_, tags)| tags.len()).sum();
        self.seen.len().saturating_add(cold)
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
