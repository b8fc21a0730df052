//! What [`crate::RuleSet::decide`] decides on a delta: the segments its
//! changes can affect (from the compiled index, `crate::compile::index`), those
//! whose deadline has passed, and what the others keep.

use kairos_state::{ContactState, EXACT_CAP};

use crate::compile::hold;
use crate::compile::index::{Bits, Index, Reach};
use crate::compile::segset::SegSet;
use crate::evaluate::Delta;

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

impl Index {
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
