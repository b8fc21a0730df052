//! Decaying scores: each matching occurrence adds its term's weight, halved
//! every `half_life` from the start of the hour it occurred in. All terms decay
//! at one rate, so without new events a score is `S(now + d) = S(now) * 2^(-d / half_life)`
//! and its threshold crossings are exact. Counting from the hour's start makes a
//! score independent of when the state moves occurrences into hourly buckets.

use kairos_state::{SignalState, BUCKET_SECS as HOUR, RETENTION_SECS};

use crate::matcher::Bound;
use crate::Sig;

/// A compiled score.
#[derive(Debug, Clone)]
pub(crate) struct Score {
    pub id: String,
    pub half_life: i64,
    pub terms: Vec<(Sig, f64)>,
    /// `decay[k]`: the factor after `k` whole hours, for every hour the state retains.
    decay: Vec<f64>,
}

impl Score {
    pub fn new(id: String, half_life: i64, terms: Vec<(Sig, f64)>) -> Score {
        let hours = RETENTION_SECS / HOUR + 2;
        let decay = (0..hours)
            .map(|k| (-((k * HOUR) as f64) / half_life.max(1) as f64).exp2())
            .collect();
        Score {
            id,
            half_life,
            terms,
            decay,
        }
    }

    /// The score's value at `now` (occurrences kept by the state: 90 days, each
    /// from its hour's start), given the contact's signals by slot.
    pub fn value(&self, signals: &[Option<&SignalState>], now: i64) -> f64 {
        let hour = now.div_euclid(HOUR);
        let mut total = 0.0;
        for (signal, weight) in &self.terms {
            let Some(s) = signals[signal.slot as usize] else {
                continue;
            };
            let factor = |h: i64| self.decay.get((hour - h) as usize).copied().unwrap_or(0.0);
            let (hours, exact) = s.occurrences(now - RETENTION_SECS, now);
            let bucketed: f64 = hours.iter().map(|(h, n)| f64::from(*n) * factor(*h)).sum();
            let exact: f64 = exact.iter().map(|t| factor(t.div_euclid(HOUR))).sum();
            total += weight * (bucketed + exact);
        }
        // Within the current hour, everything has decayed alike since its start.
        total * (-((now - hour * HOUR) as f64) / self.half_life.max(1) as f64).exp2()
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
