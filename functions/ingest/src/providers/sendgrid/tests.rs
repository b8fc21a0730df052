use std::sync::Arc;

use base64::Engine;
use kairos_event::EventType;
use kairos_store::MemoryClaims;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature as EcdsaSignature, SigningKey};
use serde_json::{json, Value};

use super::*;
use crate::providers::testing::{post, route, Outcome};

const NOW: i64 = 1_796_000_000;
const VECTOR: &str = include_str!("../../../../../tests/fixtures/esp/sendgrid_signed_minimal_testvector.json");
const VECTOR_BODY: &str = include_str!("../../../../../tests/fixtures/esp/sendgrid_signed_minimal_testvector.body");
const OPEN: &str = include_str!("../../../../../tests/fixtures/esp/sendgrid_open.json");
const BOUNCE: &str = include_str!("../../../../../tests/fixtures/esp/sendgrid_bounce.json");

/// The verification key of a p256 signing key, as the route holds it.
fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from_sec1(key.verifying_key().to_encoded_point(false).as_bytes()).unwrap()
}

fn hook(key: &SigningKey) -> Arc<dyn Webhook> {
    Arc::new(SendGrid::new(public(key), 300))
}

/// Sends `body`, signed by `key` at `ts` as SendGrid signs, through the route at `now`.
async fn send(key: &SigningKey, signer: &SigningKey, body: &str, ts: i64, now: i64) -> Outcome {
    let signature: EcdsaSignature = signer.sign(format!("{ts}{body}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let ts = ts.to_string();
    let headers = [(SIGNATURE_HEADER, b64.as_str()), (TIMESTAMP_HEADER, ts.as_str())];
    route(
        hook(key),
        post("sendgrid", body, &headers),
        &MemoryClaims::default(),
        now,
    )
    .await
}

#[test]
fn sendgrid_sdk_test_vector_verifies_and_its_negative_case_does_not() {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    let key = parse_public_key(v["public_key_b64_spki_der"].as_str().unwrap()).unwrap();
    let sig = v["header_X-Twilio-Email-Event-Webhook-Signature"].as_str().unwrap();
    let ts = v["header_X-Twilio-Email-Event-Webhook-Timestamp"].as_str().unwrap();
    let ts_num: i64 = ts.parse().unwrap();
    let body = VECTOR_BODY.as_bytes();
    assert_eq!(verify(&key, sig, ts, body, ts_num + 10, 300), Ok(()));
    let bad = v["negative_cases"]["bad_signature_one_char_changed"].as_str().unwrap();
    assert_eq!(verify(&key, bad, ts, body, ts_num, 300), Err(SignatureError::Invalid));
    let tampered = VECTOR_BODY.replace("test_event", "test_evenT");
    assert_eq!(
        verify(&key, sig, ts, tampered.as_bytes(), ts_num, 300),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify(&key, sig, ts, body, ts_num + 301, 300),
        Err(SignatureError::Stale(301))
    );
}

#[test]
fn timestamps_at_the_integer_limits_are_stale_not_a_panic() {
    let key = public(&SigningKey::from_slice(&[7u8; 32]).unwrap());
    for ts in [i64::MIN, i64::MAX] {
        let result = verify(&key, "AAAA", &ts.to_string(), b"[]", NOW, 300);
        assert!(matches!(result, Err(SignatureError::Stale(_))), "{result:?}");
    }
}

#[tokio::test]
async fn a_signed_webhook_is_normalized_and_enqueued() {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let open: Value = serde_json::from_str(OPEN).unwrap();
    let bounce: Value = serde_json::from_str(BOUNCE).unwrap();
    let body = serde_json::to_string(&[open[0].clone(), bounce[0].clone()]).unwrap();
    let out = send(&signing, &signing, &body, NOW, NOW + 5).await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    let events = out.events;
    assert_eq!(events[0].kind, EventType::EmailOpened);
    assert_eq!(events[0].id, "FOTFFO0ecsBE-zxFXfs6WA==");
    assert_eq!(events[0].contact, "alex@example.com");
    assert_eq!(events[0].at.timestamp(), 1_513_299_569);
    assert!(!events[0].machine);
    assert_eq!(events[0].properties["category"], "cat facts");
    assert_eq!(events[1].kind, EventType::EmailBounced);
    assert_eq!(events[1].properties["reason"], "500 unknown recipient");
}

#[tokio::test]
async fn a_forged_or_replayed_webhook_is_refused_before_parsing() {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let forged = send(&signing, &other, "not even json", NOW, NOW).await;
    assert_eq!((forged.status, forged.body), (401, json!({"error": "unauthorized"})));
    let replayed = send(&signing, &signing, "[]", NOW - 301, NOW).await;
    assert_eq!(replayed.status, 401);
    let unsigned = route(
        hook(&signing),
        post("sendgrid", "[]", &[]),
        &MemoryClaims::default(),
        NOW,
    )
    .await;
    assert_eq!((unsigned.status, unsigned.events.len()), (401, 0));
}

#[tokio::test]
async fn a_batch_with_a_bad_event_answers_200_and_keeps_the_good_ones() {
    let signing = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let body = r#"[{"email":"Ada@Example.com","timestamp":1795000000,"event":"open","sg_event_id":"g1"},
                   {"email":"ada@example.com","timestamp":1795000000,"event":"teleport","sg_event_id":"b1"}]"#;
    let out = send(&signing, &signing, body, NOW, NOW).await;
    assert_eq!(out.status, 200, "SendGrid retries any non-2xx: {:?}", out.body);
    assert_eq!(
        (out.body["accepted"].as_u64(), out.body["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(out.body["errors"][0]["error"].as_str().unwrap().contains("teleport"));
    assert_eq!(out.events[0].contact, "ada@example.com");
}

/// Before, `email` given twice kept the last one silently.
#[tokio::test]
async fn an_item_with_email_twice_is_refused_alone() {
    let signing = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let body = r#"[{"email":"ada@example.com","timestamp":1795000000,"event":"open","sg_event_id":"g1"},
                   {"email":"ada@example.com","email":"eve@example.com","timestamp":1795000000,"event":"open","sg_event_id":"g2"}]"#;
    let out = send(&signing, &signing, body, NOW, NOW).await;
    assert_eq!(out.status, 200);
    let error = &out.body["errors"][0];
    assert_eq!((error["index"].as_u64(), error["id"].as_str()), (Some(1), None));
    assert_eq!(error["error"], "duplicate key `email`: a key may be given only once");
    assert_eq!(out.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["g1"]);
}

#[test]
fn the_key_is_read_from_spki_der_or_pem_and_anything_else_is_named() {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    let b64 = v["public_key_b64_spki_der"].as_str().unwrap();
    let der = parse_public_key(b64).unwrap();
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    assert_eq!(parse_public_key(&pem).unwrap(), der);
    let reason = |text: &str| match parse_public_key(text) {
        Err(ConfigError::Invalid { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason("not base64!"), "expected base64 (SPKI DER) or PEM");
    // An RSA key (the SNS test certificate's) is not a P-256 key.
    let cert = include_str!("../../../../../tests/fixtures/esp/sns_test_signing_key.cert.pem");
    let cert = <x509_cert::Certificate as x509_cert::der::DecodePem>::from_pem(cert).unwrap();
    let rsa = x509_cert::der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
    let rsa = base64::engine::general_purpose::STANDARD.encode(rsa);
    assert_eq!(reason(&rsa), "not a P-256 public key");
    let wrong_label = pem.replace("PUBLIC KEY", "CERTIFICATE");
    assert_eq!(reason(&wrong_label), "PEM is not a PUBLIC KEY");
    assert_eq!(PublicKey::from_sec1(&[4; 33]), Err("not an uncompressed P-256 point"));
}

#[test]
fn a_signature_that_is_not_der_is_malformed_and_a_point_off_the_curve_never_verifies() {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    let key = parse_public_key(v["public_key_b64_spki_der"].as_str().unwrap()).unwrap();
    let sig = v["header_X-Twilio-Email-Event-Webhook-Signature"].as_str().unwrap();
    let ts = v["header_X-Twilio-Email-Event-Webhook-Timestamp"].as_str().unwrap();
    let now: i64 = ts.parse().unwrap();
    let body = VECTOR_BODY.as_bytes();
    let raw = base64::engine::general_purpose::STANDARD.encode([1u8; 64]);
    assert_eq!(verify(&key, &raw, ts, body, now, 300), Err(SignatureError::Malformed));
    assert_eq!(verify(&key, "%%%", ts, body, now, 300), Err(SignatureError::Malformed));
    let off_curve = PublicKey::from_sec1(&[[4u8].as_slice(), &[1u8; 64]].concat()).unwrap();
    assert_eq!(
        verify(&off_curve, sig, ts, body, now, 300),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn a_block_is_a_deferral_and_only_a_bounce_marks_the_address_bounced() {
    let bounce: Value = serde_json::from_str(BOUNCE).unwrap();
    assert_eq!(normalize(&bounce[0]).unwrap().kind, EventType::EmailBounced);
    let mut blocked = bounce[0].clone();
    blocked["type"] = serde_json::json!("blocked");
    blocked["reason"] = serde_json::json!("550 5.1.1 unresolvable MX");
    let event = normalize(&blocked).unwrap();
    assert_eq!(event.kind, EventType::EmailDeferred);
    assert_eq!(event.properties["type"], "blocked");
    let mut untyped = bounce[0].clone();
    untyped.as_object_mut().unwrap().remove("type");
    assert_eq!(normalize(&untyped).unwrap().kind, EventType::EmailBounced);
}
