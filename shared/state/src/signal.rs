use serde::{Deserialize, Serialize};
use std::ops::Range;

use crate::{SignalKey, BUCKET_SECS as HOUR, EXACT_CAP, EXACT_HORIZON_SECS, MAX_CLOCK_SKEW_LIMIT_SECS, RETENTION_SECS};

/// The occurrences of one signal: exact recent times, hourly counts, and the latest time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalState {
    /// The signal this is about.
    pub key: SignalKey,
    /// Latest occurrence (unix seconds).
    last_at: i64,
    /// Exact occurrence times, ascending, at most [`EXACT_CAP`].
    #[serde(with = "crate::delta::times")]
    exact: Vec<i64>,
    /// (hour index since the epoch, count), ascending by hour.
    #[serde(with = "crate::delta::keyed")]
    hours: Vec<(i64, u32)>,
}

impl SignalState {
    pub(crate) fn new(key: SignalKey) -> SignalState {
        SignalState {
            key,
            last_at: i64::MIN,
            exact: Vec::new(),
            hours: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, at: i64) {
        self.last_at = self.last_at.max(at);
        let pos = self.exact.partition_point(|t| *t <= at);
        self.exact.insert(pos, at);
    }

    /// Moves aged or surplus exact times into buckets `width` hours wide (1
    /// unless the state was degraded to fit its budget) and drops what is past
    /// retention.
    pub(crate) fn compact(&mut self, now: i64, width: i64) {
        let horizon = now - EXACT_HORIZON_SECS;
        let oldest_hour = (now - RETENTION_SECS).div_euclid(HOUR);
        let latest = now + MAX_CLOCK_SKEW_LIMIT_SECS;
        let settled = self.exact.first().is_none_or(|t| *t >= horizon)
            && self.exact.len() <= EXACT_CAP
            && self.hours.first().is_none_or(|(h, _)| *h >= oldest_hour);
        if settled && self.last_at >= now - RETENTION_SECS && self.last_at <= latest {
            // Nothing aged, nothing over the cap, nothing expired (the usual case).
            return;
        }
        if self.last_at > latest {
            self.drop_after(latest);
        }
        let aged = self.exact.partition_point(|t| *t < horizon);
        let spill = aged.max(self.exact.len().saturating_sub(EXACT_CAP));
        for at in self.exact.drain(..spill).collect::<Vec<_>>() {
            self.add_to_bucket(at.div_euclid(HOUR), width);
        }
        // Sorted by hour: the expired buckets are a prefix (usually empty).
        let expired = self.hours.partition_point(|(h, _)| *h < oldest_hour);
        self.hours.drain(..expired);
        if self.last_at < now - RETENTION_SECS && self.exact.is_empty() && self.hours.is_empty() {
            self.last_at = i64::MIN;
        }
    }

    /// Adds `other`'s occurrences (same signal) to this one's.
    pub(crate) fn merge(&mut self, other: &SignalState) {
        self.last_at = self.last_at.max(other.last_at);
        self.exact.extend_from_slice(&other.exact);
        self.exact.sort_unstable();
        for &(hour, count) in &other.hours {
            match self.hours.binary_search_by_key(&hour, |(h, _)| *h) {
                Ok(pos) => self.hours[pos].1 = self.hours[pos].1.saturating_add(count),
                Err(pos) => self.hours.insert(pos, (hour, count)),
            }
        }
    }

    /// Counts an occurrence in the bucket `width` hours wide holding `hour`.
    fn add_to_bucket(&mut self, hour: i64, width: i64) {
        let hour = hour - hour.rem_euclid(width);
        match self.hours.binary_search_by_key(&hour, |(h, _)| *h) {
            Ok(pos) => self.hours[pos].1 = self.hours[pos].1.saturating_add(1),
            Err(pos) => self.hours.insert(pos, (hour, 1)),
        }
    }

    /// Drops occurrences dated after `latest`: only a state written before
    /// events were bounded in time holds such (they would count in some
    /// distant year, and never leave).
    fn drop_after(&mut self, latest: i64) {
        self.exact.truncate(self.exact.partition_point(|t| *t <= latest));
        let hours = self.hours.partition_point(|(h, _)| h * HOUR <= latest);
        self.hours.truncate(hours);
        let last_bucket = self.hours.last().map(|(h, _)| h * HOUR);
        self.last_at = self
            .exact
            .last()
            .copied()
            .into_iter()
            .chain(last_bucket)
            .max()
            .unwrap_or(i64::MIN);
    }

    /// Moves all but the newest `keep` exact occurrences into their buckets
    /// `width` hours wide.
    pub(crate) fn spill_exact(&mut self, keep: usize, width: i64) {
        let spill = self.exact.len().saturating_sub(keep);
        for at in self.exact.drain(..spill).collect::<Vec<_>>() {
            self.add_to_bucket(at.div_euclid(HOUR), width);
        }
    }

    /// Merges the hourly buckets into buckets `width` hours wide, each counted
    /// at its first hour (occurrences read up to `width` hours older than
    /// they were; none is lost). Returns whether anything merged.
    pub(crate) fn coarsen(&mut self, width: i64) -> bool {
        let before = self.hours.len();
        let mut merged: Vec<(i64, u32)> = Vec::with_capacity(before);
        for &(hour, count) in &self.hours {
            let start = hour - hour.rem_euclid(width);
            match merged.last_mut() {
                Some((h, c)) if *h == start => *c = c.saturating_add(count),
                _ => merged.push((start, count)),
            }
        }
        self.hours = merged;
        self.hours.len() < before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.last_at == i64::MIN
    }

    /// The latest occurrence (unix seconds), if any within retention.
    pub fn last_at(&self) -> Option<i64> {
        (self.last_at != i64::MIN).then_some(self.last_at)
    }

    /// Occurrences with `from < t <= to`; hourly buckets count when their hour
    /// starts after `from` (so a window's old edge has one-hour resolution).
    pub fn count_since(&self, from: i64, to: i64) -> u64 {
        let (hours, exact) = self.ranges(from, to);
        let bucketed: u64 = self.hours[hours].iter().map(|(_, c)| u64::from(*c)).sum();
        bucketed + exact.len() as u64
    }

    /// The counted occurrences, oldest first, as (bucket range, exact range).
    fn ranges(&self, from: i64, to: i64) -> (Range<usize>, Range<usize>) {
        // An edge at or after the latest entry, or before the first, needs no
        // search (the window's end, usually; a long window's start).
        let hour_at = |t: i64| match (self.hours.first(), self.hours.last()) {
            (Some((first, _)), _) if t < first * HOUR => 0,
            (_, Some((last, _))) if t < last * HOUR => self.hours.partition_point(|(h, _)| h * HOUR <= t),
            _ => self.hours.len(),
        };
        let exact_at = |t: i64| match (self.exact.first(), self.exact.last()) {
            (Some(first), _) if t < *first => 0,
            (_, Some(last)) if t < *last => self.exact.partition_point(|x| *x <= t),
            _ => self.exact.len(),
        };
        let (h0, h1, e0, e1) = (hour_at(from), hour_at(to), exact_at(from), exact_at(to));
        (h0..h1.max(h0), e0..e1.max(e0))
    }

    /// [`Self::count_since`], and for the `k`-th oldest counted occurrence
    /// (0-based; `k = exits(count)`, if any) the time it stops being counted as
    /// a window of length `to - from` slides forward: from one search of the window.
    /// With `bucketed`, the window's old edge lies so far back that every exact
    /// occurrence is in its hourly bucket before it reaches it: it leaves at its
    /// hour's start plus the window, as a bucket does.
    #[inline]
    pub fn count_and_exit(
        &self,
        from: i64,
        to: i64,
        bucketed: bool,
        exits: impl FnOnce(u64) -> Option<u64>,
    ) -> (u64, Option<i64>) {
        let (hours, exact) = self.ranges(from, to);
        let in_buckets: u64 = self.hours[hours.clone()].iter().map(|(_, c)| u64::from(*c)).sum();
        let count = in_buckets + exact.len() as u64;
        let exit = exits(count).and_then(|k| self.exit_in(hours, exact, (from, to), bucketed, k));
        (count, exit)
    }

    fn exit_in(
        &self,
        hours: Range<usize>,
        exact: Range<usize>,
        (from, to): (i64, i64),
        bucketed: bool,
        mut k: u64,
    ) -> Option<i64> {
        let window = to - from;
        for (h, c) in &self.hours[hours] {
            if k < u64::from(*c) {
                return Some(h * HOUR + window);
            }
            k -= u64::from(*c);
        }
        let exit = |t: i64| match t.div_euclid(HOUR) * HOUR + window {
            // Not before `to`: a state not compacted up to `to` still holds it exactly.
            hour_exit if bucketed && hour_exit > to => hour_exit,
            _ => t + window,
        };
        self.exact[exact].get(k as usize).map(|t| exit(*t))
    }

    /// The occurrences counted in the window: the hourly buckets (hour index
    /// since the epoch, count) and the exact times, each oldest first.
    pub fn occurrences(&self, from: i64, to: i64) -> (&[(i64, u32)], &[i64]) {
        let (hours, exact) = self.ranges(from, to);
        (&self.hours[hours], &self.exact[exact])
    }

    /// When the first occurrence dated after `now` (a skewed clock) starts
    /// being counted: windows count occurrences up to their end.
    pub fn next_arrival(&self, now: i64) -> Option<i64> {
        if self.last_at <= now {
            return None;
        }
        let exact = self.exact.get(self.exact.partition_point(|t| *t <= now)).copied();
        let bucket = self
            .hours
            .get(self.hours.partition_point(|(h, _)| h * HOUR <= now))
            .map(|(h, _)| h * HOUR);
        exact.into_iter().chain(bucket).min()
    }

    /// When the oldest exact occurrence moves into an hourly bucket as time
    /// passes: answers read at hour resolution may change then.
    pub fn next_compaction(&self) -> Option<i64> {
        self.exact.first().map(|t| t + EXACT_HORIZON_SECS + 1)
    }

    /// The exact occurrence times (ascending) within the exact horizon.
    pub fn exact_times(&self) -> &[i64] {
        &self.exact
    }
}

impl SignalState {
    /// Copies of this signal without its hourly buckets, and without its
    /// exact times too: what [`ContactState::encoded_parts`](crate::ContactState::encoded_parts) measures against.
    pub(crate) fn without_occurrences(&self) -> (SignalState, SignalState) {
        let without_hours = SignalState {
            hours: Vec::new(),
            ..self.clone()
        };
        let bare = SignalState {
            exact: Vec::new(),
            ..without_hours.clone()
        };
        (without_hours, bare)
    }
}
