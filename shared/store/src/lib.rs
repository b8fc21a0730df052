//! Storage and queue ports, each with its AWS adapter and in-memory twin.
//!
//! Ports (one small trait per capability):
//! - [`ContactStore`]: a contact's state, outbox and version, written conditionally
//!   ([`DynamoContacts`] / [`MemoryContacts`]); an anonymous contact's record also
//!   carries its link ([`StoredContact::merged_into`]);
//! - [`Queue`]: send message batches ([`SqsQueue`] / [`MemoryQueue`]);
//! - [`DeliveryLedger`]: the highest state version delivered per key, so a repeated
//!   or stale transition is dropped ([`DynamoLedger`] / [`MemoryLedger`]);
//! - [`Claims`]: one-time webhook tokens, pending then confirmed, so a replay is
//!   refused but a retry after a crash is not ([`DynamoClaims`] / [`MemoryClaims`]).
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

#[cfg(feature = "aws")]
mod dynamo;
mod memory;
#[cfg(feature = "aws")]
mod secret;
#[cfg(feature = "aws")]
mod sqs;

#[cfg(feature = "aws")]
pub use dynamo::{DynamoClaims, DynamoContacts, DynamoLedger};
pub use memory::{MemoryClaims, MemoryContacts, MemoryLedger, MemoryQueue};
#[cfg(feature = "aws")]
pub use secret::{init_log_hashing, parameters_under, resolve_secret, SecretError};
#[cfg(feature = "aws")]
pub use sqs::SqsQueue;

use kairos_state::ContactState;
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
    /// When the record may be deleted by the table's TTL (unix seconds).
    pub expires_at: i64,
    /// Set on an anonymous contact's record when it is linked to a known
    /// contact: the record is then frozen (never written again) and is the
    /// alias telling where this anonymous id's events now go. The first link
    /// wins: it is set with the version condition, only on an unlinked record.
    pub merged_into: Option<String>,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost a race: someone else wrote first. Reload and retry.
    #[error("conditional write failed: the record changed since it was read")]
    Conflict,
    /// The stored record could not be decoded (names the attribute).
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The backend failed (throttling, network, permissions); usually retryable.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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
pub trait ContactStore: Send + Sync {
    /// Reads a contact's record; `None` if it has none yet.
    fn load(&self, contact: &str) -> impl Future<Output = Result<Option<StoredContact>, StoreError>> + Send;

    /// Writes the record if the stored version is still `expected` (`None`: no record).
    fn save(
        &self,
        contact: &str,
        expected: Option<u64>,
        record: &StoredContact,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Empties the outbox if the record is still at `version`; false if it moved on.
    fn clear_outbox(&self, contact: &str, version: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
