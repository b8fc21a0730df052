//! The admin function's real handler over the DynamoDB adapters on moto
//! server (issue 20): the contact document, an override, the audit trail and
//! the export; and erasure (item 5) with events still in the queue.

mod support;

use aws_lambda_events::http::Method;
use chrono::{DateTime, Duration, Utc};
use kairos_event::{AuditKind, Change, WritebackMessage};
use kairos_rules::RuleSet;
use kairos_store::{AuditTrail, ContactStore, DeliveryLedger, Lookups};
use serde_json::json;
use support::admin::{call, request, IAM_ACTOR, SALT};
use support::{event_json, Stack};

const RULES: &str = "segments:
  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, within: 7d } } }
  - { id: viewed, name: Viewed, rule: { event: { type: page.viewed, within: 7d } } }
  - { id: vip, name: VIP, purpose: operational, rule: { trait: { plan: { eq: enterprise } } } }
";
const ADA: &str = "/v1/contacts/ada%40example.com";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - 3_600, 0).unwrap()
}

/// An event JSON with `properties`.
fn with_properties(id: &str, contact: &str, kind: &str, at: DateTime<Utc>, properties: &str) -> String {
    let plain = event_json(id, contact, kind, at);
    format!("{},\"properties\":{properties}}}", plain.trim_end_matches('}'))
}

/// The transitions on the write-back queue (drained).
async fn written(stack: &Stack) -> Vec<kairos_event::Transition> {
    let mut out = Vec::new();
    loop {
        let messages = stack.receive("WritebackQueue", 10).await;
        if messages.is_empty() {
            return out;
        }
        for m in &messages {
            let WritebackMessage::Transition(t) = WritebackMessage::decode(m.body().unwrap().as_bytes()).unwrap();
            out.push(t);
        }
        let ok = aws_lambda_events::sqs::SqsBatchResponse::default();
        stack.ack("WritebackQueue", &messages, &ok).await;
    }
}

/// A typical active contact: a week of opens, clicks and page views, traits, an override.
async fn active_contact(stack: &Stack, rules: &RuleSet) {
    let identified = event_json("id", "ada@example.com", "contact.identified", t0() - Duration::days(6));
    let traits = r#","traits":{"plan":"team","title":"CTO","company_size":"50"}}"#;
    let mut bodies = vec![format!("{}{traits}", identified.trim_end_matches('}'))];
    for day in 0..6 {
        let at = t0() - Duration::days(day) - Duration::minutes(5);
        bodies.push(event_json(&format!("o{day}"), "ada@example.com", "email.opened", at));
        bodies.push(event_json(&format!("c{day}"), "ada@example.com", "email.clicked", at));
        let page = format!(r#"{{"url":"https://example.com/pricing/{day}"}}"#);
        bodies.push(with_properties(
            &format!("p{day}"),
            "ada@example.com",
            "page.viewed",
            at,
            &page,
        ));
    }
    for chunk in bodies.chunks(10) {
        stack.apply(rules, chunk, t0()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_handler_reads_pins_and_exports_a_contact_over_dynamodb() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    active_contact(&stack, &rules).await;
    let now = t0();
    let (status, contact, _) = call(&stack, &rules, request(Method::GET, ADA, None), now).await;
    assert_eq!(status, 200, "{contact}");
    let segments: Vec<&str> = contact["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segment"].as_str().unwrap())
        .collect();
    assert_eq!(segments, ["clicked", "viewed"]);
    assert_eq!(contact["traits"]["title"], json!("CTO"));
    written(&stack).await;
    // A pin through the handler: one conditional write with its audit item.
    let store = stack.store();
    let before = store.audit("ada@example.com", None, 100).await.unwrap().entries.len();
    let body = r#"{"member": true, "reason": "signed the enterprise deal"}"#;
    let (status, pinned, _) = call(
        &stack,
        &rules,
        request(Method::PUT, &format!("{ADA}/overrides/vip"), Some(body)),
        now,
    )
    .await;
    assert_eq!(status, 200, "{pinned}");
    let summary = format!("override by {IAM_ACTOR}: signed the enterprise deal");
    assert_eq!(pinned["transitions"][0]["summary"], json!(summary));
    let sent = written(&stack).await;
    assert_eq!(
        (sent.len(), &sent[0].segment, sent[0].change),
        (1, &"vip".to_string(), Change::Entered)
    );
    let (status, audit, _) = call(&stack, &rules, request(Method::GET, &format!("{ADA}/audit"), None), now).await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), before + 2, "the pin's override and transition entries");
    assert_eq!(
        (&entries[0]["kind"], &entries[0]["actor"]),
        (&json!("transition"), &json!(IAM_ACTOR))
    );
    // The export: the document, its signals and the whole trail.
    let (status, export, bytes) = call(
        &stack,
        &rules,
        request(Method::GET, &format!("{ADA}/export"), None),
        now,
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["audit"].as_array().unwrap().len(), entries.len());
    assert_eq!(
        export["signals"].as_array().unwrap().len(),
        2,
        "what the rules count: {export}"
    );
    println!(
        "export of a typical active contact (19 events over 6 days, 3 traits, 1 override, {} audit entries): {bytes} bytes",
        entries.len()
    );
    // Write units of one transition with its audit item, as the store counts them.
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = kairos_evaluate::Evaluator::new(&rules, &store, &queue);
    let bob =
        kairos_event::Event::from_json(event_json("b1", "bob@example.com", "email.clicked", now).as_bytes()).unwrap();
    let outcome = evaluator.contact("bob@example.com", &[bob], now).await.unwrap();
    println!(
        "one event causing {} transition(s) and {} audit entries in one audit item: {} write units (record + audit item, transactional)",
        outcome.transitions.len(),
        outcome.audit.len(),
        store.consumed_write_units()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_holds_against_queued_events_until_a_new_consent() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    // An anonymous visitor linked to Ada, then Ada's own events.
    let visit = event_json("v1", "anon:visitor-1", "page.viewed", t0());
    stack.apply(&rules, &[visit], t0()).await;
    let link = with_properties(
        "l1",
        "ada@example.com",
        "email.clicked",
        t0() + Duration::minutes(1),
        r#"{"anonymous_id":"visitor-1"}"#,
    );
    stack.apply(&rules, &[link], t0() + Duration::minutes(1)).await;
    let store = stack.store();
    assert!(
        store
            .load("ada@example.com")
            .await
            .unwrap()
            .unwrap()
            .state
            .merged_count()
            == 1
    );
    written(&stack).await;
    stack.ledger().record("crm:ada@example.com", 7).await.unwrap();
    let lookups = kairos_store::DynamoLookups::new(stack.dynamodb.clone(), &stack.infra.table);
    lookups
        .put("pipedrive:sales:ada@example.com", "42", 3_600)
        .await
        .unwrap();
    stack.ledger().record("crm:bada@example.com", 3).await.unwrap();
    // Events in flight at erasure time, for Ada and for her anonymous id.
    let in_flight = [
        event_json("c2", "ada@example.com", "email.clicked", t0() + Duration::minutes(2)),
        event_json("v2", "anon:visitor-1", "page.viewed", t0() + Duration::minutes(3)),
    ];
    stack.send("EventsQueue", &in_flight).await;
    let now = t0() + Duration::minutes(10);
    let started = std::time::Instant::now();
    let (status, erased, _) = call(&stack, &rules, request(Method::DELETE, ADA, None), now).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{erased}");
    println!(
        "erasure over moto of a contact with 1 linked anonymous record: {} ms",
        took.as_millis()
    );
    assert_eq!(erased["complete"], json!(true));
    assert_eq!(erased["anonymous_records"], json!(1));
    assert_eq!(erased["delivery_entries"], json!(2));
    // Destinations are told the contact left every segment it was in.
    let exits = written(&stack).await;
    let mut left: Vec<(&str, &str, Change)> = exits
        .iter()
        .map(|t| (t.contact.as_str(), t.segment.as_str(), t.change))
        .collect();
    left.sort_by_key(|(c, s, _)| (*c, *s));
    let expected = [
        ("ada@example.com", "clicked", Change::Exited),
        ("ada@example.com", "viewed", Change::Exited),
        // The visitor was written back as a member before it was linked.
        ("anon:visitor-1", "viewed", Change::Exited),
    ];
    assert_eq!(left, expected);
    assert!(exits.iter().all(|t| t.members.as_deref() == Some(&[][..])));
    // The queued events are evaluated after it: nothing is recreated.
    let tombstone = store.load("ada@example.com").await.unwrap().unwrap();
    let messages = stack.receive("EventsQueue", 2).await;
    assert_eq!(messages.len(), 2);
    let response = stack.evaluate(&rules, &messages, now).await;
    assert!(response.batch_item_failures.is_empty());
    stack.ack("EventsQueue", &messages, &response).await;
    assert_eq!(store.load("ada@example.com").await.unwrap().unwrap(), tombstone);
    let anon = store.load("anon:visitor-1").await.unwrap().unwrap();
    assert!(anon.erased_at.is_some() && anon.state.signals().is_empty());
    assert!(written(&stack).await.is_empty());
    let (status, _, _) = call(&stack, &rules, request(Method::GET, ADA, None), now).await;
    assert_eq!(status, 404);
    // The trail is gone; one receipt under the salted hash, with the actor.
    assert!(store
        .audit("ada@example.com", None, 50)
        .await
        .unwrap()
        .entries
        .is_empty());
    assert!(store
        .audit("anon:visitor-1", None, 50)
        .await
        .unwrap()
        .entries
        .is_empty());
    let receipt = kairos_evaluate::receipt_key(SALT, "ada@example.com");
    assert_eq!(erased["receipt"], json!(receipt));
    let entries = store.audit(&receipt, None, 50).await.unwrap().entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].kind, entries[0].actor.as_deref()),
        (AuditKind::Erasure, Some(IAM_ACTOR))
    );
    // Ledger and cache entries naming her are gone; another contact's stay.
    assert_eq!(stack.ledger().delivered("crm:ada@example.com").await.unwrap(), None);
    assert_eq!(lookups.get("pipedrive:sales:ada@example.com").await.unwrap(), None);
    assert_eq!(stack.ledger().delivered("crm:bada@example.com").await.unwrap(), Some(3));
    // A new consent re-opens the contact: only what follows the erasure counts.
    let later = now + Duration::minutes(5);
    let subscribe = with_properties(
        "s1",
        "ada@example.com",
        "consent.changed",
        later,
        r#"{"status":"subscribed"}"#,
    );
    let click = event_json("c3", "ada@example.com", "email.clicked", later);
    stack.apply(&rules, &[subscribe, click], later).await;
    let reopened = store.load("ada@example.com").await.unwrap().unwrap();
    assert!(reopened.erased_at.is_none() && reopened.version > tombstone.version);
    let back = written(&stack).await;
    assert_eq!(back.iter().map(|t| t.segment.as_str()).collect::<Vec<_>>(), ["clicked"]);
    // An unknown contact is 404 with a JSON error.
    let (status, body, _) = call(
        &stack,
        &rules,
        request(Method::DELETE, "/v1/contacts/nobody%40example.com", None),
        now,
    )
    .await;
    assert_eq!((status, &body["field"]), (404, &json!("key")));
}
