//! The wire-level fault proxy (`support::proxy`) against moto, with SDK
//! clients built with the deployed functions' retry and timeout settings
//! (`kairos_store::sdk`): throttling answers are the services' own and the
//! SDK retries them; a dropped answer leaves the request applied and the
//! adapter reporting a retryable error; a request never answered gives up at
//! the attempt timeout instead of hanging.

mod support;

use kairos_event::{AuditEntry, AuditKind};
use kairos_store::{
    ContactStore, DynamoContacts, Message, Queue, SegmentCounters, SqsQueue, StoreError, StoredContact,
    CANCELLED_RETRIES,
};
use support::proxy::{deployed_config, FaultProxy, SdkCalls, Service, WireFault, WireRates};
use support::Stack;

const ALL_THROTTLED: WireRates = WireRates {
    throttle: 1.0,
    drop: 0.0,
};
const ALL_DROPPED: WireRates = WireRates {
    throttle: 0.0,
    drop: 1.0,
};
const NO_FAULTS: WireRates = WireRates {
    throttle: 0.0,
    drop: 0.0,
};

/// The stack, a fault-free proxy in front of its moto (faults set per test,
/// rng `seed`) and the SDK config of a deployed function through it.
async fn behind_proxy(seed: u64) -> (Stack, FaultProxy, aws_config::SdkConfig) {
    let stack = Stack::start().await;
    let proxy = FaultProxy::start(&stack.moto.endpoint, seed, NO_FAULTS).await;
    let aws = deployed_config(&proxy.endpoint).await;
    (stack, proxy, aws)
}

/// The contact store with its audit table, through the proxy's config.
fn audited_store(stack: &Stack, aws: &aws_config::SdkConfig) -> DynamoContacts {
    DynamoContacts::new(SdkCalls::default().dynamodb(aws), &stack.infra.table)
        .with_audit(stack.audit_table(), kairos_store::DEFAULT_AUDIT_RETENTION_DAYS)
}

fn record() -> StoredContact {
    StoredContact {
        version: 1,
        ..StoredContact::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_answers_are_retried_by_the_sdk_then_reach_the_adapters_as_retryable() {
    let stack = Stack::start().await;
    let proxy = FaultProxy::start(&stack.moto.endpoint, 1, ALL_THROTTLED).await;
    let calls = SdkCalls::default();
    let aws = deployed_config(&proxy.endpoint).await;
    let store = DynamoContacts::new(calls.dynamodb(&aws), &stack.infra.table);
    let queue = SqsQueue::new(calls.sqs(&aws), stack.url("EventsQueue"));

    let saved = store.save("ada@x.test", None, &record()).await;
    match &saved {
        Err(e @ StoreError::Backend(_)) => {
            let text = format!("{:?}", e);
            assert!(
                text.contains("ProvisionedThroughputExceededException") || text.contains("ThrottlingException"),
                "{text}"
            );
            assert!(!e.is_permanent());
        }
        other => panic!("expected a throttled backend error, got {other:?}"),
    }
    let message = Message {
        id: "m1".into(),
        body: "{}".into(),
    };
    let sent = queue.send(std::slice::from_ref(&message)).await;
    let err = sent.expect_err("every SQS request is throttled");
    assert_eq!(err.failed, vec!["m1".to_string()]);
    assert!(err.reason.contains("RequestThrottled"), "{}", err.reason);

    let (tally, sdk) = (proxy.tally(), calls.tally());
    let attempts = kairos_store::sdk::MAX_ATTEMPTS as u64;
    assert_eq!(tally.requests_for(Service::DynamoDb), attempts, "{tally:?}");
    assert_eq!(tally.requests_for(Service::Sqs), attempts, "{tally:?}");
    assert_eq!(tally.faults.get(&WireFault::SqsRequestThrottled), Some(&attempts));
    assert_eq!(
        (sdk.operations_total(), sdk.attempts, sdk.exhausted),
        (2, 2 * attempts, 2),
        "{sdk:?}"
    );
    assert_eq!(stack.depth("EventsQueue").await, 0, "nothing reached moto");
    assert!(
        stack.store().load("ada@x.test").await.unwrap().is_none(),
        "nothing reached moto"
    );

    // The faults over, the same calls go through.
    proxy.set_rates(WireRates {
        throttle: 0.0,
        drop: 0.0,
    });
    store.save("ada@x.test", None, &record()).await.expect("saved");
    queue.send(&[message]).await.expect("sent");
    assert_eq!(stack.depth("EventsQueue").await, 1);
    assert_eq!(
        stack.store().load("ada@x.test").await.unwrap().map(|r| r.version),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_answer_leaves_the_write_applied_and_the_adapter_reporting_a_retryable_error() {
    let stack = Stack::start().await;
    let proxy = FaultProxy::start(&stack.moto.endpoint, 2, ALL_DROPPED).await;
    let calls = SdkCalls::default();
    let aws = deployed_config(&proxy.endpoint).await;
    let store = DynamoContacts::new(calls.dynamodb(&aws), &stack.infra.table);
    let queue = SqsQueue::new(calls.sqs(&aws), stack.url("EventsQueue"));

    let saved = store.save("ada@x.test", None, &record()).await;
    assert!(matches!(saved, Err(StoreError::Backend(_))), "{saved:?}");
    assert_eq!(
        stack.store().load("ada@x.test").await.unwrap().map(|r| r.version),
        Some(1),
        "the write happened though its answer was lost"
    );
    let message = Message {
        id: "m1".into(),
        body: "{}".into(),
    };
    let err = queue.send(&[message]).await.expect_err("no answer came back");
    assert_eq!(err.failed, vec!["m1".to_string()]);
    let attempts = kairos_store::sdk::MAX_ATTEMPTS as u64;
    assert_eq!(
        stack.depth("EventsQueue").await as u64,
        attempts,
        "each attempt was applied: the SDK's retries send again what SQS already took"
    );
    let tally = proxy.tally();
    assert_eq!(
        tally.faults.get(&WireFault::SqsAnswerDropped),
        Some(&attempts),
        "{tally:?}"
    );
    assert!(
        tally.faults.get(&WireFault::DynamoDbAnswerDropped) >= Some(&1),
        "{tally:?}"
    );
    assert_eq!(calls.tally().exhausted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_answered_times_out_and_is_retried_instead_of_hanging() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let holding = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            holding.lock().unwrap().push(stream); // read nothing, answer nothing
        }
    });
    let calls = SdkCalls::default();
    let aws = deployed_config(&endpoint).await;
    let store = DynamoContacts::new(calls.dynamodb(&aws), "table");
    let loaded = store.load("ada@x.test").await;
    let text = format!("{loaded:?}");
    assert!(matches!(loaded, Err(StoreError::Backend(_))), "{text}");
    assert!(
        text.to_lowercase().contains("timeout") || text.contains("TimedOut"),
        "{text}"
    );
    assert!(
        calls.tally().attempts >= 2,
        "the timed-out attempt was retried: {:?}",
        calls.tally()
    );
}

/// A record at `version` whose save carries `entry` (the record and its audit item in one transaction).
fn saving(version: u64, entry: AuditEntry) -> StoredContact {
    StoredContact {
        version,
        audit: vec![entry],
        ..StoredContact::default()
    }
}

/// An audit entry of `kind` at a fixed time.
fn entry(kind: AuditKind, version: u64, summary: &str) -> AuditEntry {
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    AuditEntry::new(kind, at, version, summary.into(), "test")
}

/// A save with an audit entry that is no transition.
fn audited(version: u64) -> StoredContact {
    saving(version, entry(AuditKind::Guard, version, "held back"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_is_mapped_by_its_cancellation_reasons() {
    let (stack, proxy, aws) = behind_proxy(3).await;
    let store = audited_store(&stack, &aws);
    store.save("ada@x.test", None, &audited(1)).await.expect("saved");

    // moto's own answer: the record's condition failed.
    let lost = store.save("ada@x.test", None, &audited(2)).await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");

    // DynamoDB's answers for throttling and races inside a transaction: sent
    // again in process, then reported retryable.
    for code in [
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "TransactionConflict",
        "RequestLimitExceeded",
    ] {
        proxy.cancel_transactions(Some(code));
        let saved = store.save("ada@x.test", Some(1), &audited(2)).await;
        match &saved {
            Err(e @ StoreError::Backend(_)) => {
                assert!(!e.is_permanent());
                assert!(format!("{e:?}").contains(code), "{e:?}");
            }
            other => panic!("{code}: expected a retryable backend error, got {other:?}"),
        }
    }
    // A write the table refuses as it is: permanent (dead-lettered with its reason).
    proxy.cancel_transactions(Some("ValidationError"));
    let refused = store.save("ada@x.test", Some(1), &audited(2)).await;
    assert!(
        matches!(&refused, Err(e @ StoreError::Rejected(_)) if e.is_permanent()),
        "{refused:?}"
    );
    let tally = proxy.tally();
    let sent = u64::from(CANCELLED_RETRIES) + 1;
    let cancelled = 4 * sent + 1;
    assert_eq!(
        tally.faults.get(&WireFault::TransactionCanceled),
        Some(&cancelled),
        "{tally:?}"
    );
    assert_eq!(
        tally.requests.get("DynamoDB_20120810.TransactWriteItems"),
        Some(&(cancelled + 2)),
        "the adapter sends a retryable cancellation {sent} times, a permanent one once, \
         and the SDK retries neither: {tally:?}"
    );
    assert_eq!(
        stack.store().load("ada@x.test").await.unwrap().map(|r| r.version),
        Some(1)
    );

    proxy.cancel_transactions(None);
    store.save("ada@x.test", Some(1), &audited(2)).await.expect("saved");
    assert_eq!(
        stack.store().load("ada@x.test").await.unwrap().map(|r| r.version),
        Some(2)
    );
}

/// A record whose save enters `segment` (a transition, counted).
fn entering(version: u64, segment: &str) -> StoredContact {
    let mut entered = entry(AuditKind::Transition, version, "entered");
    entered.segment = Some(segment.into());
    entered.change = Some(kairos_event::Change::Entered);
    saving(version, entered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_on_a_busy_counter_is_sent_again_in_process_and_counted_once() {
    let (stack, proxy, aws) = behind_proxy(5).await;
    let store = audited_store(&stack, &aws);
    let members = || async { stack.store().segment_counts("hot", &[]).await.unwrap().members };

    // Another writer held the counter for as many sends as the adapter retries.
    proxy.cancel_next_transactions("TransactionConflict", CANCELLED_RETRIES);
    store
        .save("ada@x.test", None, &entering(1, "hot"))
        .await
        .expect("saved on a retry");
    assert_eq!(members().await, 1);
    let sends = proxy
        .tally()
        .requests
        .get("DynamoDB_20120810.TransactWriteItems")
        .copied();
    assert_eq!(sends, Some(u64::from(CANCELLED_RETRIES) + 1));

    // Held for longer: reported retryable (the message goes back to its queue), nothing written.
    proxy.cancel_next_transactions("TransactionConflict", CANCELLED_RETRIES + 1);
    let saved = store.save("bob@x.test", None, &entering(1, "hot")).await;
    assert!(
        matches!(&saved, Err(e @ StoreError::Backend(_)) if !e.is_permanent()),
        "{saved:?}"
    );
    assert!(stack.store().load("bob@x.test").await.unwrap().is_none());
    assert_eq!(members().await, 1);
    // The redelivery's save goes through and counts once.
    store
        .save("bob@x.test", None, &entering(1, "hot"))
        .await
        .expect("saved");
    assert_eq!(members().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goal_whose_variant_counter_is_busy_is_counted_on_a_retry_never_taken_as_counted() {
    use kairos_decide_fn::{DecisionStore, DynamoDecisions};
    let (stack, proxy, aws) = behind_proxy(7).await;
    let decisions = DynamoDecisions::new(SdkCalls::default().dynamodb(&aws), &stack.infra.table);
    for id in ["d1", "d2"] {
        let item = format!(
            r#"{{"pk": {{"S": "decision#{id}"}}, "contact": {{"S": "ada@x.test"}},
                "sequence": {{"S": "onboarding"}}, "step": {{"S": "welcome"}}, "variant": {{"S": "a"}}}}"#
        );
        stack.put_raw_item(&item).await;
    }
    let key = ("onboarding".to_string(), "welcome".to_string(), "a".to_string());
    let goals = || async { Some(decisions.counts(std::slice::from_ref(&key)).await.ok()?[0].goals) };

    proxy.cancel_next_transactions("TransactionConflict", 1);
    assert_eq!(decisions.goal("d1", 1_795_000_000).await.ok(), Some(true));
    assert_eq!(goals().await, Some(1));

    // Held past the retries: an error to retry (the events are redelivered), not "already counted".
    proxy.cancel_next_transactions("TransactionConflict", CANCELLED_RETRIES + 1);
    let busy = decisions.goal("d2", 1_795_000_000).await;
    assert!(matches!(&busy, Err(e) if !e.is_permanent()), "{busy:?}");
    assert_eq!(goals().await, Some(1));
    assert_eq!(decisions.goal("d2", 1_795_000_000).await.ok(), Some(true));
    assert_eq!(goals().await, Some(2));
    assert_eq!(
        decisions.goal("d2", 1_795_000_001).await.ok(),
        Some(false),
        "counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_read_resends_its_unprocessed_keys_and_gives_up_retryable() {
    use kairos_decide_fn::{DecisionStore, DynamoDecisions};
    let (stack, proxy, aws) = behind_proxy(7).await;
    let decisions = DynamoDecisions::new(SdkCalls::default().dynamodb(&aws), &stack.infra.table);
    stack
        .put_raw_item(r#"{"pk": {"S": "variant#onboarding#welcome#a#3"}, "sends": {"N": "4"}}"#)
        .await;
    let key = [("onboarding".to_string(), "welcome".to_string(), "a".to_string())];
    let batch_reads = || {
        let tally = proxy.tally();
        tally
            .requests
            .get("DynamoDB_20120810.BatchGetItem")
            .copied()
            .unwrap_or(0)
    };

    // Left unprocessed three times: sent again after pauses, read whole.
    proxy.leave_next_batch_reads_unprocessed(3);
    let counts = decisions.counts(&key).await.expect("read after the resends");
    assert_eq!((counts[0].sends, batch_reads()), (4, 4));

    // Left unprocessed every time: a retryable error after the last call, not a count of zero.
    proxy.leave_next_batch_reads_unprocessed(100);
    let throttled = decisions.counts(&key).await;
    assert!(matches!(&throttled, Err(e) if !e.is_permanent()), "{throttled:?}");
    assert_eq!(batch_reads(), 4 + u64::from(kairos_store::MAX_BATCH_ROUNDS));
}
