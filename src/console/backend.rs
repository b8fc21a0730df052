//! Where the console's state lives: [`Backend`], what the pages need of it,
//! with two implementations: [`super::Local`] (the embedded default: memory
//! adapters, the demo's events, versions in memory) and [`super::Aws`]
//! (DynamoDB contacts, audit trail and counters; the rules' versions in S3;
//! the event archive as the sample). The pages are written once against
//! this trait and never ask which one they run on.

use super::rules::{PublishError, Version};
use chrono::{DateTime, Utc};
use kairos_event::Event;
use kairos_store::{AuditTrail, ContactScan, ContactStore, Erasure, PinnedContacts, Queue, SegmentCounters};
use std::future::Future;
use std::sync::Arc;

/// A version as the history lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its id ([`Version::id`]), what a rollback names.
    pub id: String,
    /// When it was published (RFC 3339).
    pub at: String,
    /// Who published it.
    pub by: String,
    /// Why.
    pub message: String,
}

/// What a publish did.
#[derive(Debug)]
pub struct Published {
    /// The version now in force.
    pub version: Arc<Version>,
    /// How many contacts were re-decided under it in the request (locally);
    /// `None` on AWS, where the sweep's backfill re-decides every contact.
    pub redecided: Option<usize>,
}

/// The events a backtest replays and the sequences report reads.
#[derive(Debug, Default)]
pub struct Sample {
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// The same events as JSON lines (the sequences report reads those).
    pub text: String,
    /// Where they came from, in words (shown above a backtest).
    pub source: String,
}

impl Sample {
    /// A sample of `events` from `source`.
    pub fn of(mut events: Vec<Event>, source: String) -> Sample {
        events.sort_by_key(|e| e.at);
        let text = events
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .collect::<Vec<_>>()
            .join("\n");
        Sample { events, text, source }
    }
}

/// Why the console could not read its state (a 503 page).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The published rules could not be read or do not compile.
    #[error("the published rules: {0}")]
    Rules(String),
    /// The contacts table failed.
    #[error("the contacts table: {0}")]
    Store(#[from] kairos_store::StoreError),
    /// The event archive could not be read.
    #[error("the event archive: {0}")]
    Archive(String),
}

/// What the console's pages need of where its state lives.
pub trait Backend: Send + Sync + 'static {
    /// Contacts: records, audit trail, segment counters, pinned contacts and
    /// the backfill's progress.
    type Store: ContactStore + AuditTrail + Erasure + SegmentCounters + PinnedContacts + ContactScan;
    /// Where the transitions an override causes go (the write-back queue).
    type Queue: Queue;

    /// The contacts.
    fn store(&self) -> &Self::Store;

    /// The transitions' queue.
    fn queue(&self) -> &Self::Queue;

    /// What "now" is for explanations, pins and publishes.
    fn clock(&self) -> DateTime<Utc>;

    /// Called after a change through the admin handler (locally: the dry
    /// run's transitions are dropped).
    fn changed(&self) {}

    /// Whether a publish is followed by the sweep's backfill (AWS) rather
    /// than re-deciding every contact in the request (locally).
    fn backfills(&self) -> bool;

    /// The rules in force.
    fn current(&self) -> impl Future<Output = Result<Arc<Version>, ConsoleError>> + Send;

    /// The latest published versions, newest first (at most [`HISTORY`]).
    fn history(&self) -> impl Future<Output = Result<Vec<Listed>, ConsoleError>> + Send;

    /// The text of version `id`, for a rollback.
    fn text_of(&self, id: &str) -> impl Future<Output = Result<String, PublishError>> + Send;

    /// Publishes `text` (which must compile, with a message) on top of the
    /// version `base` the editor read: refused if another publish came first.
    fn publish(
        &self,
        text: &str,
        by: &str,
        message: &str,
        base: &str,
    ) -> impl Future<Output = Result<Published, PublishError>> + Send;

    /// How many contacts there are, when that is known without reading every
    /// record (`None` on AWS: the segments' counters count members instead).
    fn contact_count(&self) -> impl Future<Output = Option<u64>> + Send;

    /// The recent events a backtest replays.
    fn sample(&self) -> impl Future<Output = Result<Arc<Sample>, ConsoleError>> + Send;
}

/// How many versions the history lists.
pub const HISTORY: usize = 20;
