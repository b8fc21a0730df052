//! The audit trail's entries: every transition, override, consent-guard
//! action, erasure and rules publish touching a contact, kept apart from its
//! record (see `docs/governance.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Change;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A segment membership changed (the rule's answer, or an override's).
    Transition,
    /// A human pinned the contact in or out of a segment, or the pin was
    /// removed or expired.
    Override,
    /// The consent guard changed what destinations are told: a marketing
    /// segment written as not a member for a contact without consent, or
    /// written again once consent is back.
    Guard,
    /// The contact was erased (the receipt: a salted hash of the key).
    Erasure,
    /// A published rules version decided the contact for the first time.
    Publish,
}

/// One entry of a contact's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// What happened.
    pub kind: AuditKind,
    /// When (the step's time).
    pub at: DateTime<Utc>,
    /// The segment, if the entry is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Entered or exited, for a transition or a guard action (what the
    /// destinations are told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The segment's rule version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_version: Option<String>,
    /// The fingerprint of the rules in force (8 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_fingerprint: Option<String>,
    /// The contact record's version written with this entry.
    pub state_version: u64,
    /// One line saying why.
    pub summary: String,
    /// The structured explanation, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Value>,
    /// What caused it: the triggering event's id, `sweep` (time passing),
    /// `override`, `publish` or `erasure`.
    pub cause: String,
    /// Who: the IAM principal or admin key name of an override or erasure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// For a transition: whether destinations were told (false while the
    /// segment is paused or the consent guard holds it back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<bool>,
}

impl AuditEntry {
    /// An entry of `kind` at `at` for state version `state_version`, saying
    /// `summary`, caused by `cause`; the other fields empty.
    pub fn new(kind: AuditKind, at: DateTime<Utc>, state_version: u64, summary: String, cause: &str) -> AuditEntry {
        AuditEntry {
            kind,
            at,
            segment: None,
            change: None,
            rule_version: None,
            rules_fingerprint: None,
            state_version,
            summary,
            explanation: None,
            cause: cause.to_string(),
            actor: None,
            written: None,
        }
    }
}
