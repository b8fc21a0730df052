//! The backfill's port: every contact record, scanned in segments, and the
//! progress of the backfill kept in the table, so a backfill longer than one
//! invocation continues where the last one stopped.

use crate::StoreError;
use std::future::Future;

/// One page of a segment's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// The contact keys found (frozen anonymous records left out).
    pub contacts: Vec<String>,
    /// Items read for this page (what a scan pays for, frozen records and
    /// other items included).
    pub scanned: usize,
    /// Where the segment's next page starts; `None` when it has no more.
    pub next: Option<String>,
}

/// Where a backfill stands: segments are scanned one after another, each
/// page by page, and this is recorded after every page sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// The rules version (sequence) the contacts are re-decided under.
    pub seq: u64,
    /// The segment being scanned (`segments` when done).
    pub segment: u32,
    /// The scan's total segments.
    pub segments: u32,
    /// Where the segment's next page starts (`None`: at its start).
    pub cursor: Option<String>,
    /// Items scanned so far.
    pub scanned: u64,
    /// Contacts sent so far.
    pub sent: u64,
}

impl BackfillProgress {
    /// A backfill for rules version `seq` over `segments` segments, not started.
    pub fn start(seq: u64, segments: u32) -> BackfillProgress {
        BackfillProgress {
            seq,
            segments: segments.max(1),
            ..BackfillProgress::default()
        }
    }

    /// Whether every segment was scanned.
    pub fn done(&self) -> bool {
        self.segment >= self.segments
    }
}

/// The contacts table scanned for a backfill, and the backfill's progress.
pub trait ContactScan: Send + Sync {
    /// Up to `limit` items of segment `segment` of `segments` (a parallel
    /// scan's `Segment`/`TotalSegments`), after `after`.
    fn scan(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ScanPage, StoreError>> + Send;

    /// The backfill's recorded progress, if one ever ran.
    fn progress(&self) -> impl Future<Output = Result<Option<BackfillProgress>, StoreError>> + Send;

    /// Records the backfill's progress.
    fn record_progress(&self, progress: &BackfillProgress) -> impl Future<Output = Result<(), StoreError>> + Send;
}
