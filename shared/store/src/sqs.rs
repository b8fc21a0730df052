//! The SQS adapter: `SendMessageBatch` in chunks of at most 10 entries and
//! 256 KiB, up to [`CONCURRENT_CHUNKS`] chunks in flight at once, reporting
//! the messages SQS did not accept.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use futures_util::stream::{self, StreamExt};

use crate::{Attribute, DeadLetters, Message, Queue, QueueError, Redelivery, MAX_DELAY_SECS};

/// SQS's limit on entries per `SendMessageBatch`.
const MAX_ENTRIES: usize = 10;
/// SQS's limit on a batch's total body size, less headroom.
const MAX_BATCH_BYTES: usize = 250 * 1024;
/// Most `SendMessageBatch` requests in flight for one [`Queue::send`]: a
/// 2,500-call Segment batch (250 chunks) takes 16 round trips, not 250.
pub const CONCURRENT_CHUNKS: usize = 16;

/// A standard SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// Sends to the queue at `url` through `client`.
    pub fn new(client: Client, url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            url: url.into(),
        }
    }

    async fn send_chunk(&self, chunk: &[Message]) -> Vec<(String, String)> {
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .build()
                    .ok()
            })
            .collect();
        let result = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) => out
                .failed()
                .iter()
                .filter_map(|f| {
                    let i: usize = f.id().parse().ok()?;
                    let reason = format!("{}: {}", f.code(), f.message().unwrap_or("no message"));
                    Some((chunk.get(i)?.id.clone(), reason))
                })
                .collect(),
            Err(err) => {
                let reason = aws_sdk_sqs::error::DisplayErrorContext(&err).to_string();
                chunk.iter().map(|m| (m.id.clone(), reason.clone())).collect()
            }
        }
    }
}

/// Splits messages into SQS-sized batches, preserving order.
fn chunks(messages: &[Message]) -> Vec<&[Message]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + m.body.len() > MAX_BATCH_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += m.body.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

impl Queue for SqsQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        let sends: Vec<_> = chunks(messages)
            .into_iter()
            .map(|chunk| self.send_chunk(chunk))
            .collect();
        let failed: Vec<(String, String)> = stream::iter(sends)
            .buffer_unordered(CONCURRENT_CHUNKS)
            .flat_map(stream::iter)
            .collect()
            .await;
        match failed.first() {
            None => Ok(()),
            Some((_, reason)) => Err(QueueError {
                reason: reason.clone(),
                failed: failed.into_iter().map(|(id, _)| id).collect(),
            }),
        }
    }
}

impl DeadLetters for SqsQueue {
    async fn dead_letter(&self, body: &str, attributes: &[Attribute]) -> Result<(), QueueError> {
        let mut request = self.client.send_message().queue_url(&self.url).message_body(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| QueueError {
                    failed: vec![name.clone()],
                    reason: e.to_string(),
                })?;
            request = request.message_attributes(name, value);
        }
        request.send().await.map(|_| ()).map_err(|e| QueueError {
            failed: vec!["dead letter".into()],
            reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
        })
    }
}

impl Redelivery for SqsQueue {
    async fn delay(&self, receipt_handle: &str, secs: u32) -> Result<(), QueueError> {
        let request = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs.min(MAX_DELAY_SECS) as i32);
        request.send().await.map(|_| ()).map_err(|e| QueueError {
            failed: vec![receipt_handle.to_string()],
            reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize, size: usize) -> Message {
        Message {
            id: i.to_string(),
            body: "x".repeat(size),
        }
    }

    #[test]
    fn chunks_respect_count_and_size_limits() {
        let many: Vec<Message> = (0..23).map(|i| msg(i, 10)).collect();
        assert_eq!(chunks(&many).iter().map(|c| c.len()).collect::<Vec<_>>(), [10, 10, 3]);
        let big: Vec<Message> = (0..5).map(|i| msg(i, 100 * 1024)).collect();
        assert_eq!(chunks(&big).iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
