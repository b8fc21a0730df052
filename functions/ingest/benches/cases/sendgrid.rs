use std::sync::Arc;

use aws_lambda_events::http::HeaderMap;
use base64::Engine;
use kairos_ingest::providers::sendgrid::{PublicKey, SendGrid};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use super::{Case, NOW};

/// The four SendGrid fixtures as one batch, signed with ECDSA P-256.
pub fn case() -> Case {
    let mut items = Vec::new();
    for text in [
        include_str!("../../../../tests/fixtures/esp/sendgrid_open.json"),
        include_str!("../../../../tests/fixtures/esp/sendgrid_bounce.json"),
        include_str!("../../../../tests/fixtures/esp/sendgrid_spamreport.json"),
        include_str!("../../../../tests/fixtures/esp/sendgrid_group_unsubscribe.json"),
    ] {
        match serde_json::from_str::<serde_json::Value>(text).expect("fixture is JSON") {
            serde_json::Value::Array(a) => items.extend(a),
            other => items.push(other),
        }
    }
    let body = serde_json::to_vec(&items).expect("serializes");
    let key = SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar");
    let mut signed = NOW.to_string().into_bytes();
    signed.extend_from_slice(&body);
    let signature: Signature = key.sign(&signed);
    let mut headers = HeaderMap::new();
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    headers.insert("x-twilio-email-event-webhook-signature", b64.parse().expect("header"));
    headers.insert(
        "x-twilio-email-event-webhook-timestamp",
        NOW.to_string().parse().expect("header"),
    );
    Case {
        name: "sendgrid",
        hook: Arc::new(SendGrid::new(
            PublicKey::from_sec1(key.verifying_key().to_encoded_point(false).as_bytes()).expect("a P-256 point"),
            300,
        )),
        headers,
        body,
        now: NOW,
    }
}
