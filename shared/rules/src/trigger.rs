//! What [`crate::RuleSet::decide`] decides on a delta: what can change each
//! segment's answer, packed in a few words, and indexed by signal so that a
//! delta's segments are found a word of segments at a time.

use kairos_state::{ContactState, SignalKey, EXACT_CAP};

use crate::segset::SegSet;

use crate::graph::Reads;
use crate::hold;
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
    reach: Reach,
    /// Bits whose every signal only raises the answer: an occurrence keeps a member in.
    keeps_member: u64,
    /// Bits whose every signal only lowers the answer: an occurrence keeps a non-member out.
    keeps_out: u64,
    /// Bits of the signals it reads as a sequence's steps.
    sequenced: u64,
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

/// A delta, packed like a [`Trigger`].
///
/// A signal at its exact cap moved its oldest exact occurrence into its hourly
/// bucket as the new one arrived, which can move that occurrence out of a
/// window. The new occurrence, no older than the moved one, is then inside
/// the window (it is not after `now`), so no count falls. A sequence's steps
/// lose the moved one, though: its polarity does not hold (`spilled`). An
/// occurrence after `now` is not counted yet, so with a future-dated event no
/// polarity holds (`future`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Changes {
    reach: Reach,
    /// Bits of signals at their exact cap.
    spilled: u64,
    /// Bits of signals at their exact cap with an occurrence after `now`.
    future: u64,
}

impl Changes {
    pub fn new(delta: &Delta, state: &ContactState, bits: &Bits, now: i64) -> Changes {
        let (mut spilled, mut future) = (0, 0);
        for &key in &delta.signals {
            let Some(s) = state.signal(key).filter(|s| s.exact_times().len() >= EXACT_CAP) else {
                continue;
            };
            let bit = bits.of(key);
            spilled |= bit;
            if s.last_at().is_some_and(|t| t > now) {
                future |= bit;
            }
        }
        Changes {
            reach: Reach {
                mask: bits.all(&delta.signals),
                traits: delta.traits,
                consent: delta.consent,
            },
            spilled,
            future,
        }
    }
}

/// Which segments one decision decides, and what the others keep.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    pub decide: SegSet,
    /// The answers of the segments not decided: as recorded, or on a blank state
    /// their answer on an empty state.
    pub kept: &'a SegSet,
    /// The segments not decided keep no deadline (a blank state); else the recorded one.
    pub blank: bool,
}

/// The segments each kind of change can affect, by signal bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    bits: Bits,
    n: usize,
    /// Per signal bit: the segments that read it; of those, the ones an
    /// occurrence can change while they hold, and while they do not.
    reads: Vec<SegSet>,
    when_member: Vec<SegSet>,
    when_out: Vec<SegSet>,
    /// Per signal bit: the segments that read it as a sequence's steps.
    sequenced: Vec<SegSet>,
    traits: SegSet,
    consent: SegSet,
    /// Per segment, the reach of each condition that can hold it ([`crate::hold`]).
    held: Vec<Vec<Reach>>,
    /// Segments whose answer on an empty state time can change (or is unknown).
    blank_timed: SegSet,
    /// The answers on an empty state of the others.
    blank_member: SegSet,
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

    /// What to decide: everything without a delta; else the segments its
    /// changes can affect given the answers `was` and the holds recorded in `state`, and
    /// those whose recorded deadline has passed (on a blank state: those whose
    /// empty-state answer is unknown, and what the changes can affect from it).
    pub fn plan<'a>(&'a self, delta: Option<&Delta>, state: &ContactState, was: &'a SegSet, now: i64) -> Plan<'a> {
        let Some(delta) = delta else {
            return Plan {
                decide: SegSet::full(self.n),
                kept: was,
                blank: false,
            };
        };
        let changes = Changes::new(delta, state, &self.bits, now);
        if delta.blank {
            let mut decide = self.fired(&changes, &self.blank_member);
            decide.add(&self.blank_timed);
            return Plan {
                decide,
                kept: &self.blank_member,
                blank: true,
            };
        }
        let mut decide = self.fired(&changes, was);
        let holds = state.holds();
        if !holds.is_empty() {
            decide.retain(|i| {
                let held = self.held[i].get(usize::from(hold::get(holds, i)).wrapping_sub(1));
                held.is_none_or(|r| r.meets(&changes.reach))
            });
        }
        for &(i, t) in state.deadlines() {
            if t <= now && (i as usize) < self.n {
                decide.insert(i as usize);
            }
        }
        Plan {
            decide,
            kept: was,
            blank: false,
        }
    }

    /// The segments the changes can have changed, given which of them hold.
    fn fired(&self, changes: &Changes, holding: &SegSet) -> SegSet {
        let mut out = SegSet::empty(self.n);
        let mut mask = changes.reach.mask;
        while mask != 0 {
            let b = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if changes.future & (1 << b) != 0 {
                out.add(&self.reads[b]);
                continue;
            }
            out.add_selected(holding, &self.when_member[b], &self.when_out[b]);
            if changes.spilled & (1 << b) != 0 {
                out.add(&self.sequenced[b]);
            }
        }
        if changes.reach.traits {
            out.add(&self.traits);
        }
        if changes.reach.consent {
            out.add(&self.consent);
        }
        out
    }
}
