//! Which way more occurrences of a signal can move a segment's answer. A
//! segment that only rises with a signal and already holds keeps holding when
//! the signal occurs again, now and at every later time (the state with the
//! occurrence dominates the one without); one that only falls and does not
//! hold stays out. A delta of only such signals need not decide it again; its
//! recorded deadline stays valid, if early.

use kairos_state::SignalKey;
use std::collections::BTreeMap;

use crate::compile::compiler::{interval, CountOp};
use crate::compile::matcher::Bound;
use crate::compile::score::Score;
use crate::compile::Node;

/// How a segment's answer responds to one more occurrence of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polarity {
    /// It can only go from false to true.
    Rises,
    /// It can only go from true to false.
    Falls,
    /// Either way.
    Either,
}

impl Polarity {
    fn flip(self) -> Polarity {
        match self {
            Polarity::Rises => Polarity::Falls,
            Polarity::Falls => Polarity::Rises,
            Polarity::Either => Polarity::Either,
        }
    }
}

/// Per signal a rule reads, its polarity.
pub(crate) type Polarities = BTreeMap<SignalKey, Polarity>;

/// The polarities of a rule's signals, given those of the segments it references.
pub(crate) fn of_rule(node: &Node, segments: &[Polarities], scores: &[Score]) -> Polarities {
    let mut out = Polarities::new();
    collect(node, false, segments, scores, &mut out);
    out
}

fn collect(node: &Node, negated: bool, segments: &[Polarities], scores: &[Score], out: &mut Polarities) {
    let mut add = |key: SignalKey, p: Polarity| {
        let p = if negated { p.flip() } else { p };
        out.entry(key)
            .and_modify(|q| *q = if *q == p { p } else { Polarity::Either })
            .or_insert(p);
    };
    match node {
        Node::All(children) | Node::Any(children) => {
            children
                .nodes
                .iter()
                .for_each(|c| collect(c, negated, segments, scores, out));
        }
        Node::Not(child) => collect(child, !negated, segments, scores, out),
        Node::Count { signal, count, .. } => add(signal.key, of_count(count)),
        Node::Last { signal, absent, .. } => add(signal.key, if *absent { Polarity::Falls } else { Polarity::Rises }),
        Node::Sequence { steps, .. } => steps.iter().for_each(|s| add(s.key, Polarity::Rises)),
        // With an absolute threshold only, a count over the window.
        Node::Velocity {
            signal, count, ratio, ..
        } if ratio.is_empty() => add(signal.key, of_count(count)),
        // An occurrence raises the short window's rate but would lower the baseline's.
        Node::Velocity { signal, .. } => add(signal.key, Polarity::Either),
        Node::Segment(j) => segments[*j].iter().for_each(|(k, p)| add(*k, *p)),
        Node::Score { score, bounds } => {
            let p = of_bounds(bounds);
            for (key, weight) in &scores[*score].terms {
                add(key.key, if *weight >= 0.0 { p } else { p.flip() });
            }
        }
        Node::Trait(_) | Node::Consent(_) => {}
    }
}

fn of_count(count: &[(CountOp, u64)]) -> Polarity {
    match interval(count) {
        (_, u64::MAX) => Polarity::Rises,
        (0, _) => Polarity::Falls,
        _ => Polarity::Either,
    }
}

fn of_bounds(bounds: &[(Bound, f64)]) -> Polarity {
    let rising = |b: &Bound| matches!(b, Bound::Gt | Bound::Gte);
    if bounds.iter().all(|(b, _)| rising(b)) {
        Polarity::Rises
    } else if bounds.iter().all(|(b, _)| !rising(b)) {
        Polarity::Falls
    } else {
        Polarity::Either
    }
}
