//! The event archive, written after the state: every event of the batch whose
//! contact was evaluated (applied, or refused as a duplicate: duplicates in
//! the archive are fine, readers dedupe) goes to the archive as one JSON
//! line ([`kairos_store::Archive`]). A failure never blocks or undoes the
//! state write; the messages whose record is still not archived at the
//! deadline are reported as batch-item failures, so SQS redelivers them,
//! the state dedupes them, and the archive is tried again. Losing an applied
//! event from the archive needs its message to run out of redeliveries and
//! its dead letter to expire unredriven (the README's "Event archive").

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use kairos_event::EventsMessage;
use kairos_store::{Archive, ArchiveRecord};
use tokio::time::Instant;

/// Archives the events of `batch` that `response` does not already fail,
/// retrying until `deadline`; adds the messages whose event is still not
/// archived to `response`'s failures. Sweep messages carry no event and are
/// not archived; a malformed message has failed already.
pub async fn archive_batch<A: Archive>(
    batch: &SqsEvent,
    response: &mut SqsBatchResponse,
    archive: &A,
    deadline: Instant,
) {
    let failed: std::collections::HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let records: Vec<ArchiveRecord> = batch
        .records
        .iter()
        .filter_map(|m| {
            let id = m.message_id.as_deref()?;
            let event = match EventsMessage::decode(m.body.as_deref()?.as_bytes()) {
                Ok(EventsMessage::Event(event)) if !failed.contains(id) => event,
                _ => return None,
            };
            let mut line = serde_json::to_vec(&event).ok()?;
            line.push(b'\n');
            Some(ArchiveRecord {
                id: id.to_string(),
                line,
            })
        })
        .collect();
    if records.is_empty() {
        return;
    }
    if let Err(err) = archive.put(&records, deadline).await {
        tracing::error!(records = err.failed.len(), reason = %err.reason, "events not archived; their messages will be redelivered");
        for id in err.failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;
    use kairos_store::MemoryArchive;
    use std::time::Duration;

    fn message(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.body = Some(body.to_string());
        m
    }

    fn event(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","contact":"ada@example.com","type":"email.opened","at":"2026-11-27T10:00:00Z","source":"t"}}"#
        )
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn events_not_failed_are_archived_and_a_down_archive_fails_their_messages() {
        let mut batch = SqsEvent::default();
        batch.records = vec![
            message("m1", &event("e1")),
            message("m2", &event("e2")),
            message("m3", "not json"),
            message("m4", r#"{"v":2,"kind":"sweep","contact":"bob@example.com"}"#),
        ];
        let archive = MemoryArchive::default();
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = vec![BatchItemFailure::default()];
        response.batch_item_failures[0].item_identifier = "m2".to_string();
        archive_batch(&batch, &mut response, &archive, deadline).await;
        let lines = archive.lines();
        assert_eq!(lines.len(), 1, "only e1: m2 failed, m3 is malformed, m4 is a sweep");
        let archived = kairos_event::Event::from_json(lines[0].strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(archived.id, "e1");
        assert_eq!(failed(&response), ["m2"]);

        archive.set_down(true);
        let mut response = SqsBatchResponse::default();
        archive_batch(&batch, &mut response, &archive, deadline).await;
        assert_eq!(failed(&response), ["m1", "m2"], "redelivered for another try");
    }
}
