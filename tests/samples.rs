//! Every sample `kairos samples` writes to `events/` changes state when
//! invoked as the README says, whatever the date: each is made for a time
//! and handled by the real handler as of that time.

mod support;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, Utc};
use kairos_evaluate::Evaluator;
use kairos_ingest::{Ingest, IngestConfig};
use kairos_rules::RuleSet;
use kairos_store::{DeliveryLedger, MemoryContacts, MemoryLedger, MemoryQueue};

/// A variable of events/local.env, unquoted, if it is set there.
fn local_var(name: &str) -> Option<String> {
    let env = include_str!("../events/local.env");
    let line = env.lines().find(|l| l.starts_with(&format!("{name}=")))?;
    Some(line[name.len() + 1..].trim_matches('"').to_string())
}

/// Ingest configured from events/local.env, plus what `make watch` creates on moto.
fn local_ingest_config() -> IngestConfig {
    let made = |name: &str| match name {
        "KAIROS_EVENTS_QUEUE_URL" => Some("http://127.0.0.1:5005/000000000000/eventsqueue".to_string()),
        "KAIROS_TABLE" => Some("ContactsTable".to_string()),
        _ => None,
    };
    IngestConfig::from_env(&|name| local_var(name).or_else(|| made(name))).unwrap()
}

async fn the_samples_change_state_as_of(now: DateTime<Utc>) {
    let samples = kairos::samples::generate(now).await.unwrap();
    let files: Vec<&str> = samples.iter().map(|s| s.file).collect();
    assert_eq!(
        files,
        [
            "ingest-sendgrid.json",
            "ingest-events.json",
            "evaluate-sqs.json",
            "writeback-sqs.json"
        ]
    );
    let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
    let config = local_ingest_config();
    for sample in samples {
        let store = MemoryContacts::default();
        let queue = MemoryQueue::default();
        let evaluator = Evaluator::new(&rules, &store, &queue);
        match sample.function {
            "ingest" => {
                let req: ApiGatewayV2httpRequest = serde_json::from_value(sample.payload).unwrap();
                let ingest = Ingest {
                    config: &config,
                    queue: &queue,
                    claims: &kairos_store::MemoryClaims::default(),
                };
                let response = kairos_ingest::handle(req, &ingest, now.timestamp()).await;
                assert!(
                    (200..300).contains(&response.status_code),
                    "{} at {now}: {:?}",
                    sample.file,
                    response.body
                );
                let bodies: Vec<String> = queue.drain().into_iter().map(|m| m.body).collect();
                assert!(!bodies.is_empty(), "{}: nothing enqueued", sample.file);
                // What was enqueued is evaluated (as the poller passes it on) and changes a contact.
                let batch: SqsEvent = serde_json::from_value(kairos::samples::sqs(&bodies)).unwrap();
                let failed = kairos_evaluate::handle(batch, &evaluator, now).await;
                assert!(failed.batch_item_failures.is_empty(), "{}", sample.file);
                assert!(!store.contacts().is_empty(), "{}: no contact stored", sample.file);
            }
            "evaluate" => {
                let batch: SqsEvent = serde_json::from_value(sample.payload).unwrap();
                let failed = kairos_evaluate::handle(batch, &evaluator, now).await;
                assert!(failed.batch_item_failures.is_empty());
                assert_eq!(store.contacts(), ["ada@acme.test", "bob@globex.test"]);
                assert!(!queue.is_empty(), "no transition at {now}");
            }
            "writeback" => the_writeback_sample_is_delivered(sample.payload).await,
            other => panic!("a sample for an unknown function {other}"),
        }
    }
}

async fn the_writeback_sample_is_delivered(payload: serde_json::Value) {
    let (url, receiver) = support::serve_webhook(b"local-dev-webhook-secret").await;
    let file = format!(
        "destinations:\n  - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /s}}, mapping: {{url: \"{url}\"}}}}\n"
    );
    let destinations = support::writeback::destinations(&file, &[("/s", kairos::local::LOCAL_WEBHOOK_SECRET)]).await;
    let ledger = MemoryLedger::default();
    let wb = kairos_writeback::Writeback {
        destinations: &destinations,
        ledger: &ledger,
        contacts: &MemoryContacts::default(),
        dead_letters: &kairos_store::MemoryDeadLetters::default(),
        redelivery: &kairos_store::MemoryRedelivery::default(),
        clock: &kairos_writeback::SystemClock,
    };
    let batch: SqsEvent = serde_json::from_value(payload).unwrap();
    let response = kairos_writeback::handle(batch, u64::MAX, &wb).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(receiver.received.lock().unwrap().len(), 1);
    assert!(ledger.delivered("webhook:ada@acme.test").await.unwrap().is_some());
}

#[tokio::test]
async fn every_sample_changes_state_today() {
    the_samples_change_state_as_of(Utc::now()).await;
}

#[tokio::test]
async fn every_sample_changes_state_on_any_date() {
    for at in ["2024-02-29T23:59:30Z", "2031-07-01T00:00:05Z"] {
        the_samples_change_state_as_of(at.parse().unwrap()).await;
    }
    the_samples_change_state_as_of(Utc::now() + Duration::days(400)).await;
}
