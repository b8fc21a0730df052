//! The sweep function's second mode: after a rules publish, every stored
//! contact is sent to the events queue once as a sweep message carrying the
//! new rules version, so idle contacts are re-decided under it too.

use kairos_event::{EventsMessage, Sweep};
use kairos_store::{BackfillProgress, ContactScan, Fetched, Message, Queue, QueueError, RulesObject, StoreError};
use std::time::Instant;

/// Segments of the parallel scan unless configured.
pub const DEFAULT_SEGMENTS: u32 = 16;

/// Items read per scan request (a DynamoDB page also stops at 1 MB; a
/// keys-only contact key is far under 1 KB).
pub const SCAN_PAGE: usize = 1_000;

/// A backfill run over borrowed ports.
pub struct Backfiller<'a, S, Q> {
    /// The contacts table (scanned; it holds the progress too).
    pub scan: &'a S,
    /// The events queue, which the evaluate function consumes.
    pub queue: &'a Q,
    /// Segments of a new backfill's scan.
    pub segments: u32,
    /// Items per scan request.
    pub page: usize,
}

impl<'a, S, Q> Backfiller<'a, S, Q> {
    /// A backfiller with [`DEFAULT_SEGMENTS`] segments and [`SCAN_PAGE`] items a page.
    pub fn new(scan: &'a S, queue: &'a Q) -> Self {
        Backfiller {
            scan,
            queue,
            segments: DEFAULT_SEGMENTS,
            page: SCAN_PAGE,
        }
    }
}

/// What a backfill run did, and where the backfill stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillReport {
    /// The rules version being backfilled (0: none ever started).
    pub seq: u64,
    /// Items scanned by this run.
    pub scanned: u64,
    /// Contacts sent by this run.
    pub sent: u64,
    /// Segments not yet finished (0 when the backfill is done).
    pub remaining_segments: u32,
    /// Contacts sent by the backfill so far, all runs.
    pub total_sent: u64,
}

/// Why a backfill run stopped early (what it sent is recorded).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Scanning or recording the progress failed.
    #[error("backfill: {0}")]
    Store(#[from] StoreError),
    /// Sending sweep messages failed: the page is scanned again next run.
    #[error("backfill: sending sweep messages: {0}")]
    Send(#[from] QueueError),
}

impl<S: ContactScan, Q: Queue> Backfiller<'_, S, Q> {
    /// Continues the backfill, starting a new one first if `seq` (a newly
    /// published rules version) is newer than the recorded one: scans page
    /// by page, sends each page's contacts as sweep messages carrying the
    /// backfill's version, and records the progress after each page sent,
    /// until every segment is scanned or `stop_at` comes. `None` only
    /// continues an unfinished backfill (the scheduled runs do).
    pub async fn run(&self, seq: Option<u64>, stop_at: Instant) -> Result<BackfillReport, BackfillError> {
        let recorded = self.scan.progress().await?;
        let mut progress = match (recorded, seq) {
            (Some(p), Some(seq)) if p.seq >= seq => p,
            (_, Some(seq)) => BackfillProgress::start(seq, self.segments),
            (Some(p), None) => p,
            (None, None) => return Ok(BackfillReport::default()),
        };
        let mut report = BackfillReport {
            seq: progress.seq,
            ..BackfillReport::default()
        };
        while !progress.done() && Instant::now() < stop_at {
            let cursor = progress.cursor.as_deref();
            let page = self
                .scan
                .scan(progress.segment, progress.segments, cursor, self.page)
                .await?;
            let messages: Vec<Message> = page.contacts.iter().map(|c| sweep(c, progress.seq)).collect();
            self.queue.send(&messages).await?;
            let sent = messages.len() as u64;
            (report.scanned, report.sent) = (report.scanned + page.scanned as u64, report.sent + sent);
            progress.scanned += page.scanned as u64;
            progress.sent += sent;
            progress.cursor = page.next;
            if progress.cursor.is_none() {
                progress.segment += 1;
            }
            self.scan.record_progress(&progress).await?;
        }
        report.remaining_segments = progress.segments.saturating_sub(progress.segment);
        report.total_sent = progress.sent;
        tracing::info!(
            seq = report.seq,
            scanned = report.scanned,
            sent = report.sent,
            remaining_segments = report.remaining_segments,
            total_sent = report.total_sent,
            "backfill run"
        );
        Ok(report)
    }
}

/// Starts the backfill of the rules just published in `rules` (the sweep
/// function on the bucket's "Object Created" event), then runs it until
/// `stop_at`; the scheduled runs continue it. Rules that do not compile are
/// never backfilled (no evaluate function takes them, so their sweep
/// messages could only be retried): the error is logged and the backfill in
/// progress, if any, continues.
pub async fn after_publish<S: ContactScan, Q: Queue, O: RulesObject>(
    backfiller: &Backfiller<'_, S, Q>,
    rules: &O,
    stop_at: Instant,
) -> Result<BackfillReport, BackfillError> {
    let seq = match rules.fetch(None).await? {
        Fetched::Object { text, seq, etag } => match kairos_rules::RuleSet::from_yaml(&text) {
            Ok(_) => Some(seq),
            Err(err) => {
                tracing::error!(etag = %etag, error = %err, "published rules invalid: not backfilled");
                None
            }
        },
        Fetched::Missing | Fetched::Unchanged => None,
    };
    backfiller.run(seq, stop_at).await
}

/// The sweep message for `contact`, to be decided under rules version `seq`.
fn sweep(contact: &str, seq: u64) -> Message {
    let body = EventsMessage::sweep_body(&Sweep {
        contact: contact.to_string(),
        rules_seq: Some(seq),
    });
    Message {
        id: contact.to_string(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_store::{ContactStore, MemoryContacts, MemoryQueue, StoredContact};
    use std::time::Duration;

    #[tokio::test]
    async fn a_backfill_sends_every_live_contact_once_across_runs_and_records_its_progress() {
        let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
        for i in 0..25 {
            store
                .save(&format!("c{i:02}@x.test"), None, &StoredContact::default())
                .await
                .unwrap();
        }
        let frozen = StoredContact {
            merged_into: Some("c00@x.test".into()),
            ..StoredContact::default()
        };
        store.save("anon:1", None, &frozen).await.unwrap();
        let backfill = Backfiller {
            segments: 4,
            page: 3,
            ..Backfiller::new(&store, &queue)
        };
        // A run out of time sends nothing and records nothing new.
        let past = Instant::now();
        let idle = backfill.run(Some(7), past).await.unwrap();
        assert_eq!((idle.sent, idle.remaining_segments), (0, 4));

        let later = Instant::now() + Duration::from_secs(60);
        let report = backfill.run(Some(7), later).await.unwrap();
        assert_eq!(
            (report.seq, report.sent, report.scanned, report.remaining_segments),
            (7, 25, 26, 0)
        );
        let mut sent: Vec<String> = queue.drain().into_iter().map(|m| m.body).collect();
        sent.sort();
        sent.dedup();
        assert_eq!(sent.len(), 25, "each contact once, the frozen record never");
        assert!(sent.iter().all(|b| b.contains(r#""rules_seq":7"#)), "{sent:?}");

        // Done: a scheduled run or the same publish again sends nothing.
        assert_eq!(backfill.run(None, later).await.unwrap().sent, 0);
        assert_eq!(backfill.run(Some(7), later).await.unwrap().sent, 0);
        assert!(queue.drain().is_empty());
        // A newer publish starts over; an invalid one is not backfilled.
        assert_eq!(backfill.run(Some(8), later).await.unwrap().sent, 25);
        let published = kairos_store::MemoryRules::default();
        published.publish("segments:\n  - { id: broken }\n");
        assert_eq!(after_publish(&backfill, &published, later).await.unwrap().sent, 0);
        for _ in 0..7 {
            published.publish("segments: []\n");
        }
        published.publish("segments:\n  - { id: c, name: C, rule: { event: { type: email.clicked, within: 7d } } }\n");
        let report = after_publish(&backfill, &published, later).await.unwrap();
        assert_eq!((report.seq, report.sent), (9, 25));
    }
}
