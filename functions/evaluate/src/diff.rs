//! Turning an evaluation into transitions: what entered, what exited.

use chrono::{DateTime, Utc};
use kairos_event::{Change, Event, Transition, Trigger};
use kairos_rules::{Decisions, RuleSet, Verdict};
use kairos_store::StoredContact;
use serde_json::json;

/// Diffs the decided memberships against the stored ones, updates them, and
/// returns the transitions, each with its explanation (the verdicts of
/// [`Decisions::changed`], from [`RuleSet::decide_explained`]).
/// Segments not evaluated keep their membership; after a full evaluation
/// (`full`), memberships of segments no longer in the rules end with an exit.
pub(crate) fn apply(
    rules: &RuleSet,
    contact: &str,
    record: &mut StoredContact,
    (decisions, verdicts): (&Decisions, Vec<Verdict>),
    full: bool,
    trigger: Option<&Event>,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    let stored = record.state.members();
    let changed = &decisions.changed;
    let removed: Vec<String> = if full {
        let known: Vec<&str> = rules.segments().map(|s| s.id).collect();
        stored
            .iter()
            .map(|(id, _)| id)
            .filter(|id| !known.contains(&id.as_str()))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let transition = |segment: &str, change, rule_version: &str, summary: String, explanation| Transition {
        contact: contact.to_string(),
        segment: segment.to_string(),
        change,
        rule_version: rule_version.to_string(),
        state_version: record.version,
        at: now,
        trigger: trigger.map(|e| Trigger {
            id: e.id.clone(),
            kind: e.kind,
            at: e.at,
        }),
        summary,
        explanation,
        members: None,
    };
    let mut out = Vec::with_capacity(changed.len() + removed.len());
    for (&(i, member), verdict) in changed.iter().zip(verdicts) {
        let change = if member { Change::Entered } else { Change::Exited };
        let summary = verdict.explanation.summary();
        out.push(transition(
            rules.segment_id(i),
            change,
            verdict.rule_version,
            summary,
            json!(verdict.explanation),
        ));
    }
    for id in &removed {
        let why = "the segment is no longer in the rules".to_string();
        out.push(transition(
            id,
            Change::Exited,
            "removed",
            why.clone(),
            json!({"condition": why, "result": false}),
        ));
    }
    for &(i, member) in changed {
        record
            .state
            .set_membership(rules.segment_id(i), member, now.timestamp());
    }
    for id in removed {
        record.state.set_membership(&id, false, now.timestamp());
    }
    record.state.set_rules_fingerprint(rules.fingerprint());
    // Each transition carries the contact's whole membership after this
    // evaluation: destinations write that set (absolute state, not a delta).
    let members: Vec<String> = record.state.members().iter().map(|(id, _)| id.clone()).collect();
    for t in &mut out {
        t.members = Some(members.clone());
    }
    out
}
