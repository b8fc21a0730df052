//! Identity: an anonymous visitor (`anon:<anonymousId>`) becomes part of a
//! known contact when an event for that contact carries
//! `properties.anonymous_id` (a Segment `identify`, or a `track`/`page` call
//! carrying both ids). See `docs/identity.md`.
//!
//! The pure part lives here: which anonymous keys a batch links ([`links`]),
//! and merging the frozen records into the contact once (`absorb`, run by
//! the step). Freezing an anonymous record (a conditional write: the first
//! link wins) is the caller's, with its store.

use chrono::{DateTime, Utc};
pub use kairos_event::ANONYMOUS_PREFIX;
use kairos_event::{AuditEntry, Change, Event, Transition};
use serde_json::json;

use crate::{govern, Contact, Frozen, KEEP_AFTER_LAST_EVENT_SECS};

/// A contact forgets a merged anonymous id this long before the frozen
/// record's expiry: by then every occurrence it merged is past retention, and
/// the frozen record still exists, so nothing is counted twice or lost.
const FORGET_BEFORE_EXPIRY_SECS: i64 = 30 * 86_400;

/// Whether `contact` is an anonymous visitor's key.
pub fn is_anonymous(contact: &str) -> bool {
    contact.starts_with(ANONYMOUS_PREFIX)
}

/// The anonymous contact key that `event` links to its (known) contact:
/// `anon:` + its string `properties.anonymous_id`; none for an anonymous event.
pub fn anonymous_link(event: &Event) -> Option<String> {
    if is_anonymous(&event.contact) {
        return None;
    }
    let id = event.properties.get("anonymous_id")?.as_str()?;
    (!id.trim().is_empty()).then(|| format!("{ANONYMOUS_PREFIX}{id}"))
}

/// The anonymous contact keys `events` link to known contact `contact`
/// (sorted, distinct); none when `contact` is itself anonymous.
pub fn links(contact: &str, events: &[Event]) -> Vec<String> {
    if is_anonymous(contact) {
        return Vec::new();
    }
    let mut keys: Vec<String> = events.iter().filter_map(anonymous_link).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Until when a record frozen at `now` (unix seconds) is kept, given its
/// `expires_at`: at least [`KEEP_AFTER_LAST_EVENT_SECS`] past the link, so
/// that it outlives the contacts' memory of having merged it.
pub fn frozen_until(expires_at: i64, now: i64) -> i64 {
    expires_at.max(now + KEEP_AFTER_LAST_EVENT_SECS)
}

/// Merges into `contact` (key `key`) every frozen record linked to it that
/// its state does not list yet; returns their keys. A frozen record past its
/// keep-until time (`now`, unix seconds) is skipped: it holds nothing within
/// retention, and the contact merged it before.
/// Until when a contact merges (and remembers) a frozen record: a month
/// before the frozen record may expire, when everything it merged is past retention.
pub fn keep_until(frozen: &Frozen) -> i64 {
    frozen.expires_at - FORGET_BEFORE_EXPIRY_SECS
}

pub(crate) fn absorb(key: &str, contact: &mut Contact, frozen: &[Frozen], now: i64) -> Vec<String> {
    let mut merged = Vec::new();
    for f in frozen.iter().filter(|f| f.into == key) {
        let keep_until = keep_until(f);
        if keep_until >= now && contact.state.absorb(&f.key, &f.state, keep_until) {
            contact.expires_at = contact.expires_at.max(f.expires_at);
            merged.push(f.key.clone());
        }
    }
    merged
}

impl crate::Engine<'_> {
    /// The audit entries of anonymous record `key` as it is frozen into a
    /// contact: an exit from each segment it is a member of, so its save
    /// counts it out of the segments' counters; the contact, which merges
    /// its state, counts it in. Destinations are told nothing: the frozen
    /// record is never evaluated again.
    pub fn frozen_out(&self, key: &str, contact: &Contact, now: DateTime<Utc>) -> Vec<AuditEntry> {
        let summary = "linked to a known contact: counted in its record from now on";
        self.counted_out(key, contact, now, (summary, json!({"linked": true}), "link"))
    }

    /// The audit entries of record `key` deleted by the table's TTL (its
    /// contact idle for the record's whole retention): an exit from each
    /// segment it was a member of, so the segments' counters count it out
    /// as the record is forgotten; a later event starts a new record, which
    /// counts it in again. Destinations are told nothing: they keep the
    /// membership last written, as they keep the rest of what they know.
    pub fn expired_out(&self, key: &str, contact: &Contact, now: DateTime<Utc>) -> Vec<AuditEntry> {
        let summary = "record expired (idle past its retention): counted out";
        self.counted_out(key, contact, now, (summary, json!({"expired": true}), "expired"))
    }

    /// An exit entry, not written to destinations, from each of `contact`'s
    /// effective memberships, with `(summary, explanation, cause)`.
    fn counted_out(
        &self,
        key: &str,
        contact: &Contact,
        now: DateTime<Utc>,
        (summary, explanation, cause): (&str, serde_json::Value, &str),
    ) -> Vec<AuditEntry> {
        let exit = |id: &String| Transition {
            summary: summary.to_string(),
            explanation: explanation.clone(),
            ..govern::bare(self.rules, key, contact, id, Change::Exited, now)
        };
        govern::effective(self.rules, contact)
            .iter()
            .map(|id| govern::left_entry(self.rules, &exit(id), cause, None, false))
            .collect()
    }
}
