//! What can change each segment's answer, packed in a few words, and indexed
//! by signal so that a delta's segments are found a word of segments at a
//! time (`crate::evaluate::plan` reads it for each decision).

use kairos_state::SignalKey;

use crate::compile::graph::Reads;
use crate::compile::polarity::{Polarities, Polarity};
use crate::compile::segset::SegSet;

/// A bit per signal of a rule set: its position among the rule set's sorted
/// signals, modulo 64. Past 64 signals bits are shared, which only makes more
/// segments decided than needed, never fewer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bits(Vec<SignalKey>);

impl Bits {
    pub fn new(mut keys: Vec<SignalKey>) -> Bits {
        keys.sort_unstable();
        Bits(keys)
    }

    /// The signal's bit; none for a signal the rules do not read.
    pub fn of(&self, key: SignalKey) -> u64 {
        self.0.binary_search(&key).map_or(0, |p| 1 << (p % 64))
    }

    pub fn all<'a>(&self, keys: impl IntoIterator<Item = &'a SignalKey>) -> u64 {
        keys.into_iter().fold(0, |m, k| m | self.of(*k))
    }
}

/// Signal bits, traits and consent: what a condition reads, or what a delta changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    pub mask: u64,
    pub traits: bool,
    pub consent: bool,
}

impl Reach {
    pub fn of_reads(reads: &Reads, bits: &Bits) -> Reach {
        Reach {
            mask: bits.all(&reads.signals),
            traits: reads.traits,
            consent: reads.consent,
        }
    }

    pub fn union(self, other: Reach) -> Reach {
        Reach {
            mask: self.mask | other.mask,
            traits: self.traits | other.traits,
            consent: self.consent | other.consent,
        }
    }

    /// Whether the two share a signal bit, traits or consent.
    pub fn meets(&self, other: &Reach) -> bool {
        self.mask & other.mask != 0 || (self.traits && other.traits) || (self.consent && other.consent)
    }
}

/// What can change one segment's answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Trigger {
    /// The signals, traits and consent it reads, transitively.
    pub reach: Reach,
    /// Bits whose every signal only raises the answer: an occurrence keeps a member in.
    pub keeps_member: u64,
    /// Bits whose every signal only lowers the answer: an occurrence keeps a non-member out.
    pub keeps_out: u64,
    /// Bits of the signals it reads as a sequence's steps.
    pub sequenced: u64,
}

impl Trigger {
    pub fn new(reads: &Reads, polarities: &Polarities, bits: &Bits) -> Trigger {
        // A bit shared with a signal of another polarity (or none known) keeps nothing.
        let keeps = |p: Polarity| {
            let is = |k: &&SignalKey| polarities.get(*k) == Some(&p);
            bits.all(reads.signals.iter().filter(is)) & !bits.all(reads.signals.iter().filter(|k| !is(k)))
        };
        Trigger {
            reach: Reach::of_reads(reads, bits),
            keeps_member: keeps(Polarity::Rises),
            keeps_out: keeps(Polarity::Falls),
            sequenced: bits.all(&reads.sequenced),
        }
    }
}

/// The segments each kind of change can affect, by signal bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub bits: Bits,
    pub n: usize,
    /// Per signal bit: the segments that read it; of those, the ones an
    /// occurrence can change while they hold, and while they do not.
    pub reads: Vec<SegSet>,
    pub when_member: Vec<SegSet>,
    pub when_out: Vec<SegSet>,
    /// Per signal bit: the segments that read it as a sequence's steps.
    pub sequenced: Vec<SegSet>,
    pub traits: SegSet,
    pub consent: SegSet,
    /// Per segment, the reach of each condition that can hold it (`crate::compile::hold`).
    pub held: Vec<Vec<Reach>>,
    /// Segments whose answer on an empty state time can change (or is unknown).
    pub blank_timed: SegSet,
    /// The answers on an empty state of the others.
    pub blank_member: SegSet,
}

impl Index {
    pub fn new(triggers: &[Trigger], held: Vec<Vec<Reach>>, bits: Bits) -> Index {
        let n = triggers.len();
        let sets = || vec![SegSet::empty(n); 64];
        let (mut reads, mut when_member, mut when_out, mut sequenced) = (sets(), sets(), sets(), sets());
        let (mut traits, mut consent) = (SegSet::empty(n), SegSet::empty(n));
        for (i, t) in triggers.iter().enumerate() {
            for b in (0..64).filter(|b| t.reach.mask & (1 << b) != 0) {
                reads[b].insert(i);
                if t.keeps_member & (1 << b) == 0 {
                    when_member[b].insert(i);
                }
                if t.keeps_out & (1 << b) == 0 {
                    when_out[b].insert(i);
                }
                if t.sequenced & (1 << b) != 0 {
                    sequenced[b].insert(i);
                }
            }
            if t.reach.traits {
                traits.insert(i);
            }
            if t.reach.consent {
                consent.insert(i);
            }
        }
        Index {
            bits,
            n,
            reads,
            when_member,
            when_out,
            sequenced,
            traits,
            consent,
            held,
            blank_timed: SegSet::full(n),
            blank_member: SegSet::empty(n),
        }
    }

    /// Records each segment's answer on an empty state, `None` where time changes it.
    pub fn set_blank(&mut self, answers: &[Option<bool>]) {
        let (mut timed, mut member) = (SegSet::empty(self.n), SegSet::empty(self.n));
        for (i, answer) in answers.iter().enumerate() {
            match answer {
                None => timed.insert(i),
                Some(true) => member.insert(i),
                Some(false) => {}
            }
        }
        (self.blank_timed, self.blank_member) = (timed, member);
    }
}
