//! The contacts table's stream: each contact record its TTL deleted (a
//! contact idle for the record's whole retention) is counted out of the
//! segments it was a member of, so the segment counters keep counting only
//! the contacts Kairos remembers.

use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use kairos_engine::Engine;
use kairos_event::log::hashed;
use kairos_event::metrics::Metrics;
use kairos_rules::RuleSet;
use kairos_store::{DynamoContacts, StoreError, StoredContact, StreamRecord};
use serde_json::Value;
use tokio::time::Instant;

/// Whether a Lambda event is a batch of a DynamoDB stream (and not of SQS).
pub fn is_stream_batch(event: &Value) -> bool {
    event["Records"][0]["eventSource"] == "aws:dynamodb"
}

/// Handles one batch of the contacts table's stream (the Lambda event's
/// `Records`), in order, under `rules` as of `now`: each contact record the
/// TTL deleted is counted out of its segments
/// ([`Engine::expired_out`], [`DynamoContacts::count_out`]); everything
/// else in the stream is passed over. A frozen anonymous record was counted
/// out when it was frozen, an erased one when it was erased: neither counts
/// again.
///
/// Returns the sequence number to resume at: the first record whose count
/// failed for a reason a retry can pass (throttling, a record of a newer
/// format than this build reads, or decided under newer rules than
/// `rules_seq`), or the first not reached by `deadline`; a repeat of a
/// record already counted counts nothing. A record that cannot be read, or
/// whose count is refused for good, is logged with the reason and passed
/// over, so it does not hold up the stream behind it.
pub async fn handle_expired(
    event: &Value,
    (rules, rules_seq): (&RuleSet, u64),
    store: &DynamoContacts,
    now: DateTime<Utc>,
    deadline: Instant,
) -> DynamoDbEventResponse {
    let engine = Engine {
        rules_seq,
        ..Engine::new(rules)
    };
    let mut metrics = Metrics::new("evaluate");
    let mut response = DynamoDbEventResponse::default();
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    for record in records {
        let retry_at = match kairos_store::stream_record(record) {
            StreamRecord::Other => continue,
            StreamRecord::Unreadable { sequence, reason } => not_counted(sequence, reason, &mut metrics),
            StreamRecord::Expired { sequence, .. } if Instant::now() >= deadline => Some(sequence),
            StreamRecord::Expired { sequence, record, .. } if engine.behind(record.rules_seq) => {
                tracing::warn!(sequence, "expired record decided under newer rules than these; retried");
                Some(sequence)
            }
            StreamRecord::Expired {
                sequence,
                contact,
                record,
            } => match count_out(&engine, store, &contact, *record, now).await {
                Ok(segments) => {
                    metrics.count("ExpiredCountedOut", &[], segments as u64);
                    None
                }
                Err(err) => not_counted(sequence, err, &mut metrics),
            },
        };
        if let Some(sequence) = retry_at {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
            break;
        }
    }
    metrics.emit();
    response
}

/// What follows a failed count: `Some(sequence)` to resume there when a retry
/// can pass (a record of a newer format than this build reads, throttling,
/// an unknown outcome); `None`, logged and counted (`ExpiredNotCounted`), for
/// a record that cannot be read or a write refused for good.
fn not_counted(sequence: String, err: StoreError, metrics: &mut Metrics) -> Option<String> {
    if matches!(err, StoreError::Newer { .. }) || !err.is_permanent() {
        tracing::warn!(sequence, error = %err, "expired record not counted out yet; retried");
        return Some(sequence);
    }
    tracing::error!(sequence, error = %err, "expired record not counted out: passed over");
    metrics.count("ExpiredNotCounted", &[], 1);
    None
}

/// Counts expired `record` of `contact` out; returns how many segments it left.
async fn count_out(
    engine: &Engine<'_>,
    store: &DynamoContacts,
    contact: &str,
    mut record: StoredContact,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if record.merged_into.is_some() || record.erased_at.is_some() {
        return Ok(0);
    }
    let entries = crate::record::expired_out(engine, contact, &mut record, now);
    let counted = store.count_out(contact, record.version, &entries).await?;
    let segments = if counted { entries.len() } else { 0 };
    tracing::info!(contact = %hashed(contact), segments, "expired record counted out of its segments");
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_stream_batch_is_told_from_an_sqs_batch_by_its_records_source() {
        let stream = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "REMOVE"}]});
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert!(super::is_stream_batch(&stream));
        assert!(!super::is_stream_batch(&sqs));
        assert!(!super::is_stream_batch(&json!({"Records": []})));
    }
}
