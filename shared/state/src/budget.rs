//! Holding a contact's encoded state to a size budget by degrading it
//! deliberately, in the order documented in [`crate::limits`].

use crate::{ContactState, EXACT_CAP, RETENTION_SECS};

/// The widest bucket coarsening goes to (hours): past the retention, one
/// bucket per signal.
const WIDEST_BUCKET_HOURS: i64 = ((RETENTION_SECS / 3600) as u64).next_power_of_two() as i64;

/// What [`ContactState::fit`] did to hold a state to its budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fitted {
    /// Encoded size before (bytes).
    pub before: usize,
    /// Encoded size after (bytes).
    pub after: usize,
    /// The width (hours) hourly buckets were merged into, if they were.
    pub bucket_hours: Option<i64>,
    /// How many exact occurrences each signal kept, if fewer than [`EXACT_CAP`].
    pub exact_kept: Option<usize>,
    /// The dedupe floor after event ids were forgotten, if they were.
    pub floor: Option<i64>,
    /// How many traits were dropped.
    pub traits_dropped: usize,
}

impl Fitted {
    /// Whether anything was given up.
    pub fn degraded(&self) -> bool {
        *self
            != Fitted {
                before: self.before,
                after: self.after,
                ..Fitted::default()
            }
    }
}

impl ContactState {
    /// Degrades the state until its encoding fits in `budget` bytes (or
    /// nothing is left to give up: memberships, deadlines, holds and merged
    /// anonymous ids are kept whole), and reports what it did. A state within
    /// the budget is left as it is.
    pub fn fit(&mut self, budget: usize) -> Fitted {
        let mut size = self.to_bytes().len();
        let mut fitted = Fitted {
            before: size,
            after: size,
            ..Fitted::default()
        };
        if size <= budget / 4 {
            // Well within the budget again: new occurrences are counted hourly.
            self.coarse = 0;
        }
        while size > budget && self.degrade_once(&mut fitted) {
            size = self.to_bytes().len();
        }
        fitted.after = size;
        fitted
    }

    /// Gives up the next thing in order; false when nothing is left.
    fn degrade_once(&mut self, fitted: &mut Fitted) -> bool {
        let width = self.bucket_hours();
        if width < WIDEST_BUCKET_HOURS {
            let wider = self.coarsen_from(width * 2);
            self.coarse = u32::try_from(wider).unwrap_or(u32::MAX);
            fitted.bucket_hours = Some(wider);
            return true;
        }
        let kept = fitted.exact_kept.unwrap_or(EXACT_CAP);
        if kept > 0 {
            fitted.exact_kept = Some(kept / 2);
            for signal in &mut self.signals {
                signal.spill_exact(kept / 2, width);
            }
            return true;
        }
        if self.seen.len() > 0 {
            fitted.floor = self.seen.cap(self.seen.len() / 2).or(fitted.floor);
            return true;
        }
        if !self.traits.is_empty() {
            let n = self.traits.len().div_ceil(2);
            self.drop_oldest_traits(n);
            fitted.traits_dropped += n;
            return true;
        }
        false
    }

    /// Merges every signal's buckets into the narrowest width from `width` up
    /// that merges any (or the widest); returns that width.
    fn coarsen_from(&mut self, mut width: i64) -> i64 {
        loop {
            let mut merged = false;
            for signal in &mut self.signals {
                merged |= signal.coarsen(width);
            }
            if merged || width >= WIDEST_BUCKET_HOURS {
                return width;
            }
            width *= 2;
        }
    }
}
