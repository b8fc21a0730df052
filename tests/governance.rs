//! Governance over moto server (issue 20): the audit trail written with the
//! record, exactly once under redelivery and racing evaluations; the consent
//! guard at the write-back queue.

mod support;

use chrono::{DateTime, Duration, Utc};
use kairos_evaluate::Evaluator;
use kairos_event::{AuditKind, Change, WritebackMessage};
use kairos_rules::RuleSet;
use kairos_store::{day_of, AuditTrail, ContactStore, SegmentCounters, COUNTER_SHARDS};
use std::collections::BTreeSet;
use support::{batch, event_json, failed, Stack};

const RULES: &str = "segments:
  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, within: 7d } } }
  - { id: viewed, name: Viewed, rule: { event: { type: page.viewed, within: 7d } } }
  - { id: service, name: Service, purpose: operational, rule: { event: { type: email.clicked, within: 7d } } }
";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - 3_600, 0).unwrap()
}

/// Every audit entry of a contact, newest first, read page by page.
async fn trail(stack: &Stack, contact: &str) -> Vec<kairos_event::AuditEntry> {
    let store = stack.store();
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let page = store.audit(contact, cursor.as_deref(), 2).await.unwrap();
        all.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_audited_once_however_often_sqs_redelivers() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let t0 = t0();
    let click = event_json("c1", "ada@x.test", "email.clicked", t0);
    for _ in 0..3 {
        let response = kairos_evaluate::handle(batch(std::slice::from_ref(&click)), &evaluator, t0).await;
        assert!(failed(&response).is_empty());
    }
    let entries = trail(&stack, "ada@x.test").await;
    let got: Vec<(AuditKind, Option<&str>, Option<Change>)> = entries
        .iter()
        .map(|e| (e.kind, e.segment.as_deref(), e.change))
        .collect();
    assert_eq!(
        got,
        [
            // Newest first: within one change, the later entry first.
            (AuditKind::Transition, Some("service"), Some(Change::Entered)),
            (AuditKind::Transition, Some("clicked"), Some(Change::Entered)),
        ]
    );
    let record = store.load("ada@x.test").await.unwrap().unwrap();
    assert!(entries
        .iter()
        .all(|e| e.state_version == record.version && e.cause == "c1"));
    assert!(entries.iter().all(|e| e.written == Some(true)));
    // The segment counters moved once, with the one committed write.
    for segment in ["clicked", "service"] {
        assert_eq!(counts(&stack, segment, t0).await, (1, 1, 0), "{segment}");
    }
    assert_eq!(counts(&stack, "viewed", t0).await, (0, 0, 0));
}

/// A segment's counters: (members now, entries and exits on the day of `at`).
async fn counts(stack: &Stack, segment: &str, at: DateTime<Utc>) -> (i64, u64, u64) {
    let day = day_of(at.timestamp());
    let counts = stack.store().segment_counts(segment, &[day]).await.unwrap();
    (counts.members, counts.days[0].entries, counts.days[0].exits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_evaluations_write_one_entry_per_change_and_the_audit_matches_the_writes() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let t0 = t0();
    let contact = "race@x.test";
    // Eight evaluators at once, each with its own event (and every one redelivered once).
    let bodies: Vec<String> = (0..8)
        .map(|i| {
            let kind = if i % 2 == 0 { "email.clicked" } else { "page.viewed" };
            event_json(&format!("e{i}"), contact, kind, t0 + Duration::seconds(i))
        })
        .collect();
    let runs = bodies.iter().chain(&bodies).map(|body| {
        let stack = &stack;
        let rules = &rules;
        async move {
            let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
            let evaluator = Evaluator::new(rules, &store, &queue);
            // A message that lost every race is failed back and SQS redelivers it: so here.
            for _ in 0..3 {
                let response = kairos_evaluate::handle(
                    batch(std::slice::from_ref(body)),
                    &evaluator,
                    t0 + Duration::seconds(10),
                )
                .await;
                if failed(&response).is_empty() {
                    return;
                }
            }
            panic!("a message still failed after three deliveries");
        }
    });
    futures_util::future::join_all(runs).await;
    let entries = trail(&stack, contact).await;
    let transitions: Vec<_> = entries.iter().filter(|e| e.kind == AuditKind::Transition).collect();
    // Each segment entered exactly once, each by exactly one committed write.
    let segments: BTreeSet<&str> = transitions.iter().filter_map(|e| e.segment.as_deref()).collect();
    assert_eq!(transitions.len(), 3, "{entries:#?}");
    assert_eq!(segments, ["clicked", "service", "viewed"].into());
    // What destinations were sent is what the audit says was written.
    let sent = written(&stack).await;
    let sent: BTreeSet<(String, u64)> = sent.iter().map(|t| (t.segment.clone(), t.state_version)).collect();
    let audited: BTreeSet<(String, u64)> = transitions
        .iter()
        .map(|e| (e.segment.clone().unwrap(), e.state_version))
        .collect();
    assert_eq!(sent, audited);
    // Sixteen racing deliveries, one count per segment.
    for segment in ["clicked", "service", "viewed"] {
        assert_eq!(counts(&stack, segment, t0).await, (1, 1, 0), "{segment}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_counters_count_entries_and_exits_once_under_racing_sweeps() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let t0 = t0();
    let contacts: Vec<String> = (0..5).map(|i| format!("c{i}@x.test")).collect();
    let clicks: Vec<String> = contacts
        .iter()
        .enumerate()
        .map(|(i, c)| event_json(&format!("k{i}"), c, "email.clicked", t0))
        .collect();
    // Every click delivered twice, in two racing batches.
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let (a, b) = futures_util::join!(
        kairos_evaluate::handle(batch(&clicks), &evaluator, t0),
        kairos_evaluate::handle(batch(&clicks), &evaluator, t0)
    );
    assert!(failed(&a).is_empty() && failed(&b).is_empty());
    assert_eq!(counts(&stack, "clicked", t0).await, (5, 5, 0));
    // Eight days on, the window has passed: two sweeps race over every contact.
    let later = t0 + Duration::days(8);
    let sweeps = contacts
        .iter()
        .chain(&contacts)
        .map(|c| evaluator.contact(c, &[], later));
    for outcome in futures_util::future::join_all(sweeps).await {
        outcome.unwrap();
    }
    assert_eq!(counts(&stack, "clicked", later).await, (0, 0, 5));
    assert_eq!(counts(&stack, "clicked", t0).await, (0, 5, 0));
    let trend = store
        .segment_counts("clicked", &[day_of(t0.timestamp()), day_of(later.timestamp())])
        .await
        .unwrap()
        .trend();
    assert_eq!(trend, [5, 0]);
}

/// Counts the stream batch `event` out as evaluate does, with time to spare.
async fn count_out(stack: &Stack, rules: &RuleSet, event: &serde_json::Value, now: DateTime<Utc>) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let response = kairos_evaluate::handle_expired(event, (rules, 0), &stack.store(), now, deadline).await;
    let failures = response.batch_item_failures.into_iter();
    failures.filter_map(|f| f.item_identifier).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_ttl_deletes_is_counted_out_once_and_in_again_when_its_contact_returns() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let t0 = t0();
    let events = [
        event_json("c1", "ada@x.test", "email.clicked", t0),
        event_json("v1", "bob@x.test", "page.viewed", t0),
    ];
    assert!(failed(&kairos_evaluate::handle(batch(&events), &evaluator, t0).await).is_empty());
    assert_eq!(counts(&stack, "clicked", t0).await, (1, 1, 0));
    let ada = store.load("ada@x.test").await.unwrap().unwrap();
    // Idle past the records' retention (no sweep ran: the records still hold their
    // memberships, as the counters do); the TTL deletes both, the stream reports it.
    let later = t0 + Duration::days(200);
    let mut removed = stack.expire_items("contact#", later.timestamp()).await;
    assert_eq!(removed.len(), 2);
    // An unreadable record first: logged and passed over, it holds up nothing.
    let mut broken = removed[0].clone();
    broken.insert(
        "state".into(),
        aws_sdk_dynamodb::types::AttributeValue::S("not binary".into()),
    );
    removed.insert(0, broken);
    let event = support::ttl_stream(&removed);
    // With no time left, nothing is counted and the stream resumes at the first expiry.
    let response =
        kairos_evaluate::handle_expired(&event, (&rules, 0), &store, later, tokio::time::Instant::now()).await;
    let resume: Vec<_> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(resume, [Some("2".to_string())]);
    assert_eq!(counts(&stack, "clicked", later).await, (1, 0, 0));
    // Delivered twice (a retried batch): counted out once.
    for _ in 0..2 {
        assert!(count_out(&stack, &rules, &event, later).await.is_empty());
    }
    for segment in ["clicked", "service", "viewed"] {
        assert_eq!(counts(&stack, segment, later).await, (0, 0, 1), "{segment}");
    }
    let newest = &trail(&stack, "ada@x.test").await[0];
    assert_eq!((newest.cause.as_str(), newest.written), ("expired", Some(false)));
    assert_eq!(
        (newest.change, newest.state_version),
        (Some(Change::Exited), ada.version + 1)
    );
    // Ada comes back: a new record, counted in again (once).
    let back = event_json("c2", "ada@x.test", "email.clicked", later);
    assert!(failed(&kairos_evaluate::handle(batch(&[back]), &evaluator, later).await).is_empty());
    assert_eq!(counts(&stack, "clicked", later).await, (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_changing_more_segments_than_a_transaction_holds_is_counted_in_the_shared_items() {
    let stack = Stack::start().await;
    let rules: String = (0..60)
        .map(|i| format!("  - {{ id: s{i}, name: S{i}, rule: {{ event: {{ type: email.clicked, within: 7d }} }} }}\n"))
        .collect();
    let rules = RuleSet::from_yaml(&format!("segments:\n{rules}")).unwrap();
    let t0 = t0();
    let click = event_json("k", "wide@x.test", "email.clicked", t0);
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = Evaluator::new(&rules, &store, &queue);
    for _ in 0..2 {
        let response = kairos_evaluate::handle(batch(std::slice::from_ref(&click)), &evaluator, t0).await;
        assert!(failed(&response).is_empty(), "{response:?}");
    }
    for i in [0, 31, 59] {
        assert_eq!(counts(&stack, &format!("s{i}"), t0).await, (1, 1, 0), "s{i}");
    }
    assert_eq!(
        shards_written(&stack, "segment#*").await,
        1,
        "counted in the shared item"
    );
    assert_eq!(shards_written(&stack, "segment#s0").await, 0);
}

/// How many of the counter item `base`'s shards exist.
async fn shards_written(stack: &Stack, base: &str) -> usize {
    let mut written = 0;
    for key in kairos_store::counter_shard_keys(base) {
        written += usize::from(stack.raw_item(&key).await.is_some());
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segments_counters_are_spread_over_shards_and_read_as_one_with_an_older_builds_count() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let t0 = t0();
    let day = day_of(t0.timestamp());
    // What a build before sharding counted, under the key that is now shard 0.
    stack
        .put_raw_item(r#"{"pk": {"S": "segment#clicked"}, "members": {"N": "5"}}"#)
        .await;
    let old_day = format!(r#"{{"pk": {{"S": "segday#clicked#{day}"}}, "entries": {{"N": "5"}}}}"#);
    stack.put_raw_item(&old_day).await;
    let clicks: Vec<String> = (0..24)
        .map(|i| event_json(&format!("k{i}"), &format!("p{i}@x.test"), "email.clicked", t0))
        .collect();
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let response = kairos_evaluate::handle(batch(&clicks), &evaluator, t0).await;
    assert!(failed(&response).is_empty(), "{response:?}");

    assert_eq!(counts(&stack, "clicked", t0).await, (29, 29, 0));
    let spread = shards_written(&stack, "segment#clicked").await;
    assert!(spread >= 4, "24 contacts over {COUNTER_SHARDS} shards wrote {spread}");
    assert_eq!(
        shards_written(&stack, &format!("segday#clicked#{day}")).await,
        spread,
        "a contact's day count goes to the shard of its member count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_before_an_earlier_click_reaches_no_destination_as_a_marketing_member() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let t0 = t0();
    let contact = "bob@x.test";
    // The unsubscribe arrives first, dated after the click that enters `clicked`.
    let unsubscribe = event_json("u1", contact, "email.unsubscribed", t0 + Duration::minutes(5));
    let click = event_json("c1", contact, "email.clicked", t0);
    stack.apply(&rules, &[unsubscribe], t0 + Duration::minutes(6)).await;
    stack.apply(&rules, &[click], t0 + Duration::minutes(7)).await;
    let sent = written(&stack).await;
    // Only the operational segment is written; every message's membership holds no marketing segment.
    assert_eq!(
        sent.iter().map(|t| (t.segment.as_str(), t.change)).collect::<Vec<_>>(),
        [("service", Change::Entered)]
    );
    assert!(sent
        .iter()
        .all(|t| t.members.as_deref() == Some(&["service".to_string()][..])));
    let entries = trail(&stack, contact).await;
    let guard = entries
        .iter()
        .find(|e| e.kind == AuditKind::Guard)
        .expect("the guard's action is audited");
    assert_eq!(guard.segment.as_deref(), Some("clicked"));
    assert_eq!(guard.written, Some(false));
}

#[test]
fn every_admin_route_in_the_template_is_iam_authorized_and_goes_to_the_admin_function() {
    let template: serde_norway::Value = serde_norway::from_str(kairos::local::TEMPLATE).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut admin_routes = Vec::new();
    for (name, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            let path = event["Properties"]["Path"].as_str().unwrap_or("");
            if event["Type"] != "HttpApi" || !path.starts_with("/v1/contacts") {
                continue;
            }
            assert_eq!(name.as_str(), Some("AdminFunction"), "{path}");
            assert_eq!(
                event["Properties"]["Auth"]["Authorizer"].as_str(),
                Some("AWS_IAM"),
                "{path}"
            );
            admin_routes.push(format!("{} {path}", event["Properties"]["Method"].as_str().unwrap()));
        }
    }
    admin_routes.sort();
    assert_eq!(
        admin_routes,
        [
            "DELETE /v1/contacts/{key}",
            "DELETE /v1/contacts/{key}/overrides/{segment}",
            "GET /v1/contacts/{key}",
            "GET /v1/contacts/{key}/audit",
            "GET /v1/contacts/{key}/export",
            "PUT /v1/contacts/{key}/overrides/{segment}",
        ]
    );
    assert_eq!(
        template["Resources"]["Api"]["Properties"]["Auth"]["EnableIamAuthorizer"].as_bool(),
        Some(true)
    );
}
