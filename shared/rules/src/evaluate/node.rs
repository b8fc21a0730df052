//! Deciding one condition: groups cheapest child first, leaves with what they
//! saw, referenced segments decided once per run, and how children's next
//! changes combine into their parent's.

use crate::compile::compiler::{interval, CountOp};
use crate::compile::group::Group;
use crate::compile::hold;
use crate::compile::{Node, RuleSet, Sig, TraitCheck};
use crate::evaluate::{earliest, leaves, score, Decided, Leaf, Observed, Run};

impl RuleSet {
    /// A condition's answer and next change, and for an `all` or `any` the
    /// hold of the child that decided it for good, if one did.
    pub(crate) fn decide_node(&self, node: &Node, run: &mut Run) -> Decided {
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
        let arrive = |sig: &Sig| run.signals[sig.slot as usize].and_then(|s| s.next_arrival(run.now));
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
    pub(crate) fn decided(&self, i: usize, run: &mut Run) -> Decided {
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

    pub(crate) fn score_value(&self, i: usize, run: &mut Run) -> score::Value {
        *run.scores[i].get_or_insert_with(|| self.scores[i].value(&run.signals, run.now))
    }
}

/// Trait comparisons: all must hold; the earliest time one could change.
#[inline(never)]
fn decide_traits(checks: &[TraitCheck], run: &mut Run) -> Decided {
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
