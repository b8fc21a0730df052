//! The ingest stage: API Gateway HTTP API (payload v2) requests in, canonical
//! events onto the events queue, a fast 2xx out.
//!
//! Routes:
//! - `POST /v1/events`: one canonical event or `{"batch": [...]}`, with `x-api-key`;
//! - `POST /v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/alias`, `/v1/batch`
//!   (and analytics.js's `/v1/t`, `/v1/p`, ...): Segment-spec calls with a write key ([`tracking`]);
//! - `POST /webhooks/<provider>`: each configured provider's webhook ([`providers`]),
//!   verified by its [`Webhook`] implementation before the body is parsed.
//!
//! Main items: [`handle`] (the Lambda handler), [`Ingest`] (borrowed config,
//! queue and one-time-token store), [`IngestConfig`]. Statuses: all accepted: 202 on
//! `/v1/*`, 200 on webhooks (also for a repeat of a body-signed webhook, not enqueued again);
//! for a request with some invalid items, the valid ones are still enqueued and
//! the status is the route's [`Policy`] (400 on `/v1/*`; per provider on webhooks,
//! chosen so its retries neither drop nor resend good events); 401 bad key,
//! signature or replayed token (details only in the logs); 404 unknown or
//! unconfigured route; 413 body too large; 503 only when enqueueing fails, so
//! the sender retries (events are deduped by id).
//!
//! ```
//! use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
//! use aws_lambda_events::http::Method;
//! use kairos_ingest::{handle, Ingest, IngestConfig};
//! use kairos_store::{MemoryClaims, MemoryQueue};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = IngestConfig { api_keys: vec!["k1".into()], ..IngestConfig::default() };
//! let queue = MemoryQueue::default();
//! let mut req = ApiGatewayV2httpRequest::default();
//! req.request_context.http.method = Method::POST;
//! req.raw_path = Some("/v1/events".into());
//! req.headers.insert("x-api-key", "k1".parse().unwrap());
//! req.body = Some(r#"{"id":"e1","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"}"#.into());
//! let claims = MemoryClaims::default();
//! let response = handle(req, &Ingest { config: &config, queue: &queue, claims: &claims }, 1_795_000_000).await;
//! assert_eq!(response.status_code, 202);
//! assert_eq!(queue.len(), 1);
//! # });
//! ```

mod config;
mod events;
pub mod providers;
mod response;
pub mod tracking;
pub mod webhook;

pub use config::{ConfigError, IngestConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_WINDOW_SECS};
pub use providers::sendgrid::{normalize as normalize_sendgrid, verify as verify_sendgrid, SignatureError};
pub use webhook::{Claim, Parsed, Policy, Rejected, Request, Unauthorized, Verified, Webhook};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::Method;
use base64::Engine;
use kairos_event::EventsMessage;
use kairos_store::{Claims, Message, Queue};
use response::{json_response, unauthorized, Reply};
use serde_json::json;

/// The ingest handler's borrowed dependencies.
pub struct Ingest<'a, Q, C> {
    /// Keys, provider webhooks and limits.
    pub config: &'a IngestConfig,
    /// The events queue.
    pub queue: &'a Q,
    /// One-time webhook tokens already used.
    pub claims: &'a C,
}

/// Handles one HTTP API request as of `now` (unix seconds, for replay windows).
pub async fn handle<Q: Queue, C: Claims>(
    req: ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q, C>,
    now: i64,
) -> ApiGatewayV2httpResponse {
    receive(&req, ingest, now).await.into_response()
}

async fn receive<Q: Queue, C: Claims>(req: &ApiGatewayV2httpRequest, ingest: &Ingest<'_, Q, C>, now: i64) -> Reply {
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    let method = &req.request_context.http.method;
    let not_found = || json_response(404, json!({"error": format!("no route for {method} {path}")}));
    if let Some(name) = path.strip_prefix("/webhooks/") {
        return match ingest.config.webhook(name) {
            Some(hook) => webhook(hook, req, ingest, now).await,
            // A provider's URL check (Mandrill's HEAD) may come before its secret is configured.
            None if method == Method::HEAD && providers::NAMES.contains(&name) => json_response(200, json!({})),
            None => not_found(),
        };
    }
    if let Some(route) = tracking::route(path).filter(|_| !ingest.config.write_keys.is_empty()) {
        return track(route, req, ingest, now).await;
    }
    if path != "/v1/events" {
        return not_found();
    }
    if method != Method::POST {
        return json_response(405, json!({"error": format!("{path} accepts POST only")}));
    }
    let parsed = body_bytes(req, ingest.config.max_body_bytes)
        .and_then(|body| events::parse(&req.headers, &body, ingest.config));
    match parsed {
        Ok(parsed) => enqueue(ingest.queue, parsed, events::POLICY).await,
        Err(reply) => reply,
    }
}

/// A Segment-spec tracking route: write key, normalize, enqueue.
async fn track<Q: Queue, C: Claims>(
    route: tracking::Route,
    req: &ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q, C>,
    now: i64,
) -> Reply {
    if req.request_context.http.method != Method::POST {
        return json_response(405, json!({"error": "tracking calls accept POST only"}));
    }
    let parsed = body_bytes(req, ingest.config.max_body_bytes)
        .and_then(|body| tracking::parse(route, &req.headers, &body, ingest.config, now));
    match parsed {
        Ok(parsed) => enqueue(ingest.queue, parsed, tracking::POLICY).await,
        Err(reply) => reply,
    }
}

/// A provider route: verify, record one-time tokens, parse, enqueue.
async fn webhook<Q: Queue, C: Claims>(
    hook: &dyn Webhook,
    req: &ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q, C>,
    now: i64,
) -> Reply {
    let method = &req.request_context.http.method;
    if method == Method::HEAD {
        return json_response(200, json!({}));
    }
    if method != Method::POST {
        return json_response(405, json!({"error": "webhooks accept POST (and HEAD for checks) only"}));
    }
    let body = match body_bytes(req, ingest.config.max_body_bytes) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let request = Request {
        method,
        headers: &req.headers,
        body: &body,
    };
    let verified = match hook.verify(&request, now).await {
        Ok(verified) => verified,
        Err(why) => {
            tracing::warn!(provider = hook.name(), reason = %why, "rejected webhook");
            return unauthorized();
        }
    };
    match claim_all(ingest.claims, &verified.claims, now, hook.name()).await {
        Ok(Fresh::Yes) => {}
        Ok(Fresh::Repeat) => return json_response(200, json!({"accepted": 0, "duplicate": true})),
        Err(reply) => return reply,
    }
    if let Some((status, body)) = verified.reply {
        return json_response(status, body);
    }
    let reply = match hook.parse(&request) {
        Ok(parsed) => enqueue(ingest.queue, parsed, hook.policy()).await,
        Err(error) => {
            tracing::warn!(provider = hook.name(), %error, "malformed webhook body");
            json_response(hook.policy().malformed, json!({"error": error}))
        }
    };
    if reply.status >= 500 {
        for claim in &verified.claims {
            if let Err(err) = ingest.claims.release(&claim.key).await {
                tracing::error!(error = %err, "could not release a one-time token; the sender's retry will be refused");
            }
        }
    }
    reply
}

/// Whether a verified request is new or an exact repeat of an accepted one.
enum Fresh {
    Yes,
    Repeat,
}

/// Records each one-time token. A token seen before makes the request an exact
/// repeat (when the signature covers the body) or a replay (401).
async fn claim_all<C: Claims>(claims: &C, wanted: &[Claim], now: i64, provider: &str) -> Result<Fresh, Reply> {
    for claim in wanted {
        match claims.claim(&claim.key, claim.expires_at, now).await {
            Ok(true) => {}
            Ok(false) if claim.covers_body => {
                tracing::info!(
                    provider,
                    "repeat of an accepted webhook; acknowledged, not enqueued again"
                );
                return Ok(Fresh::Repeat);
            }
            Ok(false) => {
                tracing::warn!(provider, "rejected webhook: one-time token already used (replay)");
                return Err(unauthorized());
            }
            Err(err) => {
                tracing::error!(provider, error = %err, "could not record a one-time token");
                return Err(json_response(
                    503,
                    json!({"error": "temporarily unavailable; retry the request"}),
                ));
            }
        }
    }
    Ok(Fresh::Yes)
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

/// Enqueues the valid events, then answers with the policy's status.
async fn enqueue<Q: Queue>(queue: &Q, parsed: Parsed, policy: Policy) -> Reply {
    let Parsed { events, rejected } = parsed;
    let messages: Vec<Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Message {
            id: i.to_string(),
            body: EventsMessage::event_body(e),
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
        return json_response(policy.accepted, json!({"accepted": accepted, "rejected": 0}));
    }
    for r in &rejected {
        tracing::warn!(index = r.index, error = %r.error, "rejected item");
    }
    let status = if accepted == 0 {
        policy.malformed
    } else {
        policy.partial
    };
    json_response(
        status,
        json!({"accepted": accepted, "rejected": rejected.len(), "errors": rejected}),
    )
}

#[cfg(test)]
mod tests;
