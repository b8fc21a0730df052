//! Decaying scores: each matching occurrence adds its term's weight, halved
//! every `half_life`. All terms decay at one rate, so without new events a score
//! is `S(now + d) = S(now) * 2^(-d / half_life)` and its threshold crossings are exact.

use kairos_state::{ContactState, SignalKey, RETENTION_SECS};

use crate::matcher::Bound;

/// A compiled score.
#[derive(Debug, Clone)]
pub(crate) struct Score {
    pub id: String,
    pub half_life: i64,
    pub terms: Vec<(SignalKey, f64)>,
}

impl Score {
    /// The score's value at `now` (occurrences kept by the state: 90 days,
    /// bucketed ones at their hour's start).
    pub fn value(&self, state: &ContactState, now: i64) -> f64 {
        let mut total = 0.0;
        for (signal, weight) in &self.terms {
            let Some(s) = state.signal(*signal) else { continue };
            let decayed: f64 = s
                .times_since(now - RETENTION_SECS, now)
                .map(|(t, n)| f64::from(n) * (-((now - t) as f64) / self.half_life as f64).exp2())
                .sum();
            total += weight * decayed;
        }
        total
    }

    /// The first time after `now` at which the decaying `value` changes the
    /// answer of `bounds` (rounded down, so never late).
    pub fn next_crossing(&self, value: f64, bounds: &[(Bound, f64)], now: i64) -> Option<i64> {
        bounds
            .iter()
            .filter_map(|(_, threshold)| {
                let ratio = threshold / value;
                // The value moves from `value` toward 0: it reaches `threshold` only
                // if the threshold lies between them (at the threshold now: right away).
                (value != 0.0 && ratio > 0.0 && ratio <= 1.0).then(|| {
                    let secs = -(self.half_life as f64) * ratio.log2();
                    now + secs.floor().max(1.0) as i64
                })
            })
            .min()
    }
}
