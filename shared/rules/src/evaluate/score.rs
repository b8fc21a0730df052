//! Decaying scores, evaluated: each matching occurrence adds its term's weight, halved
//! every `half_life` from the start of the hour it occurred in. All terms decay
//! at one rate, so without new events a score is `S(now + d) = S(now) * 2^(-d / half_life)`
//! and its threshold crossings are exact. Counting from the hour's start makes a
//! score independent of when the state moves occurrences into hourly buckets.
//! An occurrence leaves the score when it leaves the state's retention (90 days),
//! taking what is left of its weight with it.

use kairos_state::{SignalState, BUCKET_SECS as HOUR, RETENTION_SECS};

use crate::compile::matcher::Bound;
use crate::compile::score::Score;
use crate::evaluate::earliest;

/// A score's value at one time, with what its next change depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Value {
    /// The score.
    pub total: f64,
    /// The counted occurrences, each by the magnitude of its term's weight.
    weight: f64,
    /// When the first of them leaves the state's retention.
    first_expiry: Option<i64>,
}

impl Score {
    /// The score's value at `now` (occurrences kept by the state: 90 days, each
    /// from its hour's start), given the contact's signals by slot.
    ///
    /// The occurrences are summed hour by hour, as of the newest one's hour,
    /// and only that sum is decayed to `now`. Neither time passing nor the
    /// state moving occurrences into hourly buckets changes the sum or its
    /// rounding, so the sign of a score never changes without an event (terms
    /// that cancel stay on one side of 0); a value too small for a float keeps
    /// its sign as the smallest one.
    pub fn value(&self, signals: &[Option<&SignalState>], now: i64) -> Value {
        let since = now - RETENTION_SECS;
        let counted = || {
            self.terms
                .iter()
                .filter_map(move |(signal, w)| signals[signal.slot as usize].map(|s| (s.occurrences(since, now), *w)))
        };
        let newest = |(hours, exact): &(&[(i64, u32)], &[i64])| {
            let last = exact.last().map(|t| t.div_euclid(HOUR));
            last.max(hours.last().map(|(h, _)| *h))
        };
        let Some(reference) = counted().filter_map(|(o, _)| newest(&o)).max() else {
            return Value {
                total: 0.0,
                weight: 0.0,
                first_expiry: None,
            };
        };
        let factor = |h: i64| self.decay.get((reference - h) as usize).copied().unwrap_or(0.0);
        let (mut sum, mut weight, mut first_expiry) = (0.0, 0.0, None);
        for ((hours, exact), w) in counted() {
            let (mut decayed, mut count) = (0.0, 0);
            per_hour(hours, exact, |h, n| {
                decayed += f64::from(n) * factor(h);
                count += u64::from(n);
            });
            sum += w * decayed;
            weight += w.abs() * count as f64;
            // An exact occurrence leaves no later than its hour's bucket would.
            let oldest = [
                hours.first().map(|(h, _)| *h),
                exact.first().map(|t| t.div_euclid(HOUR)),
            ];
            let expiry = oldest.into_iter().flatten().min().map(|h| h * HOUR + RETENTION_SECS);
            first_expiry = earliest(first_expiry, expiry);
        }
        let since_reference = (now - reference * HOUR) as f64 / self.half_life.max(1) as f64;
        let mut total = sum * (-since_reference).exp2();
        if total == 0.0 && sum != 0.0 {
            total = f64::from_bits(1).copysign(sum);
        }
        Value {
            total,
            weight,
            first_expiry,
        }
    }

    /// The first time after `now` at which the answer of `bounds` on the score
    /// can change without an event: its value decaying across a threshold, or
    /// occurrences leaving the state's retention.
    pub fn next_change(&self, value: &Value, bounds: &[(Bound, f64)], now: i64) -> Option<i64> {
        let crossing = self.next_crossing(value.total, bounds, now);
        match (crossing, value.first_expiry) {
            // Nothing leaves before the crossing.
            (Some(at), Some(first)) if first >= at => crossing,
            _ => earliest(crossing, self.expiry_change(value, bounds, now)),
        }
    }

    /// Each occurrence leaves with at most `at_expiry` of its weight, and what it
    /// takes only decays after: all of them together move the value by at most
    /// `band`. So they can change the answer no earlier than the first leaves,
    /// and than the decaying value comes within `band` of a threshold.
    fn expiry_change(&self, value: &Value, bounds: &[(Bound, f64)], now: i64) -> Option<i64> {
        let first = value.first_expiry?;
        let band = value.weight * self.at_expiry;
        if band == 0.0 {
            // What leaves is too small for a float (a short half-life), yet
            // can move the value across 0: from the first expiry on.
            return Some(first);
        }
        let near = bounds
            .iter()
            .filter_map(|(_, threshold)| {
                if (value.total - threshold).abs() <= band {
                    return Some(now);
                }
                let edge = if value.total > *threshold {
                    threshold + band
                } else {
                    threshold - band
                };
                self.reaches(value.total, edge, now)
            })
            .min()?;
        Some(first.max(near))
    }

    /// The first time after `now` at which the decaying `value` changes the
    /// answer of `bounds` (rounded down, so never late).
    pub fn next_crossing(&self, value: f64, bounds: &[(Bound, f64)], now: i64) -> Option<i64> {
        bounds.iter().filter_map(|(_, t)| self.reaches(value, *t, now)).min()
    }

    /// When the decaying `value` reaches `threshold` (rounded down, so never
    /// late): only if the threshold lies between it and 0 (at it now: right away).
    fn reaches(&self, value: f64, threshold: f64, now: i64) -> Option<i64> {
        let ratio = threshold / value;
        (value != 0.0 && ratio > 0.0 && ratio <= 1.0).then(|| {
            let secs = -(self.half_life as f64) * ratio.log2();
            now + secs.floor().max(1.0) as i64
        })
    }
}

/// Calls `add(hour, count)` for a signal's counted occurrences, hour by hour,
/// oldest first: the same calls whether the state holds an hour's occurrences
/// exactly or in its bucket.
fn per_hour(hours: &[(i64, u32)], exact: &[i64], mut add: impl FnMut(i64, u32)) {
    // Buckets are older than the exact times, but for the hour they meet in
    // (and after merging two contacts' states).
    let first_exact = exact.first().map_or(i64::MAX, |t| t.div_euclid(HOUR));
    let older = hours.partition_point(|(h, _)| *h < first_exact);
    hours[..older].iter().for_each(|&(h, n)| add(h, n));
    let (mut b, mut e) = (older, 0);
    while b < hours.len() || e < exact.len() {
        let exact_hour = exact.get(e).map_or(i64::MAX, |t| t.div_euclid(HOUR));
        let (hour, mut n) = match hours.get(b) {
            Some(&(h, n)) if h <= exact_hour => {
                b += 1;
                (h, n)
            }
            _ => (exact_hour, 0),
        };
        while exact.get(e).is_some_and(|t| *t < (hour + 1) * HOUR) {
            (e, n) = (e + 1, n + 1);
        }
        add(hour, n);
    }
}

#[cfg(test)]
mod tests {
    use super::{per_hour, HOUR};

    fn calls(hours: &[(i64, u32)], exact: &[i64]) -> Vec<(i64, u32)> {
        let mut out = Vec::new();
        per_hour(hours, exact, |h, n| out.push((h, n)));
        out
    }

    #[test]
    fn hours_are_the_same_however_the_state_holds_them() {
        let all_exact = [HOUR + 1, HOUR + 2, 3 * HOUR, 3 * HOUR + 5, 3 * HOUR + 9, 5 * HOUR];
        let expected = [(1, 2), (3, 3), (5, 1)];
        assert_eq!(calls(&[], &all_exact), expected);
        assert_eq!(calls(&[(1, 2)], &all_exact[2..]), expected);
        assert_eq!(calls(&[(1, 2), (3, 1)], &all_exact[3..]), expected);
        assert_eq!(calls(&[(1, 2), (3, 3), (5, 1)], &[]), expected);
        // After a merge an exact time can be older than a bucket.
        assert_eq!(calls(&[(3, 3), (5, 1)], &all_exact[..2]), expected);
        assert_eq!(calls(&[(-2, 1)], &[-HOUR - 1]), [(-2, 2)]);
    }
}
