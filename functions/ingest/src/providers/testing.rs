//! Helpers for provider tests that go through the route ([`crate::handle`]):
//! every provider's `tests.rs` posts through [`post`] and [`route`].

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use kairos_event::Event;
use kairos_store::{MemoryClaims, MemoryQueue};
use serde_json::Value;

use crate::webhook::Webhook;
use crate::{handle, Ingest, IngestConfig};

/// A fixture from `tests/fixtures/esp/` as JSON.
pub fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// A POST to `/webhooks/<name>` with `body` and `headers`.
pub fn post(name: &str, body: &str, headers: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some(format!("/webhooks/{name}"));
    req.body = Some(body.to_string());
    for (name, value) in headers {
        let name = aws_lambda_events::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        req.headers.insert(name, value.parse().expect("header value"));
    }
    req
}

/// What the route answered, and what it enqueued.
#[derive(Debug)]
pub struct Outcome {
    /// The status code.
    pub status: i64,
    /// The JSON body.
    pub body: Value,
    /// The events enqueued.
    pub events: Vec<Event>,
}

/// Sends `req` through the route with only `hook` configured.
pub async fn route(hook: Arc<dyn Webhook>, req: ApiGatewayV2httpRequest, claims: &MemoryClaims, now: i64) -> Outcome {
    let config = IngestConfig {
        webhooks: vec![hook],
        ..IngestConfig::default()
    };
    let queue = MemoryQueue::default();
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims,
    };
    let resp = handle(req, &ingest, now).await;
    let body = match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("JSON reply"),
        other => panic!("unexpected body {other:?}"),
    };
    let events = queue
        .drain()
        .iter()
        .map(|m| Event::from_json(m.body.as_bytes()).expect("queued event"))
        .collect();
    Outcome {
        status: resp.status_code,
        body,
        events,
    }
}
