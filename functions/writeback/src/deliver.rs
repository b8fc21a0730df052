//! One destination's share of a batch, driven to the invocation's deadline:
//! calls in chunks of the destination's batch size, only when its [`Gate`] is
//! open; retryable outcomes retried with backoff while the remaining time
//! allows, then left pending (with how long to wait) for SQS to redeliver;
//! each success recorded in the ledger as soon as its call returns.

use kairos_event::Transition;
use kairos_store::DeliveryLedger;
use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use crate::clock::{until, Clock};
use crate::file::Segments;
use crate::{Backoff, Gate, RetryPolicy};

/// Time kept free before the deadline, beyond one request's timeout.
const MARGIN: Duration = Duration::from_millis(1_000);

/// The most time a call is held back for: one whose requests could take longer
/// (many lists, a webhook write of many transitions, a long `timeout_ms`)
/// starts once this much is left, so a fresh invocation (60 s, the template's
/// timeout, checked by `tests/infra.rs`) always makes it, and the destination
/// is never left out for good.
pub const MAX_CALL_RESERVE: Duration = Duration::from_secs(30);

/// One contact's state for one destination: what to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The contact key (the email for CRMs).
    pub contact: String,
    /// The state version this is the membership of.
    pub version: u64,
    /// A dead letter redriven to this destination: written again although
    /// its version is marked written (dead-lettered).
    pub redrive: bool,
    /// The contact's segments that this destination receives, sorted.
    pub members: Vec<String>,
    /// The transitions of this version (a webhook posts each).
    pub transitions: Vec<Transition>,
}

/// What one attempt at a write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Written,
    /// Nothing to write (the contact is not in the CRM); handled, with why.
    Skipped(String),
    /// Worth another try: 429, 5xx, timeout, connection error.
    Retry {
        /// What happened.
        reason: String,
        /// How long the destination asked to wait, if it said.
        after: Option<Duration>,
    },
    /// Will not succeed by retrying (a 4xx, a record error): dead-lettered.
    Permanent(String),
}

impl Outcome {
    /// A retryable outcome without a wait.
    pub fn retry(reason: impl Into<String>) -> Outcome {
        Outcome::Retry {
            reason: reason.into(),
            after: None,
        }
    }
}

/// How a destination is called: request timeout and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries within one invocation.
    pub backoff: Backoff,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            timeout: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// A place memberships are written: a webhook or a CRM.
pub trait Destination: Send + Sync {
    /// The name from the destinations file (ledger keys, dead-letter attributes).
    fn name(&self) -> &str;
    /// The segments it receives.
    fn segments(&self) -> &Segments;
    /// The most writes one [`Destination::write`] takes.
    fn max_batch(&self) -> usize;
    /// When it may be called next.
    fn gate(&self) -> &Gate;
    /// Timeout and retries.
    fn policy(&self) -> &Policy;
    /// The most requests one [`Destination::write`] of `writes` sends one
    /// after another, each up to the policy's timeout: a call is started
    /// only with time left for all of them.
    fn requests(&self, _writes: &[&Write]) -> u32 {
        1
    }
    /// One attempt at `writes` (at most [`Destination::max_batch`]): one
    /// outcome per write, in order. Rate-limit answers also set the gate.
    fn write(&self, writes: &[Write]) -> impl Future<Output = Vec<Outcome>> + Send;
}

/// Where a write ended for this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// Written or skipped, and recorded.
    Done,
    /// Failed permanently, with the destination's reason.
    Dead(String),
    /// Not done yet: SQS redelivers it, after this long if known.
    Pending(Option<Duration>),
}

/// The ledger key of a destination and contact.
pub fn ledger_key(destination: &str, contact: &str) -> String {
    format!("{destination}:{contact}")
}

/// What the ledger holds for a destination and contact: twice the highest
/// version attempted, plus one once that version is written (or
/// dead-lettered). Recording the attempt before the call means that if a
/// write half succeeds (HubSpot's upsert before a list call that fails) and is
/// retried later, an older version arriving meanwhile is still dropped: no
/// older answer is ever written after a newer one.
pub fn ledger_mark(version: u64, written: bool) -> u64 {
    version.saturating_mul(2).saturating_add(u64::from(written))
}

/// Drives `writes` to `dest` until done or until `deadline_ms` leaves no time.
/// Returns each write's end, and how many retryable failures were met on the way.
pub async fn drive<D: Destination, L: DeliveryLedger>(
    dest: &D,
    writes: &[Write],
    ledger: &L,
    clock: &dyn Clock,
    deadline_ms: u64,
) -> (Vec<Final>, u64) {
    let shared = share_pause(dest, ledger, None).await;
    let mut run = Run {
        dest,
        writes,
        ledger,
        clock,
        deadline_ms,
        finals: vec![None; writes.len()],
        attempts: vec![0; writes.len()],
        todo: (0..writes.len()).collect(),
    };
    while !run.todo.is_empty() {
        let (now, ready) = (clock.now_ms(), dest.gate().ready_at());
        if ready > now {
            let wait = until(ready, now);
            if wait > dest.policy().backoff.max_wait || !run.room(wait, run.next_requests()) {
                tracing::info!(destination = dest.name(), wait_ms = wait.as_millis() as u64, reason = %dest.gate().reason(), "destination not callable now; items left to the queue");
                run.leave(Some(wait));
                break;
            }
            clock.sleep(wait).await;
        } else if !run.room(Duration::ZERO, run.next_requests()) {
            run.leave(None);
            break;
        } else if let Some(wait) = run.call().await {
            clock.sleep(wait).await;
        }
    }
    share_pause(dest, ledger, Some(shared)).await;
    let retries = run.attempts.iter().map(|&n| u64::from(n)).sum();
    let finals = run.finals.into_iter().map(|f| f.unwrap_or(Final::Pending(None)));
    (finals.collect(), retries)
}

/// One destination's writes under way.
struct Run<'a, D, L> {
    dest: &'a D,
    writes: &'a [Write],
    ledger: &'a L,
    clock: &'a dyn Clock,
    deadline_ms: u64,
    finals: Vec<Option<Final>>,
    attempts: Vec<u32>,
    todo: VecDeque<usize>,
}

impl<D: Destination, L: DeliveryLedger> Run<'_, D, L> {
    /// Whether a call of `requests` requests after `wait` still ends before the deadline.
    fn room(&self, wait: Duration, requests: u32) -> bool {
        let call = (self.dest.policy().timeout * requests.max(1)).min(MAX_CALL_RESERVE.max(self.dest.policy().timeout));
        let reserve = call + MARGIN + wait;
        self.clock.now_ms() + reserve.as_millis() as u64 <= self.deadline_ms
    }

    /// The requests of the next call (the next chunk of what is left).
    fn next_requests(&self) -> u32 {
        let next: Vec<&Write> = self
            .todo
            .iter()
            .take(self.dest.max_batch())
            .map(|&i| &self.writes[i])
            .collect();
        self.dest.requests(&next)
    }

    /// Leaves what is left to the queue.
    fn leave(&mut self, after: Option<Duration>) {
        for i in self.todo.drain(..) {
            self.finals[i] = Some(Final::Pending(after));
        }
    }

    /// One call with the next chunk, each write claimed first (a retry
    /// too); the wait before retrying some of it, if any.
    async fn call(&mut self) -> Option<Duration> {
        let chunk: Vec<usize> = self.todo.drain(..self.todo.len().min(self.dest.max_batch())).collect();
        let claims = claim(self.ledger, self.dest.name(), chunk.iter().map(|&i| &self.writes[i])).await;
        let mut retry: Vec<(usize, Duration)> = Vec::new();
        let mut go = Vec::new();
        for (&i, claimed) in chunk.iter().zip(claims) {
            let outcome = match claimed {
                Ok(true) => {
                    go.push(i);
                    continue;
                }
                // Superseded: a newer version was attempted or written meanwhile.
                Ok(false) => Outcome::Skipped("a newer version was attempted or written".into()),
                Err(err) => Outcome::retry(format!("delivery ledger: {err}")),
            };
            retry.extend(self.settle(i, outcome).await.map(|wait| (i, wait)));
        }
        if !go.is_empty() {
            let batch: Vec<Write> = go.iter().map(|&i| self.writes[i].clone()).collect();
            let outcomes = self.dest.write(&batch).await;
            for (&i, outcome) in go.iter().zip(outcomes) {
                retry.extend(self.settle(i, outcome).await.map(|wait| (i, wait)));
            }
        }
        retry.iter().rev().for_each(|(i, _)| self.todo.push_front(*i));
        retry.into_iter().map(|(_, wait)| wait).max()
    }

    /// Records one outcome; the wait before retrying it, if it is retried now.
    async fn settle(&mut self, i: usize, outcome: Outcome) -> Option<Duration> {
        let (w, name) = (&self.writes[i], self.dest.name());
        self.finals[i] = Some(match outcome {
            Outcome::Written | Outcome::Skipped(_) => {
                if let Outcome::Skipped(why) = &outcome {
                    tracing::debug!(destination = name, contact = %kairos_event::log::hashed(&w.contact), version = w.version, why = %why, "skipped");
                }
                record(self.ledger, name, w).await;
                Final::Done
            }
            Outcome::Permanent(reason) => Final::Dead(reason),
            Outcome::Retry { reason, after } => {
                self.attempts[i] += 1;
                tracing::warn!(destination = name, contact = %kairos_event::log::hashed(&w.contact), attempt = self.attempts[i], reason = %reason, "retryable failure");
                match self.dest.policy().backoff.wait(self.attempts[i], after) {
                    // Not settled yet: tried again after the wait.
                    Some(wait) if self.room(wait, self.dest.requests(&[w])) => return Some(wait),
                    _ => Final::Pending(after),
                }
            }
        });
        None
    }
}

/// Records a handled write; a failure is logged (a redelivery repeats it, idempotently).
pub(crate) async fn record<L: DeliveryLedger>(ledger: &L, destination: &str, w: &Write) {
    let mark = ledger_mark(w.version, true);
    if let Err(err) = ledger.record(&ledger_key(destination, &w.contact), mark).await {
        tracing::warn!(destination, contact = %kairos_event::log::hashed(&w.contact), error = %err, "written but not recorded in the ledger");
    }
}

/// Claims these writes before a call (see [`ledger_mark`]): each is recorded
/// as attempted, and may go ahead only if nothing newer is recorded (a
/// redrive: nothing newer than its own version written). Checked before
/// every call, a retry included, so a write that waited out a 429 while
/// another instance wrote a newer version is dropped, not written over it.
async fn claim<'w, L: DeliveryLedger>(
    ledger: &L,
    destination: &str,
    writes: impl Iterator<Item = &'w Write>,
) -> Vec<Result<bool, kairos_store::StoreError>> {
    let claims = writes.map(|w| async move {
        let key = ledger_key(destination, &w.contact);
        let ceiling = ledger_mark(w.version, w.redrive);
        ledger.claim(&key, ledger_mark(w.version, false), ceiling).await
    });
    futures_util::future::join_all(claims).await
}

/// A pause is shared with the function's other instances through the ledger,
/// under the destination's bare name (a contact key always has a `:`): read
/// before the run (`None`), written after it if this run paused later.
async fn share_pause<D: Destination, L: DeliveryLedger>(dest: &D, ledger: &L, before: Option<u64>) -> u64 {
    match before {
        None => {
            let until = ledger.delivered(dest.name()).await.ok().flatten().unwrap_or(0);
            dest.gate().pause(until, "paused by another instance of the function");
            until
        }
        Some(before) => {
            let until = dest.gate().paused_until();
            if until > before {
                if let Err(err) = ledger.record(dest.name(), until).await {
                    tracing::warn!(destination = dest.name(), error = %err, "pause not shared");
                }
            }
            until
        }
    }
}
