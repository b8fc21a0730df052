//! The canonical Kairos event: the one shape every source is normalized to, and
//! the contract between the ingest, evaluate and write-back stages.
//!
//! Main types: [`Event`] (one behavioural signal about one contact),
//! [`EventType`] (the closed list of kinds), [`EventError`] (why a JSON
//! document is not a valid event, naming the field), and [`Transition`] (a
//! segment entry or exit, the contract between evaluate and write-back).
//! Contact keys are normalized in one place ([`key`]), and JSON is read
//! strictly, a key given twice being an error ([`strict`]).
//!
//! ```
//! use kairos_event::{Event, EventType};
//!
//! let json = r#"{"id":"evt-1","contact":"Ada@Example.com","type":"email.opened",
//!               "at":"2026-11-27T10:00:00Z","source":"sendgrid","machine":true}"#;
//! let event = Event::from_json(json.as_bytes()).unwrap();
//! assert_eq!(event.kind, EventType::EmailOpened);
//! assert_eq!(event.contact, "ada@example.com"); // email contacts are lowercased
//! assert!(event.machine);
//! ```

mod audit;
mod deadline;
mod error;
pub mod key;
mod kind;
pub mod log;
mod message;
pub mod metrics;
pub mod strict;
mod transition;

pub use audit::{AuditEntry, AuditKind};
pub use deadline::invocation_deadline_ms;
pub use error::EventError;
pub use key::{KeyError, MAX_CONTACT_BYTES};
pub use kind::{EventType, UnknownEventType};
pub use message::{EventsMessage, MessageError, Sweep, WritebackMessage, EVENTS_FORMAT, WRITEBACK_FORMAT};
pub use transition::{Change, Transition, Trigger};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Contact keys of anonymous visitors start with this, then the `anonymousId`
/// (Segment-spec tracking); the evaluate stage links them to known contacts.
pub const ANONYMOUS_PREFIX: &str = "anon:";

/// How far ahead of the time it is received an event may be dated, by default
/// (seconds): ingest refuses later ones, and evaluate refuses them again as of
/// its own clock. Deployments set `KAIROS_MAX_CLOCK_SKEW_SECS`.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Largest accepted serialized event, in bytes. SQS messages carry one event
/// each and must stay far below SQS's 256 KiB message limit.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One behavioural signal about one contact, as every stage sees it.
///
/// Unknown fields are rejected; missing optional fields are fine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Dedupe key, unique per source event (the provider's event id).
    pub id: String,
    /// Contact key: normalized by [`key::normalize_contact`] (an email address
    /// lowercased, every key trimmed and in Unicode NFC).
    pub contact: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The event name, required for `track` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it happened (RFC 3339; stored and emitted in UTC).
    pub at: DateTime<Utc>,
    /// Where it came from (`sendgrid`, `api`, `website`, ...).
    pub source: String,
    /// True for machine-generated opens (Apple Mail Privacy Protection, link scanners).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub machine: bool,
    /// The page or link URL, for page views and clicks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The campaign (or ad campaign) the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The provider's message id, for email events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Free-form event properties (a key given twice, at any depth, is refused).
    #[serde(
        default,
        skip_serializing_if = "Map::is_empty",
        deserialize_with = "strict_properties"
    )]
    pub properties: Map<String, Value>,
    /// Contact traits, for `contact.identified` events (a key given twice is refused).
    #[serde(default, skip_serializing_if = "Map::is_empty", deserialize_with = "strict_traits")]
    pub traits: Map<String, Value>,
}

fn strict_properties<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    strict::object("properties", d)
}

fn strict_traits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    strict::object("traits", d)
}

/// The earliest and latest years an event may be dated in: RFC 3339 has four-digit years,
/// and nothing Kairos tracks happened before the unix epoch.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// The values of a `consent.changed` event's `properties.status`.
const CONSENT_STATUSES: [&str; 4] = ["subscribed", "unsubscribed", "bounced", "complained"];

impl Event {
    /// Parses and validates one event from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Event, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge { bytes: bytes.len() });
        }
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let event: Event = serde_path_to_error::deserialize(&mut json).map_err(EventError::from_path)?;
        json.end().map_err(|e| EventError::from_json(".", e))?;
        event.validated()
    }

    /// Converts an already-parsed JSON value into a validated event. The value's
    /// objects can no longer show a key given twice: read untrusted text with
    /// [`Event::from_json`] or [`strict::parse`].
    pub fn from_value(value: Value) -> Result<Event, EventError> {
        let event: Event = serde_path_to_error::deserialize(value).map_err(EventError::from_path)?;
        event.validated()
    }

    /// Checks the rules serde cannot express and normalizes the contact key
    /// (and `properties.anonymous_id`) with [`key`].
    pub fn validated(mut self) -> Result<Event, EventError> {
        if self.id.trim().is_empty() {
            return Err(EventError::Empty { field: "id" });
        }
        self.contact = key::normalize_contact(&self.contact).map_err(|problem| EventError::Key {
            field: "contact",
            problem,
        })?;
        self.normalize_anonymous_id()?;
        if !YEARS.contains(&chrono::Datelike::year(&self.at)) {
            return Err(EventError::Invalid {
                field: "at",
                expected: "a time in the years 1970 to 9999",
                found: self.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            });
        }
        if self.source.trim().is_empty() {
            return Err(EventError::Empty { field: "source" });
        }
        match (&self.kind, &self.name) {
            (EventType::Track, None) => return Err(EventError::Missing { field: "name" }),
            (EventType::Track, Some(n)) if n.trim().is_empty() => return Err(EventError::Empty { field: "name" }),
            _ => {}
        }
        if self.kind == EventType::ConsentChanged {
            let status = self.properties.get("status");
            if !status
                .and_then(Value::as_str)
                .is_some_and(|s| CONSENT_STATUSES.contains(&s))
            {
                return Err(EventError::Invalid {
                    field: "properties.status",
                    expected: "subscribed, unsubscribed, bounced or complained (for consent.changed)",
                    found: status.map_or("nothing".into(), |v| v.to_string()),
                });
            }
        }
        Ok(self)
    }

    /// `properties.anonymous_id` becomes the key `anon:<id>`: a string, normalized as one.
    fn normalize_anonymous_id(&mut self) -> Result<(), EventError> {
        const FIELD: &str = "properties.anonymous_id";
        let Some(value) = self.properties.get_mut("anonymous_id") else {
            return Ok(());
        };
        let Value::String(id) = value else {
            return Err(EventError::Invalid {
                field: FIELD,
                expected: "a string (the anonymous id to link)",
                found: value.to_string().chars().take(40).collect(),
            });
        };
        *id = key::normalize_anonymous_id(id).map_err(|problem| EventError::Key { field: FIELD, problem })?;
        Ok(())
    }

    /// Refuses an event dated more than `max_skew_secs` after `received` (when it
    /// was received): ingest checks it for every route and provider, evaluate again.
    pub fn check_not_ahead(&self, received: DateTime<Utc>, max_skew_secs: i64) -> Result<(), EventError> {
        let ahead = (self.at - received).num_seconds();
        if ahead > max_skew_secs {
            return Err(EventError::Ahead {
                field: "at",
                seconds: ahead,
                max: max_skew_secs,
            });
        }
        Ok(())
    }

    /// Serializes the event as compact JSON (the queue message body).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an Event always serializes")
    }
}

#[cfg(test)]
mod tests;
