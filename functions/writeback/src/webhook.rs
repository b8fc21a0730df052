//! Delivery to an HTTPS endpoint, signed per the Standard Webhooks spec
//! (<https://www.standardwebhooks.com/>): `webhook-id`, `webhook-timestamp`,
//! and `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{id}.{timestamp}.{body}` with the base64-decoded `whsec_` secret. One POST
//! per transition, its `data.members` the contact's segments this destination
//! receives (the absolute answer, so a receiver can ignore order).

use base64::Engine;
use hmac::{Hmac, Mac};
use kairos_event::{Change, Transition};
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::deliver::{Destination, Outcome, Policy, Write};
use crate::file::Segments;
use crate::http::{HttpRequest, HttpResponse, Transport};
use crate::Gate;

/// A Standard Webhooks-signed HTTPS endpoint.
pub struct WebhookDestination<T> {
    name: String,
    segments: Segments,
    transport: T,
    url: String,
    secret: Vec<u8>,
    policy: Policy,
    gate: Gate,
    clock: Arc<dyn Clock>,
}

impl<T> std::fmt::Debug for WebhookDestination<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDestination")
            .field("name", &self.name)
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

/// Whether `signature` (a `webhook-signature` header: space-separated
/// `v1,<base64>` entries) holds a valid signature of the message by `secret`,
/// compared in constant time: what a receiver checks ([`sign`]'s inverse).
pub fn verify(secret: &[u8], id: &str, timestamp: i64, body: &str, signature: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok())
}

/// The signing key: the base64 after `whsec_` (the prefix is optional), at least 16 bytes.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.trim();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|k| k.len() >= 16)
}

impl<T: Transport> WebhookDestination<T> {
    /// Posts to `url` through `transport`, signing with `secret`.
    pub fn new(
        (name, segments): (String, Segments),
        transport: T,
        url: impl Into<String>,
        secret: Vec<u8>,
        (policy, clock): (Policy, Arc<dyn Clock>),
    ) -> Self {
        WebhookDestination {
            name,
            segments,
            transport,
            url: url.into(),
            secret,
            policy,
            gate: Gate::default(),
            clock,
        }
    }

    async fn post(&self, t: &Transition) -> Outcome {
        let (id, body) = envelope(t);
        let timestamp = (self.clock.now_ms() / 1000) as i64;
        let mut request = HttpRequest::new("POST", &self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&self.secret, &id, timestamp, &body));
        request.body = Some(body);
        match self.transport.send(request).await {
            Ok(r) if (200..300).contains(&r.status) => Outcome::Written,
            Ok(r) => self.failure(&r),
            Err(e) => Outcome::retry(e.0),
        }
    }

    fn failure(&self, r: &HttpResponse) -> Outcome {
        let after = r.header("retry-after").and_then(parse_retry_after);
        if r.status == 408 || r.status == 429 || r.status >= 500 {
            if let Some(after) = after {
                self.gate.hold(self.clock.now_ms() + after.as_millis() as u64);
            }
            return Outcome::Retry {
                reason: format!("HTTP {}: {}", r.status, r.excerpt()),
                after,
            };
        }
        Outcome::Permanent(format!("HTTP {}: {}", r.status, r.excerpt()))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let secs = (date.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

impl<T: Transport> Destination for WebhookDestination<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn segments(&self) -> &Segments {
        &self.segments
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One POST per transition, in order.
    fn requests(&self, writes: &[&Write]) -> u32 {
        let posts: usize = writes.iter().map(|w| w.transitions.len()).sum();
        u32::try_from(posts).unwrap_or(u32::MAX)
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(writes.len());
        for w in writes {
            // In order, so a receiver sees a contact's transitions as they happened;
            // a failure repeats the whole write (receivers dedupe by webhook-id).
            let mut outcome = Outcome::Written;
            for t in &w.transitions {
                let mut t = t.clone();
                t.members = Some(w.members.clone());
                outcome = self.post(&t).await;
                if outcome != Outcome::Written {
                    break;
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_its_own_signature_among_others_and_nothing_altered() {
        let secret = b"0123456789abcdef";
        let good = sign(secret, "msg_1", 1_700_000_000, "{}");
        assert!(verify(secret, "msg_1", 1_700_000_000, "{}", &good));
        assert!(verify(secret, "msg_1", 1_700_000_000, "{}", &format!("v1,AAAA {good}")));
        assert!(!verify(secret, "msg_1", 1_700_000_000, "{ }", &good));
        assert!(!verify(secret, "msg_2", 1_700_000_000, "{}", &good));
        assert!(!verify(secret, "msg_1", 1_700_000_001, "{}", &good));
        assert!(!verify(b"another-secret-16", "msg_1", 1_700_000_000, "{}", &good));
        assert!(!verify(
            secret,
            "msg_1",
            1_700_000_000,
            "{}",
            &good.replacen("v1,", "v2,", 1)
        ));
    }

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(secret_bytes("whsec_c2hvcnQ="), None, "shorter than 16 bytes");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
