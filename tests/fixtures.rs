//! The handlers accept the official event fixtures shipped in the
//! `aws_lambda_events` crate, exactly as they are.

mod support;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::SqsEvent;
use kairos_evaluate::Evaluator;
use kairos_ingest::{Ingest, IngestConfig};
use kairos_rules::RuleSet;
use kairos_store::{MemoryContacts, MemoryLedger, MemoryQueue};

#[tokio::test]
async fn evaluate_accepts_the_official_sqs_fixture_and_fails_only_its_non_event_bodies() {
    let event: SqsEvent = serde_json::from_str(support::SQS_FIXTURE).unwrap();
    let ids: Vec<String> = event.records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let response = kairos_evaluate::handle(event, &Evaluator::new(&rules, &store, &queue), chrono::Utc::now()).await;
    assert_eq!(
        support::failed(&response),
        ids,
        "\"Message Body\" is not a canonical event"
    );
}

#[tokio::test]
async fn writeback_accepts_the_official_sqs_fixture() {
    // Its "Message Body" bodies are not transitions: each is dead-lettered
    // with the reason, and acknowledged.
    let event: SqsEvent = serde_json::from_str(support::SQS_FIXTURE).unwrap();
    let n = event.records.len();
    let destinations = support::writeback::destinations(
        "destinations:\n  - {name: w, kind: webhook, segments: all, credentials: {secret: /t/s}, mapping: {url: \"http://127.0.0.1:9/\"}}\n",
        &[("/t/s", "whsec_MDEyMzQ1Njc4OWFiY2RlZg==")],
    )
    .await;
    let (ledger, contacts) = (MemoryLedger::default(), kairos_store::MemoryContacts::default());
    let (dead, redelivery) = (
        kairos_store::MemoryDeadLetters::default(),
        kairos_store::MemoryRedelivery::default(),
    );
    let wb = kairos_writeback::Writeback {
        destinations: &destinations,
        ledger: &ledger,
        contacts: &contacts,
        dead_letters: &dead,
        redelivery: &redelivery,
        clock: &kairos_writeback::SystemClock,
    };
    let response = kairos_writeback::handle(event, u64::MAX, &wb).await;
    assert!(response.batch_item_failures.is_empty());
    let letters = dead.letters();
    assert_eq!(letters.len(), n);
    assert!(letters[0].1[0].1.starts_with("malformed message"), "{letters:?}");
}

#[tokio::test]
async fn ingest_accepts_the_official_apigw_v2_fixture() {
    let req: ApiGatewayV2httpRequest = serde_json::from_str(support::APIGW_FIXTURE).unwrap();
    let config = IngestConfig {
        api_keys: vec!["k".into()],
        ..IngestConfig::default()
    };
    let queue = MemoryQueue::default();
    let response = kairos_ingest::handle(
        req,
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        0,
    )
    .await;
    assert_eq!(response.status_code, 404, "GET / is not a Kairos route");
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["statusCode"], 404);
    assert_eq!(json["headers"]["content-type"], "application/json");

    let mut post = support::apigw_post(
        "/v1/events",
        r#"{"id":"e","contact":"u","type":"page.viewed","at":"2026-11-27T10:00:00Z","source":"web"}"#,
    );
    post.headers.insert("x-api-key", "k".parse().unwrap());
    let response = kairos_ingest::handle(
        post,
        &Ingest {
            config: &config,
            queue: &queue,
            claims: &kairos_store::MemoryClaims::default(),
        },
        "2026-11-27T10:00:01Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp(),
    )
    .await;
    assert_eq!(response.status_code, 202);
    assert_eq!(queue.len(), 1);
}
