//! Re-deciding everyone after a publish (issue 16 item 5), over moto: the
//! rules published to the template's bucket, the backfill (the sweep
//! function's second mode) scanning the template's table in segments, and
//! the evaluate function re-deciding idle contacts under the new version.

mod support;

use chrono::{DateTime, Duration, Utc};
use kairos_evaluate::LiveRules;
use kairos_event::Change;
use kairos_store::{BackfillProgress, ContactScan, ContactStore, S3Rules};
use std::collections::BTreeMap;
use support::{event_json, Stack};

const CLICKED: &str =
    "segments:\n  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, within: 7d } } }\n";
const TWICE: &str = "segments:\n  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, count: { gte: 2 }, within: 7d } } }\n";
const CONTACTS: usize = 60;

/// The transitions the write-back queue holds (taken off it): (contact, change, rule version, has trigger).
async fn transitions(stack: &Stack) -> Vec<(String, Change, String, bool)> {
    let drained = stack.drain_transitions().await.into_iter();
    drained
        .map(|t| (t.contact, t.change, t.rule_version, t.trigger.is_some()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_re_decides_idle_contacts_once_and_a_second_backfill_emits_nothing() {
    let stack = Stack::start().await;
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let s3 = kairos::local::s3_client(&stack.aws);
    let embedded = kairos_rules::RuleSet::from_yaml(CLICKED).unwrap();
    let live = LiveRules::new(S3Rules::new(s3.clone(), &uri).unwrap(), embedded.clone(), 30);
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() - 3_600, 0).unwrap();

    // Idle contacts: one click each, in `clicked` under the embedded rules.
    let clicks: Vec<String> = (0..CONTACTS)
        .map(|i| event_json(&format!("e{i}"), &format!("c{i:03}@x.test"), "email.clicked", t0))
        .collect();
    for chunk in clicks.chunks(10) {
        stack.apply(&embedded, chunk, t0).await;
    }
    assert_eq!(transitions(&stack).await.len(), CONTACTS, "each entered `clicked`");

    // This instance has just read the rules (nothing published: the embedded ones).
    let now = t0 + Duration::minutes(5);
    assert_eq!(live.versioned(now.timestamp()).await.1, 0);
    // A publish: `clicked` needs two clicks now.
    kairos::publish::publish(&s3, &uri, TWICE, "ada", "two clicks")
        .await
        .unwrap();
    let seq = LiveRules::new(S3Rules::new(s3.clone(), &uri).unwrap(), embedded.clone(), 30)
        .versioned(0)
        .await
        .1;
    let started = std::time::Instant::now();
    let report = stack.backfill(Some(seq), 4, 16).await;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "backfill: {} contacts sent, {} items scanned in {secs:.3} s: {:.0} contacts/s in one invocation (moto)",
        report.sent,
        report.scanned,
        report.sent as f64 / secs
    );
    assert_eq!(
        (report.seq, report.sent as usize, report.remaining_segments),
        (seq, CONTACTS, 0)
    );
    let progress = stack.store().progress().await.unwrap().unwrap();
    assert!(progress.done() && progress.sent as usize == CONTACTS, "{progress:?}");

    // Re-decided under the new version, though within this instance's refresh
    // interval: the backfill's messages ask for the new version, so it refreshes first.
    assert_eq!(stack.evaluate_queue(&live, now).await, CONTACTS);
    let emitted = transitions(&stack).await;
    let version = kairos_rules::RuleSet::from_yaml(TWICE).unwrap();
    let version = version.segments().next().unwrap().version.to_string();
    let mut per_contact: BTreeMap<&str, usize> = BTreeMap::new();
    for (contact, change, rule_version, triggered) in &emitted {
        assert_eq!((change, rule_version, triggered), (&Change::Exited, &version, &false));
        *per_contact.entry(contact).or_default() += 1;
    }
    assert_eq!(per_contact.len(), CONTACTS, "every idle contact re-decided");
    assert!(per_contact.values().all(|n| *n == 1), "each exit once");
    let ada = stack.store().load("c000@x.test").await.unwrap().unwrap();
    assert_eq!(ada.rules_seq, seq);

    // The same publish again: the backfill is done and sends nothing.
    assert_eq!(stack.backfill(Some(seq), 4, 16).await.sent, 0);
    // Every contact sent again (a backfill started over): skipped, nothing written, nothing emitted.
    stack
        .store()
        .record_progress(&BackfillProgress::start(seq, 3))
        .await
        .unwrap();
    assert_eq!(stack.backfill(None, 3, 25).await.sent as usize, CONTACTS);
    assert_eq!(stack.evaluate_queue(&live, now + Duration::minutes(1)).await, CONTACTS);
    assert!(transitions(&stack).await.is_empty());
    assert_eq!(
        stack.store().load("c000@x.test").await.unwrap().unwrap().version,
        ada.version
    );
}
