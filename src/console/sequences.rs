//! The Sequences page: per sequence, step and variant, sends, goals, goal
//! rate and the learned posterior mean, per segment too, and the holdout
//! against everyone else, read through the same code as `kairos sequences
//! report` ([`crate::sequences::Played::report`]) over the console's events
//! (the backend's sample) as of its clock, under the rules in force.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Sample;

/// One variant's row.
pub(super) struct VariantRow {
    pub sequence: String,
    pub step: String,
    pub variant: String,
    pub template: String,
    pub sends: u64,
    pub goals: u64,
    pub goal_rate: String,
    pub posterior: String,
    /// Per segment: (segment, sends, goals, rate).
    pub segments: Vec<(String, u64, u64, String)>,
}

/// One side of the holdout comparison.
pub(super) struct Group {
    pub contacts: u64,
    pub with_goal: u64,
    pub goal_rate: String,
}

/// The holdout comparison, when the rules keep one.
pub(super) struct Holdout {
    pub percent: String,
    pub held_out: Group,
    pub treated: Group,
    pub lift: String,
}

/// What the page shows.
pub(super) struct Report {
    pub goal: String,
    pub variants: Vec<VariantRow>,
    pub holdout: Option<Holdout>,
}

fn percent(value: &Value) -> String {
    format!("{:.1}%", value.as_f64().unwrap_or(0.0) * 100.0)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn group(value: &Value) -> Group {
    Group {
        contacts: value["contacts"].as_u64().unwrap_or(0),
        with_goal: value["with_goal"].as_u64().unwrap_or(0),
        goal_rate: percent(&value["goal_rate"]),
    }
}

/// The report of the sample's events under the rules in force, as of `clock`.
pub(super) fn report(rules: &kairos_rules::RuleSet, sample: &Sample, clock: DateTime<Utc>) -> Report {
    let played = crate::sequences::play(rules, sample.text.as_bytes(), Some(clock));
    let report = played.report();
    let variants = report["variants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| VariantRow {
            sequence: text(&v["sequence"]),
            step: text(&v["step"]),
            variant: text(&v["variant"]),
            template: text(&v["template"]),
            sends: v["sends"].as_u64().unwrap_or(0),
            goals: v["goals"].as_u64().unwrap_or(0),
            goal_rate: percent(&v["goal_rate"]),
            posterior: format!("{:.3}", v["posterior_mean"].as_f64().unwrap_or(0.0)),
            segments: v["segments"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(segment, s)| {
                            let n = |k: &str| s[k].as_u64().unwrap_or(0);
                            (segment.clone(), n("sends"), n("goals"), percent(&s["goal_rate"]))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let h = &report["holdout"];
    let holdout = (!h.is_null()).then(|| Holdout {
        percent: format!("{}%", h["percent"].as_f64().unwrap_or(0.0)),
        held_out: group(&h["held_out"]),
        treated: group(&h["treated"]),
        lift: format!("{:+.1} points", h["lift"].as_f64().unwrap_or(0.0) * 100.0),
    });
    Report {
        goal: text(&report["goal"]),
        variants,
        holdout,
    }
}
