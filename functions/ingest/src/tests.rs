use super::*;
use aws_lambda_events::encodings::Body;
use kairos_event::{Event, EventType};
use kairos_store::{MemoryQueue, QueueError};
use serde_json::Value;

const NOW: i64 = 1_796_000_000;

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

fn config() -> IngestConfig {
    IngestConfig {
        api_keys: vec!["secret-key".into()],
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

#[tokio::test]
async fn sendgrid_route_without_a_key_is_not_served() {
    let config = config();
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
    let config = config();
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
        ..config()
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
    let config = config();
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
    let config = config();
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
    let config = config();
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

async fn post_events(body: &str, at: i64) -> (ApiGatewayV2httpResponse, Vec<Event>) {
    let (config, queue) = (config(), MemoryQueue::default());
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

/// A queue whose send never completes.
struct Hangs;

impl Queue for Hangs {
    async fn send(&self, _: &[Message]) -> Result<(), QueueError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Enqueueing stops at the invocation's deadline and asks for a retry, instead of
/// the function timing out with no answer.
#[tokio::test]
async fn enqueueing_stops_at_the_deadline_with_a_503() {
    let config = config();
    let mut req = request(
        "/v1/events",
        r#"{"id":"a","contact":"u1","type":"ad.clicked","at":"2026-11-27T10:00:00Z","source":"ads"}"#,
    );
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let ingest = Ingest {
        config: &config,
        queue: &Hangs,
        claims: &kairos_store::MemoryClaims::default(),
    };
    let received = Received {
        at: NOW,
        deadline: Some(tokio::time::Instant::now() + std::time::Duration::from_millis(20)),
    };
    let resp = handle(req, &ingest, received).await;
    assert_eq!(resp.status_code, 503);
}

#[tokio::test]
async fn refused_items_are_counted_by_reason_for_the_metrics() {
    let config = config();
    let queue = MemoryQueue::default();
    let body = r#"{"batch":[
        {"id":"a","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"},
        {"id":"b","contact":"u1","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web","colour":"red"},
        {"id":"c","contact":"u1","type":"page.viewed","at":"2027-11-27T10:00:00Z","source":"web"}]}"#;
    let mut req = request("/v1/events", body);
    req.headers.insert("x-api-key", "secret-key".parse().unwrap());
    let claims = kairos_store::MemoryClaims::default();
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    let reply = receive(&req, &ingest, Received::from(NOW)).await;
    assert_eq!(reply.body["accepted"], 1);
    assert_eq!(reply.refused, vec![("invalid", 1), ("future", 1)]);
}
