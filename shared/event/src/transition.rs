use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EventType;

/// A contact entering or leaving a segment: what evaluate emits and write-back delivers.
///
/// `(contact, segment, state_version)` identifies it: a repeated or stale one
/// (lower version than one already delivered) is dropped downstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The contact key.
    pub contact: String,
    /// The segment id.
    pub segment: String,
    /// Entered or exited.
    pub change: Change,
    /// The rule version (content hash of the segment definition) that decided it.
    pub rule_version: String,
    /// The contact state version written together with this transition.
    pub state_version: u64,
    /// When the evaluation ran.
    pub at: DateTime<Utc>,
    /// The event that changed this segment's answer: the latest of the
    /// evaluation's applied events that the segment reads. Absent when no
    /// such event did (time passing, a rules change, a merged anonymous
    /// history, or the answer a new contact has from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// One-line human explanation.
    pub summary: String,
    /// The structured explanation: each condition's observed value, threshold and result.
    pub explanation: Value,
    /// The contact's full membership after this evaluation (every segment id
    /// it is in, sorted), so a destination writes absolute state, not a delta.
    /// `None` in a format-1 message (the first release did not carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

/// Entering or leaving a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The contact became a member.
    Entered,
    /// The contact stopped being a member.
    Exited,
}

/// The event that changed a segment's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The event's id.
    pub id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the event happened.
    pub at: DateTime<Utc>,
}

impl Transition {
    /// The idempotency key of this transition: stable across redeliveries.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.contact, self.segment, self.state_version)
    }

    /// Serializes as compact JSON (the transition alone; the queue body is
    /// written by [`crate::WritebackMessage`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Transition always serializes")
    }
}
