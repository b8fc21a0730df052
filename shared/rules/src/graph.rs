//! What each segment reads, and the order segments are evaluated in so that a
//! referenced segment is decided before the segments that use it.

use kairos_state::SignalKey;
use std::collections::BTreeSet;

use crate::polarity::{self, Polarities};
use crate::trigger::{Bits, Trigger};
use crate::{Score, Segment};

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

/// A topological order of the segments (references first), or a cycle as
/// segment indexes with the first repeated at the end.
pub(crate) fn order_segments(segments: &mut [Segment]) -> Result<Vec<usize>, Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        segs: &[Segment],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Open => {
                let start = stack.iter().position(|s| *s == i).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(i);
                return Err(cycle);
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        stack.push(i);
        for &dep in &segs[i].reads.segments {
            visit(dep, segs, marks, stack, out)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; segments.len()];
    let mut out = Vec::with_capacity(segments.len());
    for i in 0..segments.len() {
        visit(i, segments, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
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
