use super::*;
use crate::{handle, Ingest, IngestConfig};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, Method};
use kairos_store::{MemoryClaims, MemoryQueue};
use std::sync::Arc;

const KEY: &str = "k3y-From-Mandrill";
const URL: &str = "https://api.example.com/webhooks/mandrill";
const BATCH: &str = include_str!("../../../../../tests/fixtures/esp/mandrill_events_batch.json");
/// Independent vector: Python's `hmac`/`base64` over URL + "mandrill_events" + SMALL_EVENTS with KEY.
const SMALL_EVENTS: &str =
    r#"[{"event":"open","_id":"abc","ts":1420303407,"msg":{"email":"A@Example.com","_id":"abc"}}]"#;
const SMALL_SIGNATURE: &str = "HYeHjQQ43Zy9nqByDNj7ezfSMQA=";

fn form(events: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(EVENTS_PARAM, events)
        .finish()
}

fn sign(key: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).unwrap();
    let events = form_params(body.as_bytes());
    mac.update(URL.as_bytes());
    for (k, v) in &events {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn request(method: Method, body: &str, signature: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = method;
    req.raw_path = Some("/webhooks/mandrill".into());
    req.body = Some(body.to_string());
    if let Some(sig) = signature {
        req.headers.insert("X-Mandrill-Signature", sig.parse().unwrap());
    }
    req
}

async fn send(req: ApiGatewayV2httpRequest, queue: &MemoryQueue) -> ApiGatewayV2httpResponse {
    let config = IngestConfig {
        webhooks: vec![Arc::new(Mandrill::new(KEY, URL))],
        ..IngestConfig::default()
    };
    let claims = MemoryClaims::default();
    let ingest = Ingest {
        config: &config,
        queue,
        claims: &claims,
    };
    handle(req, &ingest, 1_795_000_000).await
}

fn json_body(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn parse_body(body: &str) -> Result<Parsed, String> {
    let headers = HeaderMap::new();
    let req = Request {
        method: &Method::POST,
        headers: &headers,
        body: body.as_bytes(),
    };
    parse(&req).map_err(|e| e.to_string())
}

#[test]
fn independent_vector_verifies_and_sorting_is_by_parameter_name() {
    let body = form(SMALL_EVENTS);
    assert_eq!(verify(KEY.as_bytes(), URL, body.as_bytes(), SMALL_SIGNATURE), Ok(()));
    // Python: base64(HMAC-SHA1(KEY, URL + "a1b2")): parameters sorted by name.
    assert_eq!(
        verify(KEY.as_bytes(), URL, b"b=2&a=1", "9NKbf3JlNTIDX9tvetjSbhUTrxQ="),
        Ok(())
    );
    assert_eq!(
        verify(KEY.as_bytes(), &format!("{URL}/"), body.as_bytes(), SMALL_SIGNATURE),
        Err(SignatureError::Invalid),
        "a trailing slash changes the signed URL"
    );
    assert_eq!(
        verify(KEY.as_bytes(), URL, body.as_bytes(), "not base64!"),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn fixture_batch_normalizes_message_events_and_skips_sync_events() {
    let parsed = parse_body(&form(BATCH)).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let kinds: Vec<EventType> = parsed.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventType::EmailSent,
            EventType::EmailDeferred,
            EventType::EmailBounced,
            // A soft bounce must not mark the address bounced (as for every other provider).
            EventType::EmailDeferred,
            EventType::EmailOpened,
            EventType::EmailClicked,
            EventType::EmailComplained,
            EventType::EmailUnsubscribed,
            EventType::EmailDropped,
        ]
    );
    let mut ids: Vec<&str> = parsed.events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 9, "one id per event although `_id` repeats");
    for e in &parsed.events {
        assert_eq!(e.contact, "example.webhook@mandrillapp.com");
        assert_eq!(e.at.timestamp(), 1_420_303_407);
        assert_eq!(e.message_id.as_deref(), Some("fa239ebedd0a4831a3eefa59e880d8b2"));
        assert_eq!(e.source, "mandrill");
        assert!(!e.machine);
        assert!(!e.properties.contains_key("opens") && !e.properties.contains_key("clicks"));
    }
    assert_eq!(parsed.events[0].id, "fa239ebedd0a4831a3eefa59e880d8b2:send:1420303407");
    assert_eq!(parsed.events[2].properties["bounce_type"], "hard");
    assert_eq!(parsed.events[3].properties["bounce_type"], "soft");
    assert_eq!(parsed.events[3].properties["diag"], "smtp;552 5.2.2 Over Quota");
    assert_eq!(parsed.events[4].properties["user_agent_parsed"]["mobile"], false);
    assert_eq!(parsed.events[5].url.as_deref(), Some("http://mandrill.com"));
    assert!(parsed.events[5]
        .id
        .starts_with("fa239ebedd0a4831a3eefa59e880d8b2:click:1420303407:"));
    assert_eq!(parsed.events[0].properties["tags"], json!(["webhook-example"]));
}

#[test]
fn garbage_bodies_are_errors_not_panics() {
    for body in [
        "",
        "mandrill_events",
        "mandrill_events=",
        "mandrill_events=%7B%7D",
        "mandrill_events=%5B",
        "other=1",
        "%%%\u{0}\u{fffd}=&&==",
        "mandrill_events=%5B1%2Cnull%2C%22x%22%5D",
    ] {
        match parse_body(body) {
            Err(e) => assert!(!e.is_empty()),
            Ok(parsed) => assert_eq!(parsed.rejected.len(), 3, "{body}"),
        }
    }
    let odd = form(
        r#"[{"event":"open","_id":"a","ts":9e99,"msg":{"email":"x@y"}},{"event":"open","_id":"a","ts":-99999999999999,"msg":{"email":"x@y"}},{"event":"open","msg":[]}]"#,
    );
    assert_eq!(parse_body(&odd).unwrap().rejected.len(), 3);
}

#[tokio::test]
async fn head_check_is_answered_with_200() {
    let queue = MemoryQueue::default();
    let resp = send(request(Method::HEAD, "", None), &queue).await;
    assert_eq!(resp.status_code, 200);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn signed_batch_is_enqueued_and_bad_items_do_not_block_good_ones() {
    let queue = MemoryQueue::default();
    let body = form(BATCH);
    let resp = send(request(Method::POST, &body, Some(&sign(KEY, &body))), &queue).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(queue.len(), 9);

    let mut items: Vec<Value> = serde_json::from_str(BATCH).unwrap();
    items.push(json!({"event": "delivered_by_pigeon", "_id": "zz", "ts": 1, "msg": {"email": "a@b.c"}}));
    items.push(json!({"event": "open", "_id": "zz", "ts": 1}));
    let body = form(&serde_json::to_string(&items).unwrap());
    let queue = MemoryQueue::default();
    let resp = send(request(Method::POST, &body, Some(&sign(KEY, &body))), &queue).await;
    assert_eq!(
        resp.status_code, 200,
        "partial batch must be 2xx or Mandrill resends it"
    );
    let json = json_body(&resp);
    assert_eq!(json["accepted"], 9);
    assert_eq!(json["errors"][0]["index"], 14, "indexes count skipped sync events too");
    assert!(json["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("delivered_by_pigeon"));
    assert!(json["errors"][1]["error"].as_str().unwrap().contains("`msg`"));
    assert_eq!(queue.len(), 9);
}

#[tokio::test]
async fn tampered_wrong_key_and_unsigned_requests_are_refused() {
    let queue = MemoryQueue::default();
    let body = form(SMALL_EVENTS);
    let tampered = body.replace("open", "click");
    assert_eq!(
        send(request(Method::POST, &tampered, Some(SMALL_SIGNATURE)), &queue)
            .await
            .status_code,
        401
    );
    let wrong = sign("another-key", &body);
    assert_eq!(
        send(request(Method::POST, &body, Some(&wrong)), &queue)
            .await
            .status_code,
        401
    );
    assert_eq!(send(request(Method::POST, &body, None), &queue).await.status_code, 401);
    assert!(queue.is_empty());
    let ok = send(request(Method::POST, &body, Some(SMALL_SIGNATURE)), &queue).await;
    assert_eq!(ok.status_code, 200);
    assert_eq!(queue.len(), 1);
}

#[test]
fn config_needs_the_url_with_the_key_and_never_echoes_the_key() {
    let settings = |secret: Option<&str>, url: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        url: url.map(str::to_string),
        replay_window_secs: 300,
        ..Settings::default()
    };
    assert!(Mandrill::build(&settings(None, Some(URL))).unwrap().is_none());
    let err = Mandrill::build(&settings(Some("s3cr3t-value"), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KAIROS_MANDRILL_URL") && !err.contains("s3cr3t-value"),
        "{err}"
    );
    let built = Mandrill::build(&settings(Some(KEY), Some(URL))).unwrap().unwrap();
    assert!(!format!("{built:?}").contains(KEY));
}

/// Before, a parameter given twice kept the first silently (and the signature,
/// over every parameter, still verified).
#[tokio::test]
async fn a_form_parameter_given_twice_is_refused_by_name() {
    let first = form_urlencoded::Serializer::new(String::new())
        .append_pair(EVENTS_PARAM, SMALL_EVENTS)
        .append_pair(EVENTS_PARAM, "[]")
        .finish();
    let queue = MemoryQueue::default();
    let resp = send(request(Method::POST, &first, Some(&sign(KEY, &first))), &queue).await;
    assert_eq!(resp.status_code, 400);
    assert_eq!(
        json_body(&resp)["error"],
        "form parameter `mandrill_events` is given twice: a parameter may be given only once"
    );
    assert!(queue.is_empty());
    let twice = r#"[{"event":"open","_id":"m1","_id":"m2","ts":1795000000,"msg":{"email":"a@b.test"}}]"#;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair(EVENTS_PARAM, twice)
        .finish();
    let parsed = parse_body(&body).unwrap();
    assert_eq!(
        parsed.rejected[0].error,
        "duplicate key `_id`: a key may be given only once"
    );
}

#[tokio::test]
async fn a_full_batch_over_the_default_body_limit_is_accepted() {
    let items: Vec<Value> = serde_json::from_str(BATCH).unwrap();
    let open = items.iter().find(|e| e["event"] == "open").unwrap();
    // 1,000 events (Mandrill's most a request), each an open of its own message.
    let many: Vec<Value> = (0..1000)
        .map(|i| {
            let mut e = open.clone();
            e["_id"] = json!(format!("id-{i}"));
            e["msg"]["_id"] = json!(format!("id-{i}"));
            e
        })
        .collect();
    let body = form(&serde_json::to_string(&many).unwrap());
    assert!(
        body.len() > crate::config::DEFAULT_MAX_BODY_BYTES,
        "{} bytes",
        body.len()
    );
    assert!(body.len() < BATCH_BYTES);
    let queue = MemoryQueue::default();
    let resp = send(request(Method::POST, &body, Some(&sign(KEY, &body))), &queue).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(queue.len(), 1000);
    // Over its own limit, refused as too large, naming the limit.
    let huge = form(&"x".repeat(BATCH_BYTES));
    let resp = send(request(Method::POST, &huge, Some(&sign(KEY, &huge))), &queue).await;
    assert_eq!(resp.status_code, 413);
}
