//! `kairos erase`: an operator's erasure of one contact, through the same
//! implementation as the admin API's `DELETE /v1/contacts/{key}`
//! ([`kairos_evaluate::Evaluator::erase`]), repeated until every step is done.

use chrono::{DateTime, Utc};
use kairos_evaluate::{EraseError, Erasure, Evaluator};
use kairos_rules::RuleSet;
use kairos_store::{AuditTrail, ContactStore, Erasure as ErasurePort, Queue};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long one pass runs before the erasure is resumed by the next.
const PASS: Duration = Duration::from_secs(600);

/// Erases `contact` (normalized as ingest does) by `actor`, and describes
/// what was done as JSON (the admin API's answer).
pub async fn erase<S: ContactStore + AuditTrail + ErasurePort, Q: Queue>(
    evaluator: &Evaluator<'_, S, Q>,
    contact: &str,
    actor: &str,
    salt: &[u8],
    window_days: i64,
    now: DateTime<Utc>,
) -> Result<Value, String> {
    let key = kairos_event::key::normalize_contact(contact).map_err(|e| format!("the contact {e}"))?;
    loop {
        let erasure = Erasure {
            actor,
            salt,
            window_secs: window_days * 86_400,
            deadline: Instant::now() + PASS,
        };
        let done = match evaluator.erase(&key, &erasure, now).await {
            Ok(done) => done,
            Err(EraseError::Unknown) => return Err(format!("no stored contact {key:?}")),
            Err(err) => return Err(format!("erasing: {err}")),
        };
        if done.complete {
            return Ok(json!({
                "contact": key,
                "receipt": done.receipt,
                "erased_at": DateTime::from_timestamp(done.erased_at, 0).map(|t| t.to_rfc3339()),
                "exits": done.exits,
                "anonymous_records": done.anonymous,
                "audit_items": done.audit_items,
                "delivery_entries": done.deliveries,
            }));
        }
    }
}

/// `kairos erase` over DynamoDB and SQS: the contacts and audit tables, the write-back queue.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    endpoint: Option<String>,
    table: &str,
    audit_table: &str,
    queue_url: &str,
    rules: &RuleSet,
    contact: &str,
    actor: &str,
    salt: &str,
    window_days: i64,
) -> Result<Value, String> {
    let config = match endpoint {
        Some(endpoint) => crate::local::sdk_config(&endpoint).await,
        None => kairos_store::sdk::load_with_sdk_defaults().await,
    };
    let salt = kairos_store::resolve_secret(salt, &aws_sdk_ssm::Client::new(&config))
        .await
        .map_err(|e| e.to_string())?;
    let store = kairos_store::DynamoContacts::new(aws_sdk_dynamodb::Client::new(&config), table)
        .with_audit(audit_table, kairos_store::DEFAULT_AUDIT_RETENTION_DAYS);
    let queue = kairos_store::SqsQueue::new(aws_sdk_sqs::Client::new(&config), queue_url);
    let evaluator = Evaluator::new(rules, &store, &queue);
    erase(&evaluator, contact, actor, salt.as_bytes(), window_days, Utc::now()).await
}
