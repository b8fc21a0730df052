//! Turning a decision into transitions: what entered, what exited.

use chrono::{DateTime, Utc};
use kairos_event::{Change, Event, Transition, Trigger};
use kairos_rules::{Decisions, RuleSet, Verdict};
use serde_json::json;

use crate::apply::Batch;
use crate::Contact;

/// The rule version of an exit from a segment no longer in the rules.
pub(crate) const REMOVED: &str = "removed";

/// Diffs the decided memberships against the recorded ones, records the new
/// ones in `contact` (whose version is the one the transitions carry), and
/// returns the transitions, each with its explanation (the verdicts of
/// [`Decisions::changed`], from [`RuleSet::decide_explained`]) and its
/// trigger: the latest applied event its segment reads, if any. Segments not
/// decided keep their membership; after a full decision (`full`), memberships
/// of segments no longer in the rules end with an exit.
pub(crate) fn transitions(
    rules: &RuleSet,
    key: &str,
    contact: &mut Contact,
    (decisions, verdicts): (&Decisions, Vec<Verdict>),
    full: bool,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    let removed: Vec<String> = match full {
        true => {
            let known: Vec<&str> = rules.segments().map(|s| s.id).collect();
            let members = contact.state.members().iter().map(|(id, _)| id);
            members.filter(|id| !known.contains(&id.as_str())).cloned().collect()
        }
        false => Vec::new(),
    };
    let transition = |segment: &str, change, rule_version: &str, summary, explanation| Transition {
        contact: key.to_string(),
        segment: segment.to_string(),
        change,
        rule_version: rule_version.to_string(),
        state_version: contact.version,
        at: now,
        trigger: None,
        summary,
        explanation,
        members: None,
    };
    let changed = &decisions.changed;
    let mut out = Vec::with_capacity(changed.len() + removed.len());
    for (&(i, member), verdict) in changed.iter().zip(verdicts) {
        let change = if member { Change::Entered } else { Change::Exited };
        let summary = verdict.explanation.summary();
        let explanation = json!(verdict.explanation);
        let trigger = batch.trigger(rules, i).map(trigger_of);
        out.push(Transition {
            trigger,
            ..transition(rules.segment_id(i), change, verdict.rule_version, summary, explanation)
        });
    }
    for id in &removed {
        let why = "the segment is no longer in the rules".to_string();
        let explanation = json!({"condition": why, "result": false});
        out.push(transition(id, Change::Exited, REMOVED, why, explanation));
    }
    let at = now.timestamp();
    for &(i, member) in changed {
        contact.state.set_membership(rules.segment_id(i), member, at);
    }
    for id in removed {
        contact.state.set_membership(&id, false, at);
    }
    contact.state.set_rules_fingerprint(rules.fingerprint());
    // Each transition carries the contact's whole membership after this
    // decision: destinations write that set (absolute state, not a delta).
    let members: Vec<String> = contact.state.members().iter().map(|(id, _)| id.clone()).collect();
    for t in &mut out {
        t.members = Some(members.clone());
    }
    out
}

fn trigger_of(event: &Event) -> Trigger {
    Trigger {
        id: event.id.clone(),
        kind: event.kind,
        at: event.at,
    }
}
