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
//! let response = handle(req, &Ingest { config: &config, queue: &queue, claims: &claims }, 1_796_000_000).await;
//! assert_eq!(response.status_code, 202);
//! assert_eq!(queue.len(), 1);
//! # });
//! ```

mod claim;
mod config;
mod events;
mod metrics;
pub mod providers;
mod response;
pub mod tracking;
pub mod webhook;

pub use claim::CLAIM_PENDING_SECS;
pub use config::{ConfigError, IngestConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_WINDOW_SECS};
pub use providers::sendgrid::{normalize as normalize_sendgrid, verify as verify_sendgrid, SignatureError};
pub use webhook::{Claim, NormalizeError, Parsed, Policy, Refusal, Rejected, Request, Unauthorized, Verified, Webhook};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::Method;
use base64::Engine;
use chrono::{DateTime, Utc};
use kairos_event::EventsMessage;
use kairos_store::{Claims, Message, Queue};
use response::{json_response, unauthorized, Reply};
use serde_json::json;
use tokio::time::Instant;

/// The ingest handler's borrowed dependencies.
pub struct Ingest<'a, Q, C> {
    /// Keys, provider webhooks and limits.
    pub config: &'a IngestConfig,
    /// The events queue.
    pub queue: &'a Q,
    /// One-time webhook tokens already used.
    pub claims: &'a C,
}

/// When a request was received, and when its answer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Unix seconds: the receive time (replay windows, clock skew, Segment's `receivedAt`).
    pub at: i64,
    /// Enqueueing stops at this instant and the request is answered 503 (the
    /// invocation's deadline less a margin to answer); `None`: no deadline.
    pub deadline: Option<Instant>,
}

impl From<i64> for Received {
    /// Received at `at` (unix seconds), with no deadline.
    fn from(at: i64) -> Received {
        Received { at, deadline: None }
    }
}

impl Received {
    /// The receive time as a UTC date-time.
    pub fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.at, 0).unwrap_or_default()
    }
}

/// Handles one HTTP API request received at `received` (unix seconds, or a [`Received`]).
pub async fn handle<Q: Queue, C: Claims>(
    req: ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q, C>,
    received: impl Into<Received>,
) -> ApiGatewayV2httpResponse {
    let reply = receive(&req, ingest, received.into()).await;
    log_summary(&req, &reply);
    metrics::of_request(&req, &reply).emit();
    reply.into_response()
}

/// Logs the invocation's one info line: the route, the answer's status, and
/// how many events were accepted (enqueued) and refused.
fn log_summary(req: &ApiGatewayV2httpRequest, reply: &Reply) {
    let route = req.raw_path.as_deref().or(req.request_context.http.path.as_deref());
    let count = |field: &str| reply.body.get(field).and_then(serde_json::Value::as_u64).unwrap_or(0);
    tracing::info!(
        method = %req.request_context.http.method,
        route = route.unwrap_or_default(),
        status = reply.status,
        accepted = count("accepted"),
        refused = count("rejected"),
        "request handled"
    );
}

async fn receive<Q: Queue, C: Claims>(req: &ApiGatewayV2httpRequest, ingest: &Ingest<'_, Q, C>, at: Received) -> Reply {
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    let method = &req.request_context.http.method;
    let not_found = || json_response(404, json!({"error": format!("no route for {method} {path}")}));
    if let Some(name) = path.strip_prefix("/webhooks/") {
        return match ingest.config.webhook(name) {
            Some(hook) => webhook(hook, req, ingest, at).await,
            // A provider's URL check (Mandrill's HEAD) may come before its secret is configured.
            None if method == Method::HEAD && providers::find(name).is_some() => json_response(200, json!({})),
            None => not_found(),
        };
    }
    let config = ingest.config;
    let (parsed, policy) = if let Some(route) = tracking::route(path).filter(|_| !config.write_keys.is_empty()) {
        if method != Method::POST {
            return json_response(405, json!({"error": "tracking calls accept POST only"}));
        }
        let parsed = body_bytes(req, config.max_body_bytes)
            .map(|body| tracking::parse(route, &req.headers, &body, &config.write_keys, at.time()));
        (parsed, tracking::POLICY)
    } else if path == "/v1/events" {
        if method != Method::POST {
            return json_response(405, json!({"error": format!("{path} accepts POST only")}));
        }
        let parsed = body_bytes(req, config.max_body_bytes).map(|body| events::parse(&req.headers, &body, config));
        (parsed, events::POLICY)
    } else {
        return not_found();
    };
    match parsed {
        Ok(Ok(parsed)) => enqueue(ingest, parsed, policy, at).await,
        Ok(Err(error)) => refused(path, error, policy),
        Err(reply) => reply,
    }
}

/// The answer to a request that could not be normalized.
fn refused(route: &str, error: NormalizeError, policy: Policy) -> Reply {
    match error {
        NormalizeError::Unauthorized(reason) => {
            tracing::warn!(route, %reason, "rejected request");
            unauthorized()
        }
        NormalizeError::NotConfigured(what) => json_response(404, json!({"error": what})),
        NormalizeError::Malformed(error) => {
            tracing::warn!(route, %error, "malformed request body");
            json_response(policy.malformed, json!({"error": error}))
        }
        NormalizeError::TooLarge(error) => json_response(413, json!({"error": error})),
    }
}

/// A provider route: verify, claim one-time tokens as pending, parse, enqueue,
/// then confirm the claims (or release them when the events were not enqueued).
async fn webhook<Q: Queue, C: Claims>(
    hook: &dyn Webhook,
    req: &ApiGatewayV2httpRequest,
    ingest: &Ingest<'_, Q, C>,
    at: Received,
) -> Reply {
    let method = &req.request_context.http.method;
    if method == Method::HEAD {
        return json_response(200, json!({}));
    }
    if method != Method::POST {
        return json_response(405, json!({"error": "webhooks accept POST (and HEAD for checks) only"}));
    }
    let Some(provider) = providers::find(hook.name()) else {
        return json_response(404, json!({"error": format!("no provider {}", hook.name())}));
    };
    let body = match body_bytes(req, ingest.config.max_body_bytes.max(provider.batch_bytes)) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let request = Request {
        method,
        headers: &req.headers,
        body: &body,
    };
    let verified = match hook.verify(&request, at.at).await {
        Ok(verified) => verified,
        Err(Refusal::Unauthorized(why)) => {
            tracing::warn!(provider = provider.name, reason = %why, "rejected webhook");
            return unauthorized();
        }
        Err(Refusal::Unavailable(why)) => {
            tracing::error!(provider = provider.name, reason = %why, "could not verify the webhook now");
            return json_response(503, json!({"error": "temporarily unavailable; retry the request"}));
        }
    };
    if let Err(reply) = claim::take(ingest.claims, &verified.claims, at.at, provider.name).await {
        return reply;
    }
    let reply = match verified.reply {
        Some((status, body)) => json_response(status, body),
        None => match (provider.parse)(&request) {
            Ok(parsed) => enqueue(ingest, parsed, provider.policy, at).await,
            Err(error) => refused(provider.name, error, provider.policy),
        },
    };
    claim::settle(ingest.claims, &verified.claims, reply.status < 500).await;
    reply
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

/// Refuses the events dated beyond the clock skew, enqueues the valid ones
/// (before the deadline), then answers with the policy's status.
async fn enqueue<Q: Queue, C>(ingest: &Ingest<'_, Q, C>, mut parsed: Parsed, policy: Policy, at: Received) -> Reply {
    let invalid = parsed.rejected.len() as u64;
    parsed.refuse_ahead(at.time(), ingest.config.max_clock_skew_secs);
    let Parsed { events, rejected, .. } = parsed;
    let refused = [
        (metrics::INVALID, invalid),
        (metrics::FUTURE, rejected.len() as u64 - invalid),
    ];
    let refused = refused.into_iter().filter(|(_, n)| *n > 0).collect();
    let messages: Vec<Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Message {
            id: i.to_string(),
            body: EventsMessage::event_body(e),
        })
        .collect();
    if !messages.is_empty() {
        let sent = match at.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, ingest.queue.send(&messages))
                .await
                .unwrap_or_else(|_| {
                    Err(kairos_store::QueueError {
                        failed: messages.iter().map(|m| m.id.clone()).collect(),
                        reason: "the invocation's deadline came first".into(),
                    })
                }),
            None => ingest.queue.send(&messages).await,
        };
        if let Err(err) = sent {
            tracing::error!(error = %err, "enqueueing failed; asking the sender to retry");
            return json_response(503, json!({"error": "could not enqueue events; retry the request"}));
        }
        // Each event id, so one grep follows an event to its transitions and deliveries.
        let ids: Vec<String> = events
            .iter()
            .map(|e| kairos_event::log::id(&e.id).to_string())
            .collect();
        tracing::info!(event_id = %ids.join(","), "enqueued");
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
    let mut reply = json_response(
        status,
        json!({"accepted": accepted, "rejected": rejected.len(), "errors": rejected}),
    );
    reply.refused = refused;
    reply
}

#[cfg(test)]
mod tests;
