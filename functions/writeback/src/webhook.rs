//! Delivery to an HTTPS endpoint, signed per the Standard Webhooks spec:
//! `webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256>`
//! over `{id}.{timestamp}.{body}` with the base64-decoded `whsec_` secret.

use base64::Engine;
use hmac::{Hmac, Mac};
use kairos_event::{Change, Transition};
use reqwest::header::RETRY_AFTER;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

use crate::{Backoff, DeliveryError, Destination, RetryPolicy};

/// Longest response-body excerpt kept in an error.
const REASON_CHARS: usize = 200;

/// A Standard Webhooks-signed HTTPS endpoint.
pub struct WebhookDestination<R = Backoff> {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    retry: R,
}

impl<R> std::fmt::Debug for WebhookDestination<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDestination")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// The Standard Webhooks message for a transition: its `webhook-id` (stable
/// across redeliveries, so receivers can dedupe) and its JSON body
/// `{"type": "segment.entered" | "segment.exited", "timestamp", "data"}`.
pub fn envelope(t: &Transition) -> (String, String) {
    let kind = match t.change {
        Change::Entered => "segment.entered",
        Change::Exited => "segment.exited",
    };
    let body = json!({"type": kind, "timestamp": t.at, "data": t}).to_string();
    (format!("kairos_{}", t.key()), body)
}

/// The `webhook-signature` value for one message.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

impl<R: RetryPolicy> WebhookDestination<R> {
    /// Posts to `url` through `client` (built once, without redirects), signing with `secret`.
    pub fn new(client: reqwest::Client, url: impl Into<String>, secret: Vec<u8>, retry: R) -> Self {
        WebhookDestination {
            client,
            url: url.into(),
            secret,
            retry,
        }
    }

    async fn deliver_one(&self, t: &Transition) -> Result<(), DeliveryError> {
        let (id, body) = envelope(t);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.post(&id, &body).await {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            let DeliveryError::Retryable { retry_after, .. } = &err else {
                return Err(err);
            };
            match self.retry.wait(attempt, *retry_after) {
                Some(wait) => {
                    tracing::warn!(webhook_id = %kairos_event::log::hashed(&id), attempt, error = %err, wait_ms = wait.as_millis() as u64, "retrying webhook");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(err),
            }
        }
    }

    async fn post(&self, id: &str, body: &str) -> Result<(), DeliveryError> {
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&self.secret, id, timestamp, body))
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| DeliveryError::Retryable {
                reason: e.without_url().to_string(),
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(REASON_CHARS)
            .collect();
        let code = status.as_u16();
        if code == 408 || code == 429 || status.is_server_error() {
            return Err(DeliveryError::Retryable {
                reason: format!("HTTP {code}: {text}"),
                retry_after,
            });
        }
        Err(DeliveryError::Permanent {
            status: code,
            reason: text,
        })
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let secs = (date.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

impl<R: RetryPolicy> Destination for WebhookDestination<R> {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, batch: &[Transition]) -> Vec<Result<(), DeliveryError>> {
        // In order, so a receiver sees a contact's transitions as they happened.
        let mut results = Vec::with_capacity(batch.len());
        for t in batch {
            results.push(self.deliver_one(t).await);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
