//! Evaluation of compiled segments over a contact state: the answers and the
//! next time one could change without a new event. Deciding allocates nothing;
//! explanations (`crate::explain`) are built only when asked for.
//!
//! The evaluate phase: what a delta decides ([`plan`]), each condition
//! ([`node`]), the leaves over a signal's occurrences ([`leaves`]) and scores
//! ([`score`]). It reads the compiled rules (`crate::compile`), never the
//! explain phase.

pub(crate) mod leaves;
pub(crate) mod node;
pub(crate) mod plan;
pub(crate) mod score;

use kairos_event::{Event, EventType};
use kairos_state::{ConsentStatus, ContactState, SignalKey, SignalState};

use crate::compile::hold;
use crate::compile::segset::SegSet;
use crate::compile::{RuleSet, TraitCheck};
use plan::Plan;

/// The answers alone: what the evaluate function needs on every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// (segment index, member) for each evaluated segment, by index;
    /// with a [`Delta::blank`], also each segment not evaluated whose answer on an
    /// empty state is to be a member.
    pub members: Vec<(usize, bool)>,
    /// The evaluated segments whose answer differs from the membership
    /// recorded in the state (`ContactState::members`), as (index, member).
    pub changed: Vec<(usize, bool)>,
    /// As [`crate::Evaluation::next_change_at`]: the earliest of `deadlines`.
    pub next_change_at: Option<i64>,
    /// Every segment's deadline after this evaluation, (index, time) sorted by
    /// index: from this run for the evaluated segments, as recorded in the
    /// state for the others.
    pub deadlines: Vec<(u32, i64)>,
    /// Per segment, which of its conditions holds its answer until an event
    /// reaches that condition (packed): from this run for the evaluated
    /// segments, as recorded in the state for the others. Keep them and the
    /// deadlines with `ContactState::record_decision` for the next delta.
    pub holds: Vec<u8>,
}

/// What changed since a contact's last evaluation, for [`RuleSet::decide`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Signals that new events matched.
    pub signals: Vec<SignalKey>,
    /// A `contact.identified` event applied.
    pub traits: bool,
    /// An event that can change consent applied.
    pub consent: bool,
    /// The state was blank before these events: never evaluated (no rules
    /// fingerprint) and nothing merged into it. The segments the events cannot
    /// affect then have their answer on an empty state, without deciding them.
    pub blank: bool,
}

impl Delta {
    /// Records an applied event and the signals it matched.
    pub fn record(&mut self, event: &Event, signals: &[SignalKey]) {
        self.signals.extend_from_slice(signals);
        self.traits |= sets_traits(event);
        self.consent |= can_set_consent(event);
    }
}

/// Whether applying `event` sets traits.
fn sets_traits(event: &Event) -> bool {
    event.kind == EventType::ContactIdentified
}

/// Whether applying `event` can set the consent status.
fn can_set_consent(event: &Event) -> bool {
    use EventType as T;
    matches!(
        event.kind,
        T::EmailBounced | T::EmailUnsubscribed | T::EmailComplained | T::ConsentChanged
    )
}

/// A condition's (or a segment's) answer, when it could next change without
/// an event, and which of its conditions holds it (`crate::compile::hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decided {
    /// Whether it holds (for a segment: whether the contact is a member).
    pub result: bool,
    /// The earliest time the answer could change without an event; `None` if never.
    pub next: Option<i64>,
    /// The hold of the top-level condition that decided it for good; 0 if none.
    pub hold: u8,
}

impl Decided {
    /// An answer and its next change, held by no condition.
    pub fn new(result: bool, next: Option<i64>) -> Decided {
        Decided { result, next, hold: 0 }
    }
}

/// A leaf condition's answer, next change and what it saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Leaf {
    /// Whether the condition holds.
    pub result: bool,
    /// The earliest time the answer could change without an event.
    pub next: Option<i64>,
    /// What the condition saw.
    pub observed: Observed,
}

/// What a leaf condition saw: cheap to copy and without drop glue on the hot
/// path; explanations turn it into an [`crate::Observation`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Observed {
    Count(u64),
    Last(Option<i64>),
    Steps(usize),
    Velocity { recent: u64, earlier: u64, rate: f64 },
    Score(f64),
    Member(bool),
    Consent(ConsentStatus),
    Trait,
}

/// One evaluation's context: the contact's signals by slot, memberships
/// decided so far and scores computed once.
pub(crate) struct Run<'a> {
    pub state: &'a ContactState,
    pub now: i64,
    pub signals: Vec<Option<&'a SignalState>>,
    /// Trait values by [`TraitCheck::slot`], each read once when first needed.
    traits: Vec<Option<Option<serde_json::Value>>>,
    /// Trait-check answers and next changes by [`TraitCheck::memo`].
    checks: Vec<Option<(bool, Option<i64>)>>,
    /// Referenced segments' answers, deadlines and holds, by [`RuleSet::ref_slots`].
    pub refs: Vec<Option<Decided>>,
    /// In a decision on a delta: which segments keep their answer, undecided.
    pub plan: Option<&'a Plan<'a>>,
    /// Some signal has an occurrence dated after `now`.
    pub future: bool,
    pub scores: Vec<Option<score::Value>>,
}

impl Run<'_> {
    /// A trait's value, as JSON (converted once per evaluation).
    pub fn trait_value(&mut self, check: &TraitCheck) -> Option<&serde_json::Value> {
        let state = self.state;
        let slot = &mut self.traits[check.slot as usize];
        slot.get_or_insert_with(|| state.trait_value(&check.name).map(|v| v.to_json()))
            .as_ref()
    }
}

impl RuleSet {
    /// Decides segment membership without explanations: every segment, or with a
    /// `delta` only those it can have changed and those whose deadline (recorded
    /// in `state` by the last evaluation) has passed.
    pub fn decide(&self, state: &ContactState, now: i64, delta: Option<&Delta>) -> Decisions {
        self.deciding(state, now, delta, |_, _| ()).0
    }

    /// Decides (as [`RuleSet::decide`]) in a run planned from the recorded
    /// memberships and the delta; `then` reads the decisions in the same run.
    pub(crate) fn deciding<T>(
        &self,
        state: &ContactState,
        now: i64,
        delta: Option<&Delta>,
        then: impl FnOnce(&Decisions, &mut Run) -> T,
    ) -> (Decisions, T) {
        let was = self.recorded_members(state);
        let plan = self.index.plan(delta, state, &was, now);
        let mut run = self.run(state, now);
        run.plan = Some(&plan);
        let decisions = self.decide_in(&plan, &was, &mut run);
        let after = then(&decisions, &mut run);
        (decisions, after)
    }

    /// [`RuleSet::decide`] in a run: `was` is the recorded membership.
    fn decide_in(&self, plan: &Plan, was: &SegSet, run: &mut Run) -> Decisions {
        let state = run.state;
        // By index: what to decide, and on a blank state the kept answers that
        // differ from the (empty) record.
        let mut todo = SegSet::differing(plan.kept, was, &plan.decide);
        todo.add(&plan.decide);
        let mut members = Vec::with_capacity(todo.len());
        let mut fresh = Vec::with_capacity(todo.len());
        // On a blank state the segments not decided have no deadline and no hold.
        let (recorded, mut holds) = match plan.blank {
            true => (&[][..], hold::recorded(&[], self.segments.len())),
            false => (state.deadlines(), hold::recorded(state.holds(), self.segments.len())),
        };
        for i in todo.iter() {
            if !plan.decide.contains(i) {
                members.push((i, plan.kept.contains(i)));
                continue;
            }
            let decided = self.decided(i, run);
            members.push((i, decided.result));
            if let Some(t) = decided.next {
                fresh.push((i as u32, t));
            }
            hold::set(&mut holds, i, decided.hold);
        }
        let recorded = &recorded[..recorded.partition_point(|(i, _)| (*i as usize) < self.segments.len())];
        let deadlines = merged(&fresh, recorded, &plan.decide);
        let next_change_at = deadlines.iter().map(|(_, t)| *t).min();
        let changed = members
            .iter()
            .copied()
            .filter(|(i, m)| was.contains(*i) != *m)
            .collect();
        Decisions {
            members,
            changed,
            next_change_at,
            deadlines,
            holds,
        }
    }

    /// Per segment, its answer on an empty state when that never changes with
    /// time (the same, with no deadline, at two times far apart); `None` otherwise.
    pub(crate) fn blank_answers(&self) -> Vec<Option<bool>> {
        let empty = ContactState::default();
        let at = |now| self.decide(&empty, now, None);
        let (early, late) = (at(0), at(4_000_000_000));
        let mut out = vec![None; self.segments.len()];
        for (&(i, a), &(_, b)) in early.members.iter().zip(&late.members) {
            let timed = early
                .deadlines
                .iter()
                .chain(&late.deadlines)
                .any(|(d, _)| *d as usize == i);
            out[i] = (a == b && !timed).then_some(a);
        }
        out
    }

    /// Whether segment `i` reads what applying `event` (which matched
    /// `signals`) changed: one of those signals, the traits or the consent,
    /// directly or through the segments and scores it uses. The latest such
    /// event of a batch is what changed the segment's answer, if an event did.
    pub fn segment_reads(&self, i: usize, event: &Event, signals: &[SignalKey]) -> bool {
        let reads = &self.segments[i].reads;
        signals.iter().any(|s| reads.signals.contains(s))
            || (reads.traits && sets_traits(event))
            || (reads.consent && can_set_consent(event))
    }

    /// The segments the state records the contact as a member of (ids no
    /// longer in the rules are skipped).
    pub(crate) fn recorded_members(&self, state: &ContactState) -> SegSet {
        let mut out = SegSet::empty(self.segments.len());
        let id_of = |i: usize| &*self.segments[i].id;
        for (id, _) in state.members() {
            if let Some(i) = self.by_id.get(id, id_of) {
                out.insert(i);
            }
        }
        out
    }

    pub(crate) fn run<'a>(&self, state: &'a ContactState, now: i64) -> Run<'a> {
        let signals = self.signal_slots(state);
        let future = signals.iter().flatten().any(|s| s.last_at().is_some_and(|t| t > now));
        Run {
            state,
            now,
            signals,
            traits: vec![None; self.traits],
            checks: vec![None; self.checks],
            refs: vec![None; self.refs],
            plan: None,
            future,
            scores: vec![None; self.scores.len()],
        }
    }

    /// The contact's occurrences of each rule-set signal, by [`crate::compile::Sig::slot`]:
    /// one merge of the two key-sorted lists.
    fn signal_slots<'a>(&self, state: &'a ContactState) -> Vec<Option<&'a SignalState>> {
        let mut out = vec![None; self.signals.len()];
        let mut have = state.signals().iter().peekable();
        for (sig, _, _) in &self.signals {
            while have.next_if(|s| s.key < sig.key).is_some() {}
            if let Some(s) = have.next_if(|s| s.key == sig.key) {
                out[sig.slot as usize] = Some(s);
            }
        }
        out
    }
}

/// The fresh deadlines and the recorded ones of the segments not decided
/// (both sorted by index), as one list sorted by index.
fn merged(fresh: &[(u32, i64)], recorded: &[(u32, i64)], decided: &SegSet) -> Vec<(u32, i64)> {
    let mut out = Vec::with_capacity(fresh.len() + recorded.len());
    let mut fresh = fresh.iter().copied().peekable();
    for &(i, t) in recorded {
        if decided.contains(i as usize) {
            continue;
        }
        while let Some(f) = fresh.next_if(|f| f.0 < i) {
            out.push(f);
        }
        out.push((i, t));
    }
    out.extend(fresh);
    out
}

pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
