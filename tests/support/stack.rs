//! [`Stack`]: moto server holding the template's table and queues, the SDK
//! clients and the real adapters over them, as the deployed functions build them.

use super::{ack, moto::Moto, receive, sqs_event};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use kairos::local::{self as infra, Infra};
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;
use kairos_store::{DynamoClaims, DynamoContacts, DynamoLedger, SqsQueue};

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

    /// The contact store over the template's table.
    pub fn store(&self) -> DynamoContacts {
        DynamoContacts::new(self.dynamodb.clone(), &self.infra.table)
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

    /// Runs the evaluate handler on `messages` with `rules` over the stack's
    /// store and write-back queue.
    pub async fn evaluate(
        &self,
        rules: &RuleSet,
        messages: &[aws_sdk_sqs::types::Message],
        now: chrono::DateTime<chrono::Utc>,
    ) -> SqsBatchResponse {
        let (store, queue) = (self.store(), self.queue("WritebackQueue"));
        let evaluator = Evaluator {
            rules,
            store: &store,
            queue: &queue,
        };
        kairos_evaluate::handle(sqs_event(messages), &evaluator, now).await
    }
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
