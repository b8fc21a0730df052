//! Per-segment counters: members now, and entries and exits per day.
//!
//! They are derived from the transition entries a save carries
//! ([`StoredContact::audit`](crate::StoredContact::audit), kind
//! [`AuditKind::Transition`]) and written in the same conditional write as
//! the record and its audit item ([`ContactStore::save`](crate::ContactStore::save)):
//! a redelivered event or a racing evaluation that loses the version
//! condition writes nothing at all, counters included, so each transition is
//! counted exactly once. See `docs/governance.md` ("Segment counters").

use kairos_event::{AuditEntry, AuditKind, Change};
use std::future::Future;

use crate::StoreError;

/// How long a day's entry and exit counts are kept (days, by the table's TTL).
pub const COUNTER_DAYS_KEPT: i64 = 90;

/// One counter change: a segment entered or exited on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    /// The segment's id.
    pub segment: String,
    /// The day of the transition (UTC, `YYYY-MM-DD`).
    pub day: String,
    /// Entered (members +1, the day's entries +1) or exited (members −1, exits +1).
    pub change: Change,
    /// The end of the day's TTL (unix seconds): [`COUNTER_DAYS_KEPT`] after the transition.
    pub expires_at: i64,
}

/// The counter changes a save's audit entries carry: one per transition.
pub fn deltas(entries: &[AuditEntry]) -> Vec<CounterDelta> {
    entries
        .iter()
        .filter(|e| e.kind == AuditKind::Transition)
        .filter_map(|e| {
            Some(CounterDelta {
                segment: e.segment.clone()?,
                day: day_of(e.at.timestamp()),
                change: e.change?,
                expires_at: e.at.timestamp() + COUNTER_DAYS_KEPT * 86_400,
            })
        })
        .collect()
}

/// The UTC day (`YYYY-MM-DD`) of a unix time in seconds.
pub fn day_of(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// One day's entries and exits of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCount {
    /// The day (UTC, `YYYY-MM-DD`).
    pub day: String,
    /// Contacts that entered the segment that day.
    pub entries: u64,
    /// Contacts that left it that day.
    pub exits: u64,
}

/// A segment's counters as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentCounts {
    /// Members now (entries minus exits since counting began).
    pub members: i64,
    /// The days asked for, in the order asked, zero where nothing happened.
    pub days: Vec<DayCount>,
}

impl SegmentCounts {
    /// Members at the end of each day asked for (days in ascending order,
    /// the last one today): members now minus the net changes of the days
    /// after it.
    pub fn trend(&self) -> Vec<i64> {
        let mut members = self.members;
        let mut trend: Vec<i64> = self
            .days
            .iter()
            .rev()
            .map(|d| {
                let at_end = members;
                members -= d.entries as i64 - d.exits as i64;
                at_end
            })
            .collect();
        trend.reverse();
        trend
    }
}

/// Reading the per-segment counters.
pub trait SegmentCounters: Send + Sync {
    /// `segment`'s members now and its entries and exits on each of `days` (`YYYY-MM-DD`).
    fn segment_counts(
        &self,
        segment: &str,
        days: &[String],
    ) -> impl Future<Output = Result<SegmentCounts, StoreError>> + Send;
}

/// The `days` days ending with the day of `now` (unix seconds), oldest first.
pub fn last_days(now: i64, days: usize) -> Vec<String> {
    (0..days as i64).rev().map(|back| day_of(now - back * 86_400)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_walks_back_from_now_by_each_days_net_change() {
        let day = |d: &str, entries, exits| DayCount {
            day: d.into(),
            entries,
            exits,
        };
        let counts = SegmentCounts {
            members: 10,
            days: vec![
                day("2026-01-01", 5, 0),
                day("2026-01-02", 1, 3),
                day("2026-01-03", 4, 1),
            ],
        };
        assert_eq!(counts.trend(), vec![9, 7, 10]);
    }

    #[test]
    fn last_days_end_today_oldest_first() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .unwrap()
            .timestamp();
        assert_eq!(last_days(now, 3), ["2026-02-27", "2026-02-28", "2026-03-01"]);
    }
}
