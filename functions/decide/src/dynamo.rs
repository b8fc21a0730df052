//! The DynamoDB adapter of [`DecisionStore`], in the contacts table (partition key `pk`):
//! - `decision#<id>`: `contact`, `sequence`, `step`, `variant`, `channel` (S),
//!   `at` (N), `answer` (S, the JSON answered), `goal_at`, `sent_at`,
//!   `delivered_at` (N, once known), `expires_at` (N, TTL);
//! - `sends#<contact>`: `sends` (S, the send log as JSON), `version` (N);
//! - `variant#<sequence>#<step>#<variant>[#<shard>]`: `sends`, `goals` (N),
//!   atomic counters in `kairos_store::COUNTER_SHARDS` shards (a contact's
//!   sends and goals go to its own; a read sums them), so a campaign's burst
//!   of sends is not held to one item's 1,000 write units a second.
//!
//! A send is recorded in one `TransactWriteItems` (decision, log, counter);
//! a goal in another (the decision's `goal_at`, once, and the counter).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use kairos_decide::{Counts, Sent};
use kairos_store::{counter_shard_key, counter_shard_keys, sum_shards, StoreError, COUNTER_SHARDS};

use crate::store::{DecisionStore, Recorded, SendLog, VariantKey};

type Item = HashMap<String, AttributeValue>;

/// Decision records are kept this long (seconds: 180 days), for reconciliation and reports.
pub const DECISION_TTL_SECS: i64 = 180 * 86_400;

/// Decisions, send logs and variant counters in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDecisions {
    client: Client,
    table: String,
}

impl DynamoDecisions {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoDecisions {
        DynamoDecisions {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, pk: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn backend<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Backend(Box::new(err))
}

fn variant_pk((sequence, step, variant): &VariantKey) -> String {
    format!("variant#{sequence}#{step}#{variant}")
}

/// The shard of a variant's counters that `contact`'s sends and goals go to
/// (as the segment counters': `kairos_store::COUNTER_SHARDS` items, shard 0
/// the unsharded key earlier builds wrote, so their counts stay in the sum).
fn variant_shard(key: &VariantKey, contact: &str) -> String {
    counter_shard_key(&variant_pk(key), kairos_store::due_shard(contact, COUNTER_SHARDS))
}

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute `{name}` is missing or not a string"
        ))),
    }
}

fn number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is not an integer"))),
        Some(_) => Err(StoreError::Corrupt(format!("attribute `{name}` is not a number"))),
    }
}

impl DecisionStore for DynamoDecisions {
    async fn sends(&self, contact: &str) -> Result<SendLog, StoreError> {
        let Some(item) = self.get(format!("sends#{contact}")).await? else {
            return Ok(SendLog::default());
        };
        let sends = serde_json::from_str(&text(&item, "sends")?)
            .map_err(|e| StoreError::Corrupt(format!("attribute `sends`: {e}")))?;
        let version = number(&item, "version")?.unwrap_or(0) as u64;
        Ok(SendLog { sends, version })
    }

    async fn counts(&self, keys: &[VariantKey]) -> Result<Vec<Counts>, StoreError> {
        let mut bases: Vec<String> = keys.iter().map(variant_pk).collect();
        bases.sort();
        bases.dedup();
        let wanted = bases.iter().flat_map(|base| counter_shard_keys(base)).collect();
        let found = kairos_store::batch_items(&self.client, &self.table, wanted).await?;
        let count = |base: &str, name: &str| Ok::<_, StoreError>(sum_shards(&found, base, name)?.max(0) as u64);
        keys.iter()
            .map(|k| {
                let base = variant_pk(k);
                Ok(Counts {
                    sends: count(&base, "sends")?,
                    goals: count(&base, "goals")?,
                })
            })
            .collect()
    }

    async fn answer(&self, decision_id: &str) -> Result<Option<String>, StoreError> {
        match self.get(format!("decision#{decision_id}")).await? {
            Some(item) => text(&item, "answer").map(Some),
            None => Ok(None),
        }
    }

    async fn record(
        &self,
        contact: &str,
        sent: &Sent,
        answer: &str,
        log: &SendLog,
        expected: u64,
    ) -> Result<Recorded, StoreError> {
        let decision = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("decision#{}", sent.decision_id)))
            .item("contact", s(contact))
            .item("sequence", s(&sent.sequence))
            .item("step", s(&sent.step))
            .item("variant", s(&sent.variant))
            .item("channel", s(&sent.channel))
            .item("at", n(sent.at))
            .item("answer", s(answer))
            .item("expires_at", n(sent.at + DECISION_TTL_SECS))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(backend)?;
        let sends = serde_json::to_string(&log.sends).expect("sends serialize");
        let log_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("sends#{contact}")))
            .item("sends", s(sends))
            .item("version", n(log.version));
        let log_put = match expected {
            0 => log_put.condition_expression("attribute_not_exists(pk)"),
            v => log_put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(v)),
        }
        .build()
        .map_err(backend)?;
        let key = (sent.sequence.clone(), sent.step.clone(), sent.variant.clone());
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(variant_shard(&key, contact)))
            .update_expression("ADD sends :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(backend)?;
        let items = [
            TransactWriteItem::builder().put(decision).build(),
            TransactWriteItem::builder().put(log_put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match kairos_store::transact_write(&self.client, items.into()).await {
            Ok(_) => Ok(Recorded::New),
            Err(StoreError::Conflict) => match self.answer(&sent.decision_id).await? {
                Some(stored) => Ok(Recorded::Existing(stored)),
                None => Ok(Recorded::LogMoved),
            },
            Err(e) => Err(e),
        }
    }

    async fn goal(&self, decision_id: &str, at: i64) -> Result<bool, StoreError> {
        let Some(item) = self.get(format!("decision#{decision_id}")).await? else {
            return Ok(false);
        };
        if item.contains_key("goal_at") {
            return Ok(false);
        }
        let key = (text(&item, "sequence")?, text(&item, "step")?, text(&item, "variant")?);
        let contact = text(&item, "contact")?;
        let mark = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("decision#{decision_id}")))
            .update_expression("SET goal_at = :t")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(goal_at)")
            .expression_attribute_values(":t", n(at))
            .build()
            .map_err(backend)?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(variant_shard(&key, &contact)))
            .update_expression("ADD goals :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(backend)?;
        let items = [
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        // A failed condition: the goal was counted already. A busy variant
        // counter is retried (`transact_write`), then reported, never taken
        // for a goal already counted.
        match kairos_store::transact_write(&self.client, items.into()).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn note_message(&self, contact: &str, decision_id: &str, message_id: &str) -> Result<bool, StoreError> {
        // Read, change, write back conditioned on the version; a decide racing it wins and we retry.
        for _ in 0..3 {
            let mut log = self.sends(contact).await?;
            if !crate::store::with_message(&mut log.sends, decision_id, message_id) {
                return Ok(false);
            }
            let sends = serde_json::to_string(&log.sends).expect("sends serialize");
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(format!("sends#{contact}")))
                .item("sends", s(sends))
                .item("version", n(log.version + 1))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(log.version))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    continue
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn confirm(&self, decision_id: &str, status: &str, at: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("decision#{decision_id}")))
            .update_expression("SET #s = if_not_exists(#s, :t)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", format!("{status}_at"))
            .expression_attribute_values(":t", n(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend(e)),
        }
    }
}
