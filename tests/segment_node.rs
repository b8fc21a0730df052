//! The real `@segment/analytics-node` client (pinned in tests/segment_node/package.json,
//! installed by `make node-tools` = `npm ci --prefix tests/segment_node`) sends track, page and
//! identify calls to a local HTTP server that hands each request to `kairos_ingest::handle`,
//! as API Gateway would; the canonical events that reach the queue are checked, then
//! evaluated: the anonymous page view counts for the identified user.

mod support;

use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use kairos_event::{Event, EventType};
use kairos_ingest::{Ingest, IngestConfig};
use kairos_store::{MemoryClaims, MemoryQueue};

const WRITE_KEY: &str = "test-write-key";

/// The ingest side: config, queue and the requests seen (method, path, had basic auth).
#[derive(Default)]
struct Server {
    config: IngestConfig,
    queue: MemoryQueue,
    claims: MemoryClaims,
    seen: Mutex<Vec<(String, String, bool)>>,
}

/// HTTP → API Gateway v2 request → `kairos_ingest::handle` → HTTP.
async fn adapt(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = method.as_str().parse().unwrap();
    req.raw_path = Some(uri.path().to_string());
    req.request_context.http.path = Some(uri.path().to_string());
    for (name, value) in &headers {
        req.headers.append(
            name.as_str().parse::<aws_lambda_events::http::HeaderName>().unwrap(),
            value.as_bytes().try_into().unwrap(),
        );
    }
    req.body = Some(String::from_utf8(body.to_vec()).unwrap());
    let basic = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes().starts_with(b"Basic "));
    server
        .seen
        .lock()
        .unwrap()
        .push((method.to_string(), uri.path().to_string(), basic));
    let ingest = Ingest {
        config: &server.config,
        queue: &server.queue,
        claims: &server.claims,
    };
    let response = kairos_ingest::handle(req, &ingest, chrono::Utc::now().timestamp()).await;
    let body = match response.body {
        Some(Body::Text(text)) => text,
        _ => String::new(),
    };
    (StatusCode::from_u16(response.status_code as u16).unwrap(), body)
}

fn find<'a>(events: &'a [Event], kind: EventType, name: Option<&str>) -> &'a Event {
    events
        .iter()
        .find(|e| e.kind == kind && (name.is_none() || e.name.as_deref() == name))
        .unwrap_or_else(|| panic!("no {kind} {name:?} event in {events:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_node_calls_arrive_as_canonical_events() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segment_node");
    assert!(
        dir.join("node_modules/@segment/analytics-node").is_dir(),
        "the pinned Segment client is not installed: run `make node-tools` (npm ci --prefix tests/segment_node)"
    );
    let server = Arc::new(Server {
        config: IngestConfig {
            write_keys: vec![WRITE_KEY.into()],
            ..IngestConfig::default()
        },
        ..Server::default()
    });
    let app = axum::Router::new().fallback(adapt).with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("send.js")
            .current_dir(&dir)
            .env("KAIROS_HOST", &host)
            .env("KAIROS_WRITE_KEY", WRITE_KEY)
            .output()
            .expect("`node` must be on PATH to run the Segment client test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("HTTP 202"), "{stdout}");

    let seen = server.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|(m, p, basic)| m == "POST" && p == "/v1/batch" && *basic),
        "{seen:?}"
    );
    let events: Vec<Event> = server
        .queue
        .drain()
        .iter()
        .map(|m| Event::from_json(m.body.as_bytes()).unwrap())
        .collect();
    assert_eq!(events.len(), 4, "{events:#?}");
    let now = chrono::Utc::now();
    for e in &events {
        assert_eq!(e.source, "segment");
        assert!((now - e.at).num_seconds().abs() < 120, "{e:?}");
        assert!(!e.properties.contains_key("writeKey"));
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "messageIds are the event ids");

    let page = find(&events, EventType::PageViewed, Some("Pricing"));
    assert_eq!(page.contact, "anon:anon-7f3c");
    assert_eq!(page.url.as_deref(), Some("https://www.example.com/pricing"));
    assert_eq!(page.campaign.as_deref(), Some("spring-launch"));
    assert_eq!(page.properties["utm_source"], "newsletter");
    assert!(!page.properties.contains_key("anonymous_id"));

    let identify = find(&events, EventType::ContactIdentified, None);
    assert_eq!(identify.contact, "user-42");
    assert_eq!(identify.traits["email"], "ada@example.com");
    assert_eq!(identify.traits["employees"], 120);
    assert_eq!(identify.properties["anonymous_id"], "anon-7f3c");

    let form = find(&events, EventType::FormSubmitted, Some("Form Submitted"));
    assert_eq!(form.contact, "user-42");
    assert_eq!(form.properties["form"], "demo-request");
    assert_eq!(form.properties["anonymous_id"], "anon-7f3c");

    let track = find(&events, EventType::Track, Some("Plan Compared"));
    assert_eq!(track.contact, "user-42");
    assert!(!track.properties.contains_key("anonymous_id"));

    assert_anonymous_view_counts_for_the_user(&events).await;
}

/// Evaluates the client's events in one SQS batch: the page view made before
/// `identify`, as `anon:anon-7f3c`, puts `user-42` in a page-view segment.
async fn assert_anonymous_view_counts_for_the_user(events: &[Event]) {
    let rules = kairos_rules::RuleSet::from_yaml(
        "segments:\n  - id: pricing-visitor\n    name: Pricing visitor\n    rule: { event: { type: page.viewed, where: { url: { contains: /pricing } }, within: 1d } }\n",
    )
    .unwrap();
    let (store, transitions) = (kairos_store::MemoryContacts::default(), MemoryQueue::default());
    let evaluator = kairos_evaluate::Evaluator::new(&rules, &store, &transitions);
    let messages: Vec<aws_sdk_sqs::types::Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            aws_sdk_sqs::types::Message::builder()
                .message_id(format!("m{i}"))
                .body(e.to_json())
                .build()
        })
        .collect();
    let response = kairos_evaluate::handle(support::sqs_event(&messages), &evaluator, chrono::Utc::now()).await;
    assert!(response.batch_item_failures.is_empty());
    let user = kairos_store::ContactStore::load(&store, "user-42")
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.state.member_since("pricing-visitor").is_some(),
        "{:?}",
        user.state.members()
    );
}
