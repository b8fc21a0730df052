//! Faults injected where they happen: wrappers around each port (contact
//! store and due index, queues, delivery ledger, claims, destinations) that
//! fail a share of calls, at configured rates from one seeded generator, and
//! count what they injected by [`Kind`].
//!
//! - throttling: the call fails and did nothing (`Backend`, a 429);
//! - an ambiguous timeout: the call did its work, then reports a failure;
//! - a crash at a step boundary: after a state write (before the send), after
//!   a send (before the outbox is cleared), after a CRM accepted a batch
//!   (before the ledger write). The [`Invocation`] is dead from then on: every
//!   later port call of it never returns, and [`Invocation::run`] gives `None`
//!   (no answer reaches SQS, so the whole batch comes back);
//! - a permanent destination failure (a 4xx), which must reach the dead-letter
//!   queue, and only those;
//! - a stale read: an eventually consistent read of a contact answered with
//!   the record as it was before its latest change (DynamoDB may, just after
//!   a write), from a store that keeps it ([`Previous`]).
//!
//! Queue-side faults (redelivery of whole batches and single messages,
//! reordering, a batch processed twice at once) are the simulated queue's
//! ([`super::sim`]), drawn from the same [`Faults`].
//!
//! They live in the tests' support module, not in a shipped crate: nothing
//! deployed may carry a switch that fails its own calls, and every
//! integration test (the soak, and any other) reaches them here.

use kairos_store::{
    Claimed, Claims, ContactStore, DeliveryLedger, Due, DueIndex, DuePage, MemoryContacts, Message, Queue, QueueError,
    StoreError, StoredContact,
};
use kairos_writeback::file::Segments;
use kairos_writeback::{Destination, Gate, Outcome, Policy, Write};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::future::{pending, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::Poll;

/// A kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A call refused for throttling; nothing done.
    Throttled,
    /// A call that did its work, then reported a timeout.
    Ambiguous,
    /// The invocation died after a state write, before the send.
    CrashAfterWrite,
    /// The invocation died after a send, before the outbox clear (or the answer).
    CrashAfterSend,
    /// The invocation died after a CRM accepted a batch, before the ledger write.
    CrashAfterCrm,
    /// A destination refused a write for good (dead-lettered).
    Permanent,
    /// A whole batch delivered again (its deletes lost).
    BatchRedelivered,
    /// One message delivered again.
    MessageRedelivered,
    /// A message received after later ones.
    Reordered,
    /// A batch handed to two invocations at once (visibility expired mid-run).
    ProcessedTwice,
    /// An eventually consistent read answered with the record before its latest change.
    StaleRead,
}

impl Kind {
    /// The name printed in the soak's table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Throttled => "throttled",
            Kind::Ambiguous => "ambiguous timeout (write happened)",
            Kind::CrashAfterWrite => "crash after state write, before send",
            Kind::CrashAfterSend => "crash after send, before outbox clear",
            Kind::CrashAfterCrm => "crash after CRM accepted, before ledger write",
            Kind::Permanent => "permanent destination error",
            Kind::BatchRedelivered => "SQS batch redelivered",
            Kind::MessageRedelivered => "SQS message redelivered",
            Kind::Reordered => "SQS message reordered",
            Kind::ProcessedTwice => "batch processed twice at once",
            Kind::StaleRead => "stale read (the record before its last write)",
        }
    }
}

/// Probabilities per opportunity (a port call, a message, a batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Per port call.
    pub throttled: f64,
    /// Per successful write or send.
    pub ambiguous: f64,
    /// Per step boundary passed.
    pub crash: f64,
    /// Per destination write.
    pub permanent: f64,
    /// Per batch acknowledged.
    pub batch_redelivered: f64,
    /// Per message acknowledged.
    pub message_redelivered: f64,
    /// Per message received.
    pub reordered: f64,
    /// Per batch received.
    pub processed_twice: f64,
    /// Per eventually consistent read of a contact changed before.
    pub stale_read: f64,
}

impl Rates {
    /// No faults.
    pub const NONE: Rates = Rates {
        throttled: 0.0,
        ambiguous: 0.0,
        crash: 0.0,
        permanent: 0.0,
        batch_redelivered: 0.0,
        message_redelivered: 0.0,
        reordered: 0.0,
        processed_twice: 0.0,
        stale_read: 0.0,
    };

    /// The soak's rates: every kind often enough to be seen thousands of
    /// times in a million events, rare enough that a message is almost never
    /// failed by retryable faults five receives in a row (the events queue's
    /// `maxReceiveCount`).
    pub const SOAK: Rates = Rates {
        throttled: 0.002,
        ambiguous: 0.001,
        crash: 0.0005,
        permanent: 0.0002,
        batch_redelivered: 0.005,
        message_redelivered: 0.002,
        reordered: 0.02,
        processed_twice: 0.005,
        stale_read: 0.02,
    };
}

/// The seeded source of faults, and what was injected.
pub struct Faults {
    rates: Rates,
    rng: Mutex<StdRng>,
    counts: Mutex<BTreeMap<Kind, u64>>,
}

impl Faults {
    /// Faults at `rates`, drawn from `seed`.
    pub fn new(seed: u64, rates: Rates) -> Faults {
        Faults {
            rates,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The rates in force.
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// Draws a fault of `kind` with probability `rate`, counting it if drawn.
    pub fn roll(&self, kind: Kind, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let hit = self.rng.lock().unwrap().gen_bool(rate.min(1.0));
        if hit {
            *self.counts.lock().unwrap().entry(kind).or_default() += 1;
        }
        hit
    }

    /// A number from the same generator (for choices that are not faults).
    pub fn below(&self, n: usize) -> usize {
        self.rng.lock().unwrap().gen_range(0..n.max(1))
    }

    /// How many of each kind were injected.
    pub fn counts(&self) -> BTreeMap<Kind, u64> {
        self.counts.lock().unwrap().clone()
    }

    fn throttled(&self) -> bool {
        self.roll(Kind::Throttled, self.rates.throttled)
    }

    fn ambiguous(&self) -> bool {
        self.roll(Kind::Ambiguous, self.rates.ambiguous)
    }
}

/// One Lambda invocation: alive until a crash is injected into it.
#[derive(Debug, Default)]
pub struct Invocation {
    crashed: AtomicBool,
    /// Port calls yield first, so two invocations run at once interleave.
    pub interleave: bool,
    /// Permanent failures injected into this invocation: `(destination, contact, version)`.
    permanent: Mutex<Vec<(String, String, u64)>>,
}

impl Invocation {
    /// An invocation whose port calls interleave with another's.
    pub fn interleaved() -> Invocation {
        Invocation {
            interleave: true,
            ..Invocation::default()
        }
    }

    /// Whether a crash was injected.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// The permanent failures injected, taken.
    pub fn take_permanent(&self) -> Vec<(String, String, u64)> {
        std::mem::take(&mut *self.permanent.lock().unwrap())
    }

    /// Runs a handler as this invocation: its answer, or `None` if it crashed.
    pub async fn run<F: Future>(&self, handler: F) -> Option<F::Output> {
        let mut handler = std::pin::pin!(handler);
        std::future::poll_fn(|cx| match handler.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready((!self.crashed()).then_some(out)),
            Poll::Pending if self.crashed() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    /// Before a port call: a dead invocation goes no further.
    async fn enter(&self) {
        if self.interleave {
            tokio::task::yield_now().await;
        }
        if self.crashed() {
            pending::<()>().await;
        }
    }

    /// A crash of `kind` at this boundary, if drawn: the invocation dies here.
    async fn boundary(&self, faults: &Faults, kind: Kind) {
        if faults.roll(kind, faults.rates.crash) {
            self.crashed.store(true, Ordering::SeqCst);
            pending::<()>().await;
        }
    }
}

/// The error a throttled or timed-out storage call returns.
fn backend(what: &str) -> StoreError {
    StoreError::Backend(what.to_string().into())
}

const THROTTLED: &str = "ProvisionedThroughputExceededException (injected)";
const TIMED_OUT: &str = "timed out after the request was sent (injected; it took effect)";

/// A port with faults: the real adapter, the faults, the invocation calling.
pub struct Faulty<'a, P> {
    /// The adapter wrapped.
    pub inner: &'a P,
    /// Where faults are drawn.
    pub faults: &'a Faults,
    /// The invocation making the calls.
    pub invocation: &'a Invocation,
}

impl<'a, P> Faulty<'a, P> {
    /// `inner` with faults from `faults`, called by `invocation`.
    pub fn new(inner: &'a P, faults: &'a Faults, invocation: &'a Invocation) -> Self {
        Faulty {
            inner,
            faults,
            invocation,
        }
    }
}

/// A contact store that can tell what a stale read would answer.
pub trait Previous {
    /// The answer of a read just after the latest change of `contact`,
    /// before it is seen ([`MemoryContacts::previous`]); `None` if unknown.
    fn previous(&self, contact: &str) -> Option<Option<StoredContact>>;
}

impl Previous for MemoryContacts {
    fn previous(&self, contact: &str) -> Option<Option<StoredContact>> {
        MemoryContacts::previous(self, contact)
    }
}

/// The contact store: reads and writes throttled; eventually consistent
/// reads stale; writes and outbox clears time out after taking effect; a
/// crash after a state write.
impl<S: ContactStore + Previous> ContactStore for Faulty<'_, S> {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.load(contact).await
    }

    async fn load_eventually(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        // Read (and billed) as ever; answered with what the read could still see.
        let fresh = self.inner.load_eventually(contact).await?;
        match self.inner.previous(contact) {
            Some(stale) if self.faults.roll(Kind::StaleRead, self.faults.rates.stale_read) => Ok(stale),
            _ => Ok(fresh),
        }
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.save(contact, expected, record).await?;
        self.invocation.boundary(self.faults, Kind::CrashAfterWrite).await;
        match self.faults.ambiguous() {
            true => Err(backend(TIMED_OUT)),
            false => Ok(()),
        }
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        let cleared = self.inner.clear_outbox(contact, version).await?;
        match self.faults.ambiguous() {
            true => Err(backend(TIMED_OUT)),
            false => Ok(cleared),
        }
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<kairos_state::SeenId>, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.load_seen(contact, days).await
    }
}

/// The due index: queries throttled.
impl<S: DueIndex> DueIndex for Faulty<'_, S> {
    fn shards(&self) -> u32 {
        self.inner.shards()
    }

    async fn due(&self, shard: u32, until: i64, after: Option<&Due>, limit: usize) -> Result<DuePage, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.due(shard, until, after, limit).await
    }
}

/// A queue: each entry of a batch throttled on its own (SQS's partial
/// batch failure); a batch sent whole may report a timeout; a crash after a send.
impl<Q: Queue> Queue for Faulty<'_, Q> {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        self.invocation.enter().await;
        let (mut sent, mut failed) = (Vec::new(), Vec::new());
        for m in messages {
            match self.faults.throttled() {
                true => failed.push(m.id.clone()),
                false => sent.push(m.clone()),
            }
        }
        if !sent.is_empty() {
            self.inner.send(&sent).await?;
            self.invocation.boundary(self.faults, Kind::CrashAfterSend).await;
        }
        if !failed.is_empty() {
            return Err(QueueError {
                failed,
                reason: "RequestThrottled (injected)".into(),
            });
        }
        match self.faults.ambiguous() {
            true => Err(QueueError {
                failed: messages.iter().map(|m| m.id.clone()).collect(),
                reason: TIMED_OUT.into(),
            }),
            false => Ok(()),
        }
    }
}

/// The delivery ledger: reads and writes throttled; writes time out after
/// taking effect.
impl<L: DeliveryLedger> DeliveryLedger for Faulty<'_, L> {
    async fn delivered(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.delivered(key).await
    }

    async fn record(&self, key: &str, version: u64) -> Result<(), StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.record(key, version).await?;
        match self.faults.ambiguous() {
            true => Err(backend(TIMED_OUT)),
            false => Ok(()),
        }
    }
}

/// One-time-token claims: every call throttled; claims and confirmations
/// time out after taking effect.
impl<C: Claims> Claims for Faulty<'_, C> {
    async fn claim(&self, key: &str, pending_until: i64, now: i64) -> Result<Claimed, StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        let claimed = self.inner.claim(key, pending_until, now).await?;
        match self.faults.ambiguous() {
            true => Err(backend(TIMED_OUT)),
            false => Ok(claimed),
        }
    }

    async fn confirm(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.confirm(key, expires_at).await?;
        match self.faults.ambiguous() {
            true => Err(backend(TIMED_OUT)),
            false => Ok(()),
        }
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            return Err(backend(THROTTLED));
        }
        self.inner.release(key).await
    }
}

/// A destination: a call answered 429 whole; a write refused for good (the
/// injection remembered by the invocation); a batch accepted whose answer is
/// lost (a timeout, retried); a crash after the CRM accepted a batch.
impl<D: Destination> Destination for Faulty<'_, D> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn segments(&self) -> &Segments {
        self.inner.segments()
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    fn gate(&self) -> &Gate {
        self.inner.gate()
    }

    fn policy(&self) -> &Policy {
        self.inner.policy()
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        self.invocation.enter().await;
        if self.faults.throttled() {
            let after = Some(std::time::Duration::from_secs(1));
            let reason = "429 Too Many Requests (injected)".to_string();
            return writes
                .iter()
                .map(|_| Outcome::Retry {
                    reason: reason.clone(),
                    after,
                })
                .collect();
        }
        let refused: Vec<bool> = writes
            .iter()
            .map(|_| self.faults.roll(Kind::Permanent, self.faults.rates.permanent))
            .collect();
        let accepted: Vec<Write> = writes
            .iter()
            .zip(&refused)
            .filter(|(_, r)| !**r)
            .map(|(w, _)| w.clone())
            .collect();
        let mut answers = self.inner.write(&accepted).await.into_iter();
        if !accepted.is_empty() {
            self.invocation.boundary(self.faults, Kind::CrashAfterCrm).await;
        }
        let lost = !accepted.is_empty() && self.faults.ambiguous();
        let mut out = Vec::with_capacity(writes.len());
        for (w, refused) in writes.iter().zip(refused) {
            if refused {
                let mut permanent = self.invocation.permanent.lock().unwrap();
                permanent.push((self.name().to_string(), w.contact.clone(), w.version));
                out.push(Outcome::Permanent("400 Bad Request (injected)".into()));
                continue;
            }
            let answer = answers.next().unwrap_or_else(|| Outcome::retry("no answer"));
            out.push(match (lost, answer) {
                (true, Outcome::Written) => Outcome::retry(TIMED_OUT),
                (_, answer) => answer,
            });
        }
        out
    }
}
