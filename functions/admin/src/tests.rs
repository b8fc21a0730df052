//! The admin handler over the in-memory store, on the official API Gateway
//! v2 request fixtures (IAM-authorized, and with no authorizer).

use super::*;
use aws_lambda_events::http::HeaderValue;
use kairos_event::{AuditKind as AuditKindOf, Event};
use kairos_rules::RuleSet;
use kairos_store::{MemoryContacts, MemoryQueue, SegmentCounters};

const IAM: &str = include_str!("../../../tests/fixtures/example-apigw-v2-request-iam.json");
const NONE: &str = include_str!("../../../tests/fixtures/example-apigw-v2-request-no-authorizer.json");
const RULES: &str = "segments:
  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, within: 7d } } }
  - { id: vip, name: VIP, rule: { trait: { plan: { eq: enterprise } } } }
";
const KEY: &str = "local-admin-key-0123456789abcdef0123";

fn request(fixture: &str, method: Method, path: &str, body: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(fixture).unwrap();
    req.request_context.http.method = method;
    req.raw_path = Some(path.to_string());
    req.request_context.http.path = Some(path.to_string());
    req.body = body.map(str::to_string);
    req.query_string_parameters = Default::default();
    req
}

fn now() -> DateTime<Utc> {
    "2026-11-27T10:00:00Z".parse().unwrap()
}

async fn call(store: &MemoryContacts, queue: &MemoryQueue, req: ApiGatewayV2httpRequest) -> (i64, Value) {
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let keys = [("ops".to_string(), KEY.to_string())];
    let admin = Admin {
        evaluator: Evaluator::new(&rules, store, queue),
        keys: &keys,
        erasure: Erasing {
            salt: b"test-salt",
            window_secs: 30 * 86_400,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
        },
    };
    let response = handle(req, &admin, now()).await;
    let body = match response.body {
        Some(Body::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("{other:?}"),
    };
    (response.status_code, body)
}

async fn with_ada() -> (MemoryContacts, MemoryQueue) {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let click = Event::from_json(
        br#"{"id":"c1","contact":"ada+news@x.test","type":"email.clicked","at":"2026-11-27T09:00:00Z","source":"t"}"#,
    )
    .unwrap();
    Evaluator::new(&rules, &store, &queue)
        .contact("ada+news@x.test", &[click], now())
        .await
        .unwrap();
    (store, queue)
}

#[tokio::test]
async fn an_iam_principal_pins_a_contact_and_the_contact_shows_it_and_its_audit() {
    let (store, queue) = with_ada().await;
    let path = "/v1/contacts/ada%2Bnews%40x.test/overrides/vip";
    let body = r#"{"member": true, "reason": "signed the enterprise deal"}"#;
    let (status, answer) = call(&store, &queue, request(IAM, Method::PUT, path, Some(body))).await;
    assert_eq!(status, 200, "{answer}");
    let arn = "arn:aws:iam::1234567890:user/Admin";
    assert_eq!(answer["override"]["actor"], json!(arn));
    assert_eq!(
        answer["transitions"][0]["summary"],
        json!(format!("override by {arn}: signed the enterprise deal"))
    );
    let (status, contact) = call(
        &store,
        &queue,
        request(IAM, Method::GET, "/v1/contacts/ada%2Bnews%40x.test", None),
    )
    .await;
    assert_eq!(status, 200, "{contact}");
    let segments: Vec<&str> = contact["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segment"].as_str().unwrap())
        .collect();
    assert_eq!(segments, ["clicked", "vip"]);
    assert_eq!(contact["consent"]["status"], json!("subscribed"));
    assert_eq!(contact["overrides"][0]["reason"], json!("signed the enterprise deal"));
    assert_eq!(contact["latest_transitions"][0]["segment"], json!("vip"));
    let (_, audit) = call(
        &store,
        &queue,
        request(IAM, Method::GET, "/v1/contacts/ada%2Bnews%40x.test/audit", None),
    )
    .await;
    let kinds: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["transition", "override", "transition"]);
    // Removing the pin is audited with the actor and writes the exit.
    let (status, removed) = call(&store, &queue, request(IAM, Method::DELETE, path, None)).await;
    assert_eq!((status, &removed["transitions"][0]["change"]), (200, &json!("exited")));
    let (status, again) = call(&store, &queue, request(IAM, Method::DELETE, path, None)).await;
    assert_eq!((status, &again["field"]), (404, &json!("segment")));
}

#[tokio::test]
async fn without_iam_only_an_admin_key_is_accepted_never_an_event_api_key() {
    let (store, queue) = with_ada().await;
    let path = "/v1/contacts/ada%2Bnews%40x.test";
    let (status, body) = call(&store, &queue, request(NONE, Method::GET, path, None)).await;
    assert_eq!(status, 401, "{body}");
    let mut api_key = request(NONE, Method::GET, path, None);
    api_key.headers.insert(
        "x-api-key",
        HeaderValue::from_static("an-event-api-key-that-is-long-enough"),
    );
    assert_eq!(call(&store, &queue, api_key).await.0, 401);
    let mut wrong = request(NONE, Method::GET, path, None);
    wrong.headers.insert(
        ADMIN_KEY_HEADER,
        HeaderValue::from_static("local-admin-key-0123456789abcdef0124"),
    );
    assert_eq!(call(&store, &queue, wrong).await.0, 401);
    let mut right = request(
        NONE,
        Method::PUT,
        &format!("{path}/overrides/clicked"),
        Some(r#"{"member":false,"reason":"test account"}"#),
    );
    right.headers.insert(ADMIN_KEY_HEADER, HeaderValue::from_static(KEY));
    let (status, body) = call(&store, &queue, right).await;
    assert_eq!(
        (status, &body["override"]["actor"]),
        (200, &json!("admin-key:ops")),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_contacts_are_404_and_bad_bodies_400_naming_the_field() {
    let (store, queue) = with_ada().await;
    let (status, body) = call(
        &store,
        &queue,
        request(IAM, Method::GET, "/v1/contacts/nobody%40x.test", None),
    )
    .await;
    assert_eq!((status, &body["field"]), (404, &json!("key")));
    let path = "/v1/contacts/ada%2Bnews%40x.test/overrides/vip";
    let cases = [
        (r#"{"member": "yes", "reason": "r"}"#, "member"),
        (r#"{"member": true}"#, "body"),
        (r#"{"member": true, "reason": ""}"#, "reason"),
        (
            r#"{"member": true, "reason": "r", "expires_at": "2020-01-01T00:00:00Z"}"#,
            "expires_at",
        ),
        (
            r#"{"member": true, "reason": "r", "until": "2030-01-01T00:00:00Z"}"#,
            "until",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(&store, &queue, request(IAM, Method::PUT, path, Some(body))).await;
        assert_eq!(
            (status, answer["field"].as_str().unwrap()),
            (400, field),
            "{body}: {answer}"
        );
    }
    let unknown = "/v1/contacts/ada%2Bnews%40x.test/overrides/nope";
    let (status, answer) = call(
        &store,
        &queue,
        request(IAM, Method::PUT, unknown, Some(r#"{"member":true,"reason":"r"}"#)),
    )
    .await;
    assert_eq!((status, &answer["field"]), (404, &json!("segment")));
    let mut bad_cursor = request(IAM, Method::GET, "/v1/contacts/ada%2Bnews%40x.test/audit", None);
    bad_cursor.query_string_parameters =
        std::collections::HashMap::from([("cursor".to_string(), "x".to_string())]).into();
    let (status, answer) = call(&store, &queue, bad_cursor).await;
    assert_eq!((status, &answer["field"]), (400, &json!("cursor")));
}

#[tokio::test]
async fn the_export_holds_the_contact_its_signals_and_its_whole_audit_trail() {
    let (store, queue) = with_ada().await;
    let (status, export) = call(
        &store,
        &queue,
        request(IAM, Method::GET, "/v1/contacts/ada%2Bnews%40x.test/export", None),
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["contact"], json!("ada+news@x.test"));
    assert_eq!(export["signals"][0]["occurrences"], json!(1));
    assert_eq!(export["audit"].as_array().unwrap().len(), 1);
    assert_eq!(export["memberships"][0]["segment"], json!("clicked"));
}

#[tokio::test]
async fn an_erasure_leaves_a_receipt_tells_destinations_and_drops_late_events() {
    let (store, queue) = with_ada().await;
    queue.drain();
    let day = kairos_store::day_of(now().timestamp());
    let counted = || store.segment_counts("clicked", std::slice::from_ref(&day));
    assert_eq!(counted().await.unwrap().members, 1);
    let path = "/v1/contacts/ada%2Bnews%40x.test";
    let (status, erased) = call(&store, &queue, request(IAM, Method::DELETE, path, None)).await;
    assert_eq!(status, 200, "{erased}");
    // The segment's counters count the erased member out, on the erasure's day.
    let counts = counted().await.unwrap();
    assert_eq!((counts.members, counts.days[0].exits), (0, 1), "{counts:?}");
    assert_eq!(
        (erased["complete"].as_bool(), erased["exits"].as_u64()),
        (Some(true), Some(1))
    );
    // The exit goes through the write-back queue with an empty membership.
    let sent = queue.drain();
    assert_eq!(sent.len(), 1);
    let exit: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(
        (&exit["change"], &exit["members"]),
        (&json!("exited"), &json!([])),
        "{exit}"
    );
    assert_eq!(exit["summary"], json!("erased by arn:aws:iam::1234567890:user/Admin"));
    // Gone from every route; its trail deleted, one receipt under the salted hash.
    let (status, _) = call(&store, &queue, request(IAM, Method::GET, path, None)).await;
    assert_eq!(status, 404);
    assert!(store
        .audit("ada+news@x.test", None, 50)
        .await
        .unwrap()
        .entries
        .is_empty());
    let receipt = erased["receipt"].as_str().unwrap();
    assert_eq!(receipt, kairos_evaluate::receipt_key(b"test-salt", "ada+news@x.test"));
    assert!(!receipt.contains("ada"));
    let entries = store.audit(receipt, None, 50).await.unwrap().entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, AuditKindOf::Erasure);
    assert_eq!(entries[0].actor.as_deref(), Some("arn:aws:iam::1234567890:user/Admin"));
    // A repeat answers the same receipt and writes no second one.
    let (status, again) = call(&store, &queue, request(IAM, Method::DELETE, path, None)).await;
    assert_eq!((status, &again["receipt"]), (200, &json!(receipt)));
    assert_eq!(store.audit(receipt, None, 50).await.unwrap().entries.len(), 1);
    // A late click is dropped; an unknown contact is 404.
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let late = Event::from_json(
        br#"{"id":"c2","contact":"ada+news@x.test","type":"email.clicked","at":"2026-11-27T09:30:00Z","source":"t"}"#,
    )
    .unwrap();
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let outcome = evaluator.contact("ada+news@x.test", &[late], now()).await.unwrap();
    assert!(outcome.transitions.is_empty() && queue.is_empty());
    let (status, body) = call(
        &store,
        &queue,
        request(IAM, Method::DELETE, "/v1/contacts/nobody%40x.test", None),
    )
    .await;
    assert_eq!((status, &body["field"]), (404, &json!("key")));
}

#[tokio::test]
async fn a_contact_back_after_the_erasure_window_is_new_and_is_erased_again() {
    let (store, queue) = with_ada().await;
    let path = "/v1/contacts/ada%2Bnews%40x.test";
    let (status, _) = call(&store, &queue, request(IAM, Method::DELETE, path, None)).await;
    assert_eq!(status, 200);
    queue.drain();
    // A click 31 days on (the window is 30): a new contact, not a tombstone any more.
    let back = now() + chrono::Duration::days(31);
    let json = format!(
        r#"{{"id":"c9","contact":"ada+news@x.test","type":"email.clicked","at":"{}","source":"t"}}"#,
        back.to_rfc3339()
    );
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let click = Event::from_json(json.as_bytes()).unwrap();
    let outcome = evaluator.contact("ada+news@x.test", &[click], back).await.unwrap();
    assert_eq!(outcome.transitions.len(), 1, "entered again");
    let record = store.load("ada+news@x.test").await.unwrap().unwrap();
    assert_eq!(record.erased_at, None);
    // A second erasure erases it, not "already erased".
    let erasure = kairos_evaluate::Erasure {
        actor: "dpo",
        salt: b"test-salt",
        window_secs: 30 * 86_400,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
    };
    let again = evaluator.erase("ada+news@x.test", &erasure, back).await.unwrap();
    assert_eq!(
        (again.complete, again.exits, again.erased_at),
        (true, 1, back.timestamp())
    );
}
