//! The write-back handler through moto SQS (the template's queues) with two
//! destinations, one failing permanently: the other is written, the failure
//! is dead-lettered at once with its destination and reason, and after a fix
//! `kairos dlq redrive` sends it back to that destination only.

use crate::harness::transition;
use crate::support::crm::hubspot::{HubSpot, TOKEN};
use crate::support::crm::{clock, Faults};
use crate::support::writeback::destinations;
use crate::support::{failed, serve_webhook, Stack};
use base64::Engine;
use kairos_event::{Change, WritebackMessage};
use std::sync::Arc;

const SECRET: &[u8] = b"moto-two-destinations-secret";

fn file(hook: &str, hubspot: &str) -> String {
    format!(
        "destinations:\n\
         - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /t/w}}, mapping: {{url: \"{hook}\"}}}}\n\
         - {{name: hubspot, kind: hubspot, segments: [sales-ready], credentials: {{token: /t/h}}, mapping: {{base_url: \"{hubspot}\"}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_destinations_one_failing_permanently_then_redriven_after_a_fix() {
    let stack = Stack::start().await;
    let hs = Arc::new(HubSpot::new(&["sales-ready"], &[], &[], Faults::none(), clock()));
    let (hs_url, (hook, receiver)) = (hs.serve().await, serve_webhook(SECRET).await);
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(SECRET));
    let revoked = destinations(&file(&hook, &hs_url), &[("/t/w", &secret), ("/t/h", "pat-na1-revoked")]).await;

    let t = transition(
        "ada@example.com",
        "sales-ready",
        Change::Entered,
        3,
        &["sales-ready".to_string()],
    );
    stack
        .send("WritebackQueue", &[WritebackMessage::transition_body(&t)])
        .await;
    let messages = stack.receive("WritebackQueue", 1).await;
    let response = stack.writeback(&revoked, &messages).await;
    assert!(
        failed(&response).is_empty(),
        "acknowledged: dead-lettered, not redelivered"
    );
    stack.ack("WritebackQueue", &messages, &response).await;
    assert_eq!(receiver.received.lock().unwrap().len(), 1, "the webhook was written");
    assert_eq!(
        receiver.received.lock().unwrap()[0]["data"]["members"],
        serde_json::json!(["sales-ready"])
    );

    let (dlq, queue) = (stack.url("WritebackDeadLetterQueue"), stack.url("WritebackQueue"));
    let letters = kairos::dlq::show(&stack.sqs, dlq, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["destination"], "hubspot");
    assert_eq!(letters[0]["contact"], "ada@example.com");
    assert_eq!(letters[0]["state_version"], 3);
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("HTTP 401") && reason.contains("INVALID_AUTHENTICATION"),
        "{reason}"
    );

    // The token is fixed; the dead letter goes back, for HubSpot only.
    let fixed = destinations(&file(&hook, &hs_url), &[("/t/w", &secret), ("/t/h", TOKEN)]).await;
    assert_eq!(
        kairos::dlq::redrive(&stack.sqs, dlq, queue, Some("hubspot"), 10)
            .await
            .unwrap(),
        1
    );
    let messages = stack.receive("WritebackQueue", 1).await;
    assert_eq!(messages.len(), 1);
    let response = stack.writeback(&fixed, &messages).await;
    assert!(failed(&response).is_empty());
    stack.ack("WritebackQueue", &messages, &response).await;
    assert_eq!(hs.segments()["ada@example.com"], "sales-ready");
    assert_eq!(
        receiver.received.lock().unwrap().len(),
        1,
        "the webhook is not sent it again"
    );
    assert!(kairos::dlq::show(&stack.sqs, dlq, 10).await.unwrap().is_empty());
    assert!(stack.receive("WritebackQueue", 1).await.is_empty());
}
