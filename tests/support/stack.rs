//! [`Stack`]: moto server holding the template's table and queues, the SDK
//! clients and the real adapters over them, as the deployed functions build them.

use super::{ack, moto::Moto, receive, sqs_event};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use kairos::local::{self as infra, Infra};
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;
use kairos_store::{DynamoClaims, DynamoContacts, DynamoLedger, SqsQueue};
use std::collections::HashMap;

/// moto server with every table and queue of `infra/template.yaml`, and
/// clients over it. The server stops when the stack drops.
pub struct Stack {
    pub moto: Moto,
    pub aws: aws_config::SdkConfig,
    pub infra: Infra,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Stack {
    /// Starts moto and creates the template's resources on it.
    pub async fn start() -> Stack {
        let moto = Moto::start();
        let aws = moto.sdk_config().await;
        let infra = infra::create(&aws)
            .await
            .expect("the template's resources are created on moto");
        Stack {
            sqs: aws_sdk_sqs::Client::new(&aws),
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            moto,
            aws,
            infra,
        }
    }

    /// The URL of the queue with this logical name in the template.
    pub fn url(&self, queue: &str) -> &str {
        let url = self.infra.queue(queue);
        assert!(!url.is_empty(), "the template has no queue {queue}");
        url
    }

    /// The contact store over the template's table, keeping the audit trail
    /// in its audit table (as the evaluate function does).
    pub fn store(&self) -> DynamoContacts {
        let store = DynamoContacts::new(self.dynamodb.clone(), &self.infra.table);
        store.with_audit(self.audit_table(), kairos_store::DEFAULT_AUDIT_RETENTION_DAYS)
    }

    /// The template's audit table.
    pub fn audit_table(&self) -> &str {
        self.infra.tables.get("AuditTable").map_or("", String::as_str)
    }

    /// The delivery ledger over the template's table.
    pub fn ledger(&self) -> DynamoLedger {
        DynamoLedger::new(self.dynamodb.clone(), &self.infra.table)
    }

    /// The one-time-token claims over the template's table.
    pub fn claims(&self) -> DynamoClaims {
        DynamoClaims::new(self.dynamodb.clone(), &self.infra.table)
    }

    /// How many messages the queue with this logical name holds.
    pub async fn depth(&self, queue: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.url(queue))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("queue attributes");
        let attributes = out.attributes().cloned().unwrap_or_default();
        let depth = attributes.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages);
        depth.and_then(|d| d.parse().ok()).unwrap_or(0)
    }

    /// The SQS adapter for the queue with this logical name.
    pub fn queue(&self, queue: &str) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), self.url(queue))
    }

    /// Sends each body to a queue as its own message.
    pub async fn send(&self, queue: &str, bodies: &[String]) {
        for body in bodies {
            let send = self.sqs.send_message().queue_url(self.url(queue)).message_body(body);
            send.send().await.expect("message sent");
        }
    }

    /// Receives up to `max` messages, as Lambda's poller would.
    pub async fn receive(&self, queue: &str, max: usize) -> Vec<aws_sdk_sqs::types::Message> {
        receive(&self.sqs, self.url(queue), max).await
    }

    /// Deletes the messages not reported in `response`, as Lambda does.
    pub async fn ack(&self, queue: &str, messages: &[aws_sdk_sqs::types::Message], response: &SqsBatchResponse) {
        ack(&self.sqs, self.url(queue), messages, &failed(response)).await
    }

    /// Writes an item given in DynamoDB JSON (as `aws dynamodb get-item`
    /// prints it) into the template's table as it is, bypassing the adapters.
    pub async fn put_raw_item(&self, json: &str) {
        let value: serde_json::Value = serde_json::from_str(json).expect("DynamoDB JSON");
        let item = kairos_store::item_from_json(&value).expect("an item in DynamoDB JSON");
        let put = self
            .dynamodb
            .put_item()
            .table_name(&self.infra.table)
            .set_item(Some(item));
        put.send().await.expect("raw item written");
    }

    /// The item stored under partition key `pk` (e.g. `contact#ada@x.test`), as it is.
    pub async fn raw_item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        let get = self.dynamodb.get_item().table_name(&self.infra.table);
        let out = get
            .key("pk", AttributeValue::S(pk.into()))
            .send()
            .await
            .expect("item read");
        out.item
    }

    /// Deletes every item whose key starts with `prefix` (e.g. `contact#`)
    /// and whose `expires_at` is before `now`, as DynamoDB's TTL process
    /// eventually does; returns them as they were ([`ttl_stream`] reports them).
    pub async fn expire_items(&self, prefix: &str, now: i64) -> Vec<HashMap<String, AttributeValue>> {
        let scan = self
            .dynamodb
            .scan()
            .table_name(&self.infra.table)
            .send()
            .await
            .expect("scan");
        let mut deleted = Vec::new();
        for item in scan.items() {
            let expires = item.get("expires_at").and_then(|v| v.as_n().ok()?.parse::<i64>().ok());
            let key = item.get("pk").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
            if key.starts_with(prefix) && expires.is_some_and(|t| t < now) {
                let delete = self.dynamodb.delete_item().table_name(&self.infra.table);
                delete.key("pk", item["pk"].clone()).send().await.expect("item deleted");
                deleted.push(item.clone());
            }
        }
        deleted
    }

    /// Runs the evaluate handler on `messages` with `rules` over the stack's
    /// store and write-back queue.
    pub async fn evaluate(
        &self,
        rules: &RuleSet,
        messages: &[aws_sdk_sqs::types::Message],
        now: chrono::DateTime<chrono::Utc>,
    ) -> SqsBatchResponse {
        let (store, queue) = (self.store(), self.queue("WritebackQueue"));
        let evaluator = Evaluator::new(rules, &store, &queue);
        kairos_evaluate::handle(sqs_event(messages), &evaluator, now).await
    }
}

impl Stack {
    /// The decide function's store (decisions, send logs, counters) over the template's table.
    pub fn decisions(&self) -> kairos_decide_fn::DynamoDecisions {
        kairos_decide_fn::DynamoDecisions::new(self.dynamodb.clone(), &self.infra.table)
    }

    /// Applies canonical events (JSON) through the events queue and the real
    /// evaluate handler, as the pipeline does, at `now`.
    pub async fn apply(&self, rules: &RuleSet, bodies: &[String], now: chrono::DateTime<chrono::Utc>) {
        self.send("EventsQueue", bodies).await;
        let messages = self.receive("EventsQueue", bodies.len()).await;
        assert_eq!(messages.len(), bodies.len(), "every event is received");
        let response = self.evaluate(rules, &messages, now).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{:?}",
            response.batch_item_failures
        );
        self.ack("EventsQueue", &messages, &response).await;
    }
}

/// An attribute value as DynamoDB JSON (`{"S": ...}`, `{"B": <base64>}`, ...),
/// as a stream record carries it.
fn attribute_json(value: &AttributeValue) -> serde_json::Value {
    use base64::Engine;
    let b64 = |b: &Blob| serde_json::json!(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    match value {
        AttributeValue::S(s) => serde_json::json!({ "S": s }),
        AttributeValue::N(n) => serde_json::json!({ "N": n }),
        AttributeValue::B(b) => serde_json::json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => serde_json::json!({ "BOOL": b }),
        AttributeValue::Null(_) => serde_json::json!({ "NULL": true }),
        AttributeValue::Ss(v) => serde_json::json!({ "SS": v }),
        AttributeValue::Ns(v) => serde_json::json!({ "NS": v }),
        AttributeValue::Bs(v) => serde_json::json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => serde_json::json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => serde_json::json!({ "M": item_json(m) }),
        other => panic!("no DynamoDB JSON for {other:?}"),
    }
}

/// An item as DynamoDB JSON.
pub fn item_json(item: &HashMap<String, AttributeValue>) -> serde_json::Value {
    item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect()
}

/// The contacts table's stream batch (the Lambda event) reporting `items`
/// deleted by the table's TTL, with their old images, sequence numbers
/// 1, 2, ... in order.
pub fn ttl_stream(items: &[HashMap<String, AttributeValue>]) -> serde_json::Value {
    let record = |(i, item): (usize, &HashMap<String, AttributeValue>)| {
        serde_json::json!({
            "eventID": format!("e{i}"),
            "eventName": "REMOVE",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            "dynamodb": {
                "Keys": {"pk": attribute_json(&item["pk"])},
                "OldImage": item_json(item),
                "SequenceNumber": (i + 1).to_string(),
                "StreamViewType": "OLD_IMAGE"
            }
        })
    };
    serde_json::json!({ "Records": items.iter().enumerate().map(record).collect::<Vec<_>>() })
}

/// The ids a batch handler reported as failed.
pub fn failed(response: &SqsBatchResponse) -> Vec<String> {
    let failures = response.batch_item_failures.iter();
    failures.map(|f| f.item_identifier.clone()).collect()
}

/// A canonical event's JSON.
pub fn event_json(id: &str, contact: &str, kind: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{}","source":"api"}}"#,
        at.to_rfc3339()
    )
}

/// An SQS batch (official fixture shape) carrying these bodies, with message ids `m0`, `m1`, ...
pub fn batch(bodies: &[String]) -> SqsEvent {
    let messages: Vec<aws_sdk_sqs::types::Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            aws_sdk_sqs::types::Message::builder()
                .message_id(format!("m{i}"))
                .body(b)
                .build()
        })
        .collect();
    sqs_event(&messages)
}
