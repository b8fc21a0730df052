//! A human's override of a segment's answer for one contact: part of the
//! contact's record, decided on by the engine (`kairos_engine`).

use serde::{Deserialize, Serialize};

/// A human's pin of a contact in or out of a segment, whatever the rule says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The segment id.
    pub segment: String,
    /// Pinned in (`true`) or out (`false`).
    pub member: bool,
    /// Who set it: an IAM principal ARN or an admin key name.
    pub actor: String,
    /// Why, in the actor's words.
    pub reason: String,
    /// When it was set (unix seconds).
    pub at: i64,
    /// When it lapses (unix seconds), if ever: a deadline like any other, so
    /// the sweep lifts it on time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl Override {
    /// The explanation of the transition it causes: "override by <actor>: <reason>".
    pub fn summary(&self) -> String {
        format!("override by {}: {}", self.actor, self.reason)
    }
}
