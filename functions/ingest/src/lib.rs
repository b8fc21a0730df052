//! The ingest stage: API Gateway HTTP API (payload v2) requests in, canonical
//! events onto the events queue, a fast 2xx out.
//!
//! Routes:
//! - `POST /v1/events`: one canonical event or `{"batch": [...]}`, with `x-api-key`;
//! - `POST /webhooks/sendgrid`: SendGrid's signed Event Webhook (ECDSA P-256).
//!
//! Main items: [`handle`] (the Lambda handler), [`Ingest`] (borrowed config and
//! queue), [`IngestConfig`]. Statuses: 202 all accepted; 400 some items invalid
//! (named by index and field; the valid ones are still enqueued); 401 bad key or
//! signature; 404 unknown or unconfigured route; 413 body too large; 503 only
//! when enqueueing fails, so the sender retries (events are deduped by id).
//!
//! ```
//! use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
//! use aws_lambda_events::http::Method;
//! use kairos_ingest::{handle, Ingest, IngestConfig};
//! use kairos_store::MemoryQueue;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = IngestConfig { api_keys: vec!["k1".into()], ..IngestConfig::default() };
//! let queue = MemoryQueue::default();
//! let mut req = ApiGatewayV2httpRequest::default();
//! req.request_context.http.method = Method::POST;
//! req.raw_path = Some("/v1/events".into());
//! req.headers.insert("x-api-key", "k1".parse().unwrap());
//! req.body = Some(r#"{"id":"e1","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"}"#.into());
//! let response = handle(req, &Ingest { config: &config, queue: &queue }, 1_795_000_000).await;
//! assert_eq!(response.status_code, 202);
//! assert_eq!(queue.len(), 1);
//! # });
//! ```

mod config;
mod events;
mod response;
mod sendgrid;

pub use config::{ConfigError, IngestConfig, RawConfig};
pub use sendgrid::{normalize as normalize_sendgrid, verify as verify_sendgrid, SignatureError};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::Method;
use base64::Engine;
use kairos_event::Event;
use kairos_store::{Message, Queue};
use response::{json_response, Rejected, Reply};
use serde_json::json;

/// The ingest handler's borrowed dependencies.
pub struct Ingest<'a, Q> {
    /// Keys, public keys and limits.
    pub config: &'a IngestConfig,
    /// The events queue.
    pub queue: &'a Q,
}

/// Handles one HTTP API request as of `now` (unix seconds, for replay windows).
pub async fn handle<Q: Queue>(
    req: ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q>,
    now: i64,
) -> ApiGatewayV2httpResponse {
    let reply = match route(&req, ingest, now) {
        Ok((events, rejected)) => enqueue(ingest.queue, events, rejected).await,
        Err(reply) => reply,
    };
    reply.into_response()
}

/// Checks route, method, size and credentials, then parses: the accepted
/// events and the rejected items, or the reply that refuses the request.
fn route<Q>(
    req: &ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q>,
    now: i64,
) -> Result<(Vec<Event>, Vec<Rejected>), Reply> {
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    let method = &req.request_context.http.method;
    if path != "/v1/events" && path != "/webhooks/sendgrid" {
        return Err(json_response(
            404,
            json!({"error": format!("no route for {method} {path}")}),
        ));
    }
    if method != Method::POST {
        return Err(json_response(
            405,
            json!({"error": format!("{path} accepts POST only")}),
        ));
    }
    let body = body_bytes(req, ingest.config.max_body_bytes)?;
    match path {
        "/v1/events" => events::parse(&req.headers, &body, ingest.config),
        _ => sendgrid::receive(&req.headers, &body, ingest.config, now),
    }
}

/// The raw body bytes (base64-decoded if API Gateway encoded them), within the limit.
fn body_bytes(req: &ApiGatewayV2httpRequest, limit: usize) -> Result<Vec<u8>, Reply> {
    let text = req.body.as_deref().unwrap_or("");
    let too_large = |n: usize| {
        json_response(
            413,
            json!({"error": format!("request body is {n} bytes, over the {limit}-byte limit")}),
        )
    };
    if !req.is_base64_encoded {
        return if text.len() > limit {
            Err(too_large(text.len()))
        } else {
            Ok(text.as_bytes().to_vec())
        };
    }
    if text.len() / 4 * 3 > limit + 3 {
        return Err(too_large(text.len() / 4 * 3));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| json_response(400, json!({"error": format!("body is marked base64 but is not: {e}")})))?;
    if bytes.len() > limit {
        return Err(too_large(bytes.len()));
    }
    Ok(bytes)
}

async fn enqueue<Q: Queue>(queue: &Q, events: Vec<Event>, rejected: Vec<Rejected>) -> Reply {
    let messages: Vec<Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Message {
            id: i.to_string(),
            body: e.to_json(),
        })
        .collect();
    if !messages.is_empty() {
        if let Err(err) = queue.send(&messages).await {
            tracing::error!(error = %err, "enqueueing failed; asking the sender to retry");
            return json_response(503, json!({"error": "could not enqueue events; retry the request"}));
        }
    }
    let accepted = events.len();
    if rejected.is_empty() {
        return json_response(202, json!({"accepted": accepted, "rejected": 0}));
    }
    for r in &rejected {
        tracing::warn!(index = r.index, error = %r.error, "rejected item");
    }
    json_response(
        400,
        json!({"accepted": accepted, "rejected": rejected.len(), "errors": rejected}),
    )
}

#[cfg(test)]
mod tests;
