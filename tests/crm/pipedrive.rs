//! Pipedrive: the field resolved by name, 0/1/2 search hits, cached ids, a
//! deleted person, the burst window and the daily budget, and a storm.

use crate::harness::{self, transition, Workload, SEGMENTS};
use crate::support::crm::pipedrive::{Pipedrive, TOKEN};
use crate::support::crm::{clock, Faults};
use crate::support::writeback::{destinations_on, Destinations};
use kairos_event::Change;
use kairos_store::MemoryLedger;
use kairos_writeback::{Clock, ManualClock};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn file(url: &str, field: &str, duplicates: &str) -> String {
    format!(
        "destinations:\n  - name: pipedrive\n    kind: pipedrive\n    segments: all\n    credentials: {{api_token: /t/pd}}\n    \
         mapping: {{base_url: \"{url}\", field: {field}, duplicates: {duplicates}}}\n"
    )
}

async fn start(pd: Pipedrive, duplicates: &str) -> (Arc<Pipedrive>, Destinations) {
    let pd = Arc::new(pd);
    let url = pd.serve().await;
    let clock: Arc<ManualClock> = pd.clock.clone();
    let destinations = destinations_on(&file(&url, "Kairos segments", duplicates), &[("/t/pd", TOKEN)], clock).await;
    (pd, destinations)
}

fn company(faults: Faults, clock: Arc<ManualClock>) -> Pipedrive {
    Pipedrive::new(&SEGMENTS, faults, clock)
}

fn entered(contact: &str, segment: &str, version: u64) -> kairos_event::Transition {
    transition(contact, segment, Change::Entered, version, &[segment.to_string()])
}

#[tokio::test]
async fn storm_every_final_membership_written_once_in_effect() {
    let clock = clock();
    let mut pd = company(Faults::new(29, 0.30, 0.03), clock.clone());
    pd.daily_budget = 4_000;
    let work = Workload::new(2_500, 4, 23);
    for (i, contact) in work.versions.keys().enumerate() {
        pd.persons.lock().unwrap().insert(i as i64 + 1, contact.clone());
    }
    let (pd, destinations) = start(pd, "update_all").await;
    let ledger = MemoryLedger::default();
    let report = harness::run(&destinations, &work.transitions, &clock, &ledger).await;
    let c = &pd.counters;
    crate::print(
        "pipedrive",
        work.transitions.len(),
        c.calls(),
        &report,
        c.too_many.load(Ordering::SeqCst),
        c.unavailable.load(Ordering::SeqCst),
    );
    assert_eq!(
        (report.dead_letters, report.redriven_to_dlq),
        (0, 0),
        "{:?}",
        report.letters.first()
    );
    let persons = pd.persons.lock().unwrap().clone();
    let written: std::collections::BTreeMap<String, String> = pd
        .segments()
        .into_iter()
        .map(|(id, v)| (persons[&id].clone(), v))
        .collect();
    assert_eq!(written, work.expected(&SEGMENTS));
    let history: std::collections::BTreeMap<String, Vec<String>> = pd
        .history
        .lock()
        .unwrap()
        .iter()
        .map(|(id, values)| (persons[id].clone(), values.iter().map(|v| pd.labels(v)).collect()))
        .collect();
    let regressions = work.regressions(&history, &SEGMENTS);
    assert!(regressions.is_empty(), "{regressions:?}");
    assert_eq!(
        c.violations(),
        Vec::<String>::new(),
        "a call after the daily budget was spent"
    );
    assert!(
        report.virtual_secs >= 14 * 3600,
        "the budget ran out and midnight UTC was waited for"
    );
}

#[tokio::test]
async fn none_one_or_two_persons_with_the_email() {
    let clock = clock();
    let pd = company(Faults::none(), clock.clone());
    pd.persons.lock().unwrap().extend([
        (1, "one@x.test".to_string()),
        (2, "two@x.test".into()),
        (3, "TWO@x.test".into()),
    ]);
    let (pd, destinations) = start(pd, "update_all").await;
    let batch = [
        entered("none@x.test", "gone-quiet", 1),
        entered("one@x.test", "sales-ready", 1),
        entered("two@x.test", "sales-ready", 1),
    ];
    let report = harness::run(&destinations, &batch, &clock, &MemoryLedger::default()).await;
    assert_eq!(
        (report.invocations, report.dead_letters),
        (1, 0),
        "no person: skipped, not an error"
    );
    let segments = pd.segments();
    assert_eq!(
        segments.keys().collect::<Vec<_>>(),
        [&1, &2, &3],
        "both persons of two@ written"
    );
    assert!(segments.values().all(|v| v == "sales-ready"));

    let clock = crate::support::crm::clock();
    let pd = company(Faults::none(), clock.clone());
    pd.persons
        .lock()
        .unwrap()
        .extend([(2, "two@x.test".to_string()), (3, "two@x.test".into())]);
    let (pd, destinations) = start(pd, "fail").await;
    let report = harness::run(
        &destinations,
        &[entered("two@x.test", "sales-ready", 1)],
        &clock,
        &MemoryLedger::default(),
    )
    .await;
    assert_eq!(report.dead_letters, 1);
    let reason = &report.letters[0]
        .1
        .iter()
        .find(|(k, _)| k == "kairos-reason")
        .unwrap()
        .1;
    assert_eq!(reason, "2 persons have this email: ids 2, 3");
    assert!(pd.segments().is_empty());
}

#[tokio::test]
async fn person_ids_are_cached_and_a_deleted_person_is_found_again() {
    let clock = clock();
    let pd = company(Faults::none(), clock.clone());
    pd.persons.lock().unwrap().insert(1, "ada@x.test".into());
    let (pd, destinations) = start(pd, "update_all").await;
    let ledger = MemoryLedger::default();
    let calls = || pd.counters.calls();
    let before = calls();
    harness::run(
        &destinations,
        &[entered("ada@x.test", "gone-quiet", 1)],
        &clock,
        &ledger,
    )
    .await;
    assert_eq!(calls() - before, 2, "search, then update");
    harness::run(
        &destinations,
        &[entered("ada@x.test", "sales-ready", 2)],
        &clock,
        &ledger,
    )
    .await;
    assert_eq!(calls() - before, 3, "the id came from the cache");
    // The person is merged away in Pipedrive: a new id for the same email.
    {
        let mut persons = pd.persons.lock().unwrap();
        persons.remove(&1);
        persons.insert(7, "ada@x.test".into());
    }
    let report = harness::run(
        &destinations,
        &[entered("ada@x.test", "engaged-reader", 3)],
        &clock,
        &ledger,
    )
    .await;
    assert_eq!((report.invocations, report.dead_letters), (1, 0));
    assert_eq!(pd.segments()[&7], "engaged-reader");
}

#[tokio::test]
async fn the_burst_headers_slow_calls_down_and_a_429_waits_for_its_reset() {
    let clock = clock();
    let mut pd = company(Faults::none(), clock.clone());
    pd.burst = 1; // the field lookup leaves none in its 2 s window
    pd.persons.lock().unwrap().insert(1, "ada@x.test".into());
    let (pd, destinations) = start(pd, "update_all").await;
    let report = harness::run(
        &destinations,
        &[entered("ada@x.test", "gone-quiet", 1)],
        &clock,
        &MemoryLedger::default(),
    )
    .await;
    assert_eq!(
        (report.invocations, pd.counters.too_many.load(Ordering::SeqCst)),
        (1, 0)
    );
    assert!(report.virtual_secs >= 4, "two waits for the window to reset");
    // Forced 429s (with their headers) are waited out too.
    let clock = crate::support::crm::clock();
    let pd = company(Faults::new(5, 0.5, 0.0), clock.clone());
    pd.persons.lock().unwrap().insert(1, "ada@x.test".into());
    let (pd, destinations) = start(pd, "update_all").await;
    let report = harness::run(
        &destinations,
        &[entered("ada@x.test", "gone-quiet", 1)],
        &clock,
        &MemoryLedger::default(),
    )
    .await;
    assert!(pd.counters.too_many.load(Ordering::SeqCst) > 0);
    assert_eq!((report.dead_letters, pd.segments()[&1].as_str()), (0, "gone-quiet"));
}

#[tokio::test]
async fn a_spent_daily_budget_stops_calls_until_midnight_utc() {
    let clock = clock();
    let mut pd = company(Faults::none(), clock.clone());
    pd.daily_budget = 2; // the field lookup and the search
    pd.persons.lock().unwrap().insert(1, "ada@x.test".into());
    let (pd, destinations) = start(pd, "update_all").await;
    let start = clock.now_ms();
    harness::run(
        &destinations,
        &[entered("ada@x.test", "gone-quiet", 1)],
        &clock,
        &MemoryLedger::default(),
    )
    .await;
    assert_eq!(pd.counters.violations(), Vec::<String>::new());
    assert!(clock.now_ms() >= kairos_writeback::next_midnight(start, 0));
    assert_eq!(pd.segments()[&1], "gone-quiet");
}

#[tokio::test]
async fn a_missing_field_is_named_at_cold_start() {
    let pd = Arc::new(company(Faults::none(), clock()));
    let url = pd.serve().await;
    let file = file(&url, "Kairos tiers", "update_all");
    let parsed = kairos_writeback::file::parse(&file, None).unwrap();
    let secrets = std::collections::HashMap::from([("/t/pd".to_string(), TOKEN.to_string())]);
    let parts = kairos_writeback::Parts {
        secrets: &secrets,
        transport: |_: &_, t| kairos_writeback::http::ReqwestTransport::new(kairos_writeback::Config::http_client(t)),
        lookups: Arc::new(kairos_store::MemoryLookups::default()),
        clock: pd.clock.clone() as Arc<dyn Clock>,
    };
    let err = kairos_writeback::build(&parsed, parts).await.err().expect("refused");
    assert_eq!(
        err.to_string(),
        "destination `pipedrive`: no person field named `Kairos tiers`: create it (docs/destinations/pipedrive.md)"
    );
}
