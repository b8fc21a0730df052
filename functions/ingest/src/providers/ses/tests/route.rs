//! The ses route through [`crate::handle`]: statuses, claims and enqueueing.

use super::Ses;
use super::{signed, Recording, OPEN, TOPIC};
use crate::{handle, Ingest, IngestConfig, Webhook};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use kairos_event::{Event, EventType};
use kairos_store::{MemoryClaims, MemoryQueue, Message, Queue, QueueError};
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: i64 = 1_796_000_000;

fn request(kind: &str, body: &str) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some("/webhooks/ses".into());
    req.headers.insert("x-amz-sns-message-type", kind.parse().unwrap());
    req.headers
        .insert("content-type", "text/plain; charset=UTF-8".parse().unwrap());
    req.body = Some(body.to_string());
    req
}

fn config(source: &Arc<Recording>) -> IngestConfig {
    let ses = Ses::new(vec![TOPIC.into()], source.clone(), 300);
    IngestConfig {
        webhooks: vec![Arc::new(ses) as Arc<dyn Webhook>],
        ..IngestConfig::default()
    }
}

fn body_json(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

async fn send<Q: Queue>(
    config: &IngestConfig,
    queue: &Q,
    claims: &MemoryClaims,
    kind: &str,
    body: &str,
) -> ApiGatewayV2httpResponse {
    let ingest = Ingest { config, queue, claims };
    handle(request(kind, body), &ingest, NOW).await
}

#[tokio::test]
async fn notification_is_enqueued_once_and_other_topics_are_refused() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let body = signed("Notification", TOPIC, "sns-1", OPEN);
    let resp = send(&config, &queue, &claims, "Notification", &body).await;
    assert_eq!(
        (resp.status_code, body_json(&resp)),
        (200, json!({"accepted": 1, "rejected": 0}))
    );
    let events: Vec<Event> = queue
        .drain()
        .iter()
        .map(|m| Event::from_json(m.body.as_bytes()).unwrap())
        .collect();
    assert_eq!(events[0].kind, EventType::EmailOpened);
    assert_eq!(events[0].id, "sns-1:recipient@example.com");
    // The signature covers the message: a repeat is SNS retrying after a lost
    // answer, acknowledged without enqueueing again.
    let repeat = send(&config, &queue, &claims, "Notification", &body).await;
    assert_eq!(
        (repeat.status_code, body_json(&repeat)),
        (200, json!({"accepted": 0, "duplicate": true}))
    );
    assert!(queue.is_empty());
    let other = signed(
        "Notification",
        "arn:aws:sns:us-east-1:123456789012:other",
        "sns-2",
        OPEN,
    );
    let resp = send(&config, &queue, &claims, "Notification", &other).await;
    assert_eq!(
        (resp.status_code, body_json(&resp)),
        (401, json!({"error": "unauthorized"}))
    );
    assert!(queue.is_empty());
    assert_eq!(
        source.calls().len(),
        1,
        "one certificate fetch, none for the other topic"
    );
}

#[tokio::test]
async fn confirmations_answer_200_and_bad_messages_400() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let body = signed(
        "SubscriptionConfirmation",
        TOPIC,
        "sns-1",
        "You have chosen to subscribe",
    );
    let resp = send(&config, &queue, &claims, "SubscriptionConfirmation", &body).await;
    assert_eq!((resp.status_code, body_json(&resp)), (200, json!({"confirmed": TOPIC})));
    let body = signed("UnsubscribeConfirmation", TOPIC, "sns-2", "You have unsubscribed");
    let resp = send(&config, &queue, &claims, "UnsubscribeConfirmation", &body).await;
    assert_eq!(resp.status_code, 200);
    let body = signed("Notification", TOPIC, "sns-3", "not an SES record");
    let resp = send(&config, &queue, &claims, "Notification", &body).await;
    assert_eq!(resp.status_code, 400);
    let test = r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}"#;
    let resp = send(
        &config,
        &queue,
        &claims,
        "Notification",
        &signed("Notification", TOPIC, "sns-4", test),
    )
    .await;
    assert_eq!(
        (resp.status_code, body_json(&resp)),
        (200, json!({"accepted": 0, "rejected": 0}))
    );
    assert!(queue.is_empty());
}

#[tokio::test]
async fn a_partly_bad_record_keeps_its_good_recipients_with_200() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let record = json!({
        "eventType": "Complaint",
        "complaint": {"timestamp": "2026-11-28T09:05:00Z", "complainedRecipients": [{"emailAddress": "a@example.com"}, {}]},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "m", "destination": ["a@example.com"]}
    });
    let body = signed("Notification", TOPIC, "sns-1", &record.to_string());
    let resp = send(&config, &queue, &claims, "Notification", &body).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(body_json(&resp)["accepted"], 1);
    assert_eq!(queue.len(), 1);
}

struct DownQueue;

impl Queue for DownQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        Err(QueueError {
            failed: messages.iter().map(|m| m.id.clone()).collect(),
            reason: "throttled".into(),
        })
    }
}

#[tokio::test]
async fn after_a_503_the_sns_redelivery_is_accepted() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let body = signed("Notification", TOPIC, "sns-1", OPEN);
    let resp = send(&config, &DownQueue, &claims, "Notification", &body).await;
    assert_eq!(resp.status_code, 503);
    let retry = send(&config, &queue, &claims, "Notification", &body).await;
    assert_eq!(retry.status_code, 200);
    assert_eq!(queue.len(), 1);
}

async fn send_at<Q: Queue>(
    config: &IngestConfig,
    queue: &Q,
    claims: &MemoryClaims,
    body: &str,
    at: i64,
) -> ApiGatewayV2httpResponse {
    let ingest = Ingest { config, queue, claims };
    handle(request("Notification", body), &ingest, at).await
}

/// A queue whose send never completes: the invocation dies (times out) before
/// its events are enqueued, and the handler's future is dropped.
struct Hangs;

impl Queue for Hangs {
    async fn send(&self, _: &[Message]) -> Result<(), QueueError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Before, the claim outlived the dead request and SNS's redelivery was
/// answered `200 duplicate`: the notification was never enqueued.
#[tokio::test]
async fn a_request_that_dies_before_enqueueing_does_not_make_the_retry_a_duplicate() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let body = signed("Notification", TOPIC, "sns-dies", OPEN);
    let dying = send_at(&config, &Hangs, &claims, &body, NOW);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(20), dying)
        .await
        .is_err());
    let early = send_at(&config, &queue, &claims, &body, NOW + 1).await;
    assert_eq!(early.status_code, 503, "still pending: SNS retries a 5xx later");
    let retry = send_at(&config, &queue, &claims, &body, NOW + crate::CLAIM_PENDING_SECS + 1).await;
    assert_eq!(
        (retry.status_code, body_json(&retry)),
        (200, json!({"accepted": 1, "rejected": 0}))
    );
    assert_eq!(queue.len(), 1);
    let repeat = send_at(&config, &queue, &claims, &body, NOW + 60).await;
    assert_eq!(
        body_json(&repeat),
        json!({"accepted": 0, "duplicate": true}),
        "confirmed after the enqueue"
    );
}

/// A queue that takes the messages, then reports a failure (a lost answer).
#[derive(Default)]
struct AcceptsThenFails(MemoryQueue);

impl Queue for AcceptsThenFails {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        self.0.send(messages).await?;
        Err(QueueError {
            failed: messages.iter().map(|m| m.id.clone()).collect(),
            reason: "connection reset after the request was sent".into(),
        })
    }
}

#[tokio::test]
async fn a_queue_that_fails_after_accepting_gets_the_retry_enqueued_again() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, claims, flaky) = (config(&source), MemoryClaims::default(), AcceptsThenFails::default());
    let body = signed("Notification", TOPIC, "sns-flaky", OPEN);
    assert_eq!(send_at(&config, &flaky, &claims, &body, NOW).await.status_code, 503);
    let retry = send_at(&config, &flaky.0, &claims, &body, NOW + 1).await;
    assert_eq!(retry.status_code, 200);
    let ids: Vec<String> = flaky
        .0
        .drain()
        .into_iter()
        .map(|m| Event::from_json(m.body.as_bytes()).unwrap().id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the same event twice: evaluate dedupes it by id");
}

/// Before, a failed certificate fetch answered 401 and SNS, which does not retry
/// client errors, dropped the notification; and every request fetched again.
#[tokio::test]
async fn an_unfetchable_certificate_answers_503_and_is_not_fetched_again_for_a_while() {
    let source = Arc::new(Recording::default());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let body = signed("Notification", TOPIC, "sns-cert", OPEN);
    for at in [NOW, NOW + 1, NOW + 30] {
        let resp = send_at(&config, &queue, &claims, &body, at).await;
        assert_eq!(resp.status_code, 503, "at {at}");
    }
    assert_eq!(source.calls().len(), 1, "a failed fetch is remembered");
    let later = send_at(
        &config,
        &queue,
        &claims,
        &body,
        NOW + crate::providers::ses::cert::FAILED_FETCH_SECS,
    )
    .await;
    assert_eq!(later.status_code, 503);
    assert_eq!(source.calls().len(), 2, "and retried once it is old");
    assert!(queue.is_empty());
}

/// Made-up certificate names under a configured topic (SNS answers 404) are
/// remembered one by one: they do not fill the limit of failing fetches and
/// hold up a real notification.
#[tokio::test]
async fn certificates_sns_does_not_have_do_not_hold_up_the_real_one() {
    let source = Arc::new(Recording::with_test_cert());
    let (config, queue, claims) = (config(&source), MemoryQueue::default(), MemoryClaims::default());
    let real = signed("Notification", TOPIC, "sns-real", OPEN);
    for i in 0..2 * crate::providers::ses::cert::MAX_FAILED {
        let mut forged: Value = serde_json::from_str(&real).unwrap();
        forged["MessageId"] = json!(format!("sns-forged-{i}"));
        forged["SigningCertURL"] = json!(format!(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i:032x}.pem"
        ));
        let resp = send_at(&config, &queue, &claims, &forged.to_string(), NOW).await;
        assert_eq!(resp.status_code, 503, "forged {i}");
    }
    let resp = send_at(&config, &queue, &claims, &real, NOW + 1).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(queue.len(), 1);
}
