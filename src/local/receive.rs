//! The local webhook receiver (`kairos local-receive`, started by `make
//! watch`): verifies each delivery's Standard Webhooks signature with the
//! write-back crate's own code ([`kairos_writeback::verify`], constant-time)
//! and prints it readably: contact, segment, change, explanation.

use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// How far a delivery's `webhook-timestamp` may be from now (Standard Webhooks' suggestion).
pub const TOLERANCE_SECS: i64 = 300;

/// Where each delivery's readable text goes (stdout in `make watch`).
pub type Printer = Arc<dyn Fn(String) + Send + Sync>;

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    /// A `webhook-*` header is missing or unreadable.
    #[error("missing or unreadable {0} header")]
    Header(&'static str),
    /// The timestamp is too far from now: a replay, or a clock off.
    #[error("webhook-timestamp is {0} s from now (more than {TOLERANCE_SECS} s)")]
    Stale(i64),
    /// No signature in the header matches.
    #[error("bad signature")]
    Signature,
    /// The body is not a Kairos webhook message.
    #[error("body is not a Kairos segment message: {0}")]
    Body(String),
}

/// Checks one delivery and describes it in one readable line.
pub fn check(secret: &[u8], headers: &HeaderMap, body: &str, now: i64) -> Result<String, Refused> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(Refused::Header(name))
    };
    let (id, signature) = (header("webhook-id")?, header("webhook-signature")?);
    let timestamp: i64 = header("webhook-timestamp")?
        .trim()
        .parse()
        .map_err(|_| Refused::Header("webhook-timestamp"))?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale(now - timestamp));
    }
    if !kairos_writeback::verify(secret, id, timestamp, body, signature) {
        return Err(Refused::Signature);
    }
    let message: serde_json::Value = serde_json::from_str(body).map_err(|e| Refused::Body(e.to_string()))?;
    let data = &message["data"];
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let members: Vec<String> = data["members"]
        .as_array()
        .map(|m| m.iter().map(text).collect())
        .unwrap_or_default();
    let trigger = match data["trigger"].is_object() {
        true => format!(
            "\n    triggered by {} {} at {}",
            text(&data["trigger"]["type"]),
            text(&data["trigger"]["id"]),
            text(&data["trigger"]["at"])
        ),
        false => String::new(),
    };
    Ok(format!(
        "{} {} {} (state version {}, rule {})\n    why: {}{trigger}\n    now in: {}",
        text(&data["contact"]),
        text(&data["change"]),
        text(&data["segment"]),
        text(&data["state_version"]),
        text(&data["rule_version"]),
        text(&data["summary"]),
        if members.is_empty() {
            "no segment".to_string()
        } else {
            members.join(", ")
        },
    ))
}

/// The receiver's routes: `POST /kairos` (any other path answers 404).
pub fn app(secret: Vec<u8>, print: Printer) -> axum::Router {
    let secret = Arc::new(secret);
    axum::Router::new().route(
        "/kairos",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (secret, print) = (secret.clone(), print.clone());
            async move {
                match check(&secret, &headers, &body, chrono::Utc::now().timestamp()) {
                    Ok(line) => {
                        print(format!("receiver: delivered ✓ {line}"));
                        StatusCode::NO_CONTENT
                    }
                    Err(why) => {
                        print(format!("receiver: refused ✗ {why}"));
                        StatusCode::UNAUTHORIZED
                    }
                }
            }
        }),
    )
}

/// Serves [`app`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, secret: Vec<u8>, print: Printer) -> std::io::Result<()> {
    axum::serve(listener, app(secret, print)).await
}
