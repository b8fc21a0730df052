//! Providers that sign with a shared key (HMAC) or authenticate with one.

use std::sync::Arc;

use aws_lambda_events::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use kairos_ingest::providers::{brevo, customerio, mailgun, mandrill, postmark, resend, sparkpost};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::Sha256;

use super::{headers, Case, NOW};

const KEY: &str = "bench-signing-key";
const USER_PASSWORD: &str = "kairos:bench-password";

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn hmac256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(USER_PASSWORD)
    )
}

fn case(name: &'static str, hook: Arc<dyn kairos_ingest::Webhook>, headers: HeaderMap, body: Vec<u8>) -> Case {
    Case {
        name,
        hook,
        headers,
        body,
        now: NOW,
    }
}

/// Mailgun: HMAC-SHA256 of timestamp + token, hex, in the body's signature block.
pub fn mailgun() -> Case {
    let token = "b2c9a3f1e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8";
    let signature = hex::encode(hmac256(KEY.as_bytes(), format!("{NOW}{token}").as_bytes()));
    let body = json!({
        "signature": {"timestamp": NOW.to_string(), "token": token, "signature": signature},
        "event-data": fixture(include_str!("../../../../tests/fixtures/esp/mailgun_opened.json")),
    });
    let hook = Arc::new(mailgun::Mailgun::new(KEY, USER_PASSWORD, 300));
    let basic = basic();
    case(
        "mailgun",
        hook,
        headers(&[("authorization", &basic)]),
        body.to_string().into_bytes(),
    )
}

/// Postmark: basic auth.
pub fn postmark() -> Case {
    let body = include_str!("../../../../tests/fixtures/esp/postmark_open.json");
    let hook = Arc::new(postmark::Postmark::new(USER_PASSWORD));
    case("postmark", hook, headers(&[("authorization", &basic())]), body.into())
}

/// Mandrill: base64 HMAC-SHA1 over the URL and the sorted form parameters.
pub fn mandrill() -> Case {
    let url = "https://kairos.example/webhooks/mandrill";
    let events = include_str!("../../../../tests/fixtures/esp/mandrill_events_batch.json");
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("mandrill_events", events)
        .finish();
    let mut mac = Hmac::<Sha1>::new_from_slice(KEY.as_bytes()).expect("any key length");
    mac.update(format!("{url}mandrill_events{events}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let hook = Arc::new(mandrill::Mandrill::new(KEY, url));
    case(
        "mandrill",
        hook,
        headers(&[("x-mandrill-signature", &signature)]),
        body.into_bytes(),
    )
}

/// Brevo: a bearer token; the three fixtures as one batch.
pub fn brevo() -> Case {
    let body = json!([
        fixture(include_str!("../../../../tests/fixtures/esp/brevo_request_sent.json")),
        fixture(include_str!("../../../../tests/fixtures/esp/brevo_proxy_open.json")),
        fixture(include_str!("../../../../tests/fixtures/esp/brevo_hard_bounce.json")),
    ]);
    let hook = Arc::new(brevo::Brevo::new(KEY));
    let auth = format!("Bearer {KEY}");
    case(
        "brevo",
        hook,
        headers(&[("authorization", &auth)]),
        body.to_string().into_bytes(),
    )
}

/// SparkPost: basic auth; its bounce batch.
pub fn sparkpost() -> Case {
    let body = include_str!("../../../../tests/fixtures/esp/sparkpost_bounce_batch.json");
    let hook = Arc::new(sparkpost::SparkPost::new(USER_PASSWORD));
    case("sparkpost", hook, headers(&[("authorization", &basic())]), body.into())
}

/// Resend: Svix, base64 HMAC-SHA256 of id.timestamp.body.
pub fn resend() -> Case {
    let key = b"bench-svix-secret-32-bytes-long!".to_vec();
    let body = include_str!("../../../../tests/fixtures/esp/resend_email.opened.json");
    let id = "msg_2bench";
    let mac = hmac256(&key, format!("{id}.{NOW}.{body}").as_bytes());
    let signature = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac));
    let hook = Arc::new(resend::Resend::new(key, 300));
    let ts = NOW.to_string();
    let headers = headers(&[("svix-id", id), ("svix-timestamp", &ts), ("svix-signature", &signature)]);
    case("resend", hook, headers, body.into())
}

/// Customer.io: hex HMAC-SHA256 of `v0:<timestamp>:<body>`.
pub fn customerio() -> Case {
    let body = include_str!("../../../../tests/fixtures/esp/customerio_email_opened.json");
    let signature = hex::encode(hmac256(KEY.as_bytes(), format!("v0:{NOW}:{body}").as_bytes()));
    let hook = Arc::new(customerio::CustomerIo::new(KEY, 300));
    let ts = NOW.to_string();
    let headers = headers(&[("x-cio-timestamp", &ts), ("x-cio-signature", &signature)]);
    case("customerio", hook, headers, body.into())
}
