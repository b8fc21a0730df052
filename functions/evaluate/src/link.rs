//! Identity linking, the store's part: an anonymous visitor
//! (`anon:<anonymousId>`) becomes part of a known contact when an event for
//! that contact carries `properties.anonymous_id` (`docs/identity.md`). Which
//! keys a batch links, and merging a frozen record into its contact, are the
//! engine's (`kairos_engine::identity`); freezing is a write, so it is here.
//!
//! Two conditional writes make a link, in this order:
//! 1. freeze: the anonymous record gets `merged_into = <contact>` (conditional on
//!    its version, only if unlinked: the first link wins). The frozen record is
//!    never written again, so its state is the same whoever reads it, and it is
//!    the alias that re-keys the anonymous id's later events to the contact;
//! 2. absorb: the contact's own conditional write (the engine step's record)
//!    merges the frozen state unless its state already lists the anonymous id,
//!    and lists it.
//!
//! Any write to the contact that involves the anonymous id (the linking event,
//! a redelivery of it, or a re-keyed anonymous event) performs both steps
//! first, so a crash between them is healed by whichever comes next, and a
//! re-keyed redelivery of an event the anonymous record already counted is a
//! duplicate of the merged seen ids.

use chrono::{DateTime, Utc};
use kairos_engine::{identity, Frozen};
use kairos_store::{ContactStore, Queue, StoreError, StoredContact};

use crate::contact::{after_lost_race, ContactError, Evaluator, MAX_ATTEMPTS};
use crate::record;

/// The contact a stored anonymous record is linked to, if it is frozen.
pub(crate) fn linked_to<'r>(key: &str, record: &'r StoredContact) -> Option<&'r str> {
    record.merged_into.as_deref().filter(|_| identity::is_anonymous(key))
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
        for lost in 1..=MAX_ATTEMPTS as u32 {
            let record = match self.store.load(anonymous).await? {
                Some(linked) if linked.merged_into.is_some() => linked,
                unlinked => match self.freeze_once(anonymous, contact, unlinked.as_ref(), now).await {
                    Ok(frozen) => frozen,
                    Err(ContactError::Store(StoreError::Conflict)) => {
                        after_lost_race(lost).await;
                        continue;
                    }
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
            return Ok(record::frozen(anonymous, record));
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
        record.advance_version(now.timestamp_millis());
        record::frozen_out(&self.engine(), anonymous, &mut record, now);
        record.merged_into = Some(contact.to_string());
        // Never evaluated again: no deadline for a sweep to act on.
        record.next_change_at = None;
        record.due_at = None;
        record.expires_at = identity::frozen_until(record.expires_at, now.timestamp());
        self.store.save(anonymous, loaded.map(|r| r.version), &record).await?;
        tracing::info!(anonymous = %kairos_event::log::hashed(anonymous), contact = %kairos_event::log::hashed(contact), "anonymous id linked");
        self.flush(anonymous, &record).await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests;
