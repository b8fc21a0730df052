use super::*;
use crate::{handle, Ingest, IngestConfig};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, Method};
use kairos_store::{MemoryClaims, MemoryQueue};
use std::sync::Arc;

const KEY: &str = "cio-signing-key-123";
const OPENED: &str = include_str!("../../../../../tests/fixtures/esp/customerio_email_opened.json");
const CLICKED: &str = include_str!("../../../../../tests/fixtures/esp/customerio_email_clicked.json");
/// Independent vector: Python `hmac.new(KEY, b"v0:1613063100:" + OPENED, sha256).hexdigest()`.
const OPENED_TS: i64 = 1_613_063_100;
const OPENED_SIGNATURE: &str = "0cfcaa85818d665da7168486a71ca9558559fe211fcc6d4c107f04fad297e62d";

fn sign(key: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn request(body: &str, ts: Option<i64>, signature: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some("/webhooks/customerio".into());
    req.body = Some(body.to_string());
    if let Some(ts) = ts {
        req.headers.insert("X-CIO-Timestamp", ts.to_string().parse().unwrap());
    }
    if let Some(sig) = signature {
        req.headers.insert("X-CIO-Signature", sig.parse().unwrap());
    }
    req
}

fn signed(body: &str, now: i64) -> ApiGatewayV2httpRequest {
    request(body, Some(now), Some(&sign(KEY, now, body)))
}

async fn send(req: ApiGatewayV2httpRequest, queue: &MemoryQueue, now: i64) -> ApiGatewayV2httpResponse {
    let config = IngestConfig {
        webhooks: vec![Arc::new(CustomerIo::new(KEY, 300))],
        ..IngestConfig::default()
    };
    let claims = MemoryClaims::default();
    handle(
        req,
        &Ingest {
            config: &config,
            queue,
            claims: &claims,
        },
        now,
    )
    .await
}

fn json_body(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[test]
fn independent_vector_verifies_and_tampering_does_not() {
    let body = OPENED.as_bytes();
    let ts = OPENED_TS.to_string();
    assert_eq!(sign(KEY, OPENED_TS, OPENED), OPENED_SIGNATURE);
    assert_eq!(
        verify(KEY.as_bytes(), OPENED_SIGNATURE, &ts, body, OPENED_TS + 10, 300),
        Ok(())
    );
    assert_eq!(
        verify(
            KEY.as_bytes(),
            &OPENED_SIGNATURE.to_uppercase(),
            &ts,
            body,
            OPENED_TS,
            300
        ),
        Ok(()),
        "hex case does not matter"
    );
    let tampered = OPENED.replace("opened", "clicked");
    assert_eq!(
        verify(
            KEY.as_bytes(),
            OPENED_SIGNATURE,
            &ts,
            tampered.as_bytes(),
            OPENED_TS,
            300
        ),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify(b"other", OPENED_SIGNATURE, &ts, body, OPENED_TS, 300),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify(KEY.as_bytes(), OPENED_SIGNATURE, &ts, body, OPENED_TS - 301, 300),
        Err(SignatureError::Stale(-301))
    );
    assert_eq!(
        verify(KEY.as_bytes(), "zz", &ts, body, OPENED_TS, 300),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn fixtures_normalize_to_email_events() {
    let opened = normalize(&serde_json::from_str(OPENED).unwrap()).unwrap();
    assert_eq!(opened.kind, EventType::EmailOpened);
    assert_eq!(opened.id, "01E4C4CT6YDC7Y5M7FE1GWWPQJ");
    assert_eq!(opened.contact, "test@example.com");
    assert_eq!(opened.at.timestamp(), 1_613_063_089);
    assert_eq!(opened.message_id.as_deref(), Some("RPILAgUBcRhIBqSfeiIwdIYJKxTY"));
    assert_eq!(opened.campaign.as_deref(), Some("23"));
    assert_eq!(opened.source, "customerio");
    assert!(!opened.machine);
    assert_eq!(opened.properties["customer_id"], "0200102");
    assert_eq!(opened.properties["identifiers"]["cio_id"], "d9c106000001");
    let clicked = normalize(&serde_json::from_str(CLICKED).unwrap()).unwrap();
    assert_eq!(clicked.kind, EventType::EmailClicked);
    assert_eq!(clicked.url.as_deref(), Some("https://example.com/pricing"));
    assert!(!clicked.properties.contains_key("href"));
}

#[test]
fn other_object_types_are_rejected_and_subscriptions_are_consent() {
    let push = json!({"event_id": "p1", "object_type": "push", "metric": "opened", "timestamp": 1,
        "data": {"identifiers": {"email": "a@b.co"}}});
    assert!(normalize(&push).unwrap_err().contains("`push`"));
    let unsubscribed = json!({"event_id": "c1", "object_type": "customer", "metric": "unsubscribed",
        "timestamp": 1_613_063_089, "data": {"customer_id": "42", "email_address": "A@B.co",
        "identifiers": {"id": "42", "email": "A@B.co"}}});
    let event = normalize(&unsubscribed).unwrap();
    assert_eq!(event.kind, EventType::ConsentChanged);
    assert_eq!(event.properties["status"], "unsubscribed");
    assert_eq!(event.contact, "a@b.co");
    let converted = json!({"event_id": "v1", "object_type": "email", "metric": "converted", "timestamp": 1,
        "data": {"recipient": "a@b.co"}});
    let event = normalize(&converted).unwrap();
    assert_eq!(
        (event.kind, event.name.as_deref()),
        (EventType::Track, Some("email.converted"))
    );
    let unknown = json!({"event_id": "u", "object_type": "email", "metric": "levitated", "timestamp": 1,
        "data": {"recipient": "a@b.co"}});
    assert!(normalize(&unknown).unwrap_err().contains("levitated"));
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    let hdrs = HeaderMap::new();
    let parse = |body: &[u8]| {
        super::parse(&Request {
            method: &Method::POST,
            headers: &hdrs,
            body,
        })
    };
    for body in [&b""[..], b"null", b"\"x\"", b"{", b"\xff\xfe"] {
        assert!(parse(body).is_err());
    }
    let parsed = parse(
        br#"[1, {}, {"object_type":"email","metric":"sent","event_id":"e","timestamp":9e99},
            {"object_type":"email","metric":"sent","event_id":"e","timestamp":1,"data":{"recipient":"not-an-email"}},
            {"object_type":"email","metric":"sent","event_id":"e","timestamp":-99999999999999,"data":{"recipient":"a@b"}}]"#,
    )
    .unwrap();
    assert_eq!((parsed.events.len(), parsed.rejected.len()), (0, 5));
}

#[tokio::test]
async fn signed_event_is_enqueued() {
    let queue = MemoryQueue::default();
    let resp = send(signed(CLICKED, 1_795_000_000), &queue, 1_795_000_030).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn tampered_wrong_key_stale_and_unsigned_requests_are_refused() {
    let now = 1_795_000_000;
    let queue = MemoryQueue::default();
    let good = sign(KEY, now, OPENED);
    let tampered = OPENED.replace("test@example.com", "evil@example.com");
    assert_eq!(
        send(request(&tampered, Some(now), Some(&good)), &queue, now)
            .await
            .status_code,
        401
    );
    let wrong = sign("wrong-key", now, OPENED);
    assert_eq!(
        send(request(OPENED, Some(now), Some(&wrong)), &queue, now)
            .await
            .status_code,
        401
    );
    assert_eq!(send(signed(OPENED, now - 301), &queue, now).await.status_code, 401);
    assert_eq!(
        send(request(OPENED, None, Some(&good)), &queue, now).await.status_code,
        401
    );
    assert_eq!(
        send(request(OPENED, Some(now), None), &queue, now).await.status_code,
        401
    );
    assert!(queue.is_empty());
}

#[tokio::test]
async fn unusable_bodies_get_200_so_they_do_not_stall_customerio_queue() {
    let now = 1_795_000_000;
    let queue = MemoryQueue::default();
    let resp = send(signed("not json", now), &queue, now).await;
    assert_eq!(resp.status_code, 200);
    assert!(json_body(&resp)["error"].as_str().unwrap().contains("not JSON"));
    let sms =
        r#"{"event_id":"s","object_type":"sms","metric":"sent","timestamp":1,"data":{"recipient":"+15555550100"}}"#;
    let resp = send(signed(sms, now), &queue, now).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(json_body(&resp)["rejected"], 1);
    assert!(queue.is_empty());
}

#[test]
fn config_without_a_key_is_not_served() {
    assert!(CustomerIo::build(&Settings::default()).unwrap().is_none());
    let settings = Settings {
        secret: Some(KEY.into()),
        replay_window_secs: 300,
        ..Settings::default()
    };
    let hook = CustomerIo::build(&settings).unwrap().unwrap();
    assert!(!format!("{hook:?}").contains(KEY));
}
