//! Send-time sequences and their guards, as marketers write them: the
//! `sequences` and `sending` sections of a rules file (`docs/sequences.md`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::file::{Condition, MatcherDef};

/// A sequence of sends: who enters it, its ordered steps and what ends it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSequenceDef {
    /// Stable id, named in decisions and reports (`[a-z0-9_-]{1,64}`).
    #[schemars(pattern(crate::file::schema::ID))]
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the sequence is for.
    #[serde(default)]
    pub description: String,
    /// A contact in several sequences gets the one with the highest priority
    /// (its thread); ties go to the one listed first.
    #[serde(default)]
    pub priority: i32,
    /// The channel its sends go out on (`email` by default): frequency caps count per channel.
    #[serde(default = "default_channel")]
    #[schemars(pattern(crate::file::schema::ID))]
    pub channel: String,
    /// Who may start it: any rule condition (a `segment`, events, traits, ...).
    pub entry: Condition,
    /// Rolling caps on this sequence's own sends, beside the channel's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<SequenceCapDef>,
    /// What ends it for a contact (an unsubscribe always does: consent comes first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exits: Vec<ExitDef>,
    /// The steps, in order.
    #[schemars(length(min = 1))]
    pub steps: Vec<StepDef>,
}

fn default_channel() -> String {
    "email".into()
}

/// One step: its content variants, how long after the previous step it may
/// go out, and an optional condition (a step whose condition does not hold
/// is passed over).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// Stable id within the sequence (`[a-z0-9_-]{1,64}`).
    #[schemars(pattern(crate::file::schema::ID))]
    pub id: String,
    /// The least time since the previous step of this sequence was sent (`2d`);
    /// none for the first step or when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub wait: Option<String>,
    /// Sent only to contacts for whom this holds; otherwise the step is passed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// The content variants: template ids the ESP knows.
    #[schemars(length(min = 1))]
    pub content: Vec<ContentDef>,
    /// `learn` (default): Thompson sampling over the variants' goal rates;
    /// `fixed`: always the first variant listed (a human pin, learning off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::file::schema::VariantChoiceName>")]
    pub variant: Option<String>,
}

/// One content variant of a step.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentDef {
    /// The variant's id within the step (`a`, `b`, `short-subject`).
    #[schemars(pattern(crate::file::schema::ID))]
    pub variant: String,
    /// The ESP's template id; unique across the file, so an ESP event carrying
    /// it is attributed to this variant.
    pub template: String,
}

/// What ends a sequence for a contact.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExitDef {
    /// A goal event (a purchase, a demo booked) after the sequence's first send.
    Goal(MatcherDef),
    /// The contact is no longer in this segment (after the sequence's first send).
    SegmentExit(#[schemars(pattern(crate::file::schema::ID))] String),
    /// Any rule condition holds.
    When(Condition),
}

/// A rolling cap on one sequence's sends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SequenceCapDef {
    /// At most this many sends ...
    pub max: u32,
    /// ... in any window this long (rolling, not calendar days: `7d`).
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub per: String,
}

/// The guards every sequence send passes, and the learning's controls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendingDef {
    /// Rolling frequency caps per channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<ChannelCapDef>,
    /// No sends in these hours of the contact's own day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHoursDef>,
    /// A stable share of contacts that never gets sequence sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutDef>,
    /// Content choice by Thompson sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<LearningDef>,
}

/// A rolling cap on one channel's sequence sends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCapDef {
    /// The channel (`email`).
    #[serde(default = "default_channel")]
    #[schemars(pattern(crate::file::schema::ID))]
    pub channel: String,
    /// At most this many sends ...
    pub max: u32,
    /// ... in any window this long (rolling: `7d` is any 168 hours).
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub per: String,
}

/// Quiet hours, in each contact's own time zone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursDef {
    /// Local time quiet hours start (`21:00`).
    #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: String,
    /// Local time they end (`08:00`); before `from` when they span midnight.
    #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub to: String,
    /// The trait holding a contact's IANA time zone (`timezone` by default).
    #[serde(default = "default_zone_trait")]
    pub zone_trait: String,
    /// The IANA zone of contacts without a valid one (`Europe/London`).
    pub default_zone: String,
}

fn default_zone_trait() -> String {
    "timezone".into()
}

/// The holdout group.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldoutDef {
    /// The share of contacts held out, 0 to 100 (`5` for 5%).
    pub percent: f64,
    /// Hashed with each contact key: keep it to keep the same contacts held out
    /// across rules edits; change it to draw a new group.
    pub salt: String,
}

/// How content variants are chosen.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearningDef {
    /// The chance (0 to 1) of choosing a variant uniformly at random, however
    /// sure the posteriors are (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploration: Option<f64>,
    /// Until every variant of a step has this many sends, variants are chosen
    /// uniformly at random (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sends: Option<u64>,
    /// A goal counts for a send within this long after it (default `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::file::schema::DURATION))]
    pub attribution: Option<String>,
    /// The goal event (default: a click on the email, `email.clicked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<MatcherDef>,
}
