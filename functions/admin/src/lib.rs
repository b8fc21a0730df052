//! The admin function: the contact API of `docs/governance.md`, on the HTTP
//! API behind IAM authorization (callers sign with SigV4; locally an admin
//! key stands in, [`ADMIN_KEY_HEADER`]).
//!
//! Routes (`{key}` a URL-encoded email or user id):
//! - `GET /v1/contacts/{key}`: memberships (since when, rule version,
//!   explanation), consent, traits, `next_change_at`, overrides, merged
//!   anonymous ids (counted: only their hashes are kept), latest transitions;
//! - `GET /v1/contacts/{key}/audit?cursor=`: the audit trail, newest first;
//! - `PUT`/`DELETE /v1/contacts/{key}/overrides/{segment}`: pin in or out
//!   (`{"member", "reason", "expires_at"?}`), or remove the pin;
//! - `GET /v1/contacts/{key}/export`: everything held, one JSON document;
//! - `DELETE /v1/contacts/{key}`: erasure (`kairos_evaluate::Evaluator::erase`):
//!   200 when done, 202 when the deadline came first (repeat it to finish).
//!
//! Main items: [`handle`] (the Lambda handler), [`Admin`] (the borrowed
//! evaluator and admin keys), [`parse_admin_keys`].

mod auth;
mod contact;

pub use auth::{parse_admin_keys, ADMIN_KEY_HEADER};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::CONTENT_TYPE;
use aws_lambda_events::http::{HeaderValue, Method};
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_store::{AuditTrail, ContactStore, Erasure, Queue};
use serde_json::{json, Value};

/// What the handler borrows: the evaluator (rules, store, write-back queue)
/// every override and erasure goes through, the admin keys accepted locally,
/// and how erasures are done.
pub struct Admin<'a, S, Q> {
    /// The same per-contact logic as the evaluate function.
    pub evaluator: Evaluator<'a, S, Q>,
    /// `(name, secret)` pairs (`KAIROS_ADMIN_KEYS`); empty on AWS, where IAM authorizes.
    pub keys: &'a [(String, String)],
    /// How `DELETE /v1/contacts/{key}` erases.
    pub erasure: Erasing<'a>,
}

/// The erasure settings of a request.
#[derive(Clone, Copy)]
pub struct Erasing<'a> {
    /// The receipt hash's salt (`KAIROS_ERASURE_SALT`, usually `ssm:<name>`); empty: erasure refused.
    pub salt: &'a [u8],
    /// How long the tombstone drops late events (seconds; `KAIROS_ERASURE_WINDOW_DAYS`).
    pub window_secs: i64,
    /// When the invocation must have answered (its remaining time, less a margin).
    pub deadline: std::time::Instant,
}

impl std::fmt::Debug for Erasing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The salt is a secret: never printed.
        f.debug_struct("Erasing")
            .field("window_secs", &self.window_secs)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A JSON answer: status and body.
pub(crate) type Answer = (u16, Value);

/// An error answer: `{"error": message}` (and the field, when one is wrong).
pub(crate) fn error(status: u16, message: impl Into<String>, field: Option<&str>) -> Answer {
    let mut body = json!({"error": message.into()});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    (status, body)
}

/// Handles one request as of `now`.
pub async fn handle<S: ContactStore + AuditTrail + Erasure, Q: Queue>(
    req: ApiGatewayV2httpRequest,
    admin: &Admin<'_, S, Q>,
    now: DateTime<Utc>,
) -> ApiGatewayV2httpResponse {
    let (status, body) = answer(&req, admin, now).await;
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}

async fn answer<S: ContactStore + AuditTrail + Erasure, Q: Queue>(
    req: &ApiGatewayV2httpRequest,
    admin: &Admin<'_, S, Q>,
    now: DateTime<Utc>,
) -> Answer {
    let Some(actor) = auth::actor(req, admin.keys) else {
        let message = "admin routes need IAM (SigV4) authorization, or locally an admin key in x-kairos-admin-key; event API keys and write keys are not accepted";
        return error(401, message, None);
    };
    let path = req
        .raw_path
        .clone()
        .or_else(|| req.request_context.http.path.clone())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let method = &req.request_context.http.method;
    let (key, rest) = match parts.as_slice() {
        ["", "v1", "contacts", key, rest @ ..] => (*key, rest),
        _ => return error(404, "no such route", None),
    };
    let key = match decode(key).and_then(|k| kairos_event::key::normalize_contact(&k).map_err(|e| e.to_string())) {
        Ok(key) => key,
        Err(reason) => return error(400, format!("contact key: {reason}"), Some("key")),
    };
    let body = req.body.as_deref().unwrap_or("");
    match (method, rest) {
        (&Method::GET, []) => contact::show(admin, &key, now).await,
        (&Method::GET, ["audit"]) => {
            let cursor = req.query_string_parameters.first("cursor");
            contact::audit(admin, &key, cursor).await
        }
        (&Method::GET, ["export"]) => contact::export(admin, &key, now).await,
        (&Method::DELETE, []) => contact::erase(admin, &key, &actor, now).await,
        (&Method::PUT, ["overrides", segment]) => match decode(segment) {
            Ok(segment) => contact::pin(admin, &key, &segment, body, &actor, now).await,
            Err(reason) => error(400, format!("segment: {reason}"), Some("segment")),
        },
        (&Method::DELETE, ["overrides", segment]) => match decode(segment) {
            Ok(segment) => contact::unpin(admin, &key, &segment, &actor, now).await,
            Err(reason) => error(400, format!("segment: {reason}"), Some("segment")),
        },
        _ => error(404, "no such route", None),
    }
}

/// Percent-decodes a path segment (`+` stays `+`: plus addressing).
fn decode(segment: &str) -> Result<String, String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or("a `%` not followed by two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests;
