//! What each segment reads, and the order segments are evaluated in so that a
//! referenced segment is decided before the segments that use it.

use kairos_state::SignalKey;
use std::collections::BTreeSet;

use crate::compile::index::{Bits, Trigger};
use crate::compile::polarity::{self, Polarities};
use crate::compile::score::Score;
use crate::compile::Segment;

/// Everything a segment's answer depends on (after [`close`], transitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    pub signals: BTreeSet<SignalKey>,
    /// The signals read as a sequence's steps.
    pub sequenced: BTreeSet<SignalKey>,
    pub traits: bool,
    pub consent: bool,
    pub segments: BTreeSet<usize>,
    pub scores: BTreeSet<usize>,
}

impl Reads {
    fn merge(&mut self, other: &Reads) {
        self.signals.extend(&other.signals);
        self.sequenced.extend(&other.sequenced);
        self.traits |= other.traits;
        self.consent |= other.consent;
    }
}

/// A topological order of the segments (references first), and every cycle
/// found, as segment indexes with the first repeated at the end (a reference
/// that closes a cycle is left out of the order).
pub(crate) fn order_segments(segments: &[Segment]) -> (Vec<usize>, Vec<Vec<usize>>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    struct Walk<'a> {
        segments: &'a [Segment],
        marks: Vec<Mark>,
        stack: Vec<usize>,
        order: Vec<usize>,
        cycles: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, i: usize) {
            match self.marks[i] {
                Mark::Done => return,
                Mark::Open => {
                    let start = self.stack.iter().position(|s| *s == i).unwrap_or(0);
                    let mut cycle = self.stack[start..].to_vec();
                    cycle.push(i);
                    self.cycles.push(cycle);
                    return;
                }
                Mark::New => {}
            }
            self.marks[i] = Mark::Open;
            self.stack.push(i);
            for &dep in &self.segments[i].reads.segments {
                self.visit(dep);
            }
            self.stack.pop();
            self.marks[i] = Mark::Done;
            self.order.push(i);
        }
    }
    let mut walk = Walk {
        segments,
        marks: vec![Mark::New; segments.len()],
        stack: Vec::new(),
        order: Vec::with_capacity(segments.len()),
        cycles: Vec::new(),
    };
    (0..segments.len()).for_each(|i| walk.visit(i));
    (walk.order, walk.cycles)
}

/// Makes each segment's reads transitive over the segments and scores it uses,
/// and returns what can trigger each segment.
pub(crate) fn close(segments: &mut [Segment], scores: &[Score], order: &[usize], bits: &Bits) -> Vec<Trigger> {
    let mut polarities = vec![Polarities::new(); segments.len()];
    let mut triggers = vec![Trigger::default(); segments.len()];
    for &i in order {
        polarities[i] = polarity::of_rule(&segments[i].rule, &polarities, scores);
        let mut reads = segments[i].reads.clone();
        for &dep in &segments[i].reads.segments {
            reads.merge(&segments[dep].reads.clone());
            reads.scores.extend(segments[dep].reads.scores.iter().copied());
        }
        for &s in &reads.scores.clone() {
            reads.signals.extend(scores[s].terms.iter().map(|(k, _)| k.key));
        }
        triggers[i] = Trigger::new(&reads, &polarities[i], bits);
        segments[i].reads = reads;
    }
    triggers
}
