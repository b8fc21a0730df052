//! The write-back stage: segment transitions from the write-back queue,
//! delivered to the configured destination.
//!
//! Main items: [`handle`] (the Lambda handler, reporting only failed message
//! ids), [`Destination`] (one module per CRM or webhook target),
//! [`WebhookDestination`] (Standard Webhooks-signed HTTPS POST), [`RetryPolicy`]
//! and [`Backoff`], [`Config`].
//!
//! A transition is delivered at most once in effect: the [`DeliveryLedger`]
//! records, per destination, contact and segment, the highest state version
//! delivered, and a repeated or older transition is dropped. Retryable failures
//! (429, 5xx, network) are retried with backoff honouring `Retry-After`, then
//! fail the item so SQS redelivers it; a permanent 4xx fails it at once with the
//! reason logged, and after the queue's `maxReceiveCount` it reaches the DLQ.

mod config;
mod destination;
mod retry;
mod webhook;

pub use config::{Config, ConfigError};
pub use destination::{DeliveryError, Destination};
pub use retry::{Backoff, RetryPolicy};
pub use webhook::{envelope, sign, WebhookDestination};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use kairos_event::{Transition, WritebackMessage};
use kairos_store::DeliveryLedger;

/// The write-back handler's borrowed dependencies.
pub struct Writeback<'a, D, L> {
    /// Where transitions go.
    pub destination: &'a D,
    /// What was already delivered.
    pub ledger: &'a L,
}

/// Handles one SQS batch of transitions: returns the ids of the messages to retry.
pub async fn handle<D: Destination, L: DeliveryLedger>(batch: SqsEvent, wb: &Writeback<'_, D, L>) -> SqsBatchResponse {
    let mut failed = Vec::new();
    let mut pending: Vec<(String, String, Transition)> = Vec::new();
    for record in batch.records {
        let id = record.message_id.unwrap_or_default();
        match WritebackMessage::decode(record.body.as_deref().unwrap_or("").as_bytes()) {
            Ok(WritebackMessage::Transition(t)) => {
                let key = format!("{}:{}:{}", wb.destination.name(), t.contact, t.segment);
                match wb.ledger.delivered(&key).await {
                    Ok(Some(done)) if done >= t.state_version => {
                        tracing::info!(contact = %kairos_event::log::hashed(&t.contact), segment = %t.segment, version = t.state_version, delivered = done, "repeated or stale transition dropped");
                    }
                    Ok(_) => pending.push((id, key, t)),
                    Err(err) => {
                        tracing::error!(message_id = %id, error = %err, "ledger read failed");
                        failed.push(id);
                    }
                }
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "malformed transition message");
                failed.push(id);
            }
        }
    }
    let transitions: Vec<Transition> = pending.iter().map(|(_, _, t)| t.clone()).collect();
    let results = wb.destination.deliver(&transitions).await;
    for ((id, key, t), result) in pending.into_iter().zip(results) {
        match result {
            Ok(()) => {
                if let Err(err) = wb.ledger.record(&key, t.state_version).await {
                    // Delivered; a redelivery may repeat it, which the receiver dedupes by webhook-id.
                    tracing::warn!(contact = %kairos_event::log::hashed(&t.contact), segment = %t.segment, version = t.state_version, error = %err, "delivered but not recorded in the ledger");
                }
            }
            Err(err) => {
                tracing::error!(contact = %kairos_event::log::hashed(&t.contact), segment = %t.segment, version = t.state_version, error = %err, permanent = err.is_permanent(), "delivery failed");
                failed.push(id);
            }
        }
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
mod tests;
