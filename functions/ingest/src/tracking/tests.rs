use super::*;
use crate::{handle, Ingest, IngestConfig};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::http::Method;
use base64::Engine;
use kairos_store::{MemoryClaims, MemoryQueue};
use serde_json::json;

const NOW: i64 = 1_795_000_000;
const KEY: &str = "YOUR_WRITE_KEY";
const TRACK: &str = include_str!("../../../../tests/fixtures/segment/track_spec_example.json");
const PAGE: &str = include_str!("../../../../tests/fixtures/segment/page_spec_example.json");
const IDENTIFY: &str = include_str!("../../../../tests/fixtures/segment/identify_spec_example.json");
const BATCH: &str = include_str!("../../../../tests/fixtures/segment/batch_http_api_example.json");
const ALIAS: &str = include_str!("../../../../tests/fixtures/segment/alias_http_api_example.json");
const CHAT: &str = include_str!("../../../../tests/fixtures/segment/live_chat_message_sent.json");

fn object(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

fn envelope() -> Envelope<'static> {
    Envelope {
        context: None,
        sent_at: None,
        now: DateTime::from_timestamp(NOW, 0).unwrap(),
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn config() -> IngestConfig {
    IngestConfig {
        write_keys: vec!["other-key".into(), KEY.into()],
        ..IngestConfig::default()
    }
}

fn request(path: &str, body: &str) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some(path.to_string());
    req.body = Some(body.to_string());
    req
}

fn basic(req: &mut ApiGatewayV2httpRequest, credentials: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    req.headers
        .insert("authorization", format!("Basic {encoded}").parse().unwrap());
}

async fn send(config: &IngestConfig, req: ApiGatewayV2httpRequest) -> (ApiGatewayV2httpResponse, Vec<Event>) {
    let queue = MemoryQueue::default();
    let claims = MemoryClaims::default();
    let ingest = Ingest {
        config,
        queue: &queue,
        claims: &claims,
    };
    let response = handle(req, &ingest, NOW).await;
    let events = queue
        .drain()
        .iter()
        .map(|m| Event::from_json(m.body.as_bytes()).unwrap())
        .collect();
    (response, events)
}

fn body(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[test]
fn spec_track_example_is_a_track_event_linked_to_its_anonymous_id() {
    let event = normalize(Some(Call::Track), object(TRACK), &envelope()).unwrap();
    assert_eq!(event.kind, EventType::Track);
    assert_eq!(event.name.as_deref(), Some("Course Clicked"));
    assert_eq!(event.id, "ajs-f8ca1e4de5024d9430b3928bd8ac6b96");
    assert_eq!(event.contact, "AiUGstSDIg");
    // Segment's skew correction: timestamp (…01.249) + receivedAt - sentAt (…01.169).
    assert_eq!(event.at, envelope().now + chrono::Duration::milliseconds(80));
    assert_eq!(event.source, "segment");
    assert_eq!(event.url.as_deref(), Some("https://segment.com/academy/"));
    assert_eq!(event.properties["title"], "Intro to Analytics");
    assert_eq!(event.properties["anonymous_id"], "23adfd82-aa0f-45a7-a756-24f2a7a4c895");
    assert!(event.traits.is_empty() && event.message_id.is_none() && !event.machine);
}

#[test]
fn spec_page_example_is_a_page_view_with_its_url_and_name() {
    let event = normalize(Some(Call::Page), object(PAGE), &envelope()).unwrap();
    assert_eq!(event.kind, EventType::PageViewed);
    assert_eq!(event.name.as_deref(), Some("Home"));
    assert_eq!(event.id, "022bb90c-bbac-11e4-8dfc-aa07a5b093db");
    assert_eq!(event.contact, "97980cfea0067");
    assert_eq!(
        event.at,
        envelope().now,
        "sent when it happened: received when it happened"
    );
    assert_eq!(event.url.as_deref(), Some("http://www.example.com"));
    assert!(!event.properties.contains_key("url"), "url is consumed");
    assert_eq!(event.properties["title"], "Welcome | Initech");
    assert_eq!(event.properties["anonymous_id"], "507f191e810c19729de860ea");
}

#[test]
fn spec_identify_example_carries_its_traits() {
    let event = normalize(Some(Call::Identify), object(IDENTIFY), &envelope()).unwrap();
    assert_eq!(event.kind, EventType::ContactIdentified);
    assert_eq!(event.contact, "97980cfea0067");
    assert_eq!(event.traits["email"], "peter@example.com");
    assert_eq!(event.traits["logins"], 5);
    assert_eq!(event.traits["address"]["city"], "San Francisco");
    assert_eq!(event.properties["anonymous_id"], "507f191e810c19729de860ea");
    assert_eq!(event.url, None);
}

#[test]
fn anonymous_calls_use_the_anon_prefix_and_carry_no_link() {
    let mut page = object(PAGE);
    page.remove("userId");
    let event = normalize(Some(Call::Page), page, &envelope()).unwrap();
    assert_eq!(event.contact, "anon:507f191e810c19729de860ea");
    assert!(!event.properties.contains_key("anonymous_id"));
}

#[test]
fn a_call_without_user_or_anonymous_id_is_rejected_naming_both() {
    let mut track = object(TRACK);
    track.remove("userId");
    track.insert("anonymousId".into(), Value::String("  ".into()));
    let err = normalize(Some(Call::Track), track, &envelope()).unwrap_err();
    assert!(err.contains("userId") && err.contains("anonymousId"), "{err}");
}

#[test]
fn message_id_is_required() {
    let mut track = object(TRACK);
    track.remove("messageId");
    let err = normalize(Some(Call::Track), track, &envelope()).unwrap_err();
    assert!(err.contains("messageId"), "{err}");
}

#[test]
fn spec_live_chat_message_sent_becomes_chat_message() {
    let mut chat = object(CHAT);
    chat.insert("messageId".into(), json!("m-chat-1"));
    let event = normalize(Some(Call::Track), chat, &envelope()).unwrap();
    assert_eq!(event.kind, EventType::ChatMessage);
    assert_eq!(event.name.as_deref(), Some("Live Chat Message Sent"));
    assert_eq!(event.contact, "019mr8mf4r");
    assert_eq!(event.at, envelope().now, "no time field: the receipt time");
    assert_eq!(event.properties["conversation_id"], "abd627dbecffc");
}

#[test]
fn named_events_map_case_insensitively_and_others_stay_track() {
    let cases = [
        ("ad clicked", EventType::AdClicked),
        (" FORM SUBMITTED ", EventType::FormSubmitted),
        ("Form Completed", EventType::FormSubmitted),
        ("Live Chat Conversation Started", EventType::ChatMessage),
        ("chat message sent", EventType::ChatMessage),
        ("Live Chat Message Received", EventType::Track),
        ("Email Opened", EventType::Track),
    ];
    for (name, kind) in cases {
        let call = json!({"messageId": "m1", "userId": "u1", "event": name, "timestamp": "2026-11-27T10:00:00Z"});
        let event = normalize(Some(Call::Track), object(&call.to_string()), &envelope()).unwrap();
        assert_eq!(event.kind, kind, "{name}");
        assert_eq!(event.name.as_deref(), Some(name));
    }
}

#[test]
fn ad_click_takes_url_and_campaign_from_properties_then_context() {
    let call = json!({"messageId": "m1", "userId": "u1", "event": "Ad Clicked",
        "properties": {"url": "https://ads.example/x", "campaign": "retarget-q4", "network": "linkedin"},
        "context": {"page": {"url": "https://site.example/"}, "campaign": {"name": "utm-name", "source": "li"}}});
    let event = normalize(Some(Call::Track), object(&call.to_string()), &envelope()).unwrap();
    assert_eq!(event.url.as_deref(), Some("https://ads.example/x"));
    assert_eq!(event.campaign.as_deref(), Some("retarget-q4"));
    assert_eq!(event.properties["network"], "linkedin");
    assert_eq!(event.properties["utm_source"], "li");
    let call = json!({"messageId": "m2", "anonymousId": "a1", "type": "page",
        "context": {"page": {"url": "https://site.example/pricing"}, "campaign": {"name": "spring", "medium": "email"}}});
    let event = normalize(None, object(&call.to_string()), &envelope()).unwrap();
    assert_eq!(event.url.as_deref(), Some("https://site.example/pricing"));
    assert_eq!(event.campaign.as_deref(), Some("spring"));
    assert_eq!(event.properties["utm_medium"], "email");
}

/// Segment: `timestamp = receivedAt - (sentAt - originalTimestamp)`
/// (<https://segment.com/docs/connections/spec/common/#timestamps>).
#[test]
fn timestamps_are_corrected_for_the_clients_clock_skew_as_segment_does() {
    let with = |fields: Value| {
        let mut call = json!({"messageId": "m1", "userId": "u1", "event": "E"});
        call.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        normalize(Some(Call::Track), object(&call.to_string()), &envelope())
    };
    let received = envelope().now;
    let hour = chrono::Duration::hours(1);
    // A client clock far in the future: what counts is how long before sending it happened.
    let at = with(json!({"timestamp": "2100-01-01T12:00:00+02:00", "sentAt": "2100-01-01T11:00:00Z"}));
    assert_eq!(at.unwrap().at, received - hour);
    let at = with(json!({"originalTimestamp": "2026-11-27T09:00:00Z", "sentAt": "2026-11-27T11:00:00Z"}));
    assert_eq!(at.unwrap().at, received - hour * 2);
    let at = with(json!({"sentAt": "2026-11-27T11:00:00Z", "receivedAt": "2026-11-27T11:00:01Z"}));
    assert_eq!(at.unwrap().at, received, "no time of its own: when it was received");
    let at = with(json!({"timestamp": "2026-11-01T10:00:00Z"}));
    assert_eq!(at.unwrap().at, time("2026-11-01T10:00:00Z"), "no sentAt: taken as sent");
    let err = with(json!({"timestamp": "2015-2-02T00:30:08.276Z"})).unwrap_err();
    assert!(err.contains("`timestamp`") && err.contains("RFC 3339"), "{err}");
    let err = with(json!({"timestamp": 1_700_000_000})).unwrap_err();
    assert!(err.contains("`timestamp`"), "{err}");
    let err = with(json!({"timestamp": "2026-11-01T10:00:00Z", "sentAt": "soon"})).unwrap_err();
    assert!(err.contains("`sentAt`"), "{err}");
}

/// The issue's attack: a browser's public write key and calls dated 2100 (no
/// `sentAt`, so nothing corrects them) are refused, naming `at`; the good call stays.
#[tokio::test]
async fn calls_dated_beyond_the_clock_skew_are_refused_naming_at() {
    let doc = json!({"writeKey": KEY, "batch": [
        {"type": "track", "messageId": "ok", "userId": "u1", "event": "E"},
        {"type": "track", "messageId": "future", "userId": "u1", "event": "E", "timestamp": "2100-01-01T00:00:00Z"}]});
    let (resp, events) = send(&config(), request("/v1/batch", &doc.to_string())).await;
    assert_eq!(resp.status_code, 400);
    assert_eq!(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["ok"]);
    let error = &body(&resp)["errors"][0];
    assert_eq!(
        (error["index"].as_u64(), error["id"].as_str()),
        (Some(1), Some("future"))
    );
    let text = error["error"].as_str().unwrap();
    assert!(
        text.starts_with("field `at` is ") && text.ends_with("at most 300 s of clock skew is allowed"),
        "{text}"
    );
}

/// A key given twice in a call refuses that call, naming the key; one given twice
/// in the batch's own fields refuses the body.
#[tokio::test]
async fn a_key_given_twice_refuses_its_call_or_the_batch() {
    let text = format!(
        r#"{{"writeKey":"{KEY}","batch":[{{"type":"track","messageId":"a","userId":"u","event":"E"}},
            {{"type":"track","messageId":"b","userId":"u","event":"E","properties":{{"plan":"pro","plan":"free"}}}}]}}"#
    );
    let (resp, events) = send(&config(), request("/v1/batch", &text)).await;
    assert_eq!(events.len(), 1);
    let error = body_error(&resp, 0);
    assert!(error.starts_with("duplicate key `properties.plan`"), "{error}");
    let text =
        format!(r#"{{"writeKey":"{KEY}","sentAt":"2026-11-18T11:00:00Z","sentAt":"2100-01-01T00:00:00Z","batch":[]}}"#);
    let (resp, _) = send(&config(), request("/v1/batch", &text)).await;
    assert_eq!(resp.status_code, 400);
    assert!(body(&resp)["error"]
        .as_str()
        .unwrap()
        .starts_with("duplicate key `sentAt`"));
}

fn body_error(resp: &ApiGatewayV2httpResponse, i: usize) -> String {
    body(resp)["errors"][i]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn alias_links_previous_id_to_the_user() {
    let mut alias = object(ALIAS);
    alias.insert("messageId".into(), json!("m-alias"));
    let event = normalize(Some(Call::Alias), alias, &envelope()).unwrap();
    assert_eq!(event.kind, EventType::ContactIdentified);
    assert_eq!(event.contact, "019mr8mf4r");
    assert_eq!(event.properties["anonymous_id"], "39239-239239-239239-23923");
    assert_eq!(event.at, time("2012-12-02T00:31:29.738Z"));
    assert!(!event.properties.contains_key("writeKey") && event.traits.is_empty());
}

#[test]
fn group_and_unknown_types_are_rejected_by_name() {
    let call = json!({"messageId": "m1", "userId": "u1", "groupId": "g1"});
    let err = normalize(Some(Call::Group), object(&call.to_string()), &envelope()).unwrap_err();
    assert!(err.contains("unsupported call type `group`"), "{err}");
    let call = json!({"messageId": "m1", "userId": "u1", "type": "delete"});
    let err = normalize(None, object(&call.to_string()), &envelope()).unwrap_err();
    assert!(err.contains("unknown call type `delete`"), "{err}");
    let err = normalize(None, object(r#"{"messageId":"m1","userId":"u1"}"#), &envelope()).unwrap_err();
    assert!(err.contains("`type` is required"), "{err}");
}

#[test]
fn screens_are_page_views_flagged_as_screens() {
    let call = json!({"messageId": "m1", "userId": "u1", "name": "Settings", "category": "Account"});
    let event = normalize(Some(Call::Screen), object(&call.to_string()), &envelope()).unwrap();
    assert_eq!(event.kind, EventType::PageViewed);
    assert_eq!(event.name.as_deref(), Some("Settings"));
    assert_eq!(event.properties["screen"], true);
    assert_eq!(event.properties["category"], "Account");
}

#[test]
fn wrong_field_types_and_reserved_user_ids_are_rejected() {
    for (call, field) in [
        (
            json!({"messageId": "m1", "userId": "u1", "event": "E", "properties": []}),
            "properties",
        ),
        (json!({"messageId": "m1", "userId": {"id": 1}, "event": "E"}), "userId"),
        (json!({"messageId": "m1", "userId": "anon:x", "event": "E"}), "anon:"),
        (json!({"messageId": "m1", "userId": "u1"}), "event"),
        (
            json!({"messageId": "m".repeat(300), "userId": "u1", "event": "E"}),
            "messageId",
        ),
    ] {
        let err = normalize(Some(Call::Track), object(&call.to_string()), &envelope()).unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
    let numeric = json!({"messageId": "m1", "userId": 42, "event": "E"});
    let event = normalize(Some(Call::Track), object(&numeric.to_string()), &envelope()).unwrap();
    assert_eq!(event.contact, "42");
}

#[test]
fn paths_map_to_routes_including_analytics_js_short_paths() {
    assert_eq!(route("/v1/track"), Some(Route::One(Call::Track)));
    assert_eq!(route("/v1/t"), Some(Route::One(Call::Track)));
    assert_eq!(route("/v1/p"), Some(Route::One(Call::Page)));
    assert_eq!(route("/v1/i"), Some(Route::One(Call::Identify)));
    assert_eq!(route("/v1/b"), Some(Route::Batch));
    assert_eq!(route("/v1/batch"), Some(Route::Batch));
    assert_eq!(route("/v1/events"), None);
    assert_eq!(route("/v2/track"), None);
}

#[tokio::test]
async fn basic_auth_or_body_write_key_is_required() {
    let config = config();
    let mut req = request("/v1/track", TRACK);
    basic(&mut req, &format!("{KEY}:"));
    let (resp, events) = send(&config, req).await;
    assert_eq!(resp.status_code, 202, "{:?}", body(&resp));
    assert_eq!(events.len(), 1);

    let mut req = request("/v1/t", TRACK);
    basic(&mut req, KEY); // no colon: tolerated
    assert_eq!(send(&config, req).await.0.status_code, 202);

    let mut with_key = object(PAGE);
    with_key.insert("writeKey".into(), json!(KEY));
    let req = request("/v1/p", &Value::Object(with_key).to_string());
    let (resp, events) = send(&config, req).await;
    assert_eq!(resp.status_code, 202);
    assert!(!events[0].properties.contains_key("writeKey"));

    for credentials in ["wrong-key:", ":YOUR_WRITE_KEY", "YOUR_WRITE_KE:"] {
        let mut req = request("/v1/track", TRACK);
        basic(&mut req, credentials);
        let (resp, events) = send(&config, req).await;
        assert_eq!(resp.status_code, 401, "{credentials}");
        assert_eq!(body(&resp), json!({"error": "unauthorized"}));
        assert!(events.is_empty());
    }
    let (resp, _) = send(&config, request("/v1/track", TRACK)).await;
    assert_eq!(resp.status_code, 401);
    let (resp, _) = send(&config, request("/v1/track", "not json")).await;
    assert_eq!(resp.status_code, 401, "no key: unauthorized before any parse error");
}

#[tokio::test]
async fn routes_answer_404_without_write_keys_and_405_for_get() {
    let (resp, _) = send(&IngestConfig::default(), request("/v1/track", TRACK)).await;
    assert_eq!(resp.status_code, 404);
    let mut req = request("/v1/batch", BATCH);
    req.request_context.http.method = Method::GET;
    assert_eq!(send(&config(), req).await.0.status_code, 405);
}

#[tokio::test]
async fn doc_batch_without_message_ids_is_refused_item_by_item() {
    let (resp, events) = send(&config(), request("/v1/batch", BATCH)).await;
    assert_eq!(resp.status_code, 400);
    assert!(events.is_empty());
    let errors = body(&resp)["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 4);
    assert!(errors
        .iter()
        .all(|e| e["error"].as_str().unwrap().contains("messageId")));
}

#[tokio::test]
async fn partial_batch_enqueues_the_good_calls_with_the_batch_context_merged() {
    let mut doc: Value = serde_json::from_str(BATCH).unwrap();
    let items = doc["batch"].as_array_mut().unwrap();
    for (i, item) in items.iter_mut().enumerate() {
        item["messageId"] = json!(format!("m{i}"));
        item["context"] = json!({"page": {"url": "https://site.example/own"}});
    }
    items.push(json!({"type": "group", "messageId": "m4", "userId": "u", "groupId": "g"}));
    items.push(json!("not a call"));
    doc["context"]["campaign"] = json!({"name": "batch-campaign"});
    let (resp, events) = send(&config(), request("/v1/b", &doc.to_string())).await;
    assert_eq!(resp.status_code, 400);
    let reply = body(&resp);
    assert_eq!(reply["accepted"], 2);
    let rejected: Vec<u64> = reply["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [2, 3, 4, 5]);
    assert_eq!(reply["errors"][0]["id"], "m2");
    assert!(reply["errors"][2]["error"].as_str().unwrap().contains("group"));
    assert_eq!(events[0].kind, EventType::ContactIdentified);
    assert_eq!(events[0].traits["email"], "jake@yahoo.com");
    assert_eq!(events[1].name.as_deref(), Some("Song Played"));
    assert_eq!(events[1].campaign.as_deref(), Some("batch-campaign"));
    assert_eq!(events[1].url.as_deref(), Some("https://site.example/own"));
}

#[tokio::test]
async fn batch_sent_at_times_calls_without_their_own() {
    let doc = json!({"batch": [{"type": "track", "messageId": "m1", "anonymousId": "a", "event": "E"}],
        "sentAt": "2026-11-27T08:00:00.000Z", "writeKey": KEY});
    let (resp, events) = send(&config(), request("/v1/batch", &doc.to_string())).await;
    assert_eq!(resp.status_code, 202);
    assert_eq!(
        events[0].at,
        envelope().now,
        "a call without a time is dated when received"
    );
    assert_eq!(events[0].contact, "anon:a");
}

#[tokio::test]
async fn size_limits_follow_segments_documented_limits() {
    let big = "x".repeat(MAX_CALL_BYTES);
    let call = json!({"messageId": "m1", "userId": "u1", "event": "E", "properties": {"blob": big}, "writeKey": KEY});
    let (resp, _) = send(&config(), request("/v1/track", &call.to_string())).await;
    assert_eq!(resp.status_code, 413);

    let small = json!({"type": "track", "messageId": "ok", "userId": "u1", "event": "E"});
    let mut big_call = call.clone();
    big_call["type"] = json!("track");
    let doc = json!({"batch": [small, big_call], "writeKey": KEY});
    let (resp, events) = send(&config(), request("/v1/batch", &doc.to_string())).await;
    assert_eq!(resp.status_code, 400);
    assert_eq!(events.len(), 1);
    assert!(body(&resp)["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("byte limit"));

    let calls: Vec<Value> = (0..=MAX_BATCH_CALLS).map(|_| json!(1)).collect();
    let doc = json!({"batch": calls, "writeKey": KEY});
    assert_eq!(
        send(&config(), request("/v1/batch", &doc.to_string()))
            .await
            .0
            .status_code,
        413
    );
}

#[tokio::test]
async fn garbage_bodies_get_400_not_a_panic() {
    for garbage in ["not json", "[]", "7", r#"{"batch": 3}"#, r#"{"batch": {}}"#, "{}"] {
        let mut req = request("/v1/batch", garbage);
        basic(&mut req, &format!("{KEY}:"));
        let (resp, events) = send(&config(), req).await;
        assert_eq!(resp.status_code, 400, "{garbage}");
        assert!(events.is_empty());
    }
    let mut req = request("/v1/track", "{}");
    basic(&mut req, &format!("{KEY}:"));
    assert_eq!(send(&config(), req).await.0.status_code, 400);
}

/// The batch's context is part of every call: one over the call limit rejects each call
/// (cheaply) instead of being copied into thousands of them.
#[test]
fn a_batch_context_counts_towards_each_calls_size() {
    let context: Map<String, Value> = (0..5_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let calls: Vec<Value> = (0..3)
        .map(|i| json!({"type": "track", "event": "e", "messageId": format!("m{i}"), "userId": "u"}))
        .collect();
    let body = serde_json::to_vec(&json!({"batch": calls, "context": context, "writeKey": KEY})).unwrap();
    let parsed = parse(
        Route::Batch,
        &HeaderMap::new(),
        &body,
        &config().write_keys,
        envelope().now,
    )
    .unwrap();
    assert!(parsed.events.is_empty(), "{:?}", parsed.events);
    assert_eq!(parsed.rejected.len(), 3);
    assert!(
        parsed.rejected[0].error.contains("over the 32768-byte limit"),
        "{:?}",
        parsed.rejected[0]
    );
}

#[test]
fn batch_context_merges_under_the_calls_key_by_key() {
    let batch = object(
        r#"{"page": {"url": "https://site.example/batch", "path": "/batch"},
            "campaign": {"name": "batch-name", "source": "batch-source", "medium": "email"}}"#,
    );
    let envelope = Envelope {
        context: Some(&batch),
        ..envelope()
    };
    let call = |context: &str| {
        let item = object(&format!(
            r#"{{"messageId": "m1", "userId": "u1", "event": "Clicked", "context": {context}}}"#
        ));
        normalize(Some(Call::Track), item, &envelope).unwrap()
    };
    let e = call(r#"{"page": {"path": "/own"}, "campaign": {"source": "own-source"}}"#);
    assert_eq!(e.url.as_deref(), Some("https://site.example/batch"));
    assert_eq!(e.campaign.as_deref(), Some("batch-name"));
    assert_eq!(e.properties["utm_source"], "own-source");
    assert_eq!(e.properties["utm_medium"], "email");
    let e = call(r#"{"page": {"url": "https://site.example/own"}, "campaign": "not an object"}"#);
    assert_eq!(e.url.as_deref(), Some("https://site.example/own"));
    assert_eq!(e.campaign, None);
    assert!(!e.properties.contains_key("utm_medium"));
}
