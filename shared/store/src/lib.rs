//! Storage and queue ports, each with its AWS adapter and in-memory twin.
//!
//! Ports (one small trait per capability):
//! - [`ContactStore`]: a contact's state, outbox and version, written conditionally
//!   ([`DynamoContacts`] / [`MemoryContacts`]); an anonymous contact's record also
//!   carries its link ([`StoredContact::merged_into`]);
//! - [`DueIndex`]: contacts by the time their answers may next change, for
//!   the sweep ([`DynamoContacts`] / [`MemoryContacts`]);
//! - [`RulesObject`]: the published rules file, read on its ETag
//!   ([`S3Rules`] / [`MemoryRules`]);
//! - [`Queue`]: send message batches ([`SqsQueue`] / [`MemoryQueue`]);
//! - [`DeliveryLedger`]: the highest state version delivered per key, so a repeated
//!   or stale transition is dropped ([`DynamoLedger`] / [`MemoryLedger`]);
//! - [`Claims`]: one-time webhook tokens, pending then confirmed, so a replay is
//!   refused but a retry after a crash is not ([`DynamoClaims`] / [`MemoryClaims`]);
//! - [`Lookups`]: small cached answers of other systems, such as a CRM's record
//!   ids for an email ([`DynamoLookups`] / [`MemoryLookups`]);
//! - [`Archive`]: the event archive, every accepted event as a JSON line
//!   (`FirehoseArchive` / [`MemoryArchive`]), its retries bounded by a deadline ([`deliver`]);
//! - [`SegmentCounters`]: per-segment members now and entries and exits per
//!   day, counted in the same conditional write as each transition
//!   ([`DynamoContacts`] / [`MemoryContacts`]);
//! - [`PinnedContacts`]: the contacts whose records hold overrides, page by
//!   page through a sparse index, never a scan ([`DynamoContacts`] / [`MemoryContacts`]);
//! - [`DeadLetters`] and [`Redelivery`]: a message sent to a dead-letter queue
//!   with its reason, and a received message's next delivery put off
//!   ([`SqsQueue`] / [`MemoryDeadLetters`], [`MemoryRedelivery`]).
//!
//! A contact's record carries only its recent event ids; older ones are kept
//! apart in one item per day ([`cold`]), read back only for old events.
//!
//! Every write is held to [`ITEM_BUDGET_BYTES`] first ([`StoredContact::fit`],
//! which reports what it gave up in a [`FitReport`]); a contact's consent is
//! kept apart from its record and outlives it, and versions keep rising past
//! a record's expiry ([`StoredContact::advance_version`]).
//!
//! DynamoDB attribute values and SQS types never leave this crate.
//!
//! ```
//! use kairos_store::{ContactStore, MemoryContacts, StoredContact, StoreError};
//!
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryContacts::default();
//! let mut record = StoredContact::default();
//! record.version = 1;
//! store.save("ada@example.com", None, &record).await.unwrap();
//! // A second writer that read nothing loses the race instead of overwriting.
//! assert!(matches!(store.save("ada@example.com", None, &record).await, Err(StoreError::Conflict)));
//! # }) }
//! ```

mod archive;
mod audit;
mod budget;
pub mod cold;
mod counters;
#[cfg(feature = "aws")]
mod dynamo;
#[cfg(feature = "aws")]
mod dynamo_audit;
#[cfg(feature = "aws")]
mod dynamo_cancel;
#[cfg(feature = "aws")]
mod dynamo_counters;
#[cfg(feature = "aws")]
mod dynamo_expiry;
#[cfg(feature = "aws")]
mod dynamo_lookup;
#[cfg(feature = "aws")]
mod dynamo_pinned;
#[cfg(feature = "aws")]
mod dynamo_seen;
mod erasure;
#[cfg(feature = "aws")]
mod firehose;
mod memory;
pub mod pause;
mod pinned;
#[cfg(feature = "aws")]
mod s3;
mod scan;
#[cfg(feature = "aws")]
pub mod sdk;
#[cfg(feature = "aws")]
mod secret;
#[cfg(feature = "aws")]
mod sqs;

pub use archive::{deliver, Archive, ArchiveError, ArchiveRecord, Attempt, Backoff, MemoryArchive, DEFAULT_BACKOFF};
pub use audit::{parse_retention_days, AuditPage, AuditTrail, DEFAULT_AUDIT_RETENTION_DAYS};
pub use budget::{FitReport, ITEM_BUDGET_BYTES, SUMMARY_BYTES};
pub use counters::{
    day_of, deltas as counter_deltas, last_days, CounterDelta, DayCount, SegmentCounters, SegmentCounts,
    COUNTER_DAYS_KEPT,
};
#[cfg(feature = "aws")]
pub use dynamo::{DynamoClaims, DynamoContacts, DynamoLedger, DUE_INDEX};
#[cfg(feature = "aws")]
pub use dynamo_cancel::{transact_write, CANCELLED_RETRIES};
#[cfg(feature = "aws")]
pub use dynamo_counters::{
    batch_items, counter_shard_key, counter_shard_keys, sum_shards, COUNTER_SHARDS, MAX_BATCH_ROUNDS,
};
#[cfg(feature = "aws")]
pub use dynamo_expiry::{item_from_json, stream_record, StreamRecord};
#[cfg(feature = "aws")]
pub use dynamo_lookup::DynamoLookups;
#[cfg(feature = "aws")]
pub use erasure::MERGED_INDEX;
pub use erasure::{Erasure, Forgotten};
#[cfg(feature = "aws")]
pub use firehose::FirehoseArchive;
pub use memory::{
    MemoryClaims, MemoryContacts, MemoryDeadLetters, MemoryLedger, MemoryLookups, MemoryQueue, MemoryRedelivery,
    MemoryRules,
};
pub use pinned::{PinnedContacts, PinnedPage, PINNED_INDEX};
#[cfg(feature = "aws")]
pub use s3::{client as s3_client, parse_uri as parse_s3_uri, S3Rules, SEQ_METADATA as RULES_SEQ_METADATA};
pub use scan::{BackfillProgress, ContactScan, ScanPage};
#[cfg(feature = "aws")]
pub use secret::{init_log_hashing, parameters_under, resolve_secret, SecretError};
#[cfg(feature = "aws")]
pub use sqs::SqsQueue;

use kairos_event::AuditEntry;
use kairos_state::{Consent, ContactState, Override, SeenId};
use std::future::Future;

/// What is stored for one contact: state, pending transitions and version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredContact {
    /// Incremented by every successful write; the condition of the next one.
    pub version: u64,
    /// The behavioural state.
    pub state: ContactState,
    /// Messages written with this version but not yet confirmed sent (the outbox).
    pub outbox: Vec<String>,
    /// When the contact's segments could next change without an event (unix seconds).
    pub next_change_at: Option<i64>,
    /// The time the due index holds the record under (unix seconds), never
    /// later than `next_change_at` (`kairos_engine::indexed_due`); `None`
    /// keeps it out of the index. Never indexed on a frozen record.
    pub due_at: Option<i64>,
    /// When the record may be deleted by the table's TTL (unix seconds).
    pub expires_at: i64,
    /// Set on an anonymous contact's record when it is linked to a known
    /// contact: the record is then frozen (never written again) and is the
    /// alias telling where this anonymous id's events now go. The first link
    /// wins: it is set with the version condition, only on an unlinked record.
    pub merged_into: Option<String>,
    /// The consent last kept apart from the record (see [`ContactStore::save`]),
    /// if any: a save keeps the state's consent again only when it differs.
    pub consent_kept: Option<Consent>,
    /// The sequence of the published rules version that last decided the
    /// record (`0`, the embedded rules, when absent); never lowered.
    pub rules_seq: u64,
    /// The human overrides in force (`kairos_engine::Contact::overrides`).
    pub overrides: Vec<Override>,
    /// What destinations were last told, when it differs from the recorded
    /// memberships (`kairos_engine::Contact::written`).
    pub written: Option<Vec<String>>,
    /// Audit entries to write with this save, as separate items (the audit
    /// trail, [`AuditTrail`]), in the same conditional write as the record:
    /// they exist exactly when the record's version does. Never read back.
    pub audit: Vec<AuditEntry>,
    /// Set on an erased contact's record, the tombstone: when it was erased
    /// (unix seconds). The record then holds nothing else, and is kept until
    /// [`StoredContact::expires_at`] (the erasure window) to drop late events
    /// (`kairos_engine::erasure`).
    pub erased_at: Option<i64>,
}

impl StoredContact {
    /// Moves the version on for a write at `now_ms` (unix milliseconds), by
    /// the one rule of [`kairos_state::next_version`].
    pub fn advance_version(&mut self, now_ms: i64) {
        self.version = kairos_state::next_version(self.version, now_ms);
    }

    /// The state's consent, if it must be kept apart on save: it was set by
    /// an event and is not the one the record kept.
    pub(crate) fn consent_to_keep(&self) -> Option<Consent> {
        let consent = *self.state.consent();
        (consent.order() > 0 && Some(consent) != self.consent_kept).then_some(consent)
    }

    /// A record at version 0 holding a kept consent: a contact whose record
    /// expired, or was never written.
    pub(crate) fn with_kept_consent(consent: &Consent) -> StoredContact {
        let mut record = StoredContact {
            consent_kept: Some(*consent),
            ..StoredContact::default()
        };
        record.state.keep_consent(consent);
        record
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost a race: someone else wrote first. Reload and retry.
    #[error("conditional write failed: the record changed since it was read")]
    Conflict,
    /// The stored record could not be decoded (names the attribute). Permanent.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The stored record was written by a newer build, in a format this one
    /// does not read. Permanent until that build is deployed again.
    #[error("stored record format {found} is newer than this build reads (up to {supported}): deploy the newer build")]
    Newer {
        /// The record's format.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The backend failed (throttling, network, permissions); usually retryable.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend refused the write for what it is (DynamoDB's
    /// `ValidationError` in a cancelled transaction: an item too large, an
    /// expression the table refuses). Permanent: the same write fails again.
    #[error("storage backend refused the write: {0}")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether retrying cannot help: the stored record itself is unreadable,
    /// or the backend refuses the write itself.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt(_) | StoreError::Newer { .. } | StoreError::Rejected(_)
        )
    }
}

/// A queue failure: which messages were not accepted.
#[derive(Debug, thiserror::Error)]
#[error("{} message(s) not enqueued: {reason}", failed.len())]
pub struct QueueError {
    /// Ids (as given in [`Message::id`]) of the messages not enqueued.
    pub failed: Vec<String>,
    /// Why.
    pub reason: String,
}

/// One message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The caller's id for the message, reported back on failure.
    pub id: String,
    /// The body (JSON).
    pub body: String,
}

/// Persistence of contact records with optimistic concurrency.
///
/// A record expires (the table's TTL) some time after its contact's last
/// event; its consent does not. Every save whose state holds a consent other
/// than the one the record kept also keeps it apart, in a small record that
/// never expires (raised by last writer wins), and a contact with no record
/// loads as a new one (version 0) holding that consent: an unsubscribe or a
/// bounce holds until the contact re-subscribes.
pub trait ContactStore: Send + Sync {
    /// Reads a contact's record; `None` if it has none and no kept consent.
    /// Without a record but with a kept consent: a record at version 0 that
    /// holds it.
    fn load(&self, contact: &str) -> impl Future<Output = Result<Option<StoredContact>, StoreError>> + Send;

    /// [`ContactStore::load`], read eventually consistent where the store
    /// can (DynamoDB: half the read units): the answer may be a recent
    /// earlier version of the record, or no record just after its first
    /// write. Only for a caller whose every action on what it read is a
    /// write conditioned on the version read (a stale read then loses that
    /// write, [`StoreError::Conflict`], and the caller reloads with
    /// [`ContactStore::load`]), or who confirms with a strong read before
    /// acting otherwise (evaluate's `Evaluator::contact`). The kept consent
    /// is still read strongly: it is not guarded by the record's version.
    /// By default the strong read (always a correct answer).
    ///
    /// Who reads how: evaluate's engine step (events and sweeps) reads
    /// eventually first. Strong reads stay where what is read is acted on
    /// without a write conditioned on it, or where a person must see what
    /// they just did: decide (answers from the state), write-back's format-1
    /// transitions (the membership to send), the admin API and the console
    /// (views, overrides: rare), erasure (it erases what it read), and the
    /// anonymous record a link freezes (rare).
    fn load_eventually(&self, contact: &str) -> impl Future<Output = Result<Option<StoredContact>, StoreError>> + Send {
        self.load(contact)
    }

    /// Writes the record if the stored version is still `expected` (`None` or
    /// `Some(0)`: no record), keeping its consent apart first if it changed,
    /// and before anything the ids its state moves to cold days
    /// ([`ContactState::cold_writes`], idempotent: see [`cold`]); the record
    /// is written without them.
    fn save(
        &self,
        contact: &str,
        expected: Option<u64>,
        record: &StoredContact,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Empties the outbox if the record is still at `version`; false if it moved on.
    fn clear_outbox(&self, contact: &str, version: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The event ids kept apart from `contact`'s record in the cold `days`
    /// (days since 1970-01-01, UTC: [`ContactState::cold_days`]), read
    /// consistently: every id a save wrote to them before its record.
    fn load_seen(&self, contact: &str, days: &[i64]) -> impl Future<Output = Result<Vec<SeenId>, StoreError>> + Send;
}

/// How many due-index shards there are unless configured
/// (`KAIROS_DUE_SHARDS`): one sweep query each per run.
pub const DEFAULT_DUE_SHARDS: u32 = 8;
/// The most due-index shards.
pub const MAX_DUE_SHARDS: u32 = 1000;

/// Reads a `KAIROS_DUE_SHARDS` value: a whole number from 1 to
/// [`MAX_DUE_SHARDS`]; the error says what was expected.
pub fn parse_due_shards(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_DUE_SHARDS).contains(&n) => Ok(n),
        _ => Err(format!("`{value}`: expected a whole number from 1 to {MAX_DUE_SHARDS}")),
    }
}

/// The due-index shard of a contact among `shards`: FNV-1a (64-bit) of its
/// key, modulo `shards`. Stable across builds and platforms, so a record is
/// always found in the shard it was written to (as long as `shards` does
/// not change; see the README on changing it).
pub fn due_shard(contact: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in contact.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

/// A contact found in the due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The contact's key.
    pub contact: String,
    /// The time it is indexed under (unix seconds).
    pub due_at: i64,
}

/// One page of a due-index query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuePage {
    /// The contacts due, soonest first (then by key).
    pub due: Vec<Due>,
    /// Where the next page starts (pass it back as `after`); `None` when the
    /// shard has no more.
    pub next: Option<Due>,
}

/// The due index: contact records by the time their answers may next change
/// ([`StoredContact::due_at`]), spread over shards so no index partition runs
/// hot. The sweep reads it.
pub trait DueIndex: Send + Sync {
    /// How many shards the index has (`0..shards`).
    fn shards(&self) -> u32;

    /// Up to `limit` contacts of `shard` due at or before `until` (unix
    /// seconds), after the cursor `after` (a page's [`DuePage::next`]).
    fn due(
        &self,
        shard: u32,
        until: i64,
        after: Option<&Due>,
        limit: usize,
    ) -> impl Future<Output = Result<DuePage, StoreError>> + Send;
}

/// What reading the rules object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag given: nothing downloaded.
    Unchanged,
    /// There is no object (nothing published yet).
    Missing,
    /// The object's text and ETag.
    Object {
        /// The rules file.
        text: String,
        /// Its ETag, for the next conditional read.
        etag: String,
        /// The published version's sequence, raised by every publish
        /// ([`RULES_SEQ_METADATA`]); records carry it as the version that
        /// decided them.
        seq: u64,
    },
}

/// The published rules file, read conditionally (an S3 object: [`S3Rules`] /
/// [`MemoryRules`]).
pub trait RulesObject: Send + Sync {
    /// Reads the object unless its ETag is still `etag`.
    fn fetch(&self, etag: Option<&str>) -> impl Future<Output = Result<Fetched, StoreError>> + Send;
}

/// A borrowed rules object.
impl<T: RulesObject> RulesObject for &T {
    fn fetch(&self, etag: Option<&str>) -> impl Future<Output = Result<Fetched, StoreError>> + Send {
        (**self).fetch(etag)
    }
}

/// Sending messages to a queue.
pub trait Queue: Send + Sync {
    /// Enqueues every message, or reports the ones that were not.
    fn send(&self, messages: &[Message]) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The highest version delivered per key, raised only.
pub trait DeliveryLedger: Send + Sync {
    /// The highest version recorded for `key`.
    fn delivered(&self, key: &str) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Records `version` for `key` unless a higher or equal one is recorded.
    fn record(&self, key: &str, version: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims an attempt: records `mark` for `key` unless a higher one is
    /// recorded, then reads (strongly) what is recorded and says whether it
    /// is at most `ceiling`. `false`: a newer mark is there (another writer
    /// attempted or wrote a newer version meanwhile), so this one must not be
    /// written.
    fn claim(&self, key: &str, mark: u64, ceiling: u64) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            self.record(key, mark).await?;
            Ok(self.delivered(key).await?.is_none_or(|recorded| recorded <= ceiling))
        }
    }
}

/// What [`Claims::claim`] found for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The key was free (or expired): it is now recorded as pending.
    Fresh,
    /// Another request holds it as pending: its events may not be enqueued yet.
    Pending,
    /// A request holding it was confirmed: its events were enqueued.
    Done,
}

/// One-time values (webhook tokens, message ids), each accepted once until it
/// expires. A request first claims its values as *pending* for a short time,
/// enqueues its events, then confirms them: a request that dies in between
/// leaves only a pending claim, which expires soon, so the sender's retry is
/// accepted rather than answered as a repeat (and its events lost).
pub trait Claims: Send + Sync {
    /// Records `key` as pending until `pending_until` (unix seconds) unless it is
    /// recorded and not yet expired at `now`; says what it found.
    fn claim(
        &self,
        key: &str,
        pending_until: i64,
        now: i64,
    ) -> impl Future<Output = Result<Claimed, StoreError>> + Send;

    /// Marks a claimed `key` done until `expires_at`: its request's events are enqueued.
    fn confirm(&self, key: &str, expires_at: i64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets `key`, so a request whose events could not be enqueued can be retried.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Small answers of other systems kept for a while (a CRM's record ids for an
/// email), so they are not asked again for every message.
pub trait Lookups: Send + Sync {
    /// The value cached for `key`, if any and not expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Caches `value` for `key` for `ttl_secs`.
    fn put(&self, key: &str, value: &str, ttl_secs: i64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets `key` (the answer turned out stale).
    fn forget(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// SQS's longest visibility timeout (12 hours), counted from the message's receipt.
pub const MAX_VISIBILITY_SECS: u32 = 12 * 3600;

/// The longest [`Redelivery::delay`]: SQS refuses a visibility that reaches
/// past 12 hours from the message's receipt (it does not shorten it), so the
/// time a message can have been held before the delay is asked for (the
/// batching window and the invocation, at most the function's timeout) is
/// kept back: 10 minutes.
pub const MAX_DELAY_SECS: u32 = MAX_VISIBILITY_SECS - 600;

/// A message attribute: name and string value.
pub type Attribute = (String, String);

/// Sending a message to a dead-letter queue at once, with attributes saying why.
pub trait DeadLetters: Send + Sync {
    /// Sends `body` with `attributes` (for example the destination and its reason).
    fn dead_letter(&self, body: &str, attributes: &[Attribute]) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Putting off the next delivery of a received message.
pub trait Redelivery: Send + Sync {
    /// Makes the message with this receipt handle visible again in `secs` seconds.
    fn delay(&self, receipt_handle: &str, secs: u32) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Shared lookups (one cache for several destinations).
impl<T: Lookups> Lookups for std::sync::Arc<T> {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        (**self).get(key)
    }

    fn put(&self, key: &str, value: &str, ttl_secs: i64) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put(key, value, ttl_secs)
    }

    fn forget(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).forget(key)
    }
}
