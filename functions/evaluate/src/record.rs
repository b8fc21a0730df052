//! The store's item around the engine's record: a [`StoredContact`] holds a
//! [`Contact`]'s fields plus the outbox and, on an anonymous visitor's record,
//! its link.

use chrono::{DateTime, Utc};
use kairos_engine::{Contact, Engine, Frozen, Input, Manual, Outcome};
use kairos_event::{AuditEntry, WritebackMessage};
use kairos_store::StoredContact;

/// Runs the engine step on a stored record: its fields move into the
/// engine's record and back, and the transitions join its outbox.
pub(crate) fn step(engine: &Engine, key: &str, stored: &mut StoredContact, input: &Input) -> Outcome {
    run(stored, |contact| engine.step(key, contact, input))
}

/// [`step`] for a human's override change ([`Engine::manual`]).
pub(crate) fn manual(
    engine: &Engine,
    key: &str,
    stored: &mut StoredContact,
    manual: &Manual,
    now: DateTime<Utc>,
) -> Outcome {
    run(stored, |contact| engine.manual(key, contact, manual, now))
}

/// [`step`] for an erasure ([`Engine::erase`]): the record becomes the
/// tombstone, its outbox the exits.
pub(crate) fn erase(
    engine: &Engine,
    key: &str,
    stored: &mut StoredContact,
    actor: &str,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Outcome {
    // A frozen anonymous record was counted out of its segments by its freeze.
    let counted = stored.merged_into.is_none();
    let outcome = run(stored, |contact| {
        let mut outcome = engine.erase(key, contact, actor, now, window_secs);
        if !counted {
            outcome.audit.clear();
        }
        outcome
    });
    stored.merged_into = None;
    stored.consent_kept = None;
    stored.erased_at = Some(now.timestamp());
    outcome
}

/// Anonymous record `key` frozen into a contact: its memberships counted out
/// ([`Engine::frozen_out`]) by the save that freezes it.
pub(crate) fn frozen_out(engine: &Engine, key: &str, stored: &mut StoredContact, now: DateTime<Utc>) {
    run(stored, |contact| Outcome {
        audit: engine.frozen_out(key, contact, now),
        ..Outcome::default()
    });
}

/// Record `key` deleted by the table's TTL: the exits that count it out
/// ([`Engine::expired_out`]), as a change at the version after its last
/// (which the record then holds).
pub(crate) fn expired_out(
    engine: &Engine,
    key: &str,
    stored: &mut StoredContact,
    now: DateTime<Utc>,
) -> Vec<AuditEntry> {
    stored.version += 1;
    let outcome = run(stored, |contact| Outcome {
        audit: engine.expired_out(key, contact, now),
        ..Outcome::default()
    });
    outcome.audit
}

fn run(stored: &mut StoredContact, step: impl FnOnce(&mut Contact) -> Outcome) -> Outcome {
    let mut contact = Contact {
        state: std::mem::take(&mut stored.state),
        version: stored.version,
        next_change_at: stored.next_change_at,
        due_at: stored.due_at,
        expires_at: stored.expires_at,
        rules_seq: stored.rules_seq,
        overrides: std::mem::take(&mut stored.overrides),
        written: stored.written.take(),
    };
    let outcome = step(&mut contact);
    stored.state = contact.state;
    stored.version = contact.version;
    stored.next_change_at = contact.next_change_at;
    stored.due_at = contact.due_at;
    stored.expires_at = contact.expires_at;
    stored.rules_seq = contact.rules_seq;
    stored.overrides = contact.overrides;
    stored.written = contact.written;
    stored.audit.extend(outcome.audit.iter().cloned());
    let bodies = outcome.transitions.iter().map(WritebackMessage::transition_body);
    stored.outbox.extend(bodies);
    outcome
}

/// A stored anonymous record as the engine reads it, if it is linked.
pub(crate) fn frozen(key: &str, stored: StoredContact) -> Option<Frozen> {
    Some(Frozen {
        key: key.to_string(),
        into: stored.merged_into?,
        state: stored.state,
        expires_at: stored.expires_at,
    })
}
