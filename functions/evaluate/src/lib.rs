//! The evaluate stage: an SQS batch of canonical events in, per-contact state
//! updates and segment transitions out.
//!
//! Main items: [`handle`] (the Lambda handler, reporting only failed message
//! ids), [`Evaluator`] (the per-contact logic over borrowed ports), [`Config`],
//! [`LiveRules`] (rules published to S3, switched to without a redeploy),
//! [`archive_batch`] (the batch's events to the event archive, after the state),
//! [`handle_expired`] (the contacts table's stream: records its TTL deleted
//! counted out of their segments).
//!
//! Per contact: load → the engine step (`kairos_engine`: merge, apply
//! deduplicated events, decide, diff into transitions) → one conditional write
//! of the record with the transitions in an outbox (retried on conflict) →
//! send the outbox to the write-back queue and clear it. A crash between the write and the send leaves
//! the outbox in place, and the redelivered batch sends it: nothing is lost,
//! and write-back drops the repeat by `(contact, segment, state_version)`.
//!
//! Identity: an event for a known contact carrying `properties.anonymous_id`
//! links `anon:<that id>` to it; the anonymous contact's state is merged into
//! the known one once, and its later events are processed as the known
//! contact's, in whichever order they arrive (`docs/identity.md`).
//!
//! ```
//! use kairos_evaluate::Evaluator;
//! use kairos_event::Event;
//! use kairos_rules::RuleSet;
//! use kairos_store::{MemoryContacts, MemoryQueue};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
//! let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
//! let evaluator = Evaluator::new(&rules, &store, &queue);
//! let click = Event::from_json(br#"{"id":"e1","contact":"ada@example.com","type":"email.clicked",
//!     "at":"2026-11-27T10:00:00Z","source":"sendgrid"}"#).unwrap();
//! let outcome = evaluator.contact("ada@example.com", &[click.clone()], click.at).await.unwrap();
//! assert_eq!(outcome.transitions[0].segment, "engaged-reader");
//! assert_eq!(queue.len(), 1);
//! # });
//! ```

mod archive;
mod cold;
mod config;
mod contact;
mod erase;
mod expiry;
mod link;
mod live;
mod record;
mod summary;

pub use archive::archive_batch;
pub use config::{Config, ConfigError};
pub use contact::{ContactError, Evaluator};
pub use erase::{receipt_key, EraseError, Erased, Erasure};
pub use expiry::{handle_expired, is_stream_batch};
pub use kairos_engine::{Manual, Outcome, Override};
pub use live::{LiveRules, DEFAULT_REFRESH_SECS};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use kairos_engine::Applied;
use kairos_event::{Event, EventsMessage};
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, Queue, RulesObject};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The example rules file, embedded at build time (`rules/segments.yaml`).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/segments.yaml");

/// Handles one SQS batch as of `now`: returns the ids of the messages to retry.
///
/// Messages are grouped by the event's contact key, one evaluation per group,
/// run concurrently. A sweep message (no event: re-decide the contact as of
/// now) joins its contact's group: a contact swept and sent events in the
/// same batch is evaluated once, with those events. An anonymous contact's events form their own group; if it
/// is linked, they are processed as the known contact's, and a write conflict
/// with that contact's own group is resolved by the usual reload and retry.
///
/// A malformed message fails only itself (logged with the reason; after the
/// queue's `maxReceiveCount` it reaches the dead-letter queue). A contact whose
/// storage or send fails fails only its own messages.
pub async fn handle<S: ContactStore, Q: Queue>(
    batch: SqsEvent,
    evaluator: &Evaluator<'_, S, Q>,
    now: DateTime<Utc>,
) -> SqsBatchResponse {
    let (mut failed, behind) = evaluate(batch.records, evaluator, now).await;
    failed.extend(behind);
    response(failed)
}

/// [`handle`] under the rules in force in `live` (with their version), as the
/// deployed function runs: a contact whose record was decided under newer
/// rules than those in force is never evaluated under older ones. The rules
/// are re-read at once (whatever the refresh interval) and, if they caught
/// up, its messages are evaluated again under them; if not, they fail for a
/// retry ([`ContactError::RulesBehind`]) and SQS redelivers them. Returns the
/// response and the rules last in force.
pub async fn handle_live<O: RulesObject, S: ContactStore, Q: Queue>(
    batch: SqsEvent,
    live: &LiveRules<O>,
    store: &S,
    queue: &Q,
    max_clock_skew_secs: i64,
    now: DateTime<Utc>,
) -> (SqsBatchResponse, Arc<RuleSet>) {
    let (rules, seq) = live.versioned(now.timestamp()).await;
    let evaluator = |rules, rules_seq| Evaluator {
        max_clock_skew_secs,
        rules_seq,
        ..Evaluator::new(rules, store, queue)
    };
    let records = batch.records;
    let (mut failed, behind) = evaluate(records.clone(), &evaluator(&rules, seq), now).await;
    if behind.is_empty() {
        return (response(failed), rules);
    }
    let (newer, newer_seq) = live.refresh(now.timestamp()).await;
    if newer_seq <= seq {
        tracing::warn!(
            seq,
            contacts_messages = behind.len(),
            "records decided under newer rules than published here: left for a retry"
        );
        failed.extend(behind);
        return (response(failed), rules);
    }
    let again = records
        .into_iter()
        .filter(|r| behind.contains(&r.message_id.clone().unwrap_or_default()));
    let again = again.collect();
    let (retried, still_behind) = evaluate(again, &evaluator(&newer, newer_seq), now).await;
    failed.extend(retried);
    failed.extend(still_behind);
    (response(failed), newer)
}

/// The response asking SQS to redeliver these message ids.
fn response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// Evaluates the messages: returns the ids of those that failed, and apart
/// those of contacts decided under newer rules than the evaluator's.
async fn evaluate<S: ContactStore, Q: Queue>(
    records: Vec<SqsMessage>,
    evaluator: &Evaluator<'_, S, Q>,
    now: DateTime<Utc>,
) -> (Vec<String>, Vec<String>) {
    let mut failed: Vec<String> = Vec::new();
    let mut summary = summary::Summary {
        messages: records.len(),
        ..Default::default()
    };
    // Each contact's messages: its events, and its sweeps (no event).
    let mut by_contact: BTreeMap<String, Vec<(String, Option<Event>)>> = BTreeMap::new();
    let mut needs: BTreeMap<String, u64> = BTreeMap::new();
    for record in records {
        let id = record.message_id.unwrap_or_default();
        match record.body.as_deref().map(|b| EventsMessage::decode(b.as_bytes())) {
            Some(Ok(EventsMessage::Event(event))) => by_contact
                .entry(event.contact.clone())
                .or_default()
                .push((id, Some(event))),
            Some(Ok(EventsMessage::Sweep(sweep))) => {
                // A backfill's sweep: to be decided under at least its rules version.
                let need = needs.entry(sweep.contact.clone()).or_default();
                *need = (*need).max(sweep.rules_seq.unwrap_or(0));
                by_contact.entry(sweep.contact).or_default().push((id, None))
            }
            Some(Err(err)) => {
                tracing::error!(message_id = %id, error = %err, "malformed event message");
                failed.push(id);
            }
            None => {
                tracing::error!(message_id = %id, "event message has no body");
                failed.push(id);
            }
        }
    }
    let needs = &needs;
    let jobs = by_contact.iter().map(|(contact, items)| async move {
        let events: Vec<Event> = items.iter().filter_map(|(_, e)| e.clone()).collect();
        let result = match needs.get(contact) {
            Some(&record) if record > evaluator.rules_seq => Err(ContactError::RulesBehind {
                record,
                ours: evaluator.rules_seq,
            }),
            _ => evaluator.contact(contact, &events, now).await,
        };
        match result {
            Ok(outcome) => {
                tracing::debug!(
                    contact = %kairos_event::log::hashed(contact),
                    applied = outcome.applied,
                    decided = outcome.decided,
                    duplicate = outcome.refused_as(Applied::Duplicate),
                    stale = outcome.refused_as(Applied::Stale),
                    late = outcome.late,
                    future = outcome.refused_as(Applied::Future),
                    transitions = outcome.transitions.len(),
                    swept = items.len() - events.len(),
                    reindex = outcome.reindex,
                    "evaluated"
                );
                log_transitions(&outcome);
                let lags: Vec<f64> = events.iter().map(|e| kairos_event::metrics::lag_ms(e.at, now)).collect();
                Ok((outcome, items.len() - events.len(), lags))
            }
            Err(err) => {
                let ids = items.iter().map(|(id, _)| id.clone());
                let behind = matches!(err, ContactError::RulesBehind { .. });
                if behind {
                    tracing::warn!(contact = %kairos_event::log::hashed(contact), error = %err, "contact decided under newer rules");
                } else {
                    let permanent = err.is_permanent();
                    tracing::error!(contact = %kairos_event::log::hashed(contact), error = %err, permanent, "contact failed; its messages will be retried, then dead-lettered");
                }
                Err((behind, ids))
            }
        }
    });
    summary.malformed = failed.len();
    let mut behind = Vec::new();
    for result in futures_util::future::join_all(jobs).await {
        match result {
            Ok((outcome, swept, lags)) => {
                summary.add(&outcome);
                summary.swept += swept;
                summary.lags_ms.extend(lags);
            }
            Err((true, ids)) => behind.extend(ids),
            Err((false, ids)) => {
                summary.failed_contacts += 1;
                failed.extend(ids);
            }
        }
    }
    summary.behind = behind.len();
    summary.log(evaluator.max_clock_skew_secs);
    summary.metrics().emit();
    (failed, behind)
}

/// Logs each transition at info with the event that caused it, so one grep
/// for an event id finds its ingest, its transitions and their deliveries.
fn log_transitions(outcome: &Outcome) {
    for t in &outcome.transitions {
        let event_id = t.trigger.as_ref().map(|e| kairos_event::log::id(&e.id));
        tracing::info!(
            event_id = event_id.as_ref().map(tracing::field::display),
            contact = %kairos_event::log::hashed(&t.contact),
            segment = %t.segment,
            change = ?t.change,
            state_version = t.state_version,
            "transition"
        );
    }
}

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod stale_tests;
#[cfg(test)]
mod tests;
