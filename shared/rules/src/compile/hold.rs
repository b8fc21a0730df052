//! Holds: a segment decided by a top-level condition that time alone never
//! changes (a false condition of an `all`, a true one of an `any`) keeps its
//! answer until an event reaches that condition (and has no deadline). Each
//! decision records, per segment, which condition held it
//! (`ContactState::holds`, two bits each: one of the first three its decision
//! reads, which are the cheapest); a delta decides a held segment again only
//! when its changes reach that condition.

use crate::compile::index::{Bits, Reach};
use crate::compile::score::Score;
use crate::compile::{Node, Segment};

/// How many of a segment's top-level conditions (cheapest first) can hold it
/// (changing it changes `crate::compile::DECISIONS`).
const RANKS: usize = 3;

/// The hold of the top-level condition a decision read `rank`-th (0-based):
/// `rank + 1`, or none (0) past the first [`RANKS`].
pub(crate) fn of_rank(rank: usize) -> u8 {
    if rank < RANKS {
        rank as u8 + 1
    } else {
        0
    }
}

/// The bytes that pack the holds of `n` segments.
pub(crate) fn packed_len(n: usize) -> usize {
    n.div_ceil(4)
}

/// The recorded holds of segments `0..n`, packed for [`set`] (those of
/// segments past `n`, from rules with more, dropped).
pub(crate) fn recorded(packed: &[u8], n: usize) -> Vec<u8> {
    let mut out = packed.to_vec();
    out.resize(packed_len(n), 0);
    if let Some(last) = out.last_mut().filter(|_| n % 4 != 0) {
        *last &= (1 << (2 * (n % 4))) - 1;
    }
    out
}

/// Segment `i`'s recorded hold.
pub(crate) fn get(packed: &[u8], i: usize) -> u8 {
    packed.get(i / 4).map_or(0, |b| (b >> (2 * (i % 4))) & 3)
}

/// Records segment `i`'s hold (at most [`RANKS`]) in holds packed for more than `i` segments.
pub(crate) fn set(packed: &mut [u8], i: usize, hold: u8) {
    // Without a branch on which quarter: they alternate unpredictably.
    let shift = 2 * (i % 4);
    let b = &mut packed[i / 4];
    *b = (*b & !(3 << shift)) | (hold << shift);
}

/// Per segment, the reach of each condition that can hold it (its first
/// top-level conditions, cheapest first; none if its rule is a single condition).
pub(crate) fn reaches(segments: &[Segment], scores: &[Score], bits: &Bits) -> Vec<Vec<Reach>> {
    segments
        .iter()
        .map(|s| match &s.rule {
            Node::All(group) | Node::Any(group) => group
                .cheap_first()
                .take(RANKS)
                .map(|c| reach(c, segments, scores, bits))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// What a condition reads, transitively through segments and scores.
fn reach(node: &Node, segments: &[Segment], scores: &[Score], bits: &Bits) -> Reach {
    let signals = |mask| Reach {
        mask,
        ..Reach::default()
    };
    match node {
        Node::All(group) | Node::Any(group) => group
            .nodes
            .iter()
            .fold(Reach::default(), |r, c| r.union(reach(c, segments, scores, bits))),
        Node::Not(child) => reach(child, segments, scores, bits),
        Node::Count { signal, .. } | Node::Last { signal, .. } | Node::Velocity { signal, .. } => {
            signals(bits.of(signal.key))
        }
        Node::Sequence { steps, .. } => signals(bits.all(steps.iter().map(|s| &s.key))),
        Node::Score { score, .. } => signals(bits.all(scores[*score].terms.iter().map(|(s, _)| &s.key))),
        Node::Segment(i) => Reach::of_reads(&segments[*i].reads, bits),
        Node::Trait(_) => Reach {
            traits: true,
            ..Reach::default()
        },
        Node::Consent(_) => Reach {
            consent: true,
            ..Reach::default()
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn holds_pack_four_to_a_byte() {
        let mut packed = vec![0; super::packed_len(10)];
        super::set(&mut packed, 3, 3);
        super::set(&mut packed, 2, 1);
        super::set(&mut packed, 9, 2);
        assert_eq!(packed, [0b1101_0000, 0, 0b1000]);
        let got: Vec<u8> = (0..12).map(|i| super::get(&packed, i)).collect();
        assert_eq!(got, [0, 0, 1, 3, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(super::recorded(&packed, 9), [0b1101_0000, 0, 0]);
        assert_eq!(super::recorded(&packed, 3), [0b0001_0000]);
        super::set(&mut packed, 3, 0);
        assert_eq!((super::get(&packed, 2), super::get(&packed, 3)), (1, 0));
        assert_eq!((super::of_rank(0), super::of_rank(2), super::of_rank(3)), (1, 3, 0));
    }
}
