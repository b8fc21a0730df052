//! The event archive's write side: every accepted canonical event, one JSON
//! line each, kept in cheap object storage for backtests and rebuilds.
//!
//! The port is [`Archive`]; [`MemoryArchive`] is its in-memory twin and
//! `FirehoseArchive` (feature `aws`) its Amazon Data Firehose adapter. The
//! retry policy shared by adapters is [`deliver`]: failed records are sent
//! again with a doubling back-off for as long as the caller's deadline allows.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One record for the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// The caller's id for the record (an SQS message id), reported back on failure.
    pub id: String,
    /// The record's bytes: one canonical event as JSON, ending with a newline
    /// (so records concatenated by the delivery stream are JSON lines).
    pub line: Vec<u8>,
}

/// Records the archive did not accept before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} record(s) not archived: {reason}", failed.len())]
pub struct ArchiveError {
    /// Ids (as given in [`ArchiveRecord::id`]) of the records not archived.
    pub failed: Vec<String>,
    /// The last failure's reason.
    pub reason: String,
}

/// Appending records to the event archive. Duplicates are allowed (readers
/// dedupe by event id); a record reported failed may have been kept anyway.
pub trait Archive: Send + Sync {
    /// Delivers every record, retrying failures until `deadline`; reports
    /// the records still not accepted then.
    fn put(
        &self,
        records: &[ArchiveRecord],
        deadline: Instant,
    ) -> impl Future<Output = Result<(), ArchiveError>> + Send;
}

/// A borrowed archive.
impl<T: Archive> Archive for &T {
    fn put(
        &self,
        records: &[ArchiveRecord],
        deadline: Instant,
    ) -> impl Future<Output = Result<(), ArchiveError>> + Send {
        (**self).put(records, deadline)
    }
}

/// The back-off between two attempts at the records that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the second attempt.
    pub first: Duration,
    /// The longest wait; each wait doubles up to it.
    pub max: Duration,
}

/// 100 ms, doubling to 2 s: Firehose's throttling clears within seconds.
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// What one attempt at a batch of records did: per record, `None` if it was
/// accepted, else why not (in the records' order).
pub type Attempt = Vec<Option<String>>;

/// Sends `records` in batches cut by `split` through `send`, then sends the
/// records that failed again after a back-off, until all are accepted or the
/// next attempt could not start before `deadline`. A whole-call failure
/// counts as every record of the call failing.
pub async fn deliver<'a, S, F>(
    records: &'a [ArchiveRecord],
    deadline: Instant,
    backoff: Backoff,
    split: fn(&[&'a ArchiveRecord]) -> Vec<std::ops::Range<usize>>,
    send: S,
) -> Result<(), ArchiveError>
where
    S: Fn(Vec<&'a ArchiveRecord>) -> F,
    F: Future<Output = Result<Attempt, String>>,
{
    let mut pending: Vec<&ArchiveRecord> = records.iter().collect();
    let mut wait = backoff.first;
    loop {
        let mut failed = Vec::new();
        let mut reason = String::new();
        for range in split(&pending) {
            let batch = pending[range].to_vec();
            match send(batch.clone()).await {
                Ok(attempt) => {
                    for (i, record) in batch.into_iter().enumerate() {
                        // A response shorter than the batch fails the records it does not mention.
                        match attempt.get(i) {
                            Some(None) => {}
                            Some(Some(why)) => {
                                reason.clone_from(why);
                                failed.push(record);
                            }
                            None => {
                                reason = "no answer for the record".to_string();
                                failed.push(record);
                            }
                        }
                    }
                }
                Err(why) => {
                    reason = why;
                    failed.extend(batch);
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        if Instant::now() + wait >= deadline {
            let failed = failed.into_iter().map(|r| r.id.clone()).collect();
            return Err(ArchiveError { failed, reason });
        }
        tracing::warn!(records = failed.len(), reason = %reason, wait_ms = wait.as_millis() as u64, "archive records failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(backoff.max);
        pending = failed;
    }
}

/// The archive in memory: the lines kept, in order; failures can be
/// injected to test what callers do when the archive is down.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    lines: Mutex<Vec<Vec<u8>>>,
    down: Mutex<bool>,
}

impl MemoryArchive {
    /// Every line archived so far, in order.
    pub fn lines(&self) -> Vec<Vec<u8>> {
        lock(&self.lines).clone()
    }

    /// Makes every later [`Archive::put`] fail (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        *lock(&self.down) = down;
    }
}

impl Archive for MemoryArchive {
    async fn put(&self, records: &[ArchiveRecord], _deadline: Instant) -> Result<(), ArchiveError> {
        if *lock(&self.down) {
            return Err(ArchiveError {
                failed: records.iter().map(|r| r.id.clone()).collect(),
                reason: "the archive is down".to_string(),
            });
        }
        lock(&self.lines).extend(records.iter().map(|r| r.line.clone()));
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn records(n: usize) -> Vec<ArchiveRecord> {
        (0..n)
            .map(|i| ArchiveRecord {
                id: format!("m{i}"),
                line: format!("{{\"id\":\"e{i}\"}}\n").into_bytes(),
            })
            .collect()
    }

    fn pairs(records: &[&ArchiveRecord]) -> Vec<std::ops::Range<usize>> {
        (0..records.len())
            .step_by(2)
            .map(|i| i..(i + 2).min(records.len()))
            .collect()
    }

    const FAST: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[tokio::test]
    async fn failed_records_are_sent_again_until_accepted() {
        let calls = AtomicUsize::new(0);
        let sent = Mutex::new(Vec::new());
        let all = records(5);
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = deliver(&all, deadline, FAST, pairs, |batch| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            sent.lock()
                .unwrap()
                .push(batch.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
            async move {
                match call {
                    // First round: m1 refused by the service, the third call fails whole.
                    0 => Ok(vec![None, Some("ServiceUnavailableException".to_string())]),
                    2 => Err("timeout".to_string()),
                    _ => Ok(batch.iter().map(|_| None).collect()),
                }
            }
        })
        .await;
        assert_eq!(result, Ok(()));
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent[..3], [vec!["m0", "m1"], vec!["m2", "m3"], vec!["m4"]]);
        assert_eq!(sent[3..], [vec!["m1", "m4"]], "only the failed records go again");
    }

    #[tokio::test]
    async fn records_still_failing_at_the_deadline_are_reported() {
        let all = records(3);
        let calls = AtomicUsize::new(0);
        let deadline = Instant::now() + Duration::from_millis(30);
        let result = deliver(&all, deadline, FAST, pairs, |batch| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(batch
                    .iter()
                    .map(|r| (r.id == "m2").then(|| "throttled".to_string()))
                    .collect())
            }
        })
        .await;
        assert_eq!(
            result,
            Err(ArchiveError {
                failed: vec!["m2".to_string()],
                reason: "throttled".to_string()
            })
        );
        assert!(calls.into_inner() > 3, "m2 was retried before giving up");
    }

    #[tokio::test]
    async fn the_memory_archive_keeps_lines_and_can_be_down() {
        let archive = MemoryArchive::default();
        let deadline = Instant::now() + Duration::from_secs(1);
        archive.set_down(true);
        let err = archive.put(&records(2), deadline).await.unwrap_err();
        assert_eq!(err.failed, ["m0", "m1"]);
        archive.set_down(false);
        archive.put(&records(2), deadline).await.unwrap();
        assert_eq!(archive.lines().len(), 2);
    }
}
