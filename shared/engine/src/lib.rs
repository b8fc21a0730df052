//! The engine step: everything Kairos decides about one contact, in one pure
//! function that every caller shares, so that a rule of the engine lives in
//! one place.
//!
//! Main types: [`Engine`] (the step over compiled rules), [`Contact`] (the
//! record a step reads and updates; its docs say how the store's item maps
//! to it), [`Input`] (the events, the frozen anonymous records linked to the
//! contact, and `now`), [`Outcome`] (what the step did: transitions, events
//! [`Refused`], the version to save), [`Frozen`] (a linked anonymous
//! visitor's record), [`Timeline`] (a history of events played through the
//! step as the deployed pipeline sees them, for replays).
//!
//! A step, for one contact as of `now`:
//! 1. merges the frozen anonymous records linked to it that it has not merged
//!    yet ([`identity`]);
//! 2. applies the events: each `(source, id)` once within the dedupe horizon,
//!    events older than the horizon refused as stale;
//! 3. if an event applied, a record merged, a deadline passed or the rules
//!    changed: decides, on what changed (a delta) or in full (after a rules
//!    change or a merge);
//! 4. diffs the decisions against the recorded memberships into transitions
//!    (a segment removed from the rules ends with an exit);
//! 5. records the memberships, each segment's deadline and
//!    [`Contact::next_change_at`], and raises [`Contact::version`]
//!    ([`kairos_state::next_version`]);
//! 6. moves the due index's time [`Contact::due_at`] only when the rule of
//!    [`indexed_due`] says so.
//!
//! A step with nothing to decide may still have to rewrite the due index: a
//! sweep woke the contact at an indexed time earlier than its real one. That
//! is a *reindex* ([`Outcome::reindex`]): only [`Contact::due_at`] changes,
//! and the record keeps its version, so no transition and no write-back sees
//! it; the caller saves it conditioned on that same version.
//!
//! No I/O and no AWS types: the outcome depends only on (record, frozen
//! links, events, now, rules). The evaluate function runs load → step →
//! conditional save → send; `kairos demo` runs the evaluate function,
//! `kairos replay` a [`Timeline`], and a sweep the same step: re-deciding a
//! contact as of now with no events is `engine.step(key, &mut contact,
//! &Input::at(now))`.
//!
//! ```
//! use kairos_engine::{Contact, Engine, Input};
//! use kairos_event::{Change, Event};
//! use kairos_rules::RuleSet;
//!
//! let rules = RuleSet::from_yaml(r#"
//! segments:
//!   - id: clicked
//!     name: Clicked this week
//!     rule: { event: { type: email.clicked, within: 7d } }
//! "#).unwrap();
//! let engine = Engine::new(&rules);
//! let click = Event::from_json(br#"{"id":"e1","contact":"ada@example.com","type":"email.clicked",
//!     "at":"2026-11-27T10:00:00Z","source":"sendgrid"}"#).unwrap();
//! let mut ada = Contact::default();
//! let outcome = engine.step("ada@example.com", &mut ada, &Input::events(&[click.clone()], click.at));
//! assert_eq!(outcome.transitions[0].change, Change::Entered);
//! // A record's first version is the time of its first write, in milliseconds.
//! assert_eq!(outcome.version, Some(click.at.timestamp_millis() as u64));
//! // A week later, with no new event: the sweep's call.
//! let later = click.at + chrono::Duration::days(7);
//! assert_eq!(ada.next_change_at, Some(later.timestamp()));
//! let swept = engine.step("ada@example.com", &mut ada, &Input::at(later));
//! assert_eq!(swept.transitions[0].change, Change::Exited);
//! assert!(swept.transitions[0].trigger.is_none());
//! ```

mod apply;
mod contact;
mod diff;
mod due;
pub mod erasure;
mod govern;
pub mod identity;
mod timeline;

pub use contact::{Contact, Frozen, KEEP_AFTER_LAST_EVENT_SECS};
pub use due::indexed_due;
pub use govern::{effective, Manual, MAX_ACTOR_BYTES, MAX_OVERRIDES, MAX_REASON_BYTES};
pub use kairos_state::Applied;
pub use kairos_state::Override;
pub use timeline::Timeline;

use chrono::{DateTime, Utc};
use kairos_event::{AuditEntry, Event, Transition};
use kairos_rules::RuleSet;

/// The engine: the step over one compiled rule set.
#[derive(Debug, Clone, Copy)]
pub struct Engine<'r> {
    /// The compiled segments.
    pub rules: &'r RuleSet,
    /// Events dated more than this ahead of a step's `now` are refused
    /// (seconds; `KAIROS_MAX_CLOCK_SKEW_SECS` in the functions).
    pub max_clock_skew_secs: i64,
    /// The sequence of the published rules version `rules` is (`0`: the
    /// embedded rules); a step records it on the contact it decides.
    pub rules_seq: u64,
}

impl<'r> Engine<'r> {
    /// The engine over `rules`, with the default clock skew
    /// ([`DEFAULT_MAX_CLOCK_SKEW_SECS`](kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS)).
    pub fn new(rules: &'r RuleSet) -> Engine<'r> {
        Engine {
            rules,
            max_clock_skew_secs: kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS,
            rules_seq: 0,
        }
    }

    /// Whether a contact decided under rules version `rules_seq`
    /// ([`Contact::rules_seq`]) is newer than this engine's rules: stepping it
    /// would move it back to older rules, so the caller must not (it
    /// refreshes its rules, or leaves the work for a retry). A contact never
    /// goes back to an older version.
    pub fn behind(&self, rules_seq: u64) -> bool {
        rules_seq > self.rules_seq
    }
}

/// What a step is given besides the contact's record.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The events for this contact (any order, duplicates allowed).
    pub events: &'a [Event],
    /// Frozen anonymous records linked to this contact, as the caller read
    /// them; those it has merged before are skipped.
    pub frozen: &'a [Frozen],
    /// The time the step runs at: events are applied and answers decided as of it.
    pub now: DateTime<Utc>,
}

impl Input<'static> {
    /// No events: re-decide the contact as of `now` (a sweep). Only what is
    /// due (or the rules changed) is decided.
    pub fn at(now: DateTime<Utc>) -> Input<'static> {
        Input {
            events: &[],
            frozen: &[],
            now,
        }
    }
}

impl<'a> Input<'a> {
    /// These events as of `now`, with no frozen records.
    pub fn events(events: &'a [Event], now: DateTime<Utc>) -> Input<'a> {
        Input {
            events,
            frozen: &[],
            now,
        }
    }
}

/// An event a step did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Its index in [`Input::events`].
    pub index: usize,
    /// Why: a duplicate, older than the dedupe horizon (stale), or dated
    /// beyond the allowed clock skew (future).
    pub why: Applied,
}

/// What a step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// How many events were applied in full.
    pub applied: usize,
    /// How many were late: older than the dedupe horizon, only their consent
    /// change or traits applied (their occurrence may be a repeat).
    pub late: usize,
    /// The events not applied, in input order.
    pub refused: Vec<Refused>,
    /// The anonymous contacts merged into this one by this step.
    pub merged: Vec<String>,
    /// How many segments the step decided; the others kept their answers
    /// (nothing they read changed and no deadline of theirs passed).
    pub decided: usize,
    /// What destinations are told: the changes of the written membership
    /// (the effective one, overrides applied, held back for paused segments
    /// and by the consent guard), segments in rules-file order, then the
    /// exits from segments no longer in the rules. Each carries the whole
    /// written membership.
    pub transitions: Vec<Transition>,
    /// The audit entries of this step: each effective transition (written
    /// or not), override set, removed or lapsed, consent-guard action, and
    /// the first decision under newly published rules. Saved with the record.
    pub audit: Vec<AuditEntry>,
    /// The record's new version if the step changed it (the caller saves it,
    /// conditioned on the version it read); `None` if nothing changed.
    pub version: Option<u64>,
    /// Only [`Contact::due_at`] changed (`version` is `None`): the caller
    /// saves the record at its unchanged version, for the due index alone.
    pub reindex: bool,
}

impl Outcome {
    /// Whether the caller must save the record: it changed, or only its due
    /// index time did (a reindex).
    pub fn save(&self) -> bool {
        self.version.is_some() || self.reindex
    }

    /// How many events were refused for this reason.
    pub fn refused_as(&self, why: Applied) -> usize {
        self.refused.iter().filter(|r| r.why == why).count()
    }
}

impl Engine<'_> {
    /// Runs the step for contact `key` on its record as of `input.now`:
    /// merge, apply, decide, diff, record (see the crate docs). `contact` is
    /// updated in place; when [`Outcome::save`] is false it is unchanged in
    /// everything a caller saves.
    pub fn step(&self, key: &str, contact: &mut Contact, input: &Input<'_>) -> Outcome {
        self.run(key, contact, input, None)
    }

    /// A human's change to the contact's overrides ([`Manual`]), as a step as
    /// of `now` with no events: the override is recorded with the state, and
    /// the transition it causes says "override by <actor>: <reason>".
    /// Unpinning a segment with no override changes nothing.
    pub fn manual(&self, key: &str, contact: &mut Contact, manual: &Manual, now: DateTime<Utc>) -> Outcome {
        self.run(key, contact, &Input::at(now), Some(manual))
    }

    fn run(&self, key: &str, contact: &mut Contact, input: &Input<'_>, manual: Option<&Manual>) -> Outcome {
        let now = input.now.timestamp();
        let before = govern::Before::of(self.rules, contact);
        let replaced = manual.map(|m| govern::apply_manual(contact, m));
        let manual = manual.filter(|m| matches!(m, Manual::Pin(_)) || replaced.as_ref().is_some_and(Option::is_some));
        let lapsed = govern::lift_expired(contact, now);
        let merged = identity::absorb(key, contact, input.frozen, now);
        let mut batch = apply::apply(
            self.rules,
            &mut contact.state,
            input.events,
            now,
            self.max_clock_skew_secs,
        );
        let mut outcome = Outcome {
            applied: batch.applied.len() - batch.late,
            late: batch.late,
            refused: std::mem::take(&mut batch.refused),
            merged,
            ..Outcome::default()
        };
        let due = contact.next_change_at.is_some_and(|t| t <= now);
        // A record never written (version 0) has nothing the rules decided yet.
        let rules_changed = contact.version > 0
            && (contact.state.rules_fingerprint() != self.rules.fingerprint() || contact.rules_seq < self.rules_seq);
        let governed = manual.is_some() || !lapsed.is_empty();
        if batch.applied.is_empty() && outcome.merged.is_empty() && !due && !rules_changed && !governed {
            let indexed = indexed_due(contact.next_change_at, contact.due_at, now);
            outcome.reindex = indexed != contact.due_at;
            contact.due_at = indexed;
            return outcome;
        }
        contact.state.compact(now);
        let mut delta = std::mem::take(&mut batch.delta);
        // A new contact: only what these events can affect differs from an empty state.
        delta.blank = contact.state.rules_fingerprint() == 0 && outcome.merged.is_empty();
        let full = (rules_changed && !delta.blank) || !outcome.merged.is_empty();
        let (decisions, verdicts) = self
            .rules
            .decide_explained(&contact.state, now, (!full).then_some(&delta));
        contact.version = kairos_state::next_version(contact.version, input.now.timestamp_millis());
        outcome.decided = decisions.members.len();
        let decided = (&decisions, verdicts);
        let ruled = diff::transitions(self.rules, key, contact, decided, full, &batch, input.now);
        let step = govern::Step {
            manual,
            lapsed: &lapsed,
            rules_changed,
            now: input.now,
            consent_event: batch.consent_trigger(),
        };
        (outcome.transitions, outcome.audit) = govern::settle(self.rules, key, contact, &before, ruled, &step);
        contact.next_change_at = earliest(decisions.next_change_at, govern::next_expiry(contact));
        contact.due_at = indexed_due(contact.next_change_at, contact.due_at, now);
        contact.state.record_decision(decisions.deadlines, decisions.holds);
        if let Some(latest) = batch.latest() {
            let keep = latest.at.timestamp() + KEEP_AFTER_LAST_EVENT_SECS;
            contact.expires_at = contact.expires_at.max(keep);
        }
        contact.rules_seq = contact.rules_seq.max(self.rules_seq);
        outcome.version = Some(contact.version);
        outcome
    }
}

/// The earlier of two optional times.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod govern_tests;
#[cfg(test)]
mod tests;
