//! Tests against a real local HTTP server that checks the signature itself.

use super::*;
use aws_lambda_events::sqs::SqsMessage;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{Hmac, Mac};
use kairos_event::Change;
use kairos_store::MemoryLedger;
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"0123456789abcdef-test-secret";

/// What the receiver got, and the responses it will give, in order (then 200).
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    received: Mutex<Vec<serde_json::Value>>,
    bad_signatures: Mutex<usize>,
}

async fn serve(receiver: Arc<Receiver>) -> String {
    let r = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let (id, ts) = (header("webhook-id"), header("webhook-timestamp"));
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
                mac.update(format!("{id}.{ts}.{body}").as_bytes());
                let expected = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                );
                if !header("webhook-signature").split(' ').any(|s| s == expected) {
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

fn transition(segment: &str, version: u64) -> Transition {
    Transition {
        contact: "ada@example.com".into(),
        segment: segment.into(),
        change: Change::Entered,
        rule_version: "abcd1234".into(),
        state_version: version,
        at: "2026-11-27T10:00:00Z".parse().unwrap(),
        trigger: None,
        summary: "email.clicked within 2d = 1 [count >= 1: yes]".into(),
        explanation: serde_json::json!({"condition": "email.clicked within 2d", "result": true}),
        members: None,
    }
}

fn batch(items: &[(&str, String)]) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = items
        .iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(id.to_string());
            m.body = Some(body.clone());
            m
        })
        .collect();
    e
}

fn destination(url: String, attempts: u32) -> WebhookDestination {
    let backoff = Backoff {
        max_attempts: attempts,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    WebhookDestination::new(client, url, SECRET.to_vec(), backoff)
}

fn failed(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn delivers_signed_and_drops_repeats_and_stale_versions() {
    let receiver = Arc::new(Receiver::default());
    let dest = destination(serve(receiver.clone()).await, 3);
    let ledger = MemoryLedger::default();
    let wb = Writeback {
        destination: &dest,
        ledger: &ledger,
    };
    let t3 = transition("engaged-reader", 3).to_json();
    let response = handle(batch(&[("m1", t3.clone()), ("m2", "{oops".into())]), &wb).await;
    assert_eq!(failed(&response), ["m2"]);
    // The same transition again, and an older one for the same segment: both dropped.
    let t2 = transition("engaged-reader", 2).to_json();
    assert!(failed(&handle(batch(&[("m3", t3), ("m4", t2)]), &wb).await).is_empty());
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["type"], "segment.entered");
    assert_eq!(received[0]["data"]["state_version"], 3);
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
}

#[tokio::test]
async fn retries_429_and_5xx_honouring_retry_after() {
    let receiver = Arc::new(Receiver::default());
    receiver.script.lock().unwrap().extend([(429, Some("1")), (503, None)]);
    let dest = destination(serve(receiver.clone()).await, 3);
    let ledger = MemoryLedger::default();
    let started = Instant::now();
    let response = handle(
        batch(&[("m1", transition("s", 1).to_json())]),
        &Writeback {
            destination: &dest,
            ledger: &ledger,
        },
    )
    .await;
    assert!(failed(&response).is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(receiver.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn gives_up_after_the_attempts_and_on_permanent_4xx() {
    let receiver = Arc::new(Receiver::default());
    receiver
        .script
        .lock()
        .unwrap()
        .extend([(500, None), (500, None), (422, None)]);
    let dest = destination(serve(receiver.clone()).await, 2);
    let ledger = MemoryLedger::default();
    let wb = Writeback {
        destination: &dest,
        ledger: &ledger,
    };
    let response = handle(
        batch(&[
            ("m1", transition("a", 1).to_json()),
            ("m2", transition("b", 1).to_json()),
        ]),
        &wb,
    )
    .await;
    assert_eq!(failed(&response), ["m1", "m2"]);
    assert!(receiver.script.lock().unwrap().is_empty(), "m1 tried twice, m2 once");
    // A redelivery (as SQS does) succeeds now and is recorded.
    assert!(failed(&handle(batch(&[("m1", transition("a", 1).to_json())]), &wb).await).is_empty());
    assert_eq!(ledger.delivered("webhook:ada@example.com:a").await.unwrap(), Some(1));
}

#[tokio::test]
async fn unreachable_endpoint_is_retryable() {
    let dest = destination("http://127.0.0.1:9/hook".into(), 1);
    let results = dest.deliver(&[transition("s", 1)]).await;
    assert!(
        matches!(&results[0], Err(DeliveryError::Retryable { .. })),
        "{results:?}"
    );
}

#[test]
fn config_reads_the_secret_and_names_bad_variables() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    };
    let ok = Config::from_env(env(&[
        ("KAIROS_TABLE", "t"),
        ("KAIROS_WEBHOOK_URL", "https://crm.test/hook"),
        ("KAIROS_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ]))
    .unwrap();
    assert_eq!(ok.secret_bytes().unwrap().len(), 24);
    assert!(!format!("{ok:?}").contains("MfKQ9r8"));
    let bad = Config::from_env(env(&[
        ("KAIROS_TABLE", "t"),
        ("KAIROS_WEBHOOK_URL", "ftp://x"),
        ("KAIROS_WEBHOOK_SECRET", "s"),
    ]));
    assert!(bad.unwrap_err().to_string().contains("KAIROS_WEBHOOK_URL"));
}
