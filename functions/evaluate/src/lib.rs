//! The evaluate stage: an SQS batch of canonical events in, per-contact state
//! updates and segment transitions out.
//!
//! Main items: [`handle`] (the Lambda handler, reporting only failed message
//! ids), [`Evaluator`] (the per-contact logic over borrowed ports), [`Config`].
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

mod config;
mod contact;
mod link;
mod record;

pub use config::{Config, ConfigError};
pub use contact::{ContactError, Evaluator};
pub use kairos_engine::Outcome;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use kairos_engine::Applied;
use kairos_event::{Event, EventsMessage};
use kairos_store::{ContactStore, Queue};
use std::collections::BTreeMap;

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
    let mut failed: Vec<String> = Vec::new();
    // Each contact's messages: its events, and its sweeps (no event).
    let mut by_contact: BTreeMap<String, Vec<(String, Option<Event>)>> = BTreeMap::new();
    for record in batch.records {
        let id = record.message_id.unwrap_or_default();
        match record.body.as_deref().map(|b| EventsMessage::decode(b.as_bytes())) {
            Some(Ok(EventsMessage::Event(event))) => by_contact
                .entry(event.contact.clone())
                .or_default()
                .push((id, Some(event))),
            Some(Ok(EventsMessage::Sweep(sweep))) => by_contact.entry(sweep.contact).or_default().push((id, None)),
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
    let jobs = by_contact.iter().map(|(contact, items)| async move {
        let events: Vec<Event> = items.iter().filter_map(|(_, e)| e.clone()).collect();
        match evaluator.contact(contact, &events, now).await {
            Ok(outcome) => {
                tracing::info!(
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
                Vec::new()
            }
            Err(err) => {
                let permanent = err.is_permanent();
                tracing::error!(contact = %kairos_event::log::hashed(contact), error = %err, permanent, "contact failed; its messages will be retried, then dead-lettered");
                items.iter().map(|(id, _)| id.clone()).collect()
            }
        }
    });
    for ids in futures_util::future::join_all(jobs).await {
        failed.extend(ids);
    }
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

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod tests;
