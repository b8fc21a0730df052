//! Turning an evaluation into transitions: what entered, what exited.

use chrono::{DateTime, Utc};
use kairos_event::{Change, Event, Transition, Trigger};
use kairos_rules::{Decisions, RuleSet};
use kairos_store::StoredContact;
use serde_json::json;

/// Diffs the decided memberships against the stored ones, updates them, and
/// returns the transitions, each with its explanation (built only for these).
/// Segments not evaluated keep their membership; after a full evaluation
/// (`full`), memberships of segments no longer in the rules end with an exit.
pub(crate) fn apply(
    rules: &RuleSet,
    contact: &str,
    record: &mut StoredContact,
    decisions: &Decisions,
    full: bool,
    trigger: Option<&Event>,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    let stored = record.state.members();
    let changes = decisions
        .members
        .iter()
        .any(|(i, m)| stored.contains_key(rules.segment_id(*i)) != *m);
    if !changes && !full {
        return Vec::new();
    }
    let mut members = record.state.members().clone();
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
    };
    let mut out = Vec::new();
    for &(i, member) in &decisions.members {
        let id = rules.segment_id(i);
        if members.contains_key(id) == member {
            continue;
        }
        let verdict = rules.verdict(i, &record.state, now.timestamp());
        let change = if member {
            members.insert(id.to_string(), now.timestamp());
            Change::Entered
        } else {
            members.remove(id);
            Change::Exited
        };
        let summary = verdict.explanation.summary();
        out.push(transition(
            id,
            change,
            &verdict.rule_version,
            summary,
            json!(verdict.explanation),
        ));
    }
    if full {
        let known: Vec<&str> = rules.segments().map(|s| s.id).collect();
        let removed: Vec<String> = members
            .keys()
            .filter(|id| !known.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in removed {
            members.remove(&id);
            let why = "the segment is no longer in the rules".to_string();
            out.push(transition(
                &id,
                Change::Exited,
                "removed",
                why.clone(),
                json!({"condition": why, "result": false}),
            ));
        }
    }
    record.state.set_members(members, rules.fingerprint());
    out
}
