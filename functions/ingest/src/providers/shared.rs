//! Helpers shared by providers that authenticate with a static credential
//! (basic auth, a bearer token, a secret header) and by providers whose events
//! carry no id of their own; every provider ends with [`finish`] (validation and
//! the per-event size limit).
//!
//! Credentials are compared over SHA-256 digests with `subtle`, so neither the
//! content nor the length of the configured secret leaks through timing.

use base64::Engine;
use chrono::{DateTime, Utc};
use kairos_event::strict::{self, Step};
use kairos_event::{Event, MAX_EVENT_BYTES};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Settings;
use crate::config::ConfigError;

/// True when `presented` equals `expected`, compared in constant time over digests.
pub fn secret_matches(presented: &[u8], expected: &str) -> bool {
    Sha256::digest(presented)
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// True when `presented` equals one of `keys`; every key is compared, each in
/// constant time, so which one matched does not leak either.
pub fn key_matches(presented: &[u8], keys: &[String]) -> bool {
    keys.iter()
        .fold(false, |found, key| found | secret_matches(presented, key))
}

/// The decoded `user:password` bytes of an `Authorization: Basic` header.
/// The scheme name is case-insensitive.
pub fn basic_credentials(header: Option<&str>) -> Option<Vec<u8>> {
    let encoded = header.and_then(|h| strip_scheme(h, "basic"))?;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok()
}

/// True when an `Authorization: Basic <base64(user:password)>` header carries
/// exactly `user_password` (`"user:password"`).
pub fn basic_auth_matches(header: Option<&str>, user_password: &str) -> bool {
    basic_credentials(header).is_some_and(|decoded| secret_matches(&decoded, user_password))
}

/// A static credential from `settings.secret`, trimmed: `None` when unset (the
/// route is not served), an error naming `KAIROS_<PROVIDER>_SECRET` and `expected`
/// (never the value) when shorter than 8 characters.
pub fn credential<'a>(settings: &'a Settings, provider: &str, expected: &str) -> Result<Option<&'a str>, ConfigError> {
    let Some(secret) = settings.secret.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if secret.len() < 8 {
        return Err(invalid_credential(provider, expected));
    }
    Ok(Some(secret))
}

/// The error for an unusable `KAIROS_<PROVIDER>_SECRET`.
pub fn invalid_credential(provider: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        name: Settings::variable(provider, "SECRET"),
        reason: expected.to_string(),
    }
}

/// True when an `Authorization: Bearer <token>` header carries exactly `token`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    match header.and_then(|h| strip_scheme(h, "bearer")) {
        Some(presented) => secret_matches(presented.as_bytes(), token),
        None => false,
    }
}

/// The credential after `<scheme> ` in an Authorization header, trimmed.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = header.trim().split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// A stable dedupe id for an event the provider gives no id to:
/// `<provider>:` followed by the hex SHA-256 of the parts (each length-prefixed,
/// so `["ab","c"]` and `["a","bc"]` differ). The same event redelivered gives the same id.
pub fn derived_id(provider: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{provider}:{}", hex::encode(hasher.finalize()))
}

/// A JSON body read strictly: a key given twice anywhere refuses it, by name.
pub fn strict_json(body: &[u8]) -> Result<Value, String> {
    let doc = strict::parse(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match doc.duplicates.first() {
        Some(duplicate) => Err(duplicate.message(0)),
        None => Ok(doc.value),
    }
}

/// The items of a JSON body: an array, or with `single` also one object (a batch
/// of one); `expected` is the error for any other JSON value. Read strictly: an
/// item that gives a key twice is an `Err` naming the key, alone.
pub fn json_items(body: &[u8], single: bool, expected: &str) -> Result<Vec<Result<Value, String>>, String> {
    let mut doc = strict::parse(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match std::mem::take(&mut doc.value) {
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match doc.item_duplicate(&[Step::Index(i)]) {
                Some(duplicate) => Err(duplicate.message(1)),
                None => Ok(item),
            })
            .collect()),
        item @ Value::Object(_) if single => Ok(vec![match doc.duplicates.first() {
            Some(duplicate) => Err(duplicate.message(0)),
            None => Ok(item),
        }]),
        _ => Err(expected.to_string()),
    }
}

/// Validates a normalized event and checks it fits one queue message.
pub fn finish(event: Event) -> Result<Event, String> {
    let event = event.validated().map_err(|e| e.to_string())?;
    let bytes = event.to_json().len();
    if bytes > MAX_EVENT_BYTES {
        return Err(format!("event is {bytes} bytes, over the {MAX_EVENT_BYTES}-byte limit"));
    }
    Ok(event)
}

/// A UTC time from unix seconds with a fraction (Mailgun's `timestamp`), if finite and in range.
pub fn from_float_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || !(0.0..=1e11).contains(&seconds) {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
}

/// A UTC time from an RFC 3339 text with any offset (Postmark's `ReceivedAt`).
pub fn from_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    }

    #[test]
    fn basic_auth_must_match_user_and_password_exactly() {
        assert!(basic_auth_matches(Some(&basic("kairos:s3cret")), "kairos:s3cret"));
        assert!(basic_auth_matches(
            Some(&basic("kairos:s3cret").replace("Basic", "basic")),
            "kairos:s3cret"
        ));
        assert!(!basic_auth_matches(Some(&basic("kairos:s3cre")), "kairos:s3cret"));
        assert!(!basic_auth_matches(Some(&basic("other:s3cret")), "kairos:s3cret"));
        assert!(!basic_auth_matches(Some("Basic not-base64!"), "kairos:s3cret"));
        assert!(!basic_auth_matches(Some("Bearer kairos:s3cret"), "kairos:s3cret"));
        assert!(!basic_auth_matches(None, "kairos:s3cret"));
    }

    #[test]
    fn bearer_must_match_the_token_exactly() {
        assert!(bearer_matches(Some("Bearer tok-1"), "tok-1"));
        assert!(bearer_matches(Some("bearer  tok-1 "), "tok-1"));
        assert!(!bearer_matches(Some("Bearer tok-2"), "tok-1"));
        assert!(!bearer_matches(Some("Bearer"), "tok-1"));
        assert!(!bearer_matches(Some("Basic tok-1"), "tok-1"));
        assert!(!bearer_matches(None, "tok-1"));
    }

    #[test]
    fn times_convert_to_utc_and_out_of_range_values_are_refused() {
        let t = from_float_seconds(1_534_108_637.153_125).unwrap();
        assert_eq!((t.timestamp(), t.timestamp_subsec_micros()), (1_534_108_637, 153_125));
        assert_eq!(from_float_seconds(f64::NAN), None);
        assert_eq!(from_float_seconds(-1.0), None);
        assert_eq!(from_float_seconds(1e300), None);
        let t = from_rfc3339("2014-08-01T13:28:10.2735393-04:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2014-08-01T17:28:10.273539300+00:00");
        assert_eq!(from_rfc3339("yesterday"), None);
    }

    /// Byte-flipped and truncated fixtures through every new provider's parser: errors, never panics.
    #[test]
    fn mutated_fixtures_never_panic() {
        use crate::providers::{brevo, mailgun, postmark, sparkpost};
        use crate::webhook::{NormalizeError, Parsed, Request};
        use aws_lambda_events::http::{HeaderMap, Method};
        use rand::{Rng, SeedableRng};

        type Parse = fn(&Request<'_>) -> Result<Parsed, NormalizeError>;
        let hooks: [(Parse, &str); 4] = [
            (
                mailgun::parse,
                include_str!("../../../../tests/fixtures/esp/mailgun_delivered_full_envelope.json"),
            ),
            (
                postmark::parse,
                include_str!("../../../../tests/fixtures/esp/postmark_open.json"),
            ),
            (
                brevo::parse,
                include_str!("../../../../tests/fixtures/esp/brevo_request_sent.json"),
            ),
            (
                sparkpost::parse,
                include_str!("../../../../tests/fixtures/esp/sparkpost_bounce_batch.json"),
            ),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let headers = HeaderMap::new();
        for (hook, fixture) in hooks {
            for _ in 0..500 {
                let mut body = fixture.as_bytes().to_vec();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..body.len());
                    body[at] = rng.gen();
                }
                body.truncate(rng.gen_range(body.len() / 2..=body.len()));
                let req = Request {
                    method: &Method::POST,
                    headers: &headers,
                    body: &body,
                };
                let _ = hook(&req);
            }
        }
    }

    /// An event over the queue limit is rejected alone by every provider, never
    /// enqueued (it would fail the whole SQS batch and with it the good events).
    #[test]
    fn oversized_events_are_rejected_by_every_provider() {
        use crate::providers::{customerio, mandrill, resend, sendgrid, ses};
        use serde_json::json;

        let big = "x".repeat(MAX_EVENT_BYTES);
        let at = "2026-11-27T10:00:00Z";
        let sendgrid = sendgrid::normalize(&json!({
            "email": "a@b.test", "timestamp": 1_795_000_000, "event": "open", "sg_event_id": "e1", "big": big,
        }));
        let mandrill = mandrill::normalize(&json!({
            "event": "open", "_id": "m1", "ts": 1_795_000_000, "msg": {"email": "a@b.test", "subject": big},
        }));
        let resend = resend::normalize(
            &json!({"type": "email.opened", "created_at": at, "data": {"to": ["a@b.test"], "big": big}}),
            "msg_1",
        )
        .map(|p| p.rejected.into_iter().map(|r| r.error).collect::<Vec<_>>());
        let customerio = customerio::normalize(&json!({
            "object_type": "email", "metric": "opened", "event_id": "e1", "timestamp": 1_795_000_000,
            "data": {"recipient": "a@b.test", "big": big},
        }));
        let ses = ses::normalize(
            &json!({"eventType": "Open", "mail": {"destination": ["a@b.test"], "timestamp": at, "tags": {"big": [big]}},
                    "open": {"timestamp": at}}),
            "sns-1",
        )
        .map(|outcomes| outcomes.into_iter().map(|(_, e)| e).collect::<Vec<_>>());
        let over = |r: &Result<Event, String>| r.as_ref().is_err_and(|e| e.contains("-byte limit"));
        assert!(over(&sendgrid), "sendgrid: {:?}", sendgrid.map(|e| e.id));
        assert!(over(&mandrill), "mandrill: {:?}", mandrill.map(|e| e.id));
        assert!(over(&customerio), "customerio: {:?}", customerio.map(|e| e.id));
        assert!(matches!(&resend, Ok(errors) if errors.len() == 1 && errors[0].contains("-byte limit")));
        assert!(matches!(&ses, Ok(events) if events.len() == 1 && over(&events[0])));
    }

    #[test]
    fn derived_ids_are_stable_and_separate_their_parts() {
        let a = derived_id("p", &["ab", "c"]);
        assert_eq!(a, derived_id("p", &["ab", "c"]));
        assert_ne!(a, derived_id("p", &["a", "bc"]));
        assert!(a.starts_with("p:") && a.len() == 2 + 64);
    }
}

/// Helpers for provider tests that go through the route ([`crate::handle`]).
#[cfg(test)]
pub mod testing {
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
    pub async fn route(
        hook: Arc<dyn Webhook>,
        req: ApiGatewayV2httpRequest,
        claims: &MemoryClaims,
        now: i64,
    ) -> Outcome {
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
}
