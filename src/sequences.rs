//! Send-time decisions offline: `kairos decide` answers as `POST /v1/decide`
//! would on a history of canonical events, and `kairos sequences report`
//! shows per variant and per segment the send and goal rates, and the holdout
//! against everyone else, so a marketer sees when the learning is wrong.
//!
//! A history's sequence sends are its `email.sent` events whose template is a
//! content variant of the rules (as the ESP reports the sends the API
//! decided); goals are attributed as the decide function attributes them
//! ([`kairos_decide::attribute`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kairos_decide::{counts_from_events, in_holdout, sends_from_events, Decider, History, Request};
use kairos_engine::{Contact, Timeline};
use kairos_event::Event;
use kairos_rules::RuleSet;
use serde_json::{json, Value};

/// A history of events, read and played through the engine as of a time.
pub struct Played<'r> {
    /// The events up to the time, in time order.
    pub events: Vec<Event>,
    /// Each contact's record as of the time.
    pub contacts: BTreeMap<String, Contact>,
    /// The time.
    pub at: DateTime<Utc>,
    /// Lines that were not valid events (`line N: reason`).
    pub rejected: Vec<String>,
    rules: &'r RuleSet,
}

/// Reads JSON-lines events and plays those up to `at` (default: the latest
/// event's time) through the engine as the pipeline would have (as `kairos replay`).
pub fn play<'r>(rules: &'r RuleSet, events: &[u8], at: Option<DateTime<Utc>>) -> Played<'r> {
    let (mut events, rejected) = crate::replay::read(events);
    let at = at
        .or_else(|| events.iter().map(|e| e.at).max())
        .unwrap_or_else(Utc::now);
    events.retain(|e| e.at <= at);
    events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut timeline = Timeline::new(rules);
    for event in &events {
        timeline.event(event);
    }
    timeline.advance(at);
    Played {
        contacts: timeline.contacts().clone(),
        events,
        at,
        rejected,
        rules,
    }
}

impl Played<'_> {
    /// The decision for `contact` at the history's time, as the decide API's JSON.
    pub fn decide(&self, contact: &str, channel: &str, seed: Option<u64>) -> Result<Value, String> {
        let key = kairos_event::key::normalize_contact(contact).map_err(|e| format!("the contact {e}"))?;
        let blank = Contact::default();
        let mut state = self.contacts.get(&key).unwrap_or(&blank).state.clone();
        // As of the history's time, as the sweep would find it then.
        state.compact(self.at.timestamp());
        let sends = sends_from_events(self.rules, &self.events);
        let counts = counts_from_events(self.rules, &self.events);
        let history = History {
            state: &state,
            sends: sends.get(&key).map_or(&[], Vec::as_slice),
        };
        let request = Request {
            contact: &key,
            channel,
            now: self.at.timestamp(),
            key: None,
            seed,
        };
        Ok(Decider::new(self.rules).decide(&request, &history, &counts).to_json())
    }

    /// The bias check: per variant (overall and per segment the contact is in
    /// as of the history's time) sends, goals and goal rate; and the holdout
    /// against the other contacts: contacts, those with a goal event, the rate.
    pub fn report(&self) -> Value {
        let rules = self.rules;
        let mut by_segment: BTreeMap<(String, String, String, String), (u64, u64)> = BTreeMap::new();
        for outcome in kairos_decide::outcomes(rules, &self.events) {
            let sent = &outcome.sent;
            let record = self.contacts.get(&outcome.contact);
            let segments: Vec<String> = record
                .map(|c| c.state.members().iter().map(|(s, _)| s.clone()).collect())
                .unwrap_or_default();
            for segment in segments.into_iter().chain(["(all)".to_string()]) {
                let key = (sent.sequence.clone(), sent.step.clone(), sent.variant.clone(), segment);
                let e = by_segment.entry(key).or_default();
                e.0 += 1;
                e.1 += u64::from(outcome.goal);
            }
        }
        let rate = |goals: u64, sends: u64| if sends == 0 { 0.0 } else { goals as f64 / sends as f64 };
        let variants: Vec<Value> = rules
            .sequences()
            .iter()
            .flat_map(|q| {
                q.steps
                    .iter()
                    .flat_map(move |s| s.content.iter().map(move |c| (q, s, c)))
            })
            .map(|(q, s, c)| {
                let all = (q.id.clone(), s.id.clone(), c.variant.clone(), "(all)".to_string());
                let (sends, goals) = by_segment.get(&all).copied().unwrap_or_default();
                let n = kairos_decide::Counts { sends, goals };
                let segments: BTreeMap<String, Value> = by_segment
                    .iter()
                    .filter(|((a, b, v, seg), _)| a == &q.id && b == &s.id && v == &c.variant && seg != "(all)")
                    .map(|((_, _, _, seg), (sent, won))| {
                        (
                            seg.clone(),
                            json!({"sends": sent, "goals": won, "goal_rate": rate(*won, *sent)}),
                        )
                    })
                    .collect();
                json!({
                    "sequence": q.id, "step": s.id, "variant": c.variant, "template": c.template,
                    "sends": n.sends, "goals": n.goals, "goal_rate": rate(n.goals, n.sends),
                    "posterior_mean": n.mean(), "segments": segments,
                })
            })
            .collect();
        json!({
            "at": kairos_decide::rfc3339(self.at.timestamp()),
            "goal": rules.sending().learning.goal_text,
            "variants": variants,
            "holdout": self.holdout(),
        })
    }

    fn holdout(&self) -> Value {
        let Some(h) = &self.rules.sending().holdout else {
            return Value::Null;
        };
        let mut groups = [(0u64, 0u64); 2];
        for key in self.contacts.keys() {
            let reached = self.events.iter().any(|e| &e.contact == key && self.rules.is_goal(e));
            let g = &mut groups[usize::from(in_holdout(key, h))];
            g.0 += 1;
            g.1 += u64::from(reached);
        }
        let rate = |(n, k): (u64, u64)| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let (treated, held) = (rate(groups[0]), rate(groups[1]));
        json!({
            "percent": f64::from(h.basis_points) / 100.0,
            "held_out": {"contacts": groups[1].0, "with_goal": groups[1].1, "goal_rate": held},
            "treated": {"contacts": groups[0].0, "with_goal": groups[0].1, "goal_rate": treated},
            "lift": treated - held,
        })
    }
}
