//! End to end over moto server (real DynamoDB and SQS wire protocols) and the
//! real AWS SDK: signed SendGrid webhook → events queue → evaluate → state and
//! transition → write-back → a local HTTP server verifying the signed webhook.

mod support;

use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use kairos_event::Change;
use kairos_ingest::providers::sendgrid::{PublicKey, SendGrid};
use kairos_ingest::{Ingest, IngestConfig};
use kairos_store::ContactStore;
use p256::ecdsa::SigningKey;
use support::{apigw_post, event_json, failed, serve_webhook, sign_sendgrid, Stack};

const SECRET: &[u8] = b"integration-test-webhook-secret";

fn sendgrid_open(id: &str, email: &str, ts: i64, machine: bool) -> serde_json::Value {
    serde_json::json!({"email": email, "timestamp": ts, "event": "open", "sg_machine_open": machine,
        "sg_event_id": id, "sg_message_id": "m1", "category": "cat facts"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_flows_through_to_a_verified_crm_webhook() {
    let stack = Stack::start().await;
    let now = chrono::Utc::now();
    let ts = now.timestamp();

    // Ingest: a signed SendGrid webhook with three human opens and one machine open.
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let config = IngestConfig {
        webhooks: vec![std::sync::Arc::new(SendGrid::new(
            PublicKey::from_sec1(signing.verifying_key().to_encoded_point(false).as_bytes()).unwrap(),
            300,
        ))],
        ..IngestConfig::default()
    };
    let events_queue = stack.queue("EventsQueue");
    let body = serde_json::to_string(&[
        sendgrid_open("o1", "Ada@Example.com", ts - 3600, false),
        sendgrid_open("o2", "ada@example.com", ts - 1800, true),
        sendgrid_open("o3", "ada@example.com", ts - 600, false),
        sendgrid_open("o4", "ada@example.com", ts - 60, false),
    ])
    .unwrap();
    let mut req = apigw_post("/webhooks/sendgrid", &body);
    sign_sendgrid(&mut req, &signing, ts);
    let response = kairos_ingest::handle(
        req,
        &Ingest {
            config: &config,
            queue: &events_queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        ts,
    )
    .await;
    assert_eq!(response.status_code, 200);

    // Evaluate: what Lambda's SQS poller would hand the function.
    let messages = stack.receive("EventsQueue", 4).await;
    assert_eq!(messages.len(), 4);
    let rules = support::default_rules();
    let store = stack.store();
    let result = stack.evaluate(&rules, &messages, now).await;
    assert!(failed(&result).is_empty());
    stack.ack("EventsQueue", &messages, &result).await;

    let record = store.load("ada@example.com").await.unwrap().expect("state stored");
    // A first write's version is its time in milliseconds (see StoredContact::advance_version).
    let first = now.timestamp_millis() as u64;
    assert_eq!(
        record.version, first,
        "one conditional write for the contact's four events"
    );
    assert!(record.outbox.is_empty(), "outbox cleared after the send");
    assert!(record.state.member_since("engaged-reader").is_some());
    let state_bytes = record.state.to_bytes().len();
    let wcu = store.consumed_write_units();
    eprintln!("DynamoDB: {wcu} write units consumed for 4 events (state {state_bytes} bytes, outbox cleared in a second write)");
    assert!(state_bytes < 1024, "state is {state_bytes} bytes");

    // Write-back: to a local server that checks the Standard Webhooks signature.
    let (url, receiver) = serve_webhook(SECRET).await;
    let file = format!(
        "destinations:\n  - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /t/s}}, mapping: {{url: \"{url}\"}}}}\n"
    );
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(SECRET));
    let destinations = support::writeback::destinations(&file, &[("/t/s", &secret)]).await;
    let transitions = stack.receive("WritebackQueue", 1).await;
    let result = stack.writeback(&destinations, &transitions).await;
    assert!(failed(&result).is_empty());
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["type"], "segment.entered");
    assert_eq!(received[0]["data"]["segment"], "engaged-reader");
    assert_eq!(received[0]["data"]["contact"], "ada@example.com");
    assert!(received[0]["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("velocity email.opened within 2d = {\"baseline_count\":0,\"count\":3"));
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);

    // The same transition delivered again (an SQS redelivery) is dropped by the ledger.
    let again = stack.writeback(&destinations, &transitions).await;
    assert!(failed(&again).is_empty());
    assert_eq!(receiver.received.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_twice_changes_nothing() {
    let stack = Stack::start().await;
    let now = chrono::Utc::now();
    let bodies = [
        event_json("c1", "bob@x.test", "email.clicked", now),
        event_json("d1", "bob@x.test", "email.delivered", now),
    ];
    stack.send("EventsQueue", &bodies).await;
    let messages = stack.receive("EventsQueue", 2).await;

    let rules = support::default_rules();
    let store = stack.store();
    assert!(failed(&stack.evaluate(&rules, &messages, now).await).is_empty());
    let first = store.load("bob@x.test").await.unwrap().unwrap();
    let sent = stack.receive("WritebackQueue", 10).await;
    assert_eq!(sent.len(), 2, "engaged-reader and gone-quiet entered");

    assert!(failed(&stack.evaluate(&rules, &messages, now).await).is_empty());
    assert_eq!(store.load("bob@x.test").await.unwrap().unwrap(), first);
    assert!(
        stack.receive("WritebackQueue", 1).await.is_empty(),
        "no second transition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_fails_only_itself_and_reaches_the_dlq() {
    let stack = Stack::start().await;
    let (sqs, url) = (&stack.sqs, stack.url("EventsQueue"));
    let now = chrono::Utc::now();
    let bad = r#"{"id":"b1","contact":"cy@x.test","type":"email.clicked"}"#.to_string();
    stack
        .send(
            "EventsQueue",
            &[event_json("g1", "cy@x.test", "email.clicked", now), bad],
        )
        .await;
    let rules = support::default_rules();
    let store = stack.store();

    let messages = stack.receive("EventsQueue", 2).await;
    let result = stack.evaluate(&rules, &messages, now).await;
    let bad_id = messages
        .iter()
        .find(|m| m.body().unwrap().contains("b1"))
        .unwrap()
        .message_id()
        .unwrap()
        .to_string();
    let bad_id = bad_id.as_str();
    assert_eq!(failed(&result), [bad_id]);
    stack.ack("EventsQueue", &messages, &result).await;
    assert_eq!(
        store.load("cy@x.test").await.unwrap().unwrap().version,
        now.timestamp_millis() as u64,
        "the good event was applied, in one write"
    );

    // Lambda retries the failed message until maxReceiveCount, then SQS moves it
    // to the DLQ. (Visibility is reset to 0 instead of waiting out the timeout.)
    let mut failing = messages
        .into_iter()
        .filter(|m| m.message_id() == Some(bad_id))
        .collect::<Vec<_>>();
    for _ in 0..10 {
        let Some(m) = failing.first() else { break };
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        failing = stack.receive("EventsQueue", 1).await;
        if !failing.is_empty() {
            let result = stack.evaluate(&rules, &failing, now).await;
            assert_eq!(failed(&result).len(), 1);
        }
    }
    let dlq = stack.receive("EventsDeadLetterQueue", 1).await;
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0].body().unwrap().contains("b1"));
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_evaluations_of_one_contact_lose_no_event() {
    let stack = Stack::start().await;
    let evaluation = stack.evaluation(
        "segments:\n  - id: eight-clicks\n    name: Eight clicks\n    rule: { event: { type: email.clicked, count: { gte: 8 }, within: 1d } }\n",
    );
    let (rules, store) = (&evaluation.rules, &evaluation.store);
    let now = chrono::Utc::now();
    let evaluator = evaluation.evaluator();
    let jobs = (0..8).map(|i| {
        let evaluator = &evaluator;
        async move {
            let json = event_json(&format!("k{i}"), "dee@x.test", "email.clicked", now);
            let event = kairos_event::Event::from_json(json.as_bytes()).unwrap();
            evaluator.contact("dee@x.test", &[event], now).await
        }
    });
    let outcomes = futures_util::future::join_all(jobs).await;
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    let record = store.load("dee@x.test").await.unwrap().unwrap();
    assert_eq!(
        record.version,
        now.timestamp_millis() as u64 + 7,
        "eight writes, none lost"
    );
    let verdicts = rules.evaluate(&record.state, now.timestamp()).verdicts;
    assert_eq!(
        verdicts[0].explanation.observed,
        Some(kairos_rules::Observation::Count(8))
    );
    let entered: Vec<_> = outcomes
        .iter()
        .flat_map(|o| o.as_ref().unwrap().transitions.iter())
        .collect();
    assert_eq!(entered.len(), 1, "exactly one evaluation saw the eighth click");
    assert_eq!(entered[0].change, Change::Entered);
}
