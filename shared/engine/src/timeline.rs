//! A history of events played through the step as the deployed pipeline
//! sees them: each event arriving at its own time (or later, if it comes
//! after a later one), the sweep re-deciding a contact when an answer is due,
//! and an anonymous visitor frozen and merged into the first contact an event
//! links it to. `kairos replay` runs on it; so can anything that rebuilds
//! contacts from an archive of events.

use chrono::{DateTime, Utc};
use kairos_event::{Event, Transition};
use kairos_rules::RuleSet;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::identity::{frozen_until, links};
use crate::{Contact, Engine, Frozen, Input, Manual};

/// Contacts and the transitions announced so far, as of a clock that only
/// moves forward.
#[derive(Debug, Clone)]
pub struct Timeline<'r> {
    engine: Engine<'r>,
    /// Every record not frozen, by contact key.
    contacts: BTreeMap<String, Contact>,
    /// Frozen anonymous records, by their key.
    frozen: BTreeMap<String, Frozen>,
    /// (next_change_at, contact), soonest first; an entry whose time is no
    /// longer its contact's is skipped.
    due: BinaryHeap<Reverse<(i64, String)>>,
    transitions: Vec<Transition>,
    clock: Option<DateTime<Utc>>,
}

impl<'r> Timeline<'r> {
    /// An empty timeline over `rules`.
    pub fn new(rules: &'r RuleSet) -> Timeline<'r> {
        Timeline {
            engine: Engine::new(rules),
            contacts: BTreeMap::new(),
            frozen: BTreeMap::new(),
            due: BinaryHeap::new(),
            transitions: Vec::new(),
            clock: None,
        }
    }

    /// Plays one event arriving at its own time, or at the clock if that is
    /// later (a late arrival): first the sweeps due by then, then its step.
    /// An event for a linked anonymous visitor counts for the contact it is
    /// linked to; one that links an anonymous visitor to its contact freezes
    /// that visitor's record first, unless an earlier link did (the first
    /// link wins).
    pub fn event(&mut self, event: &Event) {
        let now = self.clock.map_or(event.at, |c| c.max(event.at));
        self.advance(now);
        let mut key = event.contact.clone();
        let mut frozen = Vec::new();
        if let Some(linked) = self.frozen.get(&key) {
            frozen.push(linked.clone());
            key = linked.into.clone();
        }
        for anonymous in links(&key, std::slice::from_ref(event)) {
            frozen.extend(self.freeze(&anonymous, &key, now.timestamp()));
        }
        let input = Input {
            events: std::slice::from_ref(event),
            frozen: &frozen,
            now,
        };
        self.step(&key, &input);
    }

    /// Plays a human's override change ([`Manual`]) for contact `key` at
    /// `at` (or at the clock if that is later), after the sweeps due by then,
    /// as the admin API does in production.
    pub fn manual(&mut self, key: &str, manual: &Manual, at: DateTime<Utc>) {
        let now = self.clock.map_or(at, |c| c.max(at));
        self.advance(now);
        let key = self.frozen.get(key).map_or(key, |f| f.into.as_str()).to_string();
        let contact = self.contacts.entry(key.clone()).or_default();
        let outcome = self.engine.manual(&key, contact, manual, now);
        self.transitions.extend(outcome.transitions);
        if let Some(t) = contact.next_change_at.filter(|t| *t > now.timestamp()) {
            self.due.push(Reverse((t, key)));
        }
    }

    /// Lets time pass to `now` with no events: each contact is re-decided at
    /// the times its answers are due, in time order.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while let Some(Reverse((t, key))) = self.due.peek().cloned() {
            if t > now.timestamp() {
                break;
            }
            self.due.pop();
            let still_due = self.contacts.get(&key).is_some_and(|c| c.next_change_at == Some(t));
            if let Some(at) = DateTime::from_timestamp(t, 0).filter(|_| still_due) {
                self.step(&key, &Input::at(at));
            }
        }
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
    }

    /// The records not frozen (known contacts, and anonymous visitors not
    /// linked), by contact key.
    pub fn contacts(&self) -> &BTreeMap<String, Contact> {
        &self.contacts
    }

    /// Every transition announced so far, in the order announced.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The transitions announced since the last call, leaving none held: a
    /// long replay (an archive's) takes them as it goes instead of keeping all.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    /// The step for `key`; its transitions recorded and its next due time scheduled.
    fn step(&mut self, key: &str, input: &Input) {
        let contact = self.contacts.entry(key.to_string()).or_default();
        let outcome = self.engine.step(key, contact, input);
        self.transitions.extend(outcome.transitions);
        // A due time is after the step's time; one that is not would never end.
        if let Some(t) = contact.next_change_at.filter(|t| *t > input.now.timestamp()) {
            self.due.push(Reverse((t, key.to_string())));
        }
    }

    /// `anonymous` frozen into contact `into` unless it is linked already;
    /// the frozen record if it is (now) linked to `into`.
    fn freeze(&mut self, anonymous: &str, into: &str, now: i64) -> Option<Frozen> {
        let frozen = self.frozen.entry(anonymous.to_string()).or_insert_with(|| {
            let record = self.contacts.remove(anonymous).unwrap_or_default();
            Frozen {
                key: anonymous.to_string(),
                into: into.to_string(),
                state: record.state,
                expires_at: frozen_until(record.expires_at, now),
            }
        });
        (frozen.into == into).then(|| frozen.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_event::Change;

    fn event(id: &str, contact: &str, kind: &str, minute: i64, extra: &str) -> Event {
        let at = DateTime::from_timestamp(1_795_000_000 + minute * 60, 0)
            .unwrap()
            .to_rfc3339();
        let json = format!(r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{at}","source":"t"{extra}}}"#);
        Event::from_json(json.as_bytes()).unwrap()
    }

    fn rules() -> RuleSet {
        RuleSet::from_yaml(
            "segments:
  - { id: clicked, name: C, rule: { event: { type: email.clicked, within: 1h } } }
  - { id: browsing, name: B, rule: { event: { type: page.viewed, count: { gte: 2 }, within: 1d } } }
",
        )
        .unwrap()
    }

    /// (contact, segment, change, minutes after the first event, trigger id).
    fn announced<'t>(timeline: &'t Timeline) -> Vec<(&'t str, &'t str, Change, i64, Option<&'t str>)> {
        let minute = |t: DateTime<Utc>| (t.timestamp() - 1_795_000_000) / 60;
        let trigger = |t: &'t Transition| t.trigger.as_ref().map(|t| t.id.as_str());
        let out = timeline.transitions().iter();
        out.map(|t| {
            (
                t.contact.as_str(),
                t.segment.as_str(),
                t.change,
                minute(t.at),
                trigger(t),
            )
        })
        .collect()
    }

    #[test]
    fn the_sweep_acts_when_due_and_a_late_event_arrives_at_the_clock() {
        let rules = rules();
        let mut timeline = Timeline::new(&rules);
        timeline.event(&event("c1", "ada", "email.clicked", 0, ""));
        timeline.event(&event("c2", "bob", "email.clicked", 120, ""));
        // Dated 30 minutes after ada's first click, it arrives after bob's: an hour too late to count.
        timeline.event(&event("c3", "ada", "email.clicked", 30, ""));
        timeline.advance(DateTime::from_timestamp(1_795_000_000 + 300 * 60, 0).unwrap());
        assert_eq!(
            announced(&timeline),
            [
                ("ada", "clicked", Change::Entered, 0, Some("c1")),
                ("ada", "clicked", Change::Exited, 60, None),
                ("bob", "clicked", Change::Entered, 120, Some("c2")),
                ("bob", "clicked", Change::Exited, 180, None),
            ]
        );
    }

    #[test]
    fn anonymous_views_count_for_the_first_contact_linked() {
        let rules = rules();
        let mut timeline = Timeline::new(&rules);
        let link = r#","properties":{"anonymous_id":"x"}"#;
        timeline.event(&event("v1", "anon:x", "page.viewed", 0, r#","url":"/a""#));
        timeline.event(&event("i1", "ada", "contact.identified", 10, link));
        timeline.event(&event("i2", "bob", "contact.identified", 20, link));
        timeline.event(&event("v2", "anon:x", "page.viewed", 30, r#","url":"/b""#));
        assert_eq!(timeline.contacts().keys().collect::<Vec<_>>(), ["ada", "bob"]);
        assert_eq!(
            announced(&timeline),
            [("ada", "browsing", Change::Entered, 30, Some("v2"))]
        );
        assert!(timeline.contacts()["bob"].state.members().is_empty());
    }
}
