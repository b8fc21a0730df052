//! The write-back dead-letter queue, for operators: `kairos dlq show` lists
//! what is there and why (the destination and its reason travel as message
//! attributes), `kairos dlq redrive` sends messages back to the write-back
//! queue after a fix, keeping their destination so only it is written again.

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use kairos_writeback::{DESTINATION_ATTRIBUTE, REASON_ATTRIBUTE};
use serde_json::{json, Value};

/// Why a dead-letter operation failed.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter queue: {0}")]
pub struct DlqError(String);

fn sqs_error<E: std::error::Error>(e: E) -> DlqError {
    DlqError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

fn attribute(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()?.get(name)?.string_value().map(str::to_string)
}

/// One dead letter as a JSON line: id, destination, reason, receive count,
/// and the transition's contact, segment and version when it reads.
pub fn describe(m: &Message) -> Value {
    let body: Value = m
        .body()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let receives = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse::<u64>().ok());
    json!({
        "message_id": m.message_id(),
        "destination": attribute(m, DESTINATION_ATTRIBUTE),
        "reason": attribute(m, REASON_ATTRIBUTE),
        "contact": body.get("contact"),
        "segment": body.get("segment"),
        "state_version": body.get("state_version"),
        "receives": receives,
    })
}

async fn receive(sqs: &Client, url: &str, visibility: i32) -> Result<Vec<Message>, DlqError> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .wait_time_seconds(1)
        .send()
        .await
        .map_err(sqs_error)?;
    Ok(out.messages().to_vec())
}

/// Up to `max` dead letters, each once, left in the queue.
pub async fn show(sqs: &Client, dlq_url: &str, max: usize) -> Result<Vec<Value>, DlqError> {
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < max {
        let got = receive(sqs, dlq_url, 0).await?;
        let fresh: Vec<Value> = got
            .iter()
            .map(describe)
            .filter(|d| !seen.iter().any(|s| s["message_id"] == d["message_id"]))
            .collect();
        if fresh.is_empty() {
            break;
        }
        seen.extend(fresh);
    }
    seen.truncate(max);
    Ok(seen)
}

/// Moves dead letters (only those of `destination`, if given; at most `max`)
/// back to the write-back queue with their attributes: returns how many.
pub async fn redrive(
    sqs: &Client,
    dlq_url: &str,
    queue_url: &str,
    destination: Option<&str>,
    max: usize,
) -> Result<usize, DlqError> {
    let mut moved = 0;
    while moved < max {
        let got = receive(sqs, dlq_url, 30).await?;
        let chosen: Vec<&Message> = got
            .iter()
            .filter(|m| destination.is_none_or(|d| attribute(m, DESTINATION_ATTRIBUTE).as_deref() == Some(d)))
            .collect();
        if chosen.is_empty() {
            break;
        }
        for m in chosen.into_iter().take(max - moved) {
            let mut send = sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(m.body().unwrap_or_default());
            if let Some(d) = attribute(m, DESTINATION_ATTRIBUTE) {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(d)
                    .build();
                send = send.message_attributes(DESTINATION_ATTRIBUTE, value.map_err(sqs_error)?);
            }
            send.send().await.map_err(sqs_error)?;
            let delete = sqs.delete_message().queue_url(dlq_url);
            delete
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(sqs_error)?;
            moved += 1;
        }
    }
    Ok(moved)
}
