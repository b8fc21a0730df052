//! The console reads and changes contacts through the admin API's own
//! handler ([`kairos_admin::handle`]), called in process with the console's
//! admin key: one implementation of every contact route.

use super::rules::Version;
use super::{Backend, Console};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderValue, Method};
use kairos_admin::{Admin, Erasing, ADMIN_KEY_HEADER};
use serde_json::Value;

/// Calls the admin handler under the rules `version` in force: `path` below `/v1/contacts/{key}`.
pub(super) async fn call<B: Backend>(
    console: &Console<B>,
    version: &Version,
    method: Method,
    key: &str,
    rest: &str,
    body: Option<String>,
) -> (u16, Value) {
    let backend = console.backend();
    // The console's key, named for the signed-in user: the admin handler records them as the actor.
    let keys: Vec<(String, String)> = console
        .admin_keys
        .iter()
        .map(|(_, secret)| (super::access::actor(), secret.clone()))
        .collect();
    let mut evaluator = kairos_evaluate::Evaluator::new(&version.rules, backend.store(), backend.queue());
    evaluator.rules_seq = version.number;
    let admin = Admin {
        evaluator,
        keys: &keys,
        // The console offers no erasure: an empty salt makes the admin handler refuse it.
        erasure: Erasing {
            salt: &[],
            window_secs: kairos_engine::erasure::DEFAULT_WINDOW_DAYS * 86_400,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(30),
        },
    };
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = method;
    req.raw_path = Some(format!("/v1/contacts/{}{rest}", encode(key)));
    if let Some(secret) = console.admin_keys.first().map(|(_, s)| s) {
        if let Ok(value) = HeaderValue::from_str(secret) {
            req.headers.insert(ADMIN_KEY_HEADER, value);
        }
    }
    req.body = body;
    let response = kairos_admin::handle(req, &admin, backend.clock()).await;
    backend.changed();
    let body = match response.body {
        Some(Body::Text(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (u16::try_from(response.status_code).unwrap_or(500), body)
}

/// Percent-encodes a path segment (everything but unreserved characters).
pub(super) fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
