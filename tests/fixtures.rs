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

/// A variable of events/local.env, unquoted, if it is set there.
fn local_var(name: &str) -> Option<String> {
    let env = include_str!("../events/local.env");
    let line = env.lines().find(|l| l.starts_with(&format!("{name}=")))?;
    Some(line[name.len() + 1..].trim_matches('"').to_string())
}

#[tokio::test]
async fn the_sample_payloads_in_events_are_accepted() {
    // `make watch` adds the queue and table it creates on moto to events/local.env's.
    let made = |name: &str| match name {
        "KAIROS_EVENTS_QUEUE_URL" => Some("http://127.0.0.1:5005/000000000000/events".to_string()),
        "KAIROS_TABLE" => Some("kairos".to_string()),
        _ => None,
    };
    let config = IngestConfig::from_env(&|name| local_var(name).or_else(|| made(name))).unwrap();
    let queue = MemoryQueue::default();
    let now = chrono::Utc::now().timestamp();
    for (file, status, expected) in [
        (include_str!("../events/ingest-sendgrid.json"), 200, 3),
        (include_str!("../events/ingest-events.json"), 202, 2),
    ] {
        let req: ApiGatewayV2httpRequest = serde_json::from_str(file).unwrap();
        let response = kairos_ingest::handle(
            req,
            &Ingest {
                config: &config,
                queue: &queue,
                claims: &kairos_store::MemoryClaims::default(),
            },
            now,
        )
        .await;
        assert_eq!(response.status_code, status, "{:?}", response.body);
        assert_eq!(queue.drain().len(), expected);
    }

    let event: SqsEvent = serde_json::from_str(include_str!("../events/evaluate-sqs.json")).unwrap();
    let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
    let store = MemoryContacts::default();
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let at = "2026-11-27T10:05:00Z".parse().unwrap();
    assert!(kairos_evaluate::handle(event, &evaluator, at)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(store.contacts(), ["ada@acme.test", "bob@globex.test"]);

    let event: SqsEvent = serde_json::from_str(include_str!("../events/writeback-sqs.json")).unwrap();
    for record in event.records {
        let body = record.body.as_deref().unwrap().as_bytes();
        let kairos_event::WritebackMessage::Transition(t) = kairos_event::WritebackMessage::decode(body).unwrap();
        assert_eq!(
            t.members.as_deref(),
            Some(&["engaged-reader".to_string()][..]),
            "the sample is format 2"
        );
    }
}
