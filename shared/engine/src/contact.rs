//! The records a step reads and writes: a contact's, and a frozen anonymous
//! visitor's linked to it.

use kairos_state::{ContactState, RECORD_TTL_SECS};

/// A record outlives its last event by this long (seconds): past retention,
/// plus the month a merged anonymous id is remembered before its frozen record
/// may go (see [`crate::identity`]); the retention table's record TTL. The
/// store's time-to-live reads [`Contact::expires_at`].
pub const KEEP_AFTER_LAST_EVENT_SECS: i64 = RECORD_TTL_SECS;

/// One contact's record, as the engine reads and updates it.
///
/// The store's item (`kairos_store::StoredContact`) holds these fields,
/// plus the outbox (the transitions' queue bodies, written with the record and
/// cleared once sent) and, on an anonymous visitor's record, the contact it is
/// linked to (then it is [`Frozen`]). The evaluate function moves the fields
/// in and out around a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    /// The behavioural state: occurrences, traits, consent, seen event ids,
    /// memberships and what the last decision recorded.
    pub state: ContactState,
    /// Raised by every step that changes the record; transitions carry it
    /// (`state_version`), and the store writes conditioned on it.
    pub version: u64,
    /// When an answer could next change without an event (unix seconds);
    /// `None` if never. Never late, possibly early.
    pub next_change_at: Option<i64>,
    /// The due time the store indexes the record under (unix seconds), for
    /// the sweep to find it: never later than [`Contact::next_change_at`],
    /// possibly earlier, rewritten only when that moves earlier or this one
    /// passes ([`crate::indexed_due`]). `None`: not in the due index.
    pub due_at: Option<i64>,
    /// Until when the record must be kept (unix seconds): its last event plus
    /// [`KEEP_AFTER_LAST_EVENT_SECS`], or longer for what it merged.
    pub expires_at: i64,
    /// The sequence of the published rules version that last decided the
    /// record (`0`: the embedded rules). Never lowered: an engine on older
    /// rules does not step it ([`crate::Engine::behind`]).
    pub rules_seq: u64,
    /// The human overrides in force, sorted by segment, one per segment at
    /// most ([`crate::Override`]); their expiries count among the record's
    /// deadlines.
    pub overrides: Vec<crate::Override>,
    /// What destinations were last told the contact is a member of (sorted
    /// segment ids), when that differs from the recorded rule answers
    /// (`state.members()`): overrides, the consent guard or a paused segment
    /// made it differ. `None`: the same.
    pub written: Option<Vec<String>>,
}

/// A frozen anonymous visitor's record (`anon:<id>`), linked to a known
/// contact: never written again, so whoever reads it reads the same state.
/// The step merges it into that contact once (see [`crate::identity`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frozen {
    /// The anonymous contact key.
    pub key: String,
    /// The contact it is linked to (the first link wins).
    pub into: String,
    /// Its state when it was frozen.
    pub state: ContactState,
    /// When its record may be deleted (unix seconds).
    pub expires_at: i64,
}
