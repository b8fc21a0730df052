//! The rules file as marketers write it (YAML or JSON). Strings that need
//! checking (event types, durations, regexes) stay strings here so that
//! validation can report every bad one with its path, not just the first.
//! The JSON Schema of this shape (`rules.schema.json`) is generated from these types.
//!
//! The file phase: reading the text strictly ([`yaml`]), each score and
//! segment on its own ([`parse`]), durations ([`duration`]) and the schema's
//! refinements ([`schema`]). It reads no other phase.

pub(crate) mod duration;
pub(crate) mod parse;
pub(crate) mod schema;
pub(crate) mod sending;
pub(crate) mod yaml;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A rules file: named scores, a list of segments, and optional send-time sequences.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Decaying engagement scores, usable in `score` conditions and reported per contact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<ScoreDef>,
    /// The segments, evaluated for every contact (at most
    /// [`MAX_SEGMENTS`](kairos_state::MAX_SEGMENTS): each contact's record holds them all).
    #[schemars(length(min = 1, max = 256))]
    pub segments: Vec<SegmentDef>,
    /// The guards of sequence sends (caps, quiet hours, holdout) and the learning's controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<sending::SendingDef>,
    /// Send-time sequences: what `POST /v1/decide` chooses from (`docs/sequences.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<sending::SendSequenceDef>,
}

/// One segment: an id, a human name and description, and a condition tree.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    /// Stable id, used in transitions and by the CRM (`[a-z0-9_-]{1,64}`).
    #[schemars(pattern(crate::file::schema::ID))]
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the segment is for.
    #[serde(default)]
    pub description: String,
    /// The condition a contact must meet to be a member.
    pub rule: Condition,
    /// What the segment is for: `marketing` (the default) or `operational`.
    /// A marketing segment is never written to a destination as holding a
    /// contact whose consent is not `subscribed` (the consent guard).
    #[serde(default, skip_serializing_if = "Purpose::is_marketing")]
    pub purpose: Purpose,
    /// The kill switch: memberships are still decided and audited, but
    /// nothing is written back for the segment until it is resumed (set to
    /// `false` or removed), which writes the current answers once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// What a segment is for, which decides whether the consent guard applies to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Marketing (the default): written to a destination only for contacts
    /// whose consent is `subscribed`.
    #[default]
    Marketing,
    /// Operational (suppression lists, service notices): written whatever the consent.
    Operational,
}

impl Purpose {
    /// Whether this is [`Purpose::Marketing`].
    pub fn is_marketing(&self) -> bool {
        *self == Purpose::Marketing
    }

    /// Its name in rules files (`marketing`, `operational`).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Operational => "operational",
        }
    }
}

/// A weighted sum of signal occurrences, each decaying with a half-life.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreDef {
    /// Stable id (`[a-z0-9_-]{1,64}`).
    #[schemars(pattern(crate::file::schema::ID))]
    pub id: String,
    /// After this long an occurrence counts half (`7d`).
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub half_life: String,
    /// What counts, and how much.
    #[schemars(length(min = 1))]
    pub terms: Vec<TermDef>,
}

/// One term of a score: each matching event adds `weight`, decaying.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TermDef {
    /// Which events.
    pub event: MatcherDef,
    /// Points per occurrence (negative to subtract).
    pub weight: f64,
}

/// A condition: one key naming its kind.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every child holds.
    All(#[schemars(length(min = 1))] Vec<Condition>),
    /// At least one child holds.
    Any(#[schemars(length(min = 1))] Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
    /// A count of matching events in a rolling window.
    Event(EventDef),
    /// Recency or absence of matching events.
    Last(LastDef),
    /// Matching events that happened in this order within a window.
    Sequence(SequenceDef),
    /// A count in a short window against a threshold or the earlier baseline rate.
    Velocity(VelocityDef),
    /// Comparisons on contact traits: trait name → filter.
    Trait(BTreeMap<String, FilterDef>),
    /// Membership of another segment (by id).
    Segment(#[schemars(pattern(crate::file::schema::ID))] String),
    /// A named score against bounds.
    Score(ScoreBoundDef),
    /// The contact's subscription state is this one (or one of these).
    Consent(ConsentDef),
}

/// Which events a condition counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherDef {
    /// The canonical event type (`page.viewed`, `email.opened`, ...).
    #[serde(rename = "type")]
    #[schemars(with = "crate::file::schema::EventTypeName")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on `url`, `campaign`, `source`, `message_id`, `name` or any property.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::file::schema::MachineName>")]
    pub machine: Option<String>,
}

/// `event`: count matching events within a rolling window.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    /// The event type.
    #[serde(rename = "type")]
    #[schemars(with = "crate::file::schema::EventTypeName")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on fields and properties.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::file::schema::MachineName>")]
    pub machine: Option<String>,
    /// The count comparison (default: at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountDef>,
    /// The rolling window, e.g. `24h`, `30m`, `14d`.
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub within: String,
}

/// `last`: when a matching event last happened.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LastDef {
    /// The event type.
    #[serde(rename = "type")]
    #[schemars(with = "crate::file::schema::EventTypeName")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on fields and properties.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::file::schema::MachineName>")]
    pub machine: Option<String>,
    /// Holds if the last one happened within this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub within: Option<String>,
    /// Holds if none happened within this window (including never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub not_within: Option<String>,
}

/// `sequence`: one occurrence of each step, in this order, within the window;
/// other events may come between.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceDef {
    /// The steps, in order.
    #[schemars(length(min = 2))]
    pub steps: Vec<MatcherDef>,
    /// The window the whole sequence must fit in (at most 48h).
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub within: String,
}

/// `velocity`: the count in a short window, against an absolute threshold
/// (`count`) and/or against the rate of the `baseline` window before it (`ratio`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VelocityDef {
    /// The event type.
    #[serde(rename = "type")]
    #[schemars(with = "crate::file::schema::EventTypeName")]
    pub kind: String,
    /// For `track` events: the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Filters on fields and properties.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, FilterDef>,
    /// Machine-generated opens: `exclude` (default), `include` or `only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::file::schema::MachineName>")]
    pub machine: Option<String>,
    /// The short window, ending now.
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub within: String,
    /// Absolute bounds on the count in the short window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountDef>,
    /// The baseline window, just before the short one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub baseline: Option<String>,
    /// Bounds on rate(short) / rate(baseline); with no baseline events the ratio is
    /// infinite if there are short-window events, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<BoundsDef>,
}

/// `score`: a named score against bounds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBoundDef {
    /// The score's id (from `scores`).
    pub id: String,
    /// More than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// At least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// At most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

impl ScoreBoundDef {
    /// The bounds part.
    pub fn bounds(&self) -> BoundsDef {
        BoundsDef {
            gt: self.gt,
            gte: self.gte,
            lt: self.lt,
            lte: self.lte,
        }
    }
}

/// Numeric bounds; every given one must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundsDef {
    /// More than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// At least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// At most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

/// `consent`: one status, or a list of accepted ones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ConsentDef {
    /// `subscribed`, `unsubscribed`, `bounced` or `complained`.
    One(#[schemars(with = "crate::file::schema::ConsentName")] String),
    /// Any of these.
    AnyOf(#[schemars(with = "Vec<crate::file::schema::ConsentName>", length(min = 1))] Vec<String>),
}

/// A count comparison; every given bound must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    /// Equals (texts exactly; numbers numerically, also a number sent as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<Value>,
    /// Differs from, as `eq` compares (also holds when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ne: Option<Value>,
    /// Equals one of, as `eq` compares.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// Text contains, or a list has this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// String starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    /// String matches this regular expression (Rust `regex` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Number (or text that is one) greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Number (or text that is one) at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Number (or text that is one) less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Number (or text that is one) at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
    /// Present (true) or absent (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// Traits only: a timestamp (RFC 3339, or unix seconds as a number or text) at least this long ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub older_than: Option<String>,
    /// Traits only: a timestamp less than this long ago (and not in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub newer_than: Option<String>,
    /// Traits only: a timestamp from now to less than this long ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub within_next: Option<String>,
}

impl EventDef {
    /// The matcher part.
    pub fn matcher(&self) -> MatcherDef {
        matcher(&self.kind, &self.name, &self.filters, &self.machine)
    }
}

impl LastDef {
    /// The matcher part.
    pub fn matcher(&self) -> MatcherDef {
        matcher(&self.kind, &self.name, &self.filters, &self.machine)
    }
}

impl VelocityDef {
    /// The matcher part.
    pub fn matcher(&self) -> MatcherDef {
        matcher(&self.kind, &self.name, &self.filters, &self.machine)
    }
}

fn matcher(
    kind: &str,
    name: &Option<String>,
    filters: &BTreeMap<String, FilterDef>,
    machine: &Option<String>,
) -> MatcherDef {
    MatcherDef {
        kind: kind.to_string(),
        name: name.clone(),
        filters: filters.clone(),
        machine: machine.clone(),
    }
}

/// How machine-generated events (privacy-proxy opens) are treated: the
/// `machine` field of an event matcher, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Machine {
    Exclude,
    Include,
    Only,
}

impl Machine {
    /// Each policy by its name in rules files; the first is the default.
    pub const NAMES: [(&'static str, Machine); 3] = [
        ("exclude", Machine::Exclude),
        ("include", Machine::Include),
        ("only", Machine::Only),
    ];

    /// The policy named `name`, if any.
    pub fn from_name(name: &str) -> Option<Machine> {
        Machine::NAMES.into_iter().find(|(n, _)| *n == name).map(|(_, m)| m)
    }
}
