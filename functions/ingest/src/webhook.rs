//! What every provider route implements ([`Webhook`]: verify the request), what
//! every normalizer returns ([`Parsed`], or a [`NormalizeError`] with no HTTP in
//! it), and the status codes a route answers with ([`Policy`]).
//!
//! The generic route ([`crate::handle`]) owns everything else: the size limit,
//! one-time-token claims, the clock-skew bound, enqueueing, and turning the
//! outcome into the status code the provider's retry behaviour needs.

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
use kairos_event::Event;
use serde::Serialize;
use serde_json::Value;

/// One request as received: the bytes a signature covers, untouched.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The headers (names are case-insensitive).
    pub headers: &'a HeaderMap,
    /// The raw body bytes exactly as received.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A one-time value (a token or message id) that must not be accepted twice
/// within the replay window: the route records it before accepting the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// True when the verified signature covers the whole body, so a repeat is an
    /// exact copy of a request already accepted (a retry after a lost answer):
    /// it is answered 200 without enqueueing again. False when the signature
    /// does not cover the body (Mailgun signs only timestamp and token): a
    /// repeat may carry a forged body and is refused (401).
    pub covers_body: bool,
    /// Unique key, prefixed with the provider (`mailgun:<token>`).
    pub key: String,
    /// When the claim may be forgotten (unix seconds): after the replay window.
    pub expires_at: i64,
}

/// A verified request: the claims to record, and an early answer when the
/// request is a protocol step rather than events (an SNS subscription confirmation).
#[derive(Debug, Default)]
pub struct Verified {
    /// One-time values to record; a value already recorded makes the request a
    /// repeat (200, not enqueued) or a replay (401), per [`Claim::covers_body`].
    pub claims: Vec<Claim>,
    /// Answer with this instead of parsing (status, JSON body).
    pub reply: Option<(u16, Value)>,
}

/// Why a request was refused as unauthorized. The text goes to the logs only
/// (it never contains a secret); the caller sees a generic 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub String);

/// Why a request was not verified. The text goes to the logs only (it never
/// contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The credential or signature is wrong, missing or replayed: 401, which
    /// the sender should not retry.
    #[error("{0}")]
    Unauthorized(String),
    /// The request could not be checked now (the SNS signing certificate could
    /// not be fetched): 503, so the sender retries it.
    #[error("{0}")]
    Unavailable(String),
}

impl From<Unauthorized> for Refusal {
    fn from(Unauthorized(reason): Unauthorized) -> Self {
        Refusal::Unauthorized(reason)
    }
}

/// The future returned by [`Webhook::verify`].
pub type Verification<'a> = Pin<Box<dyn Future<Output = Result<Verified, Refusal>> + Send + 'a>>;

/// An already-computed verification, for providers whose check needs no I/O.
pub fn ready<'a>(result: Result<Verified, Unauthorized>) -> Verification<'a> {
    Box::pin(std::future::ready(result.map_err(Refusal::from)))
}

/// As [`ready`], with the check's own error (which names no secret) as the log reason.
pub fn checked<'a, E: std::fmt::Display>(result: Result<Verified, E>) -> Verification<'a> {
    ready(result.map_err(|e| Unauthorized(e.to_string())))
}

/// An item of a request that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Its position in the request (0 for a single event).
    pub index: usize,
    /// Its id, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What was wrong, naming the field.
    pub error: String,
}

/// A parsed request: the valid events and the rejected items.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    /// Canonical events to enqueue.
    pub events: Vec<Event>,
    /// Items that could not be normalized.
    pub rejected: Vec<Rejected>,
    /// Each event's position in the request (parallel to `events`).
    positions: Vec<usize>,
}

impl Parsed {
    /// Adds one item's outcome; `id` names the item in the report.
    pub fn push(&mut self, index: usize, id: Option<String>, result: Result<Event, String>) {
        match result {
            Ok(event) => {
                self.events.push(event);
                self.positions.push(index);
            }
            Err(error) => self.rejected.push(Rejected { index, id, error }),
        }
    }

    /// Moves every event dated more than `max_skew_secs` after `received` to the
    /// rejected items, naming `at` ([`Event::check_not_ahead`]). Every route and
    /// `kairos normalize` apply it to what they parsed.
    pub fn refuse_ahead(&mut self, received: DateTime<Utc>, max_skew_secs: i64) {
        let events = std::mem::take(&mut self.events);
        let positions = std::mem::take(&mut self.positions);
        for (event, index) in events.into_iter().zip(positions) {
            match event.check_not_ahead(received, max_skew_secs) {
                Ok(()) => {
                    self.events.push(event);
                    self.positions.push(index);
                }
                Err(err) => self.rejected.push(Rejected {
                    index,
                    id: Some(event.id),
                    error: err.to_string(),
                }),
            }
        }
        self.rejected.sort_by_key(|r| r.index);
    }
}

/// Why a request as a whole was not normalized. Carries no HTTP: the route
/// maps each variant to the status its sender needs (see [`Policy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The credential (API key, write key) is missing or wrong. The reason goes
    /// to the logs only; the caller learns nothing more.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The route is not configured (no keys for it).
    #[error("{0}")]
    NotConfigured(String),
    /// Nothing in the body can be read: not JSON, the wrong shape, a required
    /// part missing; names what was expected.
    #[error("{0}")]
    Malformed(String),
    /// The body is over a documented size or count limit.
    #[error("{0}")]
    TooLarge(String),
}

impl From<String> for NormalizeError {
    fn from(reason: String) -> Self {
        NormalizeError::Malformed(reason)
    }
}

impl From<&str> for NormalizeError {
    fn from(reason: &str) -> Self {
        NormalizeError::Malformed(reason.to_string())
    }
}

/// The status codes a provider gets, chosen for its retry behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Every item accepted. 200 for webhooks (several providers document
    /// exactly 200 as success), 202 for Kairos's own `/v1` API.
    pub accepted: u16,
    /// Some items were rejected, the valid ones were enqueued. A provider that
    /// retries every non-2xx must get a 2xx here, or it would resend the good
    /// events (and the bad ones, forever).
    pub partial: u16,
    /// Nothing in the body could be read (not JSON, wrong shape, or its one event invalid).
    pub malformed: u16,
}

impl Default for Policy {
    /// 200 when accepted or on a partial batch, 400 on a malformed body.
    fn default() -> Policy {
        Policy {
            accepted: 200,
            partial: 200,
            malformed: 400,
        }
    }
}

/// A provider's webhook: `POST /webhooks/<name>`.
pub trait Webhook: Send + Sync {
    /// The route name (`sendgrid` serves `/webhooks/sendgrid`).
    fn name(&self) -> &'static str;

    /// Checks the credential or signature (and the replay window) before the
    /// body is parsed beyond what the check needs. Comparisons are constant-time.
    /// Parsing is the provider's entry in [`crate::providers::PROVIDERS`].
    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a>;
}
