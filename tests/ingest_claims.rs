//! Ingest's adapters over moto server (real DynamoDB and SQS wire protocols):
//! one-time-token claims taken as pending then confirmed, and a full Segment
//! batch sent to SQS in concurrent chunks.

mod support;

use kairos_ingest::{Ingest, IngestConfig, CLAIM_PENDING_SECS};
use kairos_store::{Claimed, Claims};
use support::{apigw_post, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_pending_until_confirmed_and_a_lapsed_pending_claim_is_free_again() {
    let stack = Stack::start().await;
    let claims = stack.claims();
    let now = 1_796_000_000;
    let pending_until = now + CLAIM_PENDING_SECS;
    assert_eq!(
        claims.claim("ses:m1", pending_until, now).await.unwrap(),
        Claimed::Fresh
    );
    assert_eq!(
        claims.claim("ses:m1", pending_until, now + 1).await.unwrap(),
        Claimed::Pending
    );
    // The request died: its pending claim lapses and the retry takes it.
    let retry = now + CLAIM_PENDING_SECS + 1;
    assert_eq!(
        claims.claim("ses:m1", retry + CLAIM_PENDING_SECS, retry).await.unwrap(),
        Claimed::Fresh
    );
    claims.confirm("ses:m1", now + 300).await.unwrap();
    assert_eq!(
        claims.claim("ses:m1", retry + 20, retry + 5).await.unwrap(),
        Claimed::Done
    );
    claims.release("ses:m1").await.unwrap();
    assert_eq!(
        claims.claim("ses:m1", retry + 20, retry + 5).await.unwrap(),
        Claimed::Fresh
    );

    // A claim the previous release wrote (no `state`) was taken after its enqueue: done.
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.infra.table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("claim#resend:old".into()),
        )
        .item(
            "expires_at",
            aws_sdk_dynamodb::types::AttributeValue::N((now + 300).to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        claims.claim("resend:old", pending_until, now).await.unwrap(),
        Claimed::Done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_segment_batch_reaches_sqs_in_concurrent_chunks() {
    let stack = Stack::start().await;
    let queue = stack.queue("EventsQueue");
    let config = IngestConfig {
        write_keys: vec!["wk".into()],
        ..IngestConfig::default()
    };
    let calls: Vec<serde_json::Value> = (0..kairos_ingest::tracking::MAX_BATCH_CALLS)
        .map(|i| serde_json::json!({"type": "track", "messageId": format!("m{i}"), "userId": format!("u{}", i % 50), "event": "E"}))
        .collect();
    let body = serde_json::json!({"writeKey": "wk", "batch": calls}).to_string();
    let claims = kairos_store::MemoryClaims::default();
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    let response = kairos_ingest::handle(apigw_post("/v1/batch", &body), &ingest, chrono::Utc::now().timestamp()).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    assert_eq!(
        stack.depth("EventsQueue").await,
        kairos_ingest::tracking::MAX_BATCH_CALLS
    );
}

/// An SQS endpoint that answers `SendMessageBatch` only once a second request is
/// in flight (or after a second alone), recording the most requests in flight.
async fn counting_sqs() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = most.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let (now, most) = (now.clone(), most.clone());
        async move {
            let here = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(here, Ordering::SeqCst);
            for _ in 0..100 {
                if now.load(Ordering::SeqCst) >= 2 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let entries = request["Entries"].as_array().cloned().unwrap_or_default();
            let ok: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| serde_json::json!({"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "x"}))
                .collect();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            (
                [("content-type", "application/x-amz-json-1.0")],
                serde_json::json!({"Successful": ok, "Failed": []}).to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Before, chunks were sent one after another: never two requests in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_chunks_are_sent_concurrently() {
    let (endpoint, most) = counting_sqs().await;
    let aws = kairos::local::sdk_config(&endpoint).await;
    let queue = kairos_store::SqsQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        format!("{endpoint}/000000000000/events"),
    );
    let messages: Vec<kairos_store::Message> = (0..30)
        .map(|i| kairos_store::Message {
            id: i.to_string(),
            body: format!("{{\"n\":{i}}}"),
        })
        .collect();
    kairos_store::Queue::send(&queue, &messages).await.unwrap();
    assert!(
        most.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "three chunks, sent at once"
    );
}
