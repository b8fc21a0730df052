use super::*;
use crate::providers::sendgrid::{parse_public_key, SendGrid};
use aws_lambda_events::encodings::Body;
use kairos_event::{Event, EventType};
use kairos_store::{MemoryQueue, QueueError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::Value;
use std::sync::Arc;

const NOW: i64 = 1_796_000_000;
const VECTOR: &str = include_str!("../../../tests/fixtures/esp/sendgrid_signed_minimal_testvector.json");
const VECTOR_BODY: &str = include_str!("../../../tests/fixtures/esp/sendgrid_signed_minimal_testvector.body");

fn request(path: &str, body: &str) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some(path.to_string());
    req.body = Some(body.to_string());
    req
}

fn body_json(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn config(key: Option<VerifyingKey>) -> IngestConfig {
    let webhooks = key.map(|k| Arc::new(SendGrid::new(k, 300)) as Arc<dyn Webhook>);
    IngestConfig {
        api_keys: vec!["secret-key".into()],
        webhooks: webhooks.into_iter().collect(),
        ..IngestConfig::default()
    }
}

fn queued(queue: &MemoryQueue) -> Vec<Event> {
    queue
        .drain()
        .iter()
        .map(|m| Event::from_json(m.body.as_bytes()).unwrap())
        .collect()
}

fn signed(key: &SigningKey, body: &str, ts: i64) -> ApiGatewayV2httpRequest {
    let mut req = request("/webhooks/sendgrid", body);
    let signature: Signature = key.sign(format!("{ts}{body}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    req.headers
        .insert("X-Twilio-Email-Event-Webhook-Signature", b64.parse().unwrap());
    req.headers.insert(
        "X-Twilio-Email-Event-Webhook-Timestamp",
        ts.to_string().parse().unwrap(),
    );
    req
}

#[test]
fn sendgrid_sdk_test_vector_verifies_and_its_negative_case_does_not() {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    let key = parse_public_key(v["public_key_b64_spki_der"].as_str().unwrap()).unwrap();
    let sig = v["header_X-Twilio-Email-Event-Webhook-Signature"].as_str().unwrap();
    let ts = v["header_X-Twilio-Email-Event-Webhook-Timestamp"].as_str().unwrap();
    let ts_num: i64 = ts.parse().unwrap();
    assert_eq!(
        verify_sendgrid(&key, sig, ts, VECTOR_BODY.as_bytes(), ts_num + 10, 300),
        Ok(())
    );
    let bad = v["negative_cases"]["bad_signature_one_char_changed"].as_str().unwrap();
    assert_eq!(
        verify_sendgrid(&key, bad, ts, VECTOR_BODY.as_bytes(), ts_num, 300),
        Err(SignatureError::Invalid)
    );
    let tampered = VECTOR_BODY.replace("test_event", "test_evenT");
    assert_eq!(
        verify_sendgrid(&key, sig, ts, tampered.as_bytes(), ts_num, 300),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_sendgrid(&key, sig, ts, VECTOR_BODY.as_bytes(), ts_num + 301, 300),
        Err(SignatureError::Stale(301))
    );
}

#[tokio::test]
async fn signed_sendgrid_webhook_is_normalized_and_enqueued() {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let config = config(Some(*signing.verifying_key()));
    let queue = MemoryQueue::default();
    let open: Value = serde_json::from_str(include_str!("../../../tests/fixtures/esp/sendgrid_open.json")).unwrap();
    let bounce: Value = serde_json::from_str(include_str!("../../../tests/fixtures/esp/sendgrid_bounce.json")).unwrap();
    let body = serde_json::to_string(&[open[0].clone(), bounce[0].clone()]).unwrap();
    let resp = handle(
        signed(&signing, &body, NOW),
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        NOW + 5,
    )
    .await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    let events = queued(&queue);
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
async fn forged_or_replayed_sendgrid_webhook_is_refused_before_parsing() {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let config = config(Some(*signing.verifying_key()));
    let queue = MemoryQueue::default();
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &kairos_store::MemoryClaims::default(),
    };
    let forged = handle(signed(&other, "not even json", NOW), &ingest, NOW).await;
    assert_eq!(
        (forged.status_code, body_json(&forged)),
        (401, json!({"error": "unauthorized"}))
    );
    let replayed = handle(signed(&signing, "[]", NOW - 301), &ingest, NOW).await;
    assert_eq!(replayed.status_code, 401);
    let unsigned = handle(request("/webhooks/sendgrid", "[]"), &ingest, NOW).await;
    assert_eq!(unsigned.status_code, 401);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn sendgrid_route_without_a_key_is_not_served() {
    let config = config(None);
    let queue = MemoryQueue::default();
    let resp = handle(
        request("/webhooks/sendgrid", "[]"),
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        NOW,
    )
    .await;
    assert_eq!(resp.status_code, 404);
}

#[tokio::test]
async fn bad_items_are_named_and_good_ones_still_enqueued() {
    let config = config(None);
    let queue = MemoryQueue::default();
    let body = r#"{"batch":[
        {"id":"a","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"},
        {"id":"b","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web","colour":"red"},
        {"id":"c","contact":"u1","type":"track","at":"2026-11-27T10:00:00Z","source":"web"},
        {"id":"d","contact":"U2","type":"form.submitted","at":"2026-11-27T10:00:00Z","source":"web"}]}"#;
    let mut req = request("/v1/events", body);
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let resp = handle(
        req,
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        NOW,
    )
    .await;
    assert_eq!(resp.status_code, 400);
    let json = body_json(&resp);
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["errors"][0]["index"], 1);
    assert_eq!(json["errors"][0]["id"], "b");
    assert!(json["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("unknown field `colour`"));
    assert_eq!(json["errors"][1]["error"], "missing field `name`");
    assert_eq!(
        queued(&queue).iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a", "d"]
    );
}

#[tokio::test]
async fn api_key_body_size_and_routes_are_enforced() {
    let config = IngestConfig {
        max_body_bytes: 64,
        ..config(None)
    };
    let queue = MemoryQueue::default();
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &kairos_store::MemoryClaims::default(),
    };
    let mut wrong = request("/v1/events", "{}");
    wrong.headers.insert("x-api-key", "secret-kez".parse().unwrap());
    assert_eq!(handle(wrong, &ingest, NOW).await.status_code, 401);
    let mut big = request("/v1/events", &"x".repeat(65));
    big.headers.insert("x-api-key", "secret-key".parse().unwrap());
    assert_eq!(handle(big, &ingest, NOW).await.status_code, 413);
    assert_eq!(
        handle(request("/v2/nothing", "{}"), &ingest, NOW).await.status_code,
        404
    );
    let mut get = request("/v1/events", "");
    get.request_context.http.method = Method::GET;
    assert_eq!(handle(get, &ingest, NOW).await.status_code, 405);
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let config = config(None);
    let queue = MemoryQueue::default();
    let event = r#"{"id":"a","contact":"u1","type":"chat.message","at":"2026-11-27T10:00:00Z","source":"intercom"}"#;
    let mut req = request("/v1/events", &base64::engine::general_purpose::STANDARD.encode(event));
    req.is_base64_encoded = true;
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let resp = handle(
        req,
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        NOW,
    )
    .await;
    assert_eq!(resp.status_code, 202);
    assert_eq!(queued(&queue)[0].kind, EventType::ChatMessage);
}

struct DownQueue;

impl Queue for DownQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        Err(QueueError {
            failed: messages.iter().map(|m| m.id.clone()).collect(),
            reason: "throttled".into(),
        })
    }
}

#[tokio::test]
async fn enqueue_failure_asks_the_sender_to_retry() {
    let config = config(None);
    let mut req = request(
        "/v1/events",
        r#"{"id":"a","contact":"u1","type":"ad.clicked","at":"2026-11-27T10:00:00Z","source":"ads"}"#,
    );
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let resp = handle(
        req,
        &Ingest {
            config: &config,
            queue: &DownQueue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        NOW,
    )
    .await;
    assert_eq!(resp.status_code, 503);
}

#[test]
fn config_validates_keys_and_numbers_without_echoing_secrets() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    const BASE: [(&str, &str); 2] = [("KAIROS_EVENTS_QUEUE_URL", "https://q"), ("KAIROS_TABLE", "t")];
    let config = IngestConfig::from_env(&env(&[BASE[0], BASE[1], ("KAIROS_API_KEYS", " a, b ,,")])).unwrap();
    assert_eq!(config.api_keys, ["a", "b"]);
    assert!(config.webhook("sendgrid").is_none());
    assert_eq!(config.max_clock_skew_secs, kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS);
    let config = IngestConfig::from_env(&env(&[BASE[0], BASE[1], ("KAIROS_MAX_CLOCK_SKEW_SECS", "60")])).unwrap();
    assert_eq!(
        (config.events_queue_url.as_str(), config.max_clock_skew_secs),
        ("https://q", 60)
    );
    let err = IngestConfig::from_env(&env(&[("KAIROS_TABLE", "t")])).unwrap_err();
    assert!(err.to_string().contains("KAIROS_EVENTS_QUEUE_URL"), "{err}");
    let err = IngestConfig::from_env(&env(&[("KAIROS_SENDGRID_PUBLIC_KEY", "c2VjcmV0LXZhbHVl")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KAIROS_SENDGRID_PUBLIC_KEY") && !err.contains("c2VjcmV0LXZhbHVl"),
        "{err}"
    );
    let err = IngestConfig::from_env(&env(&[("KAIROS_MAX_BODY_BYTES", "-3")])).unwrap_err();
    assert!(err.to_string().contains("KAIROS_MAX_BODY_BYTES"));
}

#[tokio::test]
async fn head_checks_of_provider_urls_answer_200_even_before_configuration() {
    let config = config(None);
    let (queue, claims) = (MemoryQueue::default(), kairos_store::MemoryClaims::default());
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    let mut head = request("/webhooks/mandrill", "");
    head.request_context.http.method = Method::HEAD;
    assert_eq!(handle(head.clone(), &ingest, NOW).await.status_code, 200);
    head.raw_path = Some("/webhooks/unknown".into());
    assert_eq!(handle(head, &ingest, NOW).await.status_code, 404);
    let post = request("/webhooks/mandrill", "mandrill_events=[]");
    assert_eq!(
        handle(post, &ingest, NOW).await.status_code,
        404,
        "unconfigured: never accepts"
    );
}

#[test]
fn sendgrid_timestamps_at_the_integer_limits_are_stale_not_a_panic() {
    let key = *SigningKey::from_slice(&[7u8; 32]).unwrap().verifying_key();
    for ts in [i64::MIN, i64::MAX] {
        let result = verify_sendgrid(&key, "AAAA", &ts.to_string(), b"[]", NOW, 300);
        assert!(matches!(result, Err(SignatureError::Stale(_))), "{result:?}");
    }
}

#[tokio::test]
async fn a_sendgrid_batch_with_a_bad_event_answers_200_and_keeps_the_good_ones() {
    let signing = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let config = config(Some(*signing.verifying_key()));
    let (queue, claims) = (MemoryQueue::default(), kairos_store::MemoryClaims::default());
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    let body = r#"[{"email":"Ada@Example.com","timestamp":1795000000,"event":"open","sg_event_id":"g1"},
                   {"email":"ada@example.com","timestamp":1795000000,"event":"teleport","sg_event_id":"b1"}]"#;
    let resp = handle(signed(&signing, body, NOW), &ingest, NOW).await;
    assert_eq!(resp.status_code, 200, "SendGrid retries any non-2xx: {:?}", resp.body);
    let json = body_json(&resp);
    assert_eq!(
        (json["accepted"].as_u64(), json["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(json["errors"][0]["error"].as_str().unwrap().contains("teleport"));
    assert_eq!(queued(&queue)[0].contact, "ada@example.com");
}

async fn post_events(body: &str, at: i64) -> (ApiGatewayV2httpResponse, Vec<Event>) {
    let (config, queue) = (config(None), MemoryQueue::default());
    let mut req = request("/v1/events", body);
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &kairos_store::MemoryClaims::default(),
    };
    let resp = handle(req, &ingest, at).await;
    (resp, queued(&queue))
}

/// Before, nothing refused an event dated in the future: a few of them could
/// grow one contact's record past DynamoDB's item limit.
#[tokio::test]
async fn events_dated_beyond_the_clock_skew_are_refused_naming_at() {
    let body = r#"{"batch":[
        {"id":"now","contact":"u1","type":"page.viewed","at":"2026-11-30T00:58:20Z","source":"web"},
        {"id":"later","contact":"u1","type":"page.viewed","at":"2100-01-01T00:00:00Z","source":"web"}]}"#;
    let (resp, events) = post_events(body, NOW).await;
    assert_eq!(resp.status_code, 400);
    assert_eq!(
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["now"],
        "5 minutes ahead is allowed"
    );
    let json = body_json(&resp);
    assert_eq!(
        (json["errors"][0]["index"].as_u64(), json["errors"][0]["id"].as_str()),
        (Some(1), Some("later"))
    );
    assert!(json["errors"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("field `at` is "));
}

#[tokio::test]
async fn a_key_given_twice_refuses_its_event_by_name() {
    let body = r#"{"batch":[
        {"id":"a","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"},
        {"id":"b","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web","properties":{"plan":"pro","plan":"free"}},
        {"id":"c","contact":"u1","contact":"u2","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"}]}"#;
    let (resp, events) = post_events(body, NOW).await;
    assert_eq!(events.len(), 1);
    let json = body_json(&resp);
    assert_eq!(
        json["errors"][0]["error"],
        "duplicate key `properties.plan`: a key may be given only once"
    );
    assert_eq!(
        json["errors"][1]["error"],
        "duplicate key `contact`: a key may be given only once"
    );
    let (resp, events) = post_events(r#"{"batch":[],"batch":[]}"#, NOW).await;
    assert_eq!((resp.status_code, events.len()), (400, 0));
    assert_eq!(
        body_json(&resp)["error"],
        "duplicate key `batch`: a key may be given only once"
    );
}

/// Before, `email` given twice kept the last one silently.
#[tokio::test]
async fn a_sendgrid_item_with_email_twice_is_refused_alone() {
    let signing = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let config = config(Some(*signing.verifying_key()));
    let (queue, claims) = (MemoryQueue::default(), kairos_store::MemoryClaims::default());
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    let body = r#"[{"email":"ada@example.com","timestamp":1795000000,"event":"open","sg_event_id":"g1"},
                   {"email":"ada@example.com","email":"eve@example.com","timestamp":1795000000,"event":"open","sg_event_id":"g2"}]"#;
    let resp = handle(signed(&signing, body, NOW), &ingest, NOW).await;
    assert_eq!(resp.status_code, 200);
    let json = body_json(&resp);
    assert_eq!(
        (json["errors"][0]["index"].as_u64(), json["errors"][0]["id"].as_str()),
        (Some(1), None)
    );
    assert_eq!(
        json["errors"][0]["error"],
        "duplicate key `email`: a key may be given only once"
    );
    assert_eq!(queued(&queue).iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["g1"]);
}
