//! The local chain of `make watch`: the poller passes queue messages to the
//! functions as the template's event source mappings do, and the receiver
//! verifies and prints write-back's webhook deliveries.

mod support;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use axum::extract::Path;
use axum::Json;
use chrono::{Duration, Utc};
use kairos::local::poll::{self, Mapping};
use kairos::local::receive::Printer;
use kairos_rules::RuleSet;
use kairos_store::ContactStore;
use std::sync::{Arc, Mutex};
use support::{event_json, Stack};

#[test]
fn the_poller_reads_the_mappings_from_the_template() {
    let mappings = poll::mappings().unwrap();
    let find = |f: &str| mappings.iter().find(|m| m.function == f).cloned().unwrap();
    assert_eq!(
        find("evaluate"),
        Mapping {
            function: "evaluate".into(),
            queue: "EventsQueue".into(),
            batch_size: 10,
            window: std::time::Duration::from_secs(1),
            report_failures: true,
        }
    );
    assert_eq!(
        (find("writeback").queue.as_str(), find("writeback").batch_size),
        ("WritebackQueue", 100)
    );
}

/// Serves the emulator's invoke route, running the real evaluate handler on the stack.
async fn emulator(stack: Arc<Stack>) -> String {
    let route = axum::routing::post(move |Path(function): Path<String>, Json(event): Json<SqsEvent>| {
        let stack = stack.clone();
        async move {
            assert_eq!(function, "evaluate");
            let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
            let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
            let evaluator = kairos_evaluate::Evaluator::new(&rules, &store, &queue);
            Json::<SqsBatchResponse>(kairos_evaluate::handle(event, &evaluator, Utc::now()).await)
        }
    });
    let app = axum::Router::new().route("/2015-03-31/functions/{function}/invocations", route);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_poller_deletes_what_succeeded_and_leaves_failures_for_redelivery() {
    let stack = Arc::new(Stack::start().await);
    let invoke = emulator(stack.clone()).await;
    let now = Utc::now();
    let bodies = [
        event_json("o1", "ada@acme.test", "email.clicked", now - Duration::minutes(1)),
        event_json("v1", "bob@globex.test", "page.viewed", now - Duration::minutes(1)),
        "not an event".to_string(),
    ];
    stack.send("EventsQueue", &bodies).await;
    let mapping = poll::mappings()
        .unwrap()
        .into_iter()
        .find(|m| m.function == "evaluate")
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.aws);
    let url = stack.url("EventsQueue").to_string();
    let polled = poll::poll_once(
        &sqs,
        &reqwest::Client::new(),
        &invoke,
        &mapping,
        (&url, "arn:aws:sqs:us-east-1:123456789012:eventsqueue"),
    )
    .await
    .unwrap();
    assert_eq!((polled.received, polled.deleted, polled.left), (3, 2, 1), "{polled:?}");
    assert_eq!(polled.error, None);
    assert!(
        stack.depth("WritebackQueue").await > 0,
        "the transitions went on to write-back"
    );
    for contact in ["ada@acme.test", "bob@globex.test"] {
        assert!(stack.store().load(contact).await.unwrap().is_some(), "{contact} stored");
    }
    // The failed message is in flight, not deleted: it comes back after the visibility timeout.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let in_flight = attrs.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .clone();
    assert_eq!(in_flight, "1");

    // A failed invocation (nothing listening) deletes nothing.
    stack.send("EventsQueue", &bodies[..1]).await;
    let polled = poll::poll_once(
        &sqs,
        &reqwest::Client::new(),
        "http://127.0.0.1:9",
        &mapping,
        (&url, "arn"),
    )
    .await
    .unwrap();
    assert_eq!((polled.received, polled.deleted), (1, 0));
    assert!(polled.error.unwrap().contains("cannot invoke"));
}

#[tokio::test]
async fn the_receiver_verifies_and_prints_each_delivery() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let print: Printer = Arc::new(move |line| sink.lock().unwrap().push(line));
    let secret = kairos_writeback::secret_bytes(kairos::local::LOCAL_WEBHOOK_SECRET).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/kairos", listener.local_addr().unwrap());
    tokio::spawn(kairos::local::receive::serve(listener, secret, print));

    // The write-back sample, delivered by the real write-back handler.
    let samples = kairos::samples::generate(Utc::now()).await.unwrap();
    let sample = samples.into_iter().find(|s| s.function == "writeback").unwrap();
    let file = format!(
        "destinations:\n  - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /s}}, mapping: {{url: \"{url}\"}}}}\n"
    );
    let destinations = support::writeback::destinations(&file, &[("/s", kairos::local::LOCAL_WEBHOOK_SECRET)]).await;
    let ledger = kairos_store::MemoryLedger::default();
    let wb = kairos_writeback::Writeback {
        destinations: &destinations,
        ledger: &ledger,
        contacts: &kairos_store::MemoryContacts::default(),
        dead_letters: &kairos_store::MemoryDeadLetters::default(),
        redelivery: &kairos_store::MemoryRedelivery::default(),
        clock: &kairos_writeback::SystemClock,
    };
    let batch: SqsEvent = serde_json::from_value(sample.payload).unwrap();
    assert!(kairos_writeback::handle(batch, u64::MAX, &wb)
        .await
        .batch_item_failures
        .is_empty());
    {
        let printed = lines.lock().unwrap();
        assert_eq!(printed.len(), 1, "{printed:?}");
        assert!(
            printed[0].starts_with("receiver: delivered ✓ ada@acme.test entered engaged-reader"),
            "{printed:?}"
        );
        assert!(printed[0].contains("why: "), "{printed:?}");
    }

    // A forged delivery is refused, and said so.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(lines.lock().unwrap()[1], "receiver: refused ✗ bad signature");
}

#[test]
fn the_poller_simulates_the_templates_rate_schedules() {
    assert_eq!(poll::rate("rate(1 minute)"), Some(std::time::Duration::from_secs(60)));
    assert_eq!(poll::rate("rate(5 minutes)"), Some(std::time::Duration::from_secs(300)));
    assert_eq!(poll::rate("rate(2 hours)"), Some(std::time::Duration::from_secs(7200)));
    assert_eq!(poll::rate("rate(0 minutes)"), None);
    assert_eq!(poll::rate("cron(0 12 * * ? *)"), None);
    let template = r#"
Resources:
  SweepFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: sweep}}
    Properties:
      Events:
        EveryMinute:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 minute)}
        Hourly:
          Type: Schedule
          Properties: {Schedule: rate(1 hour), Input: '{"mode":"backfill"}'}
"#;
    let schedules = poll::schedules_in(template).unwrap();
    assert_eq!(schedules.len(), 2);
    assert_eq!(
        (
            schedules[0].function.as_str(),
            schedules[0].every.as_secs(),
            schedules[0].input.as_deref()
        ),
        ("sweep", 60, None)
    );
    assert_eq!(
        (schedules[1].every.as_secs(), schedules[1].input.as_deref()),
        (3600, Some(r#"{"mode":"backfill"}"#))
    );
    let cron = template.replace("rate(1 minute)", "cron(0 12 * * ? *)");
    assert!(poll::schedules_in(&cron)
        .unwrap_err()
        .to_string()
        .contains("not simulated"));
    // The scheduled event has the shape the official fixture has.
    let event: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_value(poll::scheduled_event(Utc::now())).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");

    // The template's own schedules (the sweep's, every minute), their Input filled in as on AWS.
    let now: chrono::DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
    let schedules = poll::schedules_in(kairos::local::TEMPLATE).unwrap();
    assert!(
        schedules
            .iter()
            .any(|s| s.function == "sweep" && s.every.as_secs() == 60),
        "{schedules:?}"
    );
    for schedule in schedules {
        let event = poll::schedule_event(&schedule, now).unwrap();
        let event: aws_lambda_events::eventbridge::EventBridgeEvent = serde_json::from_value(event).unwrap();
        assert_eq!(event.time, Some(now), "{}", schedule.function);
        assert_eq!(event.account.as_deref(), Some("123456789012"));
        assert!(event.resources.unwrap()[0].contains(&schedule.function));
    }
}
