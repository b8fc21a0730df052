//! Identity linking: an anonymous visitor (`anon:<anonymousId>`) becomes part of
//! a known contact when an event for that contact carries
//! `properties.anonymous_id` (a Segment `identify`, or a `track`/`page` call
//! carrying both ids). See `docs/identity.md`.
//!
//! Two conditional writes make a link, in this order:
//! 1. freeze: the anonymous record gets `merged_into = <contact>` (conditional on
//!    its version, only if unlinked: the first link wins). The frozen record is
//!    never written again, so its state is the same whoever reads it, and it is
//!    the alias that re-keys the anonymous id's later events to the contact;
//! 2. absorb: the contact's own conditional write merges the frozen state
//!    unless its state already lists the anonymous id, and lists it.
//!
//! Any write to the contact that involves the anonymous id (the linking event,
//! a redelivery of it, or a re-keyed anonymous event) performs both steps
//! first, so a crash between them is healed by whichever comes next, and a
//! re-keyed redelivery of an event the anonymous record already counted is a
//! duplicate of the merged seen ids.

use chrono::{DateTime, Utc};
use kairos_event::Event;
use kairos_store::{ContactStore, Queue, StoreError, StoredContact};

use crate::contact::{ContactError, Evaluator, MAX_ATTEMPTS, TTL_AFTER_LAST_EVENT_SECS};

pub use kairos_event::ANONYMOUS_PREFIX;

/// A contact forgets a merged anonymous id this long before the frozen
/// record's expiry: by then every occurrence it merged is past retention, and
/// the frozen record still exists, so nothing is counted twice or lost.
const FORGET_BEFORE_EXPIRY_SECS: i64 = 30 * 86_400;

/// A frozen anonymous record: its key and what it held when frozen.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    pub key: String,
    pub record: StoredContact,
}

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
pub(crate) fn links(contact: &str, events: &[Event]) -> Vec<String> {
    if is_anonymous(contact) {
        return Vec::new();
    }
    let mut keys: Vec<String> = events.iter().filter_map(anonymous_link).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The contact a stored anonymous record is linked to, if it is frozen.
pub(crate) fn linked_to<'r>(key: &str, record: &'r StoredContact) -> Option<&'r str> {
    record.merged_into.as_deref().filter(|_| is_anonymous(key))
}

/// Merges into `record` (contact `key`) every frozen record linked to it that
/// its state does not list yet; returns how many it merged. A frozen record
/// past its keep-until time (`now`, unix seconds) is skipped: it holds nothing
/// within retention, and the contact merged it before.
pub(crate) fn absorb(key: &str, record: &mut StoredContact, frozen: &[Frozen], now: i64) -> usize {
    let mut merged = 0;
    for f in frozen.iter().filter(|f| f.record.merged_into.as_deref() == Some(key)) {
        let keep_until = f.record.expires_at - FORGET_BEFORE_EXPIRY_SECS;
        if keep_until >= now && record.state.absorb(&f.key, &f.record.state, keep_until) {
            tracing::info!(contact = %kairos_event::log::hashed(key), anonymous = %kairos_event::log::hashed(&f.key), "anonymous contact merged");
            record.expires_at = record.expires_at.max(f.record.expires_at);
            merged += 1;
        }
    }
    merged
}

impl<S: ContactStore, Q: Queue> Evaluator<'_, S, Q> {
    /// Makes sure each of `links` not yet merged into `state` is frozen and in
    /// `frozen` (freezing it into `contact` if it is unlinked). An anonymous id
    /// linked to another contact is logged and left alone: the first link wins.
    pub(crate) async fn freeze_links(
        &self,
        contact: &str,
        state: &kairos_state::ContactState,
        links: &[String],
        frozen: &mut Vec<Frozen>,
        now: DateTime<Utc>,
    ) -> Result<(), ContactError> {
        for anonymous in links {
            if state.has_merged(anonymous) || frozen.iter().any(|f| &f.key == anonymous) {
                continue;
            }
            frozen.extend(self.freeze(anonymous, contact, now).await?);
        }
        Ok(())
    }

    /// Freezes anonymous record `anonymous` into `contact` unless it is already
    /// linked; returns it if it is (now) linked to `contact`.
    async fn freeze(&self, anonymous: &str, contact: &str, now: DateTime<Utc>) -> Result<Option<Frozen>, ContactError> {
        for _ in 0..MAX_ATTEMPTS {
            let record = match self.store.load(anonymous).await? {
                Some(linked) if linked.merged_into.is_some() => linked,
                unlinked => match self.freeze_once(anonymous, contact, unlinked.as_ref(), now).await {
                    Ok(frozen) => frozen,
                    Err(ContactError::Store(StoreError::Conflict)) => continue,
                    Err(err) => return Err(err),
                },
            };
            let target = record.merged_into.as_deref().unwrap_or_default();
            if target != contact {
                tracing::warn!(
                    anonymous = %kairos_event::log::hashed(anonymous),
                    linked_to = %kairos_event::log::hashed(target),
                    ignored = %kairos_event::log::hashed(contact),
                    "anonymous id already linked to another contact; the first link wins"
                );
                return Ok(None);
            }
            let key = anonymous.to_string();
            return Ok(Some(Frozen { key, record }));
        }
        Err(ContactError::Contended)
    }

    /// One conditional write setting `merged_into` on the record as loaded (or
    /// creating an empty frozen record) and clearing its `next_change_at`; then
    /// sends what its outbox still holds.
    async fn freeze_once(
        &self,
        anonymous: &str,
        contact: &str,
        loaded: Option<&StoredContact>,
        now: DateTime<Utc>,
    ) -> Result<StoredContact, ContactError> {
        let mut record = loaded.cloned().unwrap_or_default();
        record.version += 1;
        record.merged_into = Some(contact.to_string());
        // Never evaluated again: no deadline for a sweep to act on.
        record.next_change_at = None;
        record.expires_at = record.expires_at.max(now.timestamp() + TTL_AFTER_LAST_EVENT_SECS);
        self.store.save(anonymous, loaded.map(|r| r.version), &record).await?;
        tracing::info!(anonymous = %kairos_event::log::hashed(anonymous), contact = %kairos_event::log::hashed(contact), "anonymous id linked");
        self.flush(anonymous, &record).await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests;
