//! The webhook against a real local HTTP server that checks the signature.

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{Hmac, Mac};
use kairos_event::{Change, Transition};
use kairos_store::MemoryLedger;
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::file::Segments;
use crate::http::ReqwestTransport;
use crate::{drive, Clock, Config, Destination, Final, ManualClock, Outcome, Policy, WebhookDestination, Write};

const SECRET: &[u8] = b"0123456789abcdef-test-secret";

/// Answers from a script (then 200), counting signed requests.
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    received: Mutex<Vec<serde_json::Value>>,
    bad_signatures: Mutex<usize>,
}

async fn serve(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = receiver.clone();
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
                mac.update(format!("{}.{}.{body}", header("webhook-id"), header("webhook-timestamp")).as_bytes());
                let expected = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                );
                if header("webhook-signature") != expected {
                    *r.bad_signatures.lock().unwrap() += 1;
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let (status, retry_after) = r.script.lock().unwrap().pop_front().unwrap_or((200, None));
                if status == 200 {
                    r.received.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                }
                let mut response = StatusCode::from_u16(status).unwrap().into_response();
                if let Some(v) = retry_after {
                    response.headers_mut().insert("retry-after", v.parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn write(segment: &str, version: u64) -> Write {
    let t = Transition {
        contact: "ada@example.com".into(),
        segment: segment.into(),
        change: Change::Entered,
        rule_version: "abcd1234".into(),
        state_version: version,
        at: "2026-11-27T10:00:00Z".parse().unwrap(),
        trigger: None,
        summary: "s".into(),
        explanation: serde_json::json!({}),
        members: Some(vec!["other".into(), segment.into()]),
    };
    Write {
        contact: t.contact.clone(),
        version,
        redrive: false,
        members: vec![segment.into()],
        transitions: vec![t],
    }
}

fn webhook(url: String, clock: Arc<ManualClock>) -> WebhookDestination<ReqwestTransport> {
    let transport = ReqwestTransport::new(Config::http_client(std::time::Duration::from_secs(5)));
    let id = ("webhook".to_string(), Segments::All);
    WebhookDestination::new(
        id,
        transport,
        url,
        SECRET.to_vec(),
        (Policy::default(), clock as Arc<dyn Clock>),
    )
}

#[tokio::test]
async fn posts_signed_with_the_destinations_members_and_waits_out_retry_after() {
    let receiver = Arc::new(Receiver::default());
    receiver.script.lock().unwrap().extend([(429, Some("3")), (503, None)]);
    let clock = Arc::new(ManualClock::at(1_795_773_600_000));
    let hook = webhook(serve(receiver.clone()).await, clock.clone());
    let start = clock.now_ms();
    let (finals, retries) = drive(
        &hook,
        &[write("vip", 4)],
        &MemoryLedger::default(),
        clock.as_ref(),
        start + 60_000,
    )
    .await;
    assert_eq!(finals, [Final::Done]);
    assert_eq!(retries, 2, "the 429 and the 503 were each retried");
    assert!(clock.now_ms() >= start + 3_000, "Retry-After: 3 was honoured");
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["type"], "segment.entered");
    assert_eq!(
        received[0]["data"]["members"],
        serde_json::json!(["vip"]),
        "only this destination's segments"
    );
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_4xx_is_permanent_and_an_unreachable_endpoint_retryable() {
    let receiver = Arc::new(Receiver::default());
    receiver.script.lock().unwrap().push_back((422, None));
    let clock = Arc::new(ManualClock::at(1_795_773_600_000));
    let hook = webhook(serve(receiver).await, clock.clone());
    assert!(matches!(&hook.write(&[write("a", 1)]).await[..], [Outcome::Permanent(r)] if r.starts_with("HTTP 422")));
    let down = webhook("http://127.0.0.1:9/hook".into(), clock);
    assert!(matches!(
        &down.write(&[write("a", 1)]).await[..],
        [Outcome::Retry { .. }]
    ));
}
