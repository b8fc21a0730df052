//! The scan [`crate::RuleSet::decide`] makes over every segment on every delta:
//! what can change each segment's answer, packed in a few words.

use kairos_state::{ContactState, SignalKey, EXACT_CAP};

use crate::graph::Reads;
use crate::polarity::{Polarities, Polarity};
use crate::Delta;

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

    fn all<'a>(&self, keys: impl IntoIterator<Item = &'a SignalKey>) -> u64 {
        keys.into_iter().fold(0, |m, k| m | self.of(*k))
    }
}

/// What can change one segment's answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Trigger {
    /// The signals it reads, transitively.
    mask: u64,
    /// Bits whose every signal only raises the answer: an occurrence keeps a member in.
    keeps_member: u64,
    /// Bits whose every signal only lowers the answer: an occurrence keeps a non-member out.
    keeps_out: u64,
    traits: bool,
    consent: bool,
}

impl Trigger {
    pub fn new(reads: &Reads, polarities: &Polarities, bits: &Bits) -> Trigger {
        // A bit shared with a signal of another polarity (or none known) keeps nothing.
        let keeps = |p: Polarity| {
            let is = |k: &&SignalKey| polarities.get(*k) == Some(&p);
            bits.all(reads.signals.iter().filter(is)) & !bits.all(reads.signals.iter().filter(|k| !is(k)))
        };
        Trigger {
            mask: bits.all(&reads.signals),
            keeps_member: keeps(Polarity::Rises),
            keeps_out: keeps(Polarity::Falls),
            traits: reads.traits,
            consent: reads.consent,
        }
    }

    /// Whether the changes can have changed the answer recorded as `member`.
    pub fn fires(&self, changes: &Changes, member: bool) -> bool {
        let keeps = match (changes.spilled, member) {
            (true, _) => 0,
            (false, true) => self.keeps_member,
            (false, false) => self.keeps_out,
        };
        (changes.traits && self.traits) || (changes.consent && self.consent) || changes.mask & self.mask & !keeps != 0
    }
}

/// A delta, packed like a [`Trigger`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Changes {
    mask: u64,
    traits: bool,
    consent: bool,
    /// A signal at its exact cap may have moved an old occurrence into an hourly
    /// bucket: an occurrence can then lower a count, and polarities do not hold.
    spilled: bool,
    /// As [`Delta::blank`].
    pub blank: bool,
}

impl Changes {
    pub fn new(delta: &Delta, state: &ContactState, bits: &Bits) -> Changes {
        let at_cap = |k: &SignalKey| state.signal(*k).is_some_and(|s| s.exact_times().len() >= EXACT_CAP);
        Changes {
            mask: bits.all(&delta.signals),
            traits: delta.traits,
            consent: delta.consent,
            spilled: delta.signals.iter().any(at_cap),
            blank: delta.blank,
        }
    }
}
