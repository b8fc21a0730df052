//! The behavioural state of one contact: bounded, order-free and idempotent.
//!
//! Main types: [`ContactState`] (everything the rules read about one contact),
//! [`SignalState`] (occurrences of one rule-declared signal), [`Consent`] and
//! [`TraitValue`].
//!
//! Applying a set of events gives the same state in any order and with
//! duplicates: occurrence times go into per-signal exact lists and hourly
//! buckets by *event* time, recency is a max, traits and consent are
//! last-writer-wins registers keyed by event time, and event ids are remembered
//! for [`DEDUPE_HORIZON_SECS`] so a redelivery changes nothing.
//!
//! Two states combine with [`ContactState::merge`] as if every event had been
//! applied to one; [`ContactState::absorb`] does it once per anonymous id (an
//! anonymous visitor linked to a known contact: see `docs/identity.md`).
//!
//! Resolution: the latest [`EXACT_CAP`] occurrences of each signal within
//! [`EXACT_HORIZON_SECS`] (48 h) keep their exact second; older ones are counted in
//! hourly buckets kept for [`RETENTION_SECS`] (90 days).
//!
//! Bounds: an event dated beyond the allowed clock skew is refused
//! ([`Applied::Future`]); every list is capped (the table in [`limits`]) and
//! [`ContactState::fit`] holds the encoding to [`STATE_BUDGET_BYTES`],
//! degrading it deliberately ([`Fitted`] says how). How long each piece is kept:
//! [`retention`]. The stored encoding is versioned ([`STATE_FORMAT`],
//! [`ContactState::decode`]); the record keeps only recent event ids, older
//! ones are kept apart by day and read back when an old event needs them
//! ([`ContactState::age_seen`], [`ContactState::cold_writes`],
//! [`ContactState::add_cold_seen`]).
//!
//! ```
//! use kairos_event::Event;
//! use kairos_state::{Applied, ContactState};
//!
//! let event = Event::from_json(br#"{"id":"e1","contact":"u1","type":"page.viewed",
//!     "at":"2026-11-27T10:00:00Z","source":"web","url":"/pricing"}"#).unwrap();
//! let now = event.at.timestamp();
//! let mut state = ContactState::default();
//! assert_eq!(state.apply(&event, &[7], now), Applied::Applied);
//! assert_eq!(state.apply(&event, &[7], now), Applied::Duplicate);
//! assert_eq!(state.signal(7).unwrap().count_since(now - 3600, now), 1);
//! ```

mod budget;
mod codec;
mod cold;
mod consent;
mod delta;
pub mod limits;
mod merge;
mod overrides;
pub mod retention;
mod seen;
mod signal;
mod traits;

pub use budget::Fitted;
pub use codec::{CodecError, STATE_FORMAT};
pub use cold::{SeenId, HOT_SEEN_SECS};
pub use consent::{affects_consent, Consent, ConsentStatus};
pub use limits::{
    MAX_CLOCK_SKEW_LIMIT_SECS, MAX_MERGED, MAX_SEEN_IDS, MAX_SEGMENTS, MAX_TRAITS, MAX_TRAIT_NAME_BYTES,
    MAX_TRAIT_VALUE_BYTES, STATE_BUDGET_BYTES,
};
pub use overrides::Override;
pub use retention::{
    DEAD_LETTER_RETENTION_SECS, DEDUPE_HORIZON_SECS, EVENTS_QUEUE_RETENTION_SECS, LEDGER_TTL_SECS, PROVIDER_DELAY_SECS,
    RECORD_TTL_SECS, RETENTION_SECS,
};
pub use signal::SignalState;
pub use traits::{refused_traits, TraitValue};

use kairos_event::{Event, EventType};
use seen::Seen;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Identifies a rule-declared signal (a stable hash of its matcher).
pub type SignalKey = u32;

/// The width of a signal's buckets for occurrences past the exact horizon (seconds: an hour).
pub const BUCKET_SECS: i64 = 3600;
/// Occurrences younger than this keep their exact time (seconds).
pub const EXACT_HORIZON_SECS: i64 = 48 * 3600;
/// At most this many exact occurrences are kept per signal; older ones go to buckets.
pub const EXACT_CAP: usize = 64;

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the state.
    Applied,
    /// The event's id was already applied: nothing changed.
    Duplicate,
    /// The event is older than [`DEDUPE_HORIZON_SECS`]: refused, nothing changed.
    Stale,
    /// The event is older than [`DEDUPE_HORIZON_SECS`]: its occurrence is not
    /// counted (it could be a repeat), but its consent change or traits were
    /// applied: last-writer-wins registers, which a repeat cannot change again.
    Late,
    /// The event is dated further ahead of `now` than the allowed clock skew:
    /// refused, nothing changed (a future-dated event would win every
    /// last-writer-wins register and never leave the state).
    Future,
}

/// Everything Kairos keeps about one contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// Per-signal occurrences, sorted by key.
    signals: Vec<SignalState>,
    /// Last-writer-wins traits: name → (set at, value).
    traits: BTreeMap<String, (i64, TraitValue)>,
    /// Subscription state.
    consent: Consent,
    /// Recently applied event ids, and the dedupe floor.
    seen: Seen,
    /// Current segment memberships: (segment id, entered at (unix seconds)),
    /// sorted by id.
    members: Vec<(String, i64)>,
    /// The fingerprint of the rules that decided `members`.
    rules: u32,
    /// Per segment (by index in those rules): when its answer could next change
    /// without an event. Sorted by index; segments that cannot change are absent.
    deadlines: Vec<(u32, i64)>,
    /// Anonymous contacts merged into this one (48-bit hash of the key, hour
    /// until which it is remembered), sorted by hash: see [`ContactState::absorb`].
    merged: Vec<([u8; 6], i64)>,
    /// Per segment (by index in those rules), which of its conditions held its
    /// answer when it was last decided: written and read by the rules crate,
    /// opaque here. Trailing zeros are dropped.
    holds: Vec<u8>,
    /// The width (hours) of the buckets occurrences move into, when the state
    /// was degraded to fit its budget ([`ContactState::fit`]); 0: hourly.
    coarse: u32,
}

impl ContactState {
    /// Applies one event that matched the given signals, as of `now` (unix
    /// seconds), refusing events dated more than
    /// [`DEFAULT_MAX_CLOCK_SKEW_SECS`](kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS) ahead of it.
    pub fn apply(&mut self, event: &Event, signals: &[SignalKey], now: i64) -> Applied {
        self.apply_with_skew(event, signals, now, kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS)
    }

    /// [`ContactState::apply`], refusing events dated more than `max_skew_secs` ahead of `now`.
    pub fn apply_with_skew(&mut self, event: &Event, signals: &[SignalKey], now: i64, max_skew_secs: i64) -> Applied {
        let at = event.at.timestamp();
        if at > now.saturating_add(max_skew_secs) {
            return Applied::Future;
        }
        let oldest = now - DEDUPE_HORIZON_SECS;
        if at < self.stale_before(now) {
            return match self.observe_registers(event, at) {
                true => Applied::Late,
                false => Applied::Stale,
            };
        }
        // Past the horizon an id is forgotten, whether or not a compaction
        // dropped it yet: a copy after that is a new event.
        if !self
            .seen
            .insert(seen::fingerprint(id_hash(&event.source, &event.id)), at, oldest)
        {
            return Applied::Duplicate;
        }
        for &key in signals {
            let pos = match self.signals.binary_search_by_key(&key, |s| s.key) {
                Ok(pos) => pos,
                Err(pos) => {
                    self.signals.insert(pos, SignalState::new(key));
                    pos
                }
            };
            self.signals[pos].record(at);
        }
        self.observe_registers(event, at);
        self.compact(now);
        Applied::Applied
    }

    /// Applies the event's last-writer-wins registers (traits, consent), as
    /// of its time `at`; returns whether one changed.
    fn observe_registers(&mut self, event: &Event, at: i64) -> bool {
        match event.kind {
            EventType::ContactIdentified => self.set_traits(event, at),
            _ => self.consent.observe(event, at),
        }
    }

    /// Moves aged occurrences to buckets and drops what is past retention.
    pub fn compact(&mut self, now: i64) {
        self.seen.forget_before(now - DEDUPE_HORIZON_SECS);
        self.seen.cap(MAX_SEEN_IDS);
        let width = self.bucket_hours();
        for signal in &mut self.signals {
            signal.compact(now, width);
        }
        self.signals.retain(|s| !s.is_empty());
        self.compact_merged(now);
    }

    /// Events dated before this are refused as stale at `now`: older than the
    /// dedupe horizon, or than the ids forgotten to stay under
    /// [`MAX_SEEN_IDS`] (unix seconds).
    pub fn stale_before(&self, now: i64) -> i64 {
        (now - DEDUPE_HORIZON_SECS).max(self.seen.floor())
    }

    /// The width (hours) of the buckets aged occurrences are counted in: 1,
    /// or more once the state was degraded to fit its budget.
    pub fn bucket_hours(&self) -> i64 {
        i64::from(self.coarse.max(1))
    }

    /// Every signal with occurrences, sorted by key.
    pub fn signals(&self) -> &[SignalState] {
        &self.signals
    }

    /// The occurrences of one signal, if it ever matched within retention.
    pub fn signal(&self, key: SignalKey) -> Option<&SignalState> {
        self.signals
            .binary_search_by_key(&key, |s| s.key)
            .ok()
            .map(|pos| &self.signals[pos])
    }

    /// The current value of a trait.
    pub fn trait_value(&self, name: &str) -> Option<&TraitValue> {
        self.traits.get(name).map(|(_, v)| v)
    }

    /// Every stored trait: (name, set at (unix seconds), value), by name.
    pub fn traits(&self) -> impl Iterator<Item = (&str, i64, &TraitValue)> {
        self.traits
            .iter()
            .map(|(name, (at, value))| (name.as_str(), *at, value))
    }

    /// The contact's subscription state.
    pub fn consent(&self) -> &Consent {
        &self.consent
    }

    /// Takes `consent` if it is later (last writer wins): a consent kept apart
    /// from the record, which outlives the record's expiry.
    pub fn keep_consent(&mut self, consent: &Consent) {
        self.consent.merge(consent);
    }

    /// The segments the contact is a member of, with their entry times.
    pub fn members(&self) -> &[(String, i64)] {
        &self.members
    }

    /// Since when the contact is a member of `segment`, if it is.
    pub fn member_since(&self, segment: &str) -> Option<i64> {
        self.member_at(segment).ok().map(|p| self.members[p].1)
    }

    /// Where `segment` is in the sorted memberships, or where it would go.
    fn member_at(&self, segment: &str) -> Result<usize, usize> {
        self.members.binary_search_by(|(id, _)| id.as_str().cmp(segment))
    }

    /// Records one segment's membership (entered at `at` if it just entered).
    pub fn set_membership(&mut self, segment: &str, member: bool, at: i64) {
        match (self.member_at(segment), member) {
            (Ok(pos), false) => drop(self.members.remove(pos)),
            (Err(pos), true) => self.members.insert(pos, (segment.to_string(), at)),
            _ => {}
        }
    }

    /// Records which rules decided the memberships.
    pub fn set_rules_fingerprint(&mut self, rules: u32) {
        self.rules = rules;
    }

    /// When segment `index` could next change without an event, if it can.
    pub fn deadline(&self, index: u32) -> Option<i64> {
        self.deadlines
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|p| self.deadlines[p].1)
    }

    /// Every recorded deadline, (segment index, time), sorted by index.
    pub fn deadlines(&self) -> &[(u32, i64)] {
        &self.deadlines
    }

    /// The recorded holds ([`ContactState::record_decision`]).
    pub fn holds(&self) -> &[u8] {
        &self.holds
    }

    /// Replaces what the last decision leaves for the next one: the
    /// per-segment deadlines (index, time), any order, and the holds.
    pub fn record_decision(&mut self, mut deadlines: Vec<(u32, i64)>, mut holds: Vec<u8>) {
        if !deadlines.is_sorted() {
            deadlines.sort_unstable();
        }
        self.deadlines = deadlines;
        while holds.last() == Some(&0) {
            holds.pop();
        }
        self.holds = holds;
    }

    /// The fingerprint of the rules that decided the memberships (0: none yet).
    pub fn rules_fingerprint(&self) -> u32 {
        self.rules
    }
}

/// The version a record takes at a write at `now_ms` (unix milliseconds)
/// after `version`: one more, or for a record's first write (version 0) the
/// time in milliseconds, so a record recreated after its expiry continues
/// above every version it had (DynamoDB takes at most 1,000 writes a second
/// on one item:
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html>),
/// and write-back never drops its transitions as stale.
pub fn next_version(version: u64, now_ms: i64) -> u64 {
    match version {
        0 => u64::try_from(now_ms).unwrap_or(0).max(1),
        v => v + 1,
    }
}

/// A stable 48-bit hash of (source, id): FNV-1a, so it never changes between
/// builds. Merged anonymous keys keep all 48 bits; event ids keep the first
/// 40 (`seen::fingerprint`, where the collision odds are stated).
fn id_hash(source: &str, id: &str) -> [u8; 6] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in source.bytes().chain([0u8]).chain(id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let bytes = hash.to_be_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]
}

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod tests;
