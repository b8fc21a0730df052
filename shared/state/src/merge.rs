//! Merging two contacts' states: what an anonymous visitor did becomes part of
//! the known contact it is linked to.
//!
//! [`ContactState::merge`] is a pure combination: applying events to two states
//! and merging them gives the state that applying every event to one would
//! (same `now` for compaction), provided no event was applied to both.
//! [`ContactState::absorb`] records the anonymous id in the same state, so a
//! merge repeated by a retry or a concurrent function changes nothing.

use crate::{id_hash, ContactState};

impl ContactState {
    /// Adds `other`'s signals, traits, consent and seen event ids to this state.
    /// Memberships, rules fingerprint, deadlines and holds stay this state's own: the
    /// caller re-evaluates every segment after a merge. Call
    /// [`ContactState::compact`] afterwards to restore the exact-occurrence cap.
    pub fn merge(&mut self, other: &ContactState) {
        for theirs in &other.signals {
            match self.signals.binary_search_by_key(&theirs.key, |s| s.key) {
                Ok(pos) => self.signals[pos].merge(theirs),
                Err(pos) => self.signals.insert(pos, theirs.clone()),
            }
        }
        for (name, (at, value)) in &other.traits {
            self.set_trait(name, *at, value.clone());
        }
        self.consent.merge(&other.consent);
        self.seen.merge(&other.seen);
    }

    /// Merges `other`, the frozen state of anonymous contact `anonymous`, unless
    /// this state already merged it; remembers it until `keep_until` (unix
    /// seconds). Returns whether it merged: not when it already did, nor when
    /// [`MAX_MERGED`](crate::MAX_MERGED) anonymous ids are remembered (see
    /// [`ContactState::merged_full`]).
    ///
    /// `keep_until` must be at least [`RETENTION_SECS`](crate::RETENTION_SECS) after `other`'s newest
    /// occurrence, so that merging it again after it is forgotten adds only
    /// occurrences that compaction drops; and the frozen record must outlive it.
    pub fn absorb(&mut self, anonymous: &str, other: &ContactState, keep_until: i64) -> bool {
        let id = id_hash("anonymous", anonymous);
        let pos = match self.merged.binary_search_by_key(&id, |(h, _)| *h) {
            Ok(_) => return false,
            Err(_) if self.merged_full() => return false,
            Err(pos) => pos,
        };
        self.merged.insert(pos, (id, keep_until.div_euclid(3600)));
        self.merge(other);
        true
    }

    /// Whether no further anonymous contact can be merged until a merged one
    /// is forgotten ([`MAX_MERGED`](crate::MAX_MERGED) are remembered).
    pub fn merged_full(&self) -> bool {
        self.merged.len() >= crate::MAX_MERGED
    }

    /// How many anonymous contacts merged into this one are remembered (only
    /// a hash of each key is kept).
    pub fn merged_count(&self) -> usize {
        self.merged.len()
    }

    /// Whether anonymous contact `anonymous` is already merged into this state.
    pub fn has_merged(&self, anonymous: &str) -> bool {
        let id = id_hash("anonymous", anonymous);
        self.merged.binary_search_by_key(&id, |(h, _)| *h).is_ok()
    }

    /// Forgets merged anonymous ids whose `keep_until` hour has passed.
    pub(crate) fn compact_merged(&mut self, now: i64) {
        let hour = now.div_euclid(3600);
        self.merged.retain(|(_, until)| *until >= hour);
    }
}
