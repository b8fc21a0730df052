//! Queue message bodies: the one place that reads and writes them, versioned.
//!
//! A body without a top-level `"v"` is format 1, what the first release wrote:
//! a bare canonical [`Event`] on the events queue, a bare [`Transition`] on the
//! write-back queue. A new kind of message or a changed shape carries `"v": N`.
//! Writers emit the lowest format that carries the message (a plain event stays
//! format 1, so a build rolled back to an older release still reads it);
//! readers accept every format up to their own and refuse a newer one with
//! [`MessageError::Newer`], a permanent error (the message goes to the
//! dead-letter queue with that reason, to be redriven once the newer build is
//! deployed). Fixtures of every format live in `shared/event/tests/fixtures/`.
//!
//! Events formats: 1 is a bare [`Event`]; 2 adds the sweep message,
//! `{"v":2,"kind":"sweep","contact":"…"}` (optionally `"rules_seq"`): no
//! event, re-decide this contact as of the evaluation's time ([`Sweep`]).
//!
//! Write-back formats: 1 is a bare [`Transition`] without `members`; 2 is the
//! same object with `"v": 2` and `members` (the contact's full membership),
//! what evaluate writes since destinations write absolute state.

use serde_json::Value;

use crate::{Event, EventError, Transition};

/// The newest events-queue format this build reads.
pub const EVENTS_FORMAT: u64 = 2;
/// The newest write-back-queue format this build reads.
pub const WRITEBACK_FORMAT: u64 = 2;

/// Why a queue body could not be read. Every variant is permanent: the same
/// body fails the same way on every delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The body was written by a newer build than this one.
    #[error("message format v{found} is newer than this build reads (up to v{supported}): deploy the newer build, then redrive")]
    Newer {
        /// The body's `"v"`.
        found: u64,
        /// The newest format this build reads.
        supported: u64,
    },
    /// `"v"` is not a positive integer.
    #[error("message format `v` must be a positive integer, found {0}")]
    BadVersion(String),
    /// The body is not a valid message of its format (names the field).
    #[error("{0}")]
    Invalid(String),
}

impl From<EventError> for MessageError {
    fn from(err: EventError) -> Self {
        MessageError::Invalid(err.to_string())
    }
}

/// A message on the events queue.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsMessage {
    /// A canonical event to apply (format 1).
    Event(Event),
    /// A contact to re-decide with no event (format 2): sent by the sweep
    /// when the contact is due, and by a backfill after a rules publish.
    Sweep(Sweep),
}

/// "Re-decide this contact as of now, no events": the body of an
/// [`EventsMessage::Sweep`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The contact's key, as stored.
    pub contact: String,
    /// Set by a backfill: the rules sequence the contact must be decided
    /// under; an evaluate function on older rules refreshes them first or
    /// leaves the message for a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_seq: Option<u64>,
}

impl EventsMessage {
    /// Reads an events-queue body of any format up to [`EVENTS_FORMAT`].
    pub fn decode(body: &[u8]) -> Result<EventsMessage, MessageError> {
        if format_of(body, EVENTS_FORMAT)? == 1 {
            return Ok(EventsMessage::Event(Event::from_json(body)?));
        }
        #[derive(serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
        enum Format2 {
            Sweep {
                #[allow(dead_code)]
                v: Value,
                contact: String,
                #[serde(default)]
                rules_seq: Option<u64>,
            },
        }
        let invalid = |e: serde_json::Error| MessageError::Invalid(format!("events message v2: {e}"));
        let Format2::Sweep { contact, rules_seq, .. } = serde_json::from_slice(body).map_err(invalid)?;
        if contact.trim().is_empty() {
            return Err(MessageError::Invalid("sweep: `contact` is empty".into()));
        }
        Ok(EventsMessage::Sweep(Sweep { contact, rules_seq }))
    }

    /// The body to send, in the lowest format that carries this message.
    pub fn encode(&self) -> String {
        match self {
            EventsMessage::Event(event) => EventsMessage::event_body(event),
            EventsMessage::Sweep(sweep) => EventsMessage::sweep_body(sweep),
        }
    }

    /// The body of an [`EventsMessage::Sweep`] (format 2).
    pub fn sweep_body(sweep: &Sweep) -> String {
        let fields = serde_json::to_string(sweep).unwrap_or_default();
        format!("{{\"v\":2,\"kind\":\"sweep\",{}", &fields[1..])
    }

    /// The body of an [`EventsMessage::Event`] for a borrowed event (format 1).
    pub fn event_body(event: &Event) -> String {
        event.to_json()
    }
}

/// A message on the write-back queue.
#[derive(Debug, Clone, PartialEq)]
pub enum WritebackMessage {
    /// A segment transition to deliver: format 1 without
    /// [`Transition::members`], format 2 with them.
    Transition(Transition),
}

impl WritebackMessage {
    /// Reads a write-back-queue body of any format up to [`WRITEBACK_FORMAT`].
    pub fn decode(body: &[u8]) -> Result<WritebackMessage, MessageError> {
        let invalid = |e: serde_json::Error| MessageError::Invalid(format!("transition: {e}"));
        let transition: Transition = match format_of(body, WRITEBACK_FORMAT)? {
            1 => {
                let t: Transition = serde_json::from_slice(body).map_err(invalid)?;
                if t.members.is_some() {
                    return Err(MessageError::Invalid("transition: `members` needs format v2".into()));
                }
                t
            }
            _ => {
                let mut value: Value = serde_json::from_slice(body).map_err(invalid)?;
                if let Value::Object(map) = &mut value {
                    map.remove("v");
                }
                let t: Transition = serde_json::from_value(value).map_err(invalid)?;
                if t.members.is_none() {
                    return Err(MessageError::Invalid(
                        "transition: missing field `members` (format v2)".into(),
                    ));
                }
                t
            }
        };
        Ok(WritebackMessage::Transition(transition))
    }

    /// The body to send, in the lowest format that carries this message.
    pub fn encode(&self) -> String {
        match self {
            WritebackMessage::Transition(t) => WritebackMessage::transition_body(t),
        }
    }

    /// The body of a [`WritebackMessage::Transition`] for a borrowed
    /// transition: format 1 without members, format 2 with them.
    pub fn transition_body(transition: &Transition) -> String {
        let json = transition.to_json();
        match transition.members {
            None => json,
            // `{"v":2,` and the transition's own fields.
            Some(_) => format!("{{\"v\":2,{}", &json[1..]),
        }
    }
}

/// The body's format: its top-level `"v"`, or 1 without one. A body that is
/// not a JSON object is format 1 (and fails as such, with its own error).
fn format_of(body: &[u8], supported: u64) -> Result<u64, MessageError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        v: Option<Value>,
    }
    let version = match serde_json::from_slice::<Versioned>(body) {
        Ok(Versioned { v: Some(v) }) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or(MessageError::BadVersion(v.to_string()))?,
        _ => 1,
    };
    match version {
        found if found > supported => Err(MessageError::Newer { found, supported }),
        found => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"e1","contact":"ada@example.com","type":"email.opened","at":"2026-11-27T10:00:00Z","source":"sendgrid"}"#;

    #[test]
    fn a_bare_event_is_format_1_and_round_trips() {
        let message = EventsMessage::decode(EVENT.as_bytes()).unwrap();
        assert!(matches!(&message, EventsMessage::Event(e) if e.id == "e1"));
        assert_eq!(EventsMessage::decode(message.encode().as_bytes()).unwrap(), message);
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let err = EventsMessage::decode(br#"{"v":99,"anything":1}"#).unwrap_err();
        assert_eq!(
            err,
            MessageError::Newer {
                found: 99,
                supported: EVENTS_FORMAT
            }
        );
        assert!(err.to_string().contains("v99 is newer"), "{err}");
        let err = WritebackMessage::decode(br#"{"v":"two"}"#).unwrap_err();
        assert_eq!(err, MessageError::BadVersion("\"two\"".into()));
    }

    #[test]
    fn a_sweep_is_format_2_and_round_trips() {
        for rules_seq in [None, Some(7)] {
            let sweep = EventsMessage::Sweep(Sweep {
                contact: "ada@example.com".into(),
                rules_seq,
            });
            let body = sweep.encode();
            assert!(
                body.starts_with(r#"{"v":2,"kind":"sweep","contact":"ada@example.com""#),
                "{body}"
            );
            assert_eq!(body.contains("rules_seq"), rules_seq.is_some(), "{body}");
            assert_eq!(EventsMessage::decode(body.as_bytes()).unwrap(), sweep);
        }
        let err = EventsMessage::decode(br#"{"v":2,"kind":"nap","contact":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `nap`"), "{err}");
        let err = EventsMessage::decode(br#"{"v":2,"kind":"sweep"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `contact`"), "{err}");
        let err = EventsMessage::decode(br#"{"v":2,"kind":"sweep","contact":" "}"#).unwrap_err();
        assert!(err.to_string().contains("`contact` is empty"), "{err}");
    }

    #[test]
    fn a_malformed_event_names_its_field() {
        let err = EventsMessage::decode(br#"{"id":"e1"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `contact`"), "{err}");
    }
}
