//! Erasure (`docs/governance.md`): one implementation, called by the admin
//! function's `DELETE /v1/contacts/{key}` and by `kairos erase`.
//!
//! In order, each step repeatable, so a call cut short by its deadline is
//! finished by the next one:
//! 1. the contact's record becomes a tombstone ([`kairos_engine::erasure`]),
//!    its outbox the exits from every segment destinations were told it is
//!    in, sent through the write-back queue as any transition;
//! 2. each linked anonymous record becomes a tombstone too (its late events
//!    are dropped as well), and every kept consent is deleted;
//! 3. the audit trails of the contact and of those anonymous ids are deleted;
//! 4. the delivery-ledger and cached entries and the cold days of event ids
//!    naming any of them are deleted;
//! 5. one receipt is appended to the audit table, under a salted hash of the
//!    key ([`receipt_key`]): the time, the actor, what was deleted.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use kairos_event::{AuditEntry, AuditKind};
use kairos_store::{AuditTrail, ContactStore, Erasure as ErasurePort, Queue, StoreError};
use sha2::Sha256;
use std::time::Instant;

use crate::contact::{after_lost_race, ContactError, Evaluator, MAX_ATTEMPTS};
use crate::record;

/// Who erases, and how.
pub struct Erasure<'a> {
    /// The actor recorded on the receipt (IAM principal, admin key name, operator).
    pub actor: &'a str,
    /// The salt of the receipt's hash (`KAIROS_ERASURE_SALT`); never logged.
    pub salt: &'a [u8],
    /// How long the tombstone drops the contact's events (seconds;
    /// `KAIROS_ERASURE_WINDOW_DAYS`).
    pub window_secs: i64,
    /// Stop before this (a Lambda's remaining time); the call is repeated to finish.
    pub deadline: Instant,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// The receipt's key in the audit table (`erased#<salted hash>`).
    pub receipt: String,
    /// When the contact was erased (the tombstone's time, also on a repeat).
    pub erased_at: i64,
    /// Exits sent to destinations (by the call that wrote the tombstone).
    pub exits: usize,
    /// Linked anonymous records erased.
    pub anonymous: usize,
    /// Audit items deleted.
    pub audit_items: usize,
    /// Delivery-ledger, cache and cold-day (event id) entries deleted.
    pub deliveries: usize,
    /// Whether every step finished (false: the deadline came first; repeat the call).
    pub complete: bool,
}

/// Why an erasure could not be done.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// No contact has this key (nor a tombstone of one).
    #[error("no contact with this key")]
    Unknown,
    /// No salt is configured for the receipt's hash.
    #[error("no erasure salt configured (KAIROS_ERASURE_SALT)")]
    NoSalt,
    /// Writing the tombstone or sending the exits failed.
    #[error(transparent)]
    Contact(#[from] ContactError),
    /// Deleting failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// The receipt's key: `erased#` and the hex HMAC-SHA-256 of the contact key under `salt`.
pub fn receipt_key(salt: &[u8], contact: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(contact.as_bytes());
    format!("erased#{}", hex::encode(mac.finalize().into_bytes()))
}

impl<S: ContactStore + AuditTrail + ErasurePort, Q: Queue> Evaluator<'_, S, Q> {
    /// Erases contact `key` as of `now` (the steps in the module docs).
    pub async fn erase(&self, key: &str, erasure: &Erasure<'_>, now: DateTime<Utc>) -> Result<Erased, EraseError> {
        if erasure.salt.is_empty() {
            return Err(EraseError::NoSalt);
        }
        let (erased_at, exits) = match self.entomb(key, erasure, now, true).await? {
            Some(done) => done,
            None => return Err(EraseError::Unknown),
        };
        let mut out = Erased {
            receipt: receipt_key(erasure.salt, key),
            erased_at,
            exits,
            ..Erased::default()
        };
        let anonymous = self.store.linked_anonymous(key).await?;
        let mut keys = vec![key.to_string()];
        for anon in anonymous {
            if Instant::now() >= erasure.deadline {
                return Ok(out);
            }
            self.entomb(&anon, erasure, now, false).await?;
            out.anonymous += 1;
            keys.push(anon);
        }
        for k in &keys {
            self.store.forget_consent(k).await?;
            out.audit_items += self.store.forget_audit(k).await?;
        }
        let forgotten = self.store.forget_deliveries(&keys, erasure.deadline).await?;
        out.deliveries = forgotten.deleted;
        if !forgotten.done {
            return Ok(out);
        }
        let at = Utc.timestamp_opt(erased_at, 0).single().unwrap_or(now);
        let summary = format!(
            "contact erased: its record, {} linked anonymous record(s), its audit trail and {} delivery, cache or event-id entries; {} exit(s) sent",
            out.anonymous, out.deliveries, out.exits
        );
        let mut receipt = AuditEntry::new(AuditKind::Erasure, at, 0, summary, "erasure");
        receipt.actor = Some(erasure.actor.to_string());
        self.store.append(&out.receipt, &[receipt]).await?;
        out.complete = true;
        tracing::info!(receipt = %out.receipt, anonymous = out.anonymous, audit_items = out.audit_items, deliveries = out.deliveries, "contact erased");
        Ok(out)
    }

    /// Turns `key`'s record into a tombstone (unless it is one) and sends its
    /// exits; returns the erasure's time and the exits sent, or `None` if
    /// there is nothing to erase (no record; with `known`, a linked
    /// anonymous record is not a contact either).
    async fn entomb(
        &self,
        key: &str,
        erasure: &Erasure<'_>,
        now: DateTime<Utc>,
        known: bool,
    ) -> Result<Option<(i64, usize)>, ContactError> {
        let engine = self.engine();
        for lost in 1..=MAX_ATTEMPTS as u32 {
            let Some(mut stored) = self.store.load(key).await? else {
                return Ok(None);
            };
            if known && stored.merged_into.is_some() {
                return Ok(None);
            }
            self.flush(key, &stored).await?;
            if let Some(at) = stored.erased_at {
                return Ok(Some((at, 0)));
            }
            let expected = Some(stored.version);
            stored.outbox.clear();
            let outcome = record::erase(&engine, key, &mut stored, erasure.actor, now, erasure.window_secs);
            match self.store.save(key, expected, &stored).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    after_lost_race(lost).await;
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
            self.flush(key, &stored).await?;
            return Ok(Some((now.timestamp(), outcome.transitions.len())));
        }
        Err(ContactError::Contended)
    }
}
