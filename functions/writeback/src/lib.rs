//! The write-back stage: segment transitions from the write-back queue,
//! written to every configured destination as the contact's absolute
//! membership: a signed webhook, HubSpot, Salesforce, Pipedrive.
//!
//! Main items: [`handle`] (the Lambda handler: reports only the messages to
//! redeliver), [`Config`] and the destinations file ([`file`]), [`build`]
//! (destinations from the file at cold start), [`Destination`] (one per
//! target: [`WebhookDestination`], [`HubSpot`], [`Salesforce`],
//! [`Pipedrive`]), [`drive`] (one destination's share, to the deadline),
//! [`Gate`] (when a destination may be called), [`Clock`].
//!
//! Exactly once in effect: per destination and contact the ledger keeps the
//! highest state version attempted and whether it is written
//! ([`ledger_mark`]); an older or repeated one is dropped, and several
//! transitions of a contact in a batch collapse to the newest.
//! Retryable failures are retried within the invocation's remaining time,
//! then left to SQS (a long wait becomes the message's visibility); a
//! permanent failure is dead-lettered at once with the destination's name and
//! reason, and a redrive goes to that destination only.
//!
//! ```
//! use kairos_writeback::file::{parse, Segments};
//!
//! let file = parse("destinations:\n  - {name: crm, kind: webhook, segments: [vip],\n     credentials: {secret: /kairos/s},\n     mapping: {url: https://crm.test/hook}}\n", Some(&["vip"])).unwrap();
//! assert_eq!(file.destinations[0].segments(), &Segments::Only(vec!["vip".into()]));
//! assert!(parse("destinations: []", None).is_err());
//! ```

mod batch;
mod clock;
mod config;
mod deliver;
pub mod file;
mod gate;
pub mod http;
mod hubspot;
mod pipedrive;
mod retry;
mod salesforce;
mod setup;
mod webhook;

pub use batch::{handle, DESTINATION_ATTRIBUTE, REASON_ATTRIBUTE};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError, DEFAULT_DESTINATIONS};
pub use deliver::{drive, ledger_key, ledger_mark, Destination, Final, Outcome, Policy, Write, MAX_CALL_RESERVE};
pub use gate::{next_midnight, Gate};
pub use hubspot::HubSpot;
pub use pipedrive::{Field as PipedriveField, Pipedrive};
pub use retry::{Backoff, RetryPolicy};
pub use salesforce::{signing_key, Salesforce, LIMIT_PAUSE};
pub use setup::{build, dry_run, policy, read_credentials, AnyDestination, Parts, SetupError};
pub use webhook::{envelope, secret_bytes, sign, verify, WebhookDestination};

/// The write-back handler's borrowed dependencies.
pub struct Writeback<'a, D, L, C, Q, R> {
    /// Where memberships go.
    pub destinations: &'a [D],
    /// What each destination already has, per contact.
    pub ledger: &'a L,
    /// Contact records: the membership of a format-1 transition.
    pub contacts: &'a C,
    /// The dead-letter queue.
    pub dead_letters: &'a Q,
    /// The consumed queue, to put off a redelivery.
    pub redelivery: &'a R,
    /// Now, and waiting.
    pub clock: &'a dyn Clock,
}

/// The JSON Schema of destinations files (committed as `destinations.schema.json`).
pub fn destinations_schema() -> serde_json::Value {
    file::json_schema()
}

#[cfg(test)]
mod tests;
