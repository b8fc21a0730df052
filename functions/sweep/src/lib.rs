//! The sweep stage: time acts without an event. Every minute (an EventBridge
//! Scheduler schedule) it asks the contacts table's due index for every
//! contact whose answer may have changed by now, and sends each to the
//! events queue as a sweep message ([`kairos_event::Sweep`]: "re-decide this
//! contact as of now, no events"). The evaluate function re-decides them with
//! the one engine step, and the exits and entries that time caused reach the
//! CRM like any other transition.
//!
//! Main items: [`handle`] (the Lambda handler over the scheduled event),
//! [`Sweeper`] (one run over borrowed ports), [`Report`] (what a run logs:
//! contacts due and sent, lateness p50/p99/max), [`Config`].
//!
//! A run's work is bounded (`KAIROS_SWEEP_MAX_PER_RUN`, and the invocation's
//! remaining time); what it leaves, the next run finds, since a contact stays
//! in the index until it is re-decided.
//!
//! ```
//! use kairos_store::{ContactStore, MemoryContacts, MemoryQueue, StoredContact};
//! use kairos_sweep::Sweeper;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (store, events) = (MemoryContacts::default(), MemoryQueue::default());
//! let due = StoredContact { version: 1, next_change_at: Some(1_000), due_at: Some(1_000), ..Default::default() };
//! store.save("ada@example.com", None, &due).await.unwrap();
//! let now = chrono::DateTime::from_timestamp(1_030, 0).unwrap();
//! let report = Sweeper::new(&store, &events).sweep(now, std::time::Instant::now() + std::time::Duration::from_secs(5)).await;
//! assert_eq!((report.sent, report.lateness.max), (1, 30));
//! assert!(events.drain()[0].body.contains(r#""kind":"sweep","contact":"ada@example.com""#));
//! # });
//! ```

mod backfill;
mod config;
mod run;

pub use backfill::{after_publish, BackfillError, BackfillReport, Backfiller, DEFAULT_SEGMENTS, SCAN_PAGE};

pub use config::{Config, ConfigError, DEFAULT_MAX_PER_RUN};
pub use run::{Lateness, Report, Sweeper, PAGE};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use kairos_store::{DueIndex, Queue};
use std::time::{Duration, Instant};

/// Time a run leaves itself before the invocation's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Why a run reports failure (after doing what it could).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Some shards could not be queried or their contacts not sent; the next
    /// run retries them (and the schedule's retry may run this one again).
    #[error("due-index shards {0:?} failed this run; the next run retries them")]
    Shards(Vec<u32>),
}

/// When a run must stop: `DEADLINE_MARGIN` before the invocation's deadline
/// (`deadline_ms`, unix milliseconds, as the Lambda context gives it; the
/// `cargo lambda watch` emulator's relative value is read as time left:
/// [`kairos_event::invocation_deadline_ms`]).
pub fn stop_at(deadline_ms: u64) -> Instant {
    let now_ms = Utc::now().timestamp_millis().max(0) as u64;
    let deadline_ms = kairos_event::invocation_deadline_ms(deadline_ms, now_ms);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

/// Handles a scheduled event: sweeps as of the later of the schedule's time
/// (`time`) and `now`, stopping by `stop_at`, and logs one line with the figures.
pub async fn handle<I: DueIndex, Q: Queue>(
    event: EventBridgeEvent,
    sweeper: &Sweeper<'_, I, Q>,
    now: DateTime<Utc>,
    stop_at: Instant,
) -> Result<Report, SweepError> {
    let as_of = event.time.map_or(now, |t| t.max(now));
    let report = sweeper.sweep(as_of, stop_at).await;
    tracing::info!(
        due = report.sent,
        lateness_p50_secs = report.lateness.p50,
        lateness_p99_secs = report.lateness.p99,
        lateness_max_secs = report.lateness.max,
        more = report.more,
        failed_shards = report.failed_shards.len(),
        "swept"
    );
    report.metrics().emit();
    match report.failed_shards.is_empty() {
        true => Ok(report),
        false => Err(SweepError::Shards(report.failed_shards)),
    }
}

#[cfg(test)]
mod tests;
