use kairos_event::Transition;
use std::future::Future;
use std::time::Duration;

/// Why a transition was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later (429, 5xx, timeout, connection failure).
    #[error("retryable failure: {reason}")]
    Retryable {
        /// What happened (status and a short body excerpt, or the I/O error).
        reason: String,
        /// The destination's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying (a 4xx other than 408 and 429).
    #[error("permanent failure: HTTP {status}: {reason}")]
    Permanent {
        /// The HTTP status.
        status: u16,
        /// A short excerpt of the response body.
        reason: String,
    },
}

impl DeliveryError {
    /// True when retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent { .. })
    }
}

/// A place transitions are written back to: a signed webhook now; HubSpot,
/// Salesforce and Pipedrive each become one more implementation.
pub trait Destination: Send + Sync {
    /// A stable name, part of the delivery ledger key (`webhook`, `hubspot`, ...).
    fn name(&self) -> &str;

    /// Delivers a batch (a CRM may upsert it in one call); one result per
    /// transition, in order. Retries within the call are the destination's own.
    fn deliver(&self, batch: &[Transition]) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send;
}
