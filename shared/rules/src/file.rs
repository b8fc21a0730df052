//! The rules file as marketers write it (YAML or JSON). Strings that need
//! checking (event types, durations, regexes) stay strings here so that
//! validation can report every bad one with its path, not just the first.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A rules file: a list of segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// The segments, evaluated for every contact.
    pub segments: Vec<SegmentDef>,
}

/// One segment: an id, a human name and description, and a condition tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    /// Stable id, used in transitions and by the CRM (`[a-z0-9_-]+`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the segment is for.
    #[serde(default)]
    pub description: String,
    /// The condition a contact must meet to be a member.
    pub rule: Condition,
}

/// A condition: one key naming its kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every child holds.
    All(Vec<Condition>),
    /// At least one child holds.
    Any(Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
    /// A count of matching events in a rolling window.
    Event(EventDef),
    /// Recency or absence of matching events.
    Last(LastDef),
    /// Comparisons on contact traits: trait name → filter.
    Trait(BTreeMap<String, FilterDef>),
    /// The contact's subscription state is this one.
    Consent(String),
}

/// Which events a condition counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherDef {
    /// The canonical event type (`page.viewed`, `email.opened`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on `url`, `campaign`, `source`, `message_id` or any property.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// `event`: count matching events within a rolling window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on fields and properties.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The count comparison (default: at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountDef>,
    /// The rolling window, e.g. `24h`, `30m`, `14d`.
    pub within: String,
}

/// `last`: when a matching event last happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastDef {
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on fields and properties.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Holds if the last one happened within this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Holds if none happened within this window (including never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_within: Option<String>,
}

/// A count comparison; every given bound must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountDef {
    /// Count equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<u64>,
    /// Count is at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<u64>,
    /// Count is more than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<u64>,
    /// Count is at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<u64>,
    /// Count is less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<u64>,
}

/// Comparisons on one value; every given operator must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    /// Equals (strings exactly, numbers numerically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<Value>,
    /// Differs from (also holds when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ne: Option<Value>,
    /// Equals one of.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// String contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// String starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    /// String matches this regular expression (Rust `regex` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Number greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Number at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Number less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Number at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
    /// Present (true) or absent (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}
