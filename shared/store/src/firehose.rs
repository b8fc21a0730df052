//! The archive's Amazon Data Firehose adapter: `PutRecordBatch` in batches of
//! at most 500 records and 4 MiB, the records Firehose refuses (per record,
//! or the whole call) sent again with a back-off until the deadline
//! ([`crate::deliver`]). The delivery stream writes them to S3.

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use aws_sdk_firehose::Client;
use tokio::time::Instant;

use crate::archive::{deliver, Archive, ArchiveError, ArchiveRecord, Attempt, Backoff, DEFAULT_BACKOFF};

/// Firehose's limit on records per `PutRecordBatch`.
const MAX_RECORDS: usize = 500;
/// Firehose's limit on a `PutRecordBatch` request's data (4 MiB), less headroom.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// A Firehose delivery stream as the event archive.
#[derive(Debug, Clone)]
pub struct FirehoseArchive {
    client: Client,
    stream: String,
    backoff: Backoff,
}

impl FirehoseArchive {
    /// Puts records to the delivery stream named `stream` through `client`.
    pub fn new(client: Client, stream: impl Into<String>) -> FirehoseArchive {
        FirehoseArchive {
            client,
            stream: stream.into(),
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// The same archive with another back-off between attempts.
    pub fn with_backoff(self, backoff: Backoff) -> FirehoseArchive {
        FirehoseArchive { backoff, ..self }
    }

    async fn send(&self, batch: Vec<&ArchiveRecord>) -> Result<Attempt, String> {
        let records = batch
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.line.clone())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let put = self.client.put_record_batch().delivery_stream_name(&self.stream);
        let out = put
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| aws_sdk_firehose::error::DisplayErrorContext(e).to_string())?;
        Ok(out
            .request_responses()
            .iter()
            .map(|r| {
                r.error_code()
                    .map(|code| format!("{code}: {}", r.error_message().unwrap_or("no message")))
            })
            .collect())
    }
}

/// Splits records into `PutRecordBatch`-sized batches, preserving order.
fn batches(records: &[&ArchiveRecord]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && (i - start == MAX_RECORDS || bytes + r.line.len() > MAX_BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += r.line.len();
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

impl Archive for FirehoseArchive {
    async fn put(&self, records: &[ArchiveRecord], deadline: Instant) -> Result<(), ArchiveError> {
        deliver(records, deadline, self.backoff, batches, |batch| self.send(batch)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> ArchiveRecord {
        ArchiveRecord {
            id: String::new(),
            line: vec![b'x'; bytes],
        }
    }

    #[test]
    fn batches_hold_at_most_500_records_and_4_mib() {
        let small: Vec<ArchiveRecord> = (0..1201).map(|_| record(100)).collect();
        let refs: Vec<&ArchiveRecord> = small.iter().collect();
        assert_eq!(batches(&refs), [0..500, 500..1000, 1000..1201]);
        let big: Vec<ArchiveRecord> = (0..130).map(|_| record(64 * 1024)).collect();
        let refs: Vec<&ArchiveRecord> = big.iter().collect();
        let cut = batches(&refs);
        assert!(cut.iter().all(|r| r.len() * 64 * 1024 <= MAX_BATCH_BYTES), "{cut:?}");
        assert_eq!(cut.iter().map(|r| r.len()).sum::<usize>(), 130);
        assert!(batches(&[]).is_empty());
    }
}
