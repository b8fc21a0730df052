//! Shared pieces of the integration tests: moto, the infra from the template
//! ([`Stack`]), official Lambda event fixtures, SQS helpers, and a local
//! webhook receiver. Every integration test sets up through these.
#![allow(dead_code)]

pub mod admin;
pub mod archive;
pub mod browser;
pub mod cognito;
pub mod console;
pub mod crm;
mod evaluation;
pub mod faults;
pub mod moto;
pub mod proxy;
pub mod sim;
mod stack;
pub mod sweep;
pub mod writeback;

#[allow(unused_imports)] // each test file uses its own part
pub use evaluation::{default_rules, Evaluation};
#[allow(unused_imports)]
pub use stack::{batch, event_json, failed, ttl_stream, Stack};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::Method;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::Sha256;
use std::sync::{Arc, Mutex};

pub const SQS_FIXTURE: &str = include_str!("../fixtures/example-sqs-event.json");
pub const APIGW_FIXTURE: &str = include_str!("../fixtures/example-apigw-v2-request-no-authorizer.json");

/// The official API Gateway v2 fixture, turned into a POST to `path` with `body`.
pub fn apigw_post(path: &str, body: &str) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(APIGW_FIXTURE).unwrap();
    req.request_context.http.method = Method::POST;
    req.request_context.http.path = Some(path.to_string());
    req.raw_path = Some(path.to_string());
    req.route_key = Some(format!("POST {path}"));
    req.body = Some(body.to_string());
    req
}

/// Adds SendGrid's signature headers for `body` signed at `timestamp`.
pub fn sign_sendgrid(req: &mut ApiGatewayV2httpRequest, key: &SigningKey, timestamp: i64) {
    let body = req.body.clone().unwrap_or_default();
    let signature: Signature = key.sign(format!("{timestamp}{body}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    req.headers
        .insert("x-twilio-email-event-webhook-signature", b64.parse().unwrap());
    req.headers.insert(
        "x-twilio-email-event-webhook-timestamp",
        timestamp.to_string().parse().unwrap(),
    );
}

/// Receives up to `max` messages (waiting briefly), as Lambda's poller would.
pub async fn receive(client: &aws_sdk_sqs::Client, url: &str, max: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..5 {
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((max - out.len()).min(10) as i32)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        out.extend(got.messages().iter().cloned());
        if out.len() >= max {
            break;
        }
    }
    out
}

/// An SQS event in the shape of the official fixture, carrying these messages.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let fixture: SqsEvent = serde_json::from_str(SQS_FIXTURE).unwrap();
    let template: SqsMessage = fixture.records[0].clone();
    let mut event = fixture;
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = template.clone();
            r.message_id = m.message_id().map(str::to_string);
            r.receipt_handle = m.receipt_handle().map(str::to_string);
            r.body = m.body().map(str::to_string);
            // As Lambda's poller passes them: string attributes by name.
            r.message_attributes = Default::default();
            for (name, value) in m.message_attributes().into_iter().flatten() {
                let mut a = aws_lambda_events::sqs::SqsMessageAttribute::default();
                a.string_value = value.string_value().map(str::to_string);
                a.data_type = Some(value.data_type().to_string());
                r.message_attributes.insert(name.clone(), a);
            }
            r
        })
        .collect();
    event
}

/// Deletes the messages a handler did not report as failed, as Lambda does.
pub async fn ack(client: &aws_sdk_sqs::Client, url: &str, messages: &[aws_sdk_sqs::types::Message], failed: &[String]) {
    for m in messages {
        if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// A local HTTPS-less webhook receiver that verifies Standard Webhooks signatures.
#[derive(Default)]
pub struct Receiver {
    pub received: Mutex<Vec<serde_json::Value>>,
    pub bad_signatures: Mutex<usize>,
}

pub async fn serve_webhook(secret: &'static [u8]) -> (String, Arc<Receiver>) {
    use axum::http::{HeaderMap, StatusCode};
    let receiver = Arc::new(Receiver::default());
    let r = receiver.clone();
    let app = axum::Router::new().route(
        "/crm",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
                mac.update(format!("{}.{}.{body}", header("webhook-id"), header("webhook-timestamp")).as_bytes());
                let expected = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                );
                if header("webhook-signature") != expected {
                    *r.bad_signatures.lock().unwrap() += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                r.received.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}
