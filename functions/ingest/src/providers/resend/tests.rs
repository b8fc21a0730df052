use super::*;
use crate::{handle, Ingest, IngestConfig};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, Method};
use kairos_store::{MemoryClaims, MemoryQueue};
use serde_json::json;
use std::sync::Arc;

/// Svix's published test vector (svix/svix-webhooks `php/tests/WebhookTest.php`,
/// `testSignFunctionWorks`; the same values appear in the Standard Webhooks libraries).
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TS: i64 = 1_614_265_330;
const VECTOR_BODY: &str = r#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const NOW: i64 = 1_795_000_000;
const SENT: &str = include_str!("../../../../../tests/fixtures/esp/resend_email.sent.json");
const BOUNCED: &str = include_str!("../../../../../tests/fixtures/esp/resend_email.bounced.json");
const OPENED: &str = include_str!("../../../../../tests/fixtures/esp/resend_email.opened.json");

fn key() -> Vec<u8> {
    decode_secret(VECTOR_SECRET).unwrap()
}

fn headers<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> SvixHeaders<'a> {
    SvixHeaders {
        id,
        timestamp,
        signature,
    }
}

/// `v1,` + base64(HMAC-SHA256(key, id.ts.body)), computed from the documented scheme.
fn sign(key: &[u8], id: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn request(body: &str, id: &str, ts: i64, signature: &str, prefix: &str) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some("/webhooks/resend".into());
    req.body = Some(body.to_string());
    req.headers.insert(
        aws_lambda_events::http::HeaderName::try_from(format!("{prefix}-id")).unwrap(),
        id.parse().unwrap(),
    );
    req.headers.insert(
        aws_lambda_events::http::HeaderName::try_from(format!("{prefix}-timestamp")).unwrap(),
        ts.to_string().parse().unwrap(),
    );
    req.headers.insert(
        aws_lambda_events::http::HeaderName::try_from(format!("{prefix}-signature")).unwrap(),
        signature.parse().unwrap(),
    );
    req
}

fn signed(body: &str, id: &str) -> ApiGatewayV2httpRequest {
    request(body, id, NOW, &sign(&key(), id, NOW, body), "svix")
}

async fn send(req: ApiGatewayV2httpRequest, queue: &MemoryQueue, claims: &MemoryClaims) -> ApiGatewayV2httpResponse {
    let config = IngestConfig {
        webhooks: vec![Arc::new(Resend::new(key(), 300))],
        ..IngestConfig::default()
    };
    handle(
        req,
        &Ingest {
            config: &config,
            queue,
            claims,
        },
        NOW,
    )
    .await
}

fn json_body(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn events(body: &str) -> Vec<Event> {
    let parsed = normalize(&serde_json::from_str(body).unwrap(), "msg_1").unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    parsed.events
}

#[test]
fn svix_published_vector_verifies() {
    let h = headers(VECTOR_ID, "1614265330", VECTOR_SIGNATURE);
    assert_eq!(
        verify(&key(), &h, VECTOR_BODY.as_bytes(), VECTOR_TS, 300),
        Ok(VECTOR_TS)
    );
    assert_eq!(sign(&key(), VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIGNATURE);
    let tampered = VECTOR_BODY.replace('2', "3");
    assert_eq!(
        verify(&key(), &h, tampered.as_bytes(), VECTOR_TS, 300),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify(&key(), &h, VECTOR_BODY.as_bytes(), VECTOR_TS + 301, 300),
        Err(SignatureError::Stale(301))
    );
    let other_key = decode_secret("whsec_c2VjcmV0LWtleS10aGF0LWlzLW5vdC1pdA==").unwrap();
    assert_eq!(
        verify(&other_key, &h, VECTOR_BODY.as_bytes(), VECTOR_TS, 300),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn key_rotation_list_accepts_any_matching_v1_and_ignores_other_versions() {
    let body = VECTOR_BODY.as_bytes();
    let rotated = format!("v1,bm9wZQ== v1a,abc {VECTOR_SIGNATURE} v2,zzz");
    let h = headers(VECTOR_ID, "1614265330", &rotated);
    assert_eq!(verify(&key(), &h, body, VECTOR_TS, 300), Ok(VECTOR_TS));
    let wrong_version = VECTOR_SIGNATURE.replace("v1,", "v2,");
    let h = headers(VECTOR_ID, "1614265330", &wrong_version);
    assert_eq!(verify(&key(), &h, body, VECTOR_TS, 300), Err(SignatureError::Invalid));
    let h = headers(VECTOR_ID, "16142653x0", VECTOR_SIGNATURE);
    assert_eq!(
        verify(&key(), &h, body, VECTOR_TS, 300),
        Err(SignatureError::BadTimestamp)
    );
}

#[test]
fn fixtures_normalize_one_event_per_recipient() {
    let sent = events(SENT);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].kind, EventType::EmailSent);
    assert_eq!(sent[0].contact, "to@example.org", "display name stripped");
    assert_eq!(sent[1].contact, "to2@example.org");
    assert_eq!(sent[0].id, "msg_1:to@example.org");
    assert_eq!(sent[1].id, "msg_1:to2@example.org");
    assert_eq!(sent[0].at.to_rfc3339(), "2023-09-28T17:19:43.736+00:00");
    assert_eq!(
        sent[0].message_id.as_deref(),
        Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    );
    assert_eq!(sent[0].source, "resend");
    assert_eq!(sent[0].properties["tags"]["tag1"], "Tag_1_value");
    assert_eq!(sent[0].properties["subject"], "Sending test");

    let bounced = events(BOUNCED);
    assert_eq!(bounced.len(), 1);
    assert_eq!(bounced[0].kind, EventType::EmailBounced);
    assert_eq!(bounced[0].contact, "bounced@resend.dev");
    assert!(bounced[0].properties["bounce"]["message"]
        .as_str()
        .unwrap()
        .contains("hard bounce"));

    let opened = events(OPENED);
    assert_eq!(opened[0].kind, EventType::EmailOpened);
    assert_eq!(opened[0].contact, "to@example.org");
    assert!(!opened[0].machine);
    assert_eq!(opened[0].at.timestamp(), 1_695_921_638);
}

#[test]
fn clicks_carry_the_link_and_non_email_kinds_give_nothing() {
    let click = json!({"type": "email.clicked", "created_at": "2024-11-22T23:41:12.126Z",
        "data": {"email_id": "e1", "to": ["A@B.co"], "click": {"link": "https://resend.com", "timestamp": "x"}}});
    let parsed = normalize(&click, "msg_2").unwrap();
    assert_eq!(parsed.events[0].url.as_deref(), Some("https://resend.com"));
    assert_eq!(parsed.events[0].contact, "a@b.co");
    for kind in ["contact.created", "domain.updated", "email.received", "email.scheduled"] {
        let body = json!({"type": kind, "created_at": "2024-11-22T23:41:12.126Z", "data": {}});
        assert_eq!(normalize(&body, "m").unwrap(), Parsed::default(), "{kind}");
    }
    let unknown = json!({"type": "email.teleported", "created_at": "2024-11-22T23:41:12.126Z", "data": {}});
    assert!(normalize(&unknown, "m")
        .unwrap_err()
        .to_string()
        .contains("email.teleported"));
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    let hdrs = HeaderMap::new();
    let req = Request {
        method: &Method::POST,
        headers: &hdrs,
        body: b"{}",
    };
    assert!(parse(&req).is_err(), "no svix-id header");
    for body in [
        json!(null),
        json!([]),
        json!({"type": 3}),
        json!({"type": "email.sent"}),
        json!({"type": "email.sent", "created_at": "yesterday", "data": {"to": []}}),
        json!({"type": "email.sent", "created_at": "2024-11-22T23:41:12Z", "data": {"to": {}}}),
        json!({"type": "email.sent", "created_at": "2024-11-22T23:41:12Z", "data": []}),
    ] {
        assert!(normalize(&body, "m").is_err(), "{body}");
    }
    let odd = json!({"type": "email.sent", "created_at": "2024-11-22T23:41:12Z",
        "data": {"to": [null, "", "<>", "Name <", ">", "x <y@z.io>"]}});
    let parsed = normalize(&odd, "m").unwrap();
    assert_eq!(parsed.events.len(), 1, "{parsed:?}");
    assert_eq!(parsed.events[0].contact, "y@z.io");
    assert_eq!(parsed.rejected.len(), 5);
}

#[tokio::test]
async fn signed_request_is_enqueued_and_a_repeated_svix_id_is_acknowledged_not_enqueued() {
    let queue = MemoryQueue::default();
    let claims = MemoryClaims::default();
    let resp = send(signed(SENT, "msg_abc"), &queue, &claims).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(queue.len(), 2);
    // Svix signs id, timestamp and body: a repeat is the same request, retried
    // after a lost answer. Acknowledged, not enqueued twice.
    let repeat = send(signed(SENT, "msg_abc"), &queue, &claims).await;
    assert_eq!(repeat.status_code, 200);
    assert_eq!(queue.len(), 2);
    let standard = request(OPENED, "msg_def", NOW, &sign(&key(), "msg_def", NOW, OPENED), "webhook");
    assert_eq!(send(standard, &queue, &claims).await.status_code, 200);
    assert_eq!(queue.len(), 3);
}

#[tokio::test]
async fn rotation_header_with_one_valid_signature_is_accepted_through_the_route() {
    let queue = MemoryQueue::default();
    let old_key = decode_secret("whsec_b2xkLWtleS1iZWZvcmUtcm90YXRpb24=").unwrap();
    let header = format!(
        "{} {}",
        sign(&old_key, "msg_rot", NOW, OPENED),
        sign(&key(), "msg_rot", NOW, OPENED)
    );
    let resp = send(
        request(OPENED, "msg_rot", NOW, &header, "svix"),
        &queue,
        &MemoryClaims::default(),
    )
    .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn tampered_wrong_key_stale_and_unsigned_requests_are_refused() {
    let queue = MemoryQueue::default();
    let claims = MemoryClaims::default();
    let good = sign(&key(), "msg_t", NOW, SENT);
    let tampered = SENT.replace("to2@", "evil@");
    assert_eq!(
        send(request(&tampered, "msg_t", NOW, &good, "svix"), &queue, &claims)
            .await
            .status_code,
        401
    );
    let wrong = sign(b"another key", "msg_t", NOW, SENT);
    assert_eq!(
        send(request(SENT, "msg_t", NOW, &wrong, "svix"), &queue, &claims)
            .await
            .status_code,
        401
    );
    let stale_ts = NOW - 301;
    let stale = sign(&key(), "msg_t", stale_ts, SENT);
    assert_eq!(
        send(request(SENT, "msg_t", stale_ts, &stale, "svix"), &queue, &claims)
            .await
            .status_code,
        401
    );
    let mut unsigned = signed(SENT, "msg_t");
    unsigned.headers.remove("svix-signature");
    let resp = send(unsigned, &queue, &claims).await;
    assert_eq!(
        (resp.status_code, json_body(&resp)),
        (401, json!({"error": "unauthorized"}))
    );
    assert!(queue.is_empty());
}

#[tokio::test]
async fn partial_message_keeps_good_recipients_and_malformed_gets_400() {
    let queue = MemoryQueue::default();
    let claims = MemoryClaims::default();
    let body = r#"{"type":"email.delivered","created_at":"2024-11-22T23:41:12.126Z","data":{"email_id":"e","to":["ok@example.com",7]}}"#;
    let resp = send(signed(body, "msg_p"), &queue, &claims).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(json_body(&resp)["accepted"], 1);
    assert_eq!(queue.len(), 1);
    let resp = send(signed("not json", "msg_q"), &queue, &claims).await;
    assert_eq!(resp.status_code, 400);
    let resp = send(
        signed(r#"{"type":"contact.created","created_at":"x","data":{}}"#, "msg_r"),
        &queue,
        &claims,
    )
    .await;
    assert_eq!(resp.status_code, 200, "skipped kinds are acknowledged");
}

#[test]
fn config_rejects_a_secret_that_is_not_base64_without_echoing_it() {
    let settings = |secret: &str| Settings {
        secret: Some(secret.to_string()),
        replay_window_secs: 300,
        ..Settings::default()
    };
    let err = Resend::build(&settings("whsec_not*base64!")).unwrap_err().to_string();
    assert!(
        err.contains("KAIROS_RESEND_SECRET") && !err.contains("not*base64"),
        "{err}"
    );
    assert!(Resend::build(&settings(VECTOR_SECRET)).unwrap().is_some());
    assert!(Resend::build(&Settings::default()).unwrap().is_none());
}
