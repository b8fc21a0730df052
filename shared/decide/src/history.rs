//! What a decision reads besides the contact's state: the contact's earlier
//! sequence sends, and each variant's sends and goals. Both can be rebuilt
//! from canonical events ([`sends_from_events`], [`counts_from_events`]), which
//! is how `kairos decide` and `kairos sequences report` read a history and how
//! ESP events reconcile the sends the decide API records.

use std::collections::{BTreeMap, BTreeSet};

use kairos_event::{Event, EventType};
use kairos_rules::RuleSet;
use serde::{Deserialize, Serialize};

use crate::learn::Counts;

/// One sequence send to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The decision that chose it (or, for a send only an ESP event reported,
    /// that event's id).
    pub decision_id: String,
    /// The sequence id.
    pub sequence: String,
    /// The step id.
    pub step: String,
    /// The variant id.
    pub variant: String,
    /// The channel.
    pub channel: String,
    /// When it was decided (or sent), unix seconds.
    pub at: i64,
    /// The ESP's message id, once an ESP report named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Each variant's counts, keyed by (sequence, step, variant).
pub trait Posteriors {
    /// The counts of one variant (zero when never sent).
    fn counts(&self, sequence: &str, step: &str, variant: &str) -> Counts;
}

/// Counts held in memory.
pub type CountsTable = BTreeMap<(String, String, String), Counts>;

impl Posteriors for CountsTable {
    fn counts(&self, sequence: &str, step: &str, variant: &str) -> Counts {
        self.get(&(sequence.to_string(), step.to_string(), variant.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

/// The property of an ESP event naming the Kairos decision it carries out.
pub const DECISION_PROPERTY: &str = "decision_id";
/// The property naming the template sent (also read: `template`).
pub const TEMPLATE_PROPERTY: &str = "template_id";

/// A property of an event as text.
fn property<'e>(event: &'e Event, name: &str) -> Option<&'e str> {
    event.properties.get(name)?.as_str()
}

/// The template an ESP event names (`template_id`, `template`, then the campaign).
pub fn template_of(event: &Event) -> Option<&str> {
    property(event, TEMPLATE_PROPERTY)
        .or_else(|| property(event, "template"))
        .or(event.campaign.as_deref())
}

/// The decision id an ESP event carries, if any.
pub fn decision_of(event: &Event) -> Option<&str> {
    property(event, DECISION_PROPERTY)
}

/// The sequence send an `email.sent` event reports, if its template is one of
/// the rules' content variants.
pub fn send_of_event(rules: &RuleSet, event: &Event) -> Option<Sent> {
    if event.kind != EventType::EmailSent {
        return None;
    }
    let (q, s, v) = rules.content_of_template(template_of(event)?)?;
    let sequence = &rules.sequences()[q];
    Some(Sent {
        decision_id: decision_of(event).unwrap_or(&event.id).to_string(),
        sequence: sequence.id.clone(),
        step: sequence.steps[s].id.clone(),
        variant: sequence.steps[s].content[v].variant.clone(),
        channel: sequence.channel.clone(),
        at: event.at.timestamp(),
        message_id: event.message_id.clone(),
    })
}

/// Every contact's sequence sends in `events` (one contact's events or many),
/// each decision once, in time order per contact.
pub fn sends_from_events(rules: &RuleSet, events: &[Event]) -> BTreeMap<String, Vec<Sent>> {
    let mut out: BTreeMap<String, Vec<Sent>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for event in events {
        if let Some(sent) = send_of_event(rules, event) {
            if seen.insert((event.contact.clone(), sent.decision_id.clone())) {
                out.entry(event.contact.clone()).or_default().push(sent);
            }
        }
    }
    for sends in out.values_mut() {
        sends.sort_by(|a, b| (a.at, &a.decision_id).cmp(&(b.at, &b.decision_id)));
    }
    out
}

/// Which send a goal event counts for: the send whose decision id it carries,
/// else the one with its ESP message id, else the latest whose template it
/// names, else the contact's latest send before it, each within the
/// attribution window.
pub fn attribute<'s>(rules: &RuleSet, goal: &Event, sends: &'s [Sent]) -> Option<&'s Sent> {
    let at = goal.at.timestamp();
    let window = rules.sending().learning.attribution_secs;
    let open = |s: &&Sent| s.at <= at && at - s.at <= window;
    if let Some(id) = decision_of(goal) {
        return sends.iter().find(|s| s.decision_id == id).filter(open);
    }
    if let Some(sent) = goal
        .message_id
        .as_deref()
        .and_then(|m| sends.iter().find(|s| s.message_id.as_deref() == Some(m)))
    {
        return Some(sent).filter(open);
    }
    if let Some((q, s, v)) = template_of(goal).and_then(|t| rules.content_of_template(t)) {
        let seq = &rules.sequences()[q];
        let (step, variant) = (&seq.steps[s].id, &seq.steps[s].content[v].variant);
        return sends
            .iter()
            .rev()
            .filter(open)
            .find(|x| x.sequence == seq.id && &x.step == step && &x.variant == variant);
    }
    sends.iter().rev().find(open)
}

/// One sequence send found in a history, and whether a goal was attributed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The contact.
    pub contact: String,
    /// The send.
    pub sent: Sent,
    /// A goal event was attributed to it ([`attribute`]; at most one counts).
    pub goal: bool,
}

/// Every sequence send in `events` (all contacts), with its goal: the one
/// attribution that the counts, `kairos sequences report` and the decide
/// function's reconciliation share.
pub fn outcomes(rules: &RuleSet, events: &[Event]) -> Vec<Outcome> {
    let sends = sends_from_events(rules, events);
    let mut won = BTreeSet::new();
    for event in events.iter().filter(|e| rules.is_goal(e)) {
        let Some(mine) = sends.get(&event.contact) else {
            continue;
        };
        if let Some(sent) = attribute(rules, event, mine) {
            won.insert((event.contact.clone(), sent.decision_id.clone()));
        }
    }
    sends
        .into_iter()
        .flat_map(|(contact, list)| list.into_iter().map(move |sent| (contact.clone(), sent)))
        .map(|(contact, sent)| Outcome {
            goal: won.contains(&(contact.clone(), sent.decision_id.clone())),
            contact,
            sent,
        })
        .collect()
}

/// Each variant's sends and goals over `events` (all contacts): a send counts
/// a goal once however many goal events are attributed to it.
pub fn counts_from_events(rules: &RuleSet, events: &[Event]) -> CountsTable {
    let mut table = CountsTable::new();
    for outcome in outcomes(rules, events) {
        let counts = table.entry(key(&outcome.sent)).or_default();
        counts.sends += 1;
        counts.goals += u64::from(outcome.goal);
    }
    table
}

fn key(sent: &Sent) -> (String, String, String) {
    (sent.sequence.clone(), sent.step.clone(), sent.variant.clone())
}
