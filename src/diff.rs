//! `kairos rules diff OLD NEW --archive …` (and `rules publish --backtest`):
//! the archive's events replayed under both rules files ([`Backtest`]), then,
//! per segment, the contacts that would enter it (members under NEW, not
//! under OLD) and leave it (the other way round), as a publish of NEW would
//! move them, with a few of them and their explanations under both.
//!
//! Output: one JSON line per segment of either file (NEW's order, then the
//! segments only OLD has):
//! `{"segment", "old", "new", "entering", "leaving", "examples": [{"contact",
//! "change": "enter"|"leave", "old", "new"}]}`, where `old`/`new` are the
//! member counts and, in an example, the segment's explanation under each
//! file (`null` where the file has no such segment).

use crate::archive::{Source, Stats, Window};
use crate::replay::{explanations, Backtest};
use chrono::{DateTime, Utc};
use kairos_rules::RuleSet;
use serde_json::Value;
use std::collections::BTreeSet;

/// How many example contacts each change lists unless asked otherwise.
pub const DEFAULT_EXAMPLES: usize = 3;

/// One segment's change from OLD to NEW.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentDiff {
    /// The segment id.
    pub segment: String,
    /// Its members under OLD.
    pub old: usize,
    /// Its members under NEW.
    pub new: usize,
    /// Contacts members under NEW and not under OLD.
    pub entering: usize,
    /// Contacts members under OLD and not under NEW.
    pub leaving: usize,
    /// A few of them (the first by contact key, entering then leaving).
    pub examples: Vec<Example>,
}

/// One contact that would enter or leave, with both explanations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Example {
    /// The contact key.
    pub contact: String,
    /// `enter` or `leave`.
    pub change: &'static str,
    /// The segment's explanation under OLD (`null`: OLD has no such segment).
    pub old: Value,
    /// The segment's explanation under NEW (`null`: NEW has no such segment).
    pub new: Value,
}

/// The two backtests, fed the same events.
pub struct Diff<'r> {
    old: Backtest<'r>,
    new: Backtest<'r>,
    rules: (&'r RuleSet, &'r RuleSet),
}

impl<'r> Diff<'r> {
    /// OLD and NEW as of `at` (default: the latest event's time).
    pub fn new(old: &'r RuleSet, new: &'r RuleSet, at: Option<DateTime<Utc>>) -> Diff<'r> {
        Diff {
            old: Backtest::new(old, at),
            new: Backtest::new(new, at),
            rules: (old, new),
        }
    }

    /// Plays a piece of events under both (see [`Backtest::play`]); the
    /// transitions are not kept.
    pub fn play(&mut self, events: Vec<kairos_event::Event>) {
        self.old.play(events.clone());
        self.new.play(events);
        self.old.take_transitions();
        self.new.take_transitions();
    }

    /// Per segment, who enters and leaves, with up to `examples` of each.
    pub fn segments(mut self, examples: usize) -> Vec<SegmentDiff> {
        self.old.finish();
        self.new.finish();
        let Some(at) = self.new.at() else {
            return Vec::new();
        };
        let (old_rules, new_rules) = self.rules;
        let mut ids: Vec<String> = new_rules.segments().map(|s| s.id.to_string()).collect();
        let old_only = old_rules
            .segments()
            .map(|s| s.id.to_string())
            .filter(|id| !ids.contains(id));
        ids.extend(old_only.collect::<Vec<_>>());
        ids.into_iter()
            .map(|segment| {
                let old = members(&self.old, &segment);
                let new = members(&self.new, &segment);
                let entering: Vec<&String> = new.difference(&old).collect();
                let leaving: Vec<&String> = old.difference(&new).collect();
                let example = |contact: &String, change| Example {
                    contact: contact.clone(),
                    change,
                    old: explain(&self.old, old_rules, contact, &segment, at),
                    new: explain(&self.new, new_rules, contact, &segment, at),
                };
                let mut shown: Vec<Example> = entering.iter().take(examples).map(|c| example(c, "enter")).collect();
                shown.extend(leaving.iter().take(examples).map(|c| example(c, "leave")));
                SegmentDiff {
                    old: old.len(),
                    new: new.len(),
                    entering: entering.len(),
                    leaving: leaving.len(),
                    examples: shown,
                    segment,
                }
            })
            .collect()
    }
}

/// The contacts that are members of `segment`, sorted.
fn members(backtest: &Backtest, segment: &str) -> BTreeSet<String> {
    let contacts = backtest.contacts().iter();
    let members = contacts.filter(|(_, c)| c.state.members().iter().any(|(id, _)| id.as_str() == segment));
    members.map(|(key, _)| key.clone()).collect()
}

/// The segment's explanation for `contact` in `backtest` (`null` if none).
fn explain(backtest: &Backtest, rules: &RuleSet, contact: &str, segment: &str, at: DateTime<Utc>) -> Value {
    let Some(record) = backtest.contacts().get(contact) else {
        return Value::Null;
    };
    explanations(rules, record, at).remove(segment).unwrap_or(Value::Null)
}

/// [`Diff`] over the archive's events inside `window`, read day by day, as
/// of `window.until` (default: the latest event's time).
pub async fn diff_archive(
    old: &RuleSet,
    new: &RuleSet,
    source: &Source,
    window: Window,
    examples: usize,
) -> Result<(Vec<SegmentDiff>, Stats), String> {
    let mut diff = Diff::new(old, new, window.until);
    let read = crate::archive::play(source, window, |events| diff.play(events)).await?;
    Ok((diff.segments(examples), read))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "segments:\n  - { id: clicker, name: C, rule: { event: { type: email.clicked, within: 7d } } }\n  - { id: gone, name: G, rule: { event: { type: page.viewed, within: 7d } } }\n";
    const NEW: &str = "segments:\n  - { id: clicker, name: C, rule: { event: { type: email.clicked, within: 7d, count: { gte: 2 } } } }\n  - { id: opener, name: O, rule: { event: { type: email.opened, within: 7d } } }\n";

    fn event(id: &str, contact: &str, kind: &str, day: u32) -> kairos_event::Event {
        let json = format!(
            r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"2026-11-{day:02}T10:00:00Z","source":"t"}}"#
        );
        kairos_event::Event::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn raising_a_threshold_lists_who_leaves_and_a_new_segment_who_enters() {
        let (old, new) = (RuleSet::from_yaml(OLD).unwrap(), RuleSet::from_yaml(NEW).unwrap());
        let mut diff = Diff::new(&old, &new, None);
        diff.play(vec![
            event("1", "ada", "email.clicked", 20),
            event("2", "ada", "email.clicked", 21),
            event("3", "bob", "email.clicked", 21),
        ]);
        diff.play(vec![
            event("4", "cy", "email.opened", 22),
            event("5", "cy", "page.viewed", 22),
        ]);
        let segments = diff.segments(1);
        let ids: Vec<&str> = segments.iter().map(|s| s.segment.as_str()).collect();
        assert_eq!(ids, ["clicker", "opener", "gone"]);
        let clicker = &segments[0];
        assert_eq!(
            (clicker.old, clicker.new, clicker.entering, clicker.leaving),
            (2, 1, 0, 1)
        );
        assert_eq!(clicker.examples.len(), 1);
        assert_eq!(
            (clicker.examples[0].contact.as_str(), clicker.examples[0].change),
            ("bob", "leave")
        );
        let why = clicker.examples[0].new.to_string();
        assert!(why.contains("count >= 2") || why.contains(">= 2"), "{why}");
        let opener = &segments[1];
        assert_eq!((opener.old, opener.new, opener.entering, opener.leaving), (0, 1, 1, 0));
        assert_eq!(opener.examples[0].contact, "cy");
        assert_eq!(opener.examples[0].old, Value::Null, "OLD has no such segment");
        let gone = &segments[2];
        assert_eq!((gone.old, gone.new, gone.leaving), (1, 0, 1));
    }
}
