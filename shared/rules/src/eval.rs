//! Evaluation of compiled segments over a contact state: the answers and the
//! next time one could change without a new event. Deciding allocates nothing;
//! explanations (`explain.rs`) are built only when asked for.

use kairos_state::{ConsentStatus, ContactState, SignalKey, SignalState};
use serde::Serialize;

use crate::compile::CountOp;
use crate::explain::Explanation;
use crate::group::Group;
use crate::hold;
use crate::leaves;
use crate::matcher::Bound;
use crate::segset::SegSet;
use crate::trigger::Plan;
use crate::{Node, RuleSet};

/// One segment's answer for one contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict<'r> {
    /// The segment id.
    pub segment: &'r str,
    /// The rule version that decided it.
    pub rule_version: &'r str,
    /// Whether the contact is a member.
    pub member: bool,
    /// Why.
    pub explanation: Explanation<'r>,
}

/// The answers with explanations, and when they could next change by themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation<'r> {
    /// One verdict per segment, in rules-file order.
    pub verdicts: Vec<Verdict<'r>>,
    /// The earliest time (unix seconds) any answer could change without a new
    /// event (a window edge, an absence deadline, a decay threshold); `None` if never.
    pub next_change_at: Option<i64>,
    /// Every score's value, by id, in file order.
    pub scores: Vec<(String, f64)>,
}

impl Evaluation<'_> {
    /// The ids of the segments the contact is a member of.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|v| v.member).map(|v| v.segment)
    }
}

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
    /// As [`Evaluation::next_change_at`]: the earliest of `deadlines`.
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
    pub fn record(&mut self, event: &kairos_event::Event, signals: &[SignalKey]) {
        use kairos_event::EventType as T;
        self.signals.extend_from_slice(signals);
        self.traits |= event.kind == T::ContactIdentified;
        self.consent |= matches!(
            event.kind,
            T::EmailBounced | T::EmailUnsubscribed | T::EmailComplained | T::ConsentChanged
        );
    }
}

/// A condition's (or a segment's) answer, when it could next change without
/// an event, and which of its conditions holds it ([`crate::hold`]).
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
    /// Trait values by [`crate::TraitCheck::slot`], each read once when first needed.
    traits: Vec<Option<Option<serde_json::Value>>>,
    /// Trait-check answers and next changes by [`crate::TraitCheck::memo`].
    checks: Vec<Option<(bool, Option<i64>)>>,
    /// Referenced segments' answers, deadlines and holds, by [`RuleSet::ref_slots`].
    pub refs: Vec<Option<Decided>>,
    /// In a decision on a delta: which segments keep their answer, undecided.
    pub plan: Option<&'a Plan<'a>>,
    /// Some signal has an occurrence dated after `now`.
    pub future: bool,
    pub scores: Vec<Option<crate::score::Value>>,
}

impl Run<'_> {
    /// A trait's value, as JSON (converted once per evaluation).
    pub fn trait_value(&mut self, check: &crate::TraitCheck) -> Option<&serde_json::Value> {
        let state = self.state;
        let slot = &mut self.traits[check.slot as usize];
        slot.get_or_insert_with(|| state.trait_value(&check.name).map(|v| v.to_json()))
            .as_ref()
    }
}

impl RuleSet {
    /// Evaluates every segment for a contact as of `now` (unix seconds), with
    /// explanations and score values. The evaluate function uses [`RuleSet::decide`]
    /// and explains only the memberships that changed.
    pub fn evaluate(&self, state: &ContactState, now: i64) -> Evaluation<'_> {
        let next_change_at = self.decide(state, now, None).next_change_at;
        let mut run = self.run(state, now);
        let verdicts = (0..self.segments.len()).map(|i| self.verdict(i, &mut run)).collect();
        let scores = (0..self.scores.len())
            .map(|i| (self.scores[i].id.clone(), self.score_value(i, &mut run).total))
            .collect();
        Evaluation {
            verdicts,
            next_change_at,
            scores,
        }
    }

    /// As [`RuleSet::decide`], with the verdict (and explanation) of each
    /// membership that changed, in the order of [`Decisions::changed`]: what
    /// the evaluate function needs on every event. The explanations reuse what
    /// the decision read (signals, traits, scores, referenced segments).
    pub fn decide_explained(
        &self,
        state: &ContactState,
        now: i64,
        delta: Option<&Delta>,
    ) -> (Decisions, Vec<Verdict<'_>>) {
        self.deciding(state, now, delta, |decisions, run| {
            decisions.changed.iter().map(|c| self.verdict(c.0, run)).collect()
        })
    }

    fn verdict(&self, i: usize, run: &mut Run) -> Verdict<'_> {
        let segment = &self.segments[i];
        let explanation = self.explain_node(&segment.rule, run, &mut segment.texts.iter());
        Verdict {
            segment: &segment.id,
            rule_version: &segment.version,
            member: explanation.result,
            explanation,
        }
    }

    /// Decides segment membership without explanations: every segment, or with a
    /// `delta` only those it can have changed and those whose deadline (recorded
    /// in `state` by the last evaluation) has passed.
    pub fn decide(&self, state: &ContactState, now: i64, delta: Option<&Delta>) -> Decisions {
        self.deciding(state, now, delta, |_, _| ()).0
    }

    /// Decides (as [`RuleSet::decide`]) in a run planned from the recorded
    /// memberships and the delta; `then` reads the decisions in the same run.
    fn deciding<T>(
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

    /// The id of segment `i`.
    pub fn segment_id(&self, i: usize) -> &str {
        &self.segments[i].id
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

    /// The contact's occurrences of each rule-set signal, by [`crate::Sig::slot`]:
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

    /// A condition's answer and next change, and for an `all` or `any` the
    /// hold of the child that decided it for good, if one did.
    fn decide_node(&self, node: &Node, run: &mut Run) -> Decided {
        match node {
            Node::All(children) => self.decide_group(children, true, run),
            Node::Any(children) => self.decide_group(children, false, run),
            Node::Not(child) => {
                let child = self.decide_node(child, run);
                Decided::new(!child.result, child.next)
            }
            Node::Trait(checks) => decide_traits(checks, run),
            leaf => {
                let leaf = self.leaf(leaf, run);
                Decided::new(leaf.result, leaf.next)
            }
        }
    }

    /// An `all` (or an `any`): its children, cheapest first, until one decides
    /// it for good; and that child's hold, if one did.
    #[inline(never)]
    fn decide_group(&self, children: &Group, all: bool, run: &mut Run) -> Decided {
        let mut combine = Combine::new(all);
        for (rank, child) in children.cheap_first().enumerate() {
            let child = self.decide_node(child, run);
            if child.result != all && child.next.is_none() {
                // A false child of an `all` (true of an `any`) that time
                // alone never changes: the answer, until an event reaches it.
                return Decided {
                    result: !all,
                    next: None,
                    hold: hold::of_rank(rank),
                };
            }
            combine.add(child.result, child.next);
        }
        combine.finish()
    }

    /// A leaf condition's answer, next change and what it saw.
    pub(crate) fn leaf(&self, node: &Node, run: &mut Run) -> Leaf {
        let leaf = self.leaf_now(node, run);
        if !run.future {
            return leaf;
        }
        // An occurrence dated after `now` (a skewed clock) is counted from its time on.
        let arrive = |sig: &crate::Sig| run.signals[sig.slot as usize].and_then(|s| s.next_arrival(run.now));
        let arrival = match node {
            Node::Count { signal, .. } | Node::Velocity { signal, .. } => arrive(signal),
            Node::Sequence { steps, .. } => steps.iter().filter_map(arrive).min(),
            Node::Score { score, .. } => self.scores[*score].terms.iter().filter_map(|(s, _)| arrive(s)).min(),
            _ => None,
        };
        Leaf {
            next: earliest(leaf.next, arrival),
            ..leaf
        }
    }

    fn leaf_now(&self, node: &Node, run: &mut Run) -> Leaf {
        let (state, now) = (run.state, run.now);
        match node {
            Node::Count { signal, window, count } => {
                leaves::count(run.signals[signal.slot as usize], now, *window, count)
            }
            Node::Last { signal, window, absent } => {
                let last = run.signals[signal.slot as usize].and_then(|s| s.last_at());
                let recent = last.is_some_and(|t| t > now - window);
                Leaf {
                    result: recent != *absent,
                    next: last.filter(|_| recent).map(|t| t + window),
                    observed: Observed::Last(last),
                }
            }
            Node::Sequence { steps, window } => leaves::sequence(&run.signals, steps, *window, now),
            Node::Velocity {
                signal,
                window,
                baseline,
                count,
                ratio,
            } => leaves::velocity(
                run.signals[signal.slot as usize],
                now,
                (*window, *baseline),
                count,
                ratio,
            ),
            Node::Segment(i) => {
                // In a decision on a delta that does not decide it: as kept.
                let decided = match run.plan.filter(|plan| !plan.decide.contains(*i)) {
                    Some(plan) if plan.blank => Decided::new(plan.kept.contains(*i), None),
                    Some(plan) => Decided::new(plan.kept.contains(*i), run.state.deadline(*i as u32)),
                    None => self.decided(*i, run),
                };
                Leaf {
                    result: decided.result,
                    next: decided.next,
                    observed: Observed::Member(decided.result),
                }
            }
            Node::Score { score, bounds } => {
                let value = self.score_value(*score, run);
                Leaf {
                    result: bounds.iter().all(|(b, y)| b.holds(value.total, *y)),
                    // Scores count every occurrence from its hour's start: compaction changes nothing.
                    next: self.scores[*score].next_change(&value, bounds, now),
                    observed: Observed::Score(value.total),
                }
            }
            Node::Consent(wanted) => {
                let have = state.consent().status();
                Leaf {
                    result: wanted.contains(&have),
                    next: None,
                    observed: Observed::Consent(have),
                }
            }
            Node::All(_) | Node::Any(_) | Node::Not(_) | Node::Trait(_) => {
                let decided = self.decide_node(node, run);
                Leaf {
                    result: decided.result,
                    next: decided.next,
                    observed: Observed::Trait,
                }
            }
        }
    }

    /// Segment `i`'s answer, deadline and hold in this run: decided once, and
    /// kept for the segments that reference it (references are acyclic).
    fn decided(&self, i: usize, run: &mut Run) -> Decided {
        let slot = self.ref_slots[i] as usize;
        if let Some(Some(decided)) = run.refs.get(slot) {
            return *decided;
        }
        let decided = self.decide_node(&self.segments[i].rule, run);
        if let Some(memo) = run.refs.get_mut(slot) {
            *memo = Some(decided);
        }
        decided
    }

    fn score_value(&self, i: usize, run: &mut Run) -> crate::score::Value {
        *run.scores[i].get_or_insert_with(|| self.scores[i].value(&run.signals, run.now))
    }
}

/// Trait comparisons: all must hold; the earliest time one could change.
#[inline(never)]
fn decide_traits(checks: &[crate::TraitCheck], run: &mut Run) -> Decided {
    let mut next = None;
    let mut result = true;
    let now = run.now;
    for check in checks {
        let memo = check.memo as usize;
        let (holds, change) = match run.checks[memo] {
            Some(decided) => decided,
            None => {
                let value = run.trait_value(check);
                let decided = (
                    check.filter.matches_at(value, now),
                    check.filter.next_change(value, now),
                );
                run.checks[memo] = Some(decided);
                decided
            }
        };
        next = earliest(next, change);
        result &= holds;
    }
    Decided::new(result, next)
}

/// Folds the children of an `all`/`any` into its answer and next change. If one
/// child flipping flips the whole (an `all` that holds, an `any` that does not),
/// that is the earliest child change. Otherwise every child that decides it (the
/// false ones of an `all`, the true ones of an `any`) must flip first: no earlier
/// than the latest of their changes, and never if one of them never changes.
pub(crate) struct Combine {
    all: bool,
    earliest: Option<i64>,
    latest_deciding: Option<Option<i64>>,
}

impl Combine {
    pub fn new(all: bool) -> Combine {
        Combine {
            all,
            earliest: None,
            latest_deciding: None,
        }
    }

    pub fn add(&mut self, result: bool, next: Option<i64>) {
        self.earliest = earliest(self.earliest, next);
        if result != self.all {
            self.latest_deciding = Some(match self.latest_deciding {
                None => next,
                Some(acc) => acc.zip(next).map(|(a, b)| a.max(b)),
            });
        }
    }

    pub fn finish(self) -> Decided {
        match self.latest_deciding {
            None => Decided::new(self.all, self.earliest),
            Some(latest) => Decided::new(!self.all, latest),
        }
    }
}

/// The comparisons as the interval of counts that pass them, `(lo, hi)`
/// inclusive (empty when `lo > hi`): each comparison is one bound.
pub(crate) fn interval(count: &[(CountOp, u64)]) -> (u64, u64) {
    count.iter().fold((0, u64::MAX), |(lo, hi), (op, n)| match op {
        CountOp::Eq => (lo.max(*n), hi.min(*n)),
        CountOp::Num(Bound::Gt) => (lo.max(n.saturating_add(1)), hi),
        CountOp::Num(Bound::Gte) => (lo.max(*n), hi),
        CountOp::Num(Bound::Lt) => match n.checked_sub(1) {
            Some(below) => (lo, hi.min(below)),
            None => (1, 0),
        },
        CountOp::Num(Bound::Lte) => (lo, hi.min(*n)),
    })
}

/// How many of the `observed` occurrences must leave the window (oldest
/// first) before the comparisons' answer flips; `None` if it never does.
pub(crate) fn exits_until_flip(count: &[(CountOp, u64)], observed: u64) -> Option<u64> {
    let (lo, hi) = interval(count);
    if lo > hi {
        return None;
    }
    if (lo..=hi).contains(&observed) {
        // Holds now; stops holding once the count drops below `lo`.
        (lo > 0).then(|| observed - lo + 1)
    } else {
        // Fails now; holds once the count falls to `hi`, if it is above it.
        (observed > hi).then(|| observed - hi)
    }
}

pub(crate) fn holds(count: &[(CountOp, u64)], c: u64) -> bool {
    count.iter().all(|(op, n)| match op {
        CountOp::Eq => c == *n,
        CountOp::Num(b) => b.holds(c as f64, *n as f64),
    })
}

/// A count comparison in words: `count >= 2 and count < 5`.
pub(crate) fn count_text(count: &[(CountOp, u64)]) -> String {
    let parts: Vec<String> = count
        .iter()
        .map(|(op, n)| match op {
            CountOp::Eq => format!("count = {n}"),
            CountOp::Num(b) => format!("count {} {n}", b.symbol()),
        })
        .collect();
    parts.join(" and ")
}

pub(crate) fn bounds_text(bounds: &[(Bound, f64)]) -> String {
    bounds
        .iter()
        .map(|(b, y)| format!("{} {y}", b.symbol()))
        .collect::<Vec<_>>()
        .join(" and ")
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
