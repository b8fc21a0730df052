//! Salesforce: the JWT bearer flow and session renewal, per-record results,
//! the org's API limit and the reserve, and a storm.

use crate::harness::{self, transition, Workload, SEGMENTS};
use crate::support::crm::salesforce::{Salesforce, CLIENT_ID, USERNAME, WINDOW_MS};
use crate::support::crm::{clock, Faults};
use crate::support::writeback::{destinations_on, Destinations};
use kairos_event::Change;
use kairos_store::MemoryLedger;
use kairos_writeback::{Clock, ManualClock};
use rsa::pkcs8::EncodePrivateKey;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

/// One signing key for the file's tests (RSA key generation is slow unoptimized).
static KEY: LazyLock<rsa::RsaPrivateKey> =
    LazyLock::new(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("a test key"));

fn file(url: &str, client_id: &str, reserve: u8) -> String {
    format!(
        "destinations:\n  - name: salesforce\n    kind: salesforce\n    segments: all\n    credentials: {{private_key: /t/sf-key}}\n    \
         mapping:\n      login_url: \"{url}\"\n      client_id: {client_id}\n      username: {USERNAME}\n      \
         external_id_field: Kairos_Key__c\n      field: Kairos_Segments__c\n      checkboxes: {{sales-ready: Kairos_Sales_Ready__c}}\n      \
         reserve_percent: {reserve}\n"
    )
}

fn org(faults: Faults, clock: Arc<ManualClock>) -> Salesforce {
    Salesforce::new(&KEY, &SEGMENTS, &["Kairos_Sales_Ready__c"], faults, clock)
}

async fn start(sf: Salesforce, client_id: &str, reserve: u8) -> (Arc<Salesforce>, Destinations) {
    let sf = Arc::new(sf);
    let url = sf.serve().await;
    let pem = KEY.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let clock: Arc<ManualClock> = sf.clock.clone();
    let destinations = destinations_on(&file(&url, client_id, reserve), &[("/t/sf-key", &pem)], clock).await;
    (sf, destinations)
}

fn entered(contact: &str, version: u64) -> kairos_event::Transition {
    transition(
        contact,
        "sales-ready",
        Change::Entered,
        version,
        &["sales-ready".to_string()],
    )
}

fn reason(report: &harness::Report, i: usize) -> String {
    report.letters[i]
        .1
        .iter()
        .find(|(k, _)| k == "kairos-reason")
        .unwrap()
        .1
        .clone()
}

#[tokio::test]
async fn storm_every_final_membership_written_once_in_effect() {
    let clock = clock();
    let mut sf = org(Faults::new(13, 0.30, 0.03), clock.clone());
    sf.api_max = 60; // with the 20% reserve, deliveries pause after 48 calls an hour
    let (sf, destinations) = start(sf, CLIENT_ID, 20).await;
    let work = Workload::new(2_500, 4, 17);
    for contact in work.versions.keys() {
        sf.add(contact, &["003xx"]);
    }
    let ledger = MemoryLedger::default();
    let report = harness::run(&destinations, &work.transitions, &clock, &ledger).await;
    let c = &sf.counters;
    crate::print(
        "salesforce",
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
    assert_eq!(sf.segments(), work.expected(&SEGMENTS));
    let regressions = work.regressions(&sf.history.lock().unwrap(), &SEGMENTS);
    assert!(regressions.is_empty(), "{regressions:?}");
    assert_eq!(
        c.violations(),
        Vec::<String>::new(),
        "a call after REQUEST_LIMIT_EXCEEDED"
    );
    assert!(
        report.virtual_secs >= 3600,
        "the reserve paused deliveries at least once"
    );
}

#[tokio::test]
async fn the_jwt_is_accepted_and_an_expired_session_is_renewed_once() {
    let clock = clock();
    let (sf, destinations) = start(org(Faults::none(), clock.clone()), CLIENT_ID, 20).await;
    sf.add("ada@example.com", &["003A"]);
    let ledger = MemoryLedger::default();
    harness::run(&destinations, &[entered("ada@example.com", 1)], &clock, &ledger).await;
    sf.expire_sessions();
    let exited = transition("ada@example.com", "sales-ready", Change::Exited, 2, &[]);
    let report = harness::run(&destinations, &[exited], &clock, &ledger).await;
    assert_eq!((report.invocations, report.dead_letters), (1, 0));
    assert_eq!(
        sf.tokens_issued.load(Ordering::SeqCst),
        2,
        "one token, then one more after the 401"
    );
    assert_eq!(sf.history.lock().unwrap()["ada@example.com"], ["sales-ready", ""]);
}

#[tokio::test]
async fn each_record_result_decides_its_own_outcome() {
    let clock = clock();
    let (sf, destinations) = start(org(Faults::none(), clock.clone()), CLIENT_ID, 20).await;
    sf.add("ada@example.com", &["003A"]);
    sf.add("dup@example.com", &["003B", "003C"]);
    let batch = [
        entered("ada@example.com", 1),
        entered("dup@example.com", 1),
        entered("new@example.com", 1),
    ];
    let report = harness::run(&destinations, &batch, &clock, &MemoryLedger::default()).await;
    assert_eq!(
        (report.invocations, report.dead_letters),
        (1, 1),
        "written, dead-lettered, skipped"
    );
    let why = reason(&report, 0);
    assert!(
        why.contains("DUPLICATE_EXTERNAL_ID") && why.contains("003B") && why.contains("003C"),
        "{why}"
    );
    assert_eq!(
        sf.segments().keys().collect::<Vec<_>>(),
        ["ada@example.com"],
        "the contact not in the org is skipped"
    );
}

#[tokio::test]
async fn a_request_limit_answer_stops_calls_until_the_window_allows() {
    let clock = clock();
    let mut sf = org(Faults::none(), clock.clone());
    sf.api_max = 1;
    let (sf, destinations) = start(sf, CLIENT_ID, 0).await;
    sf.add("ada@example.com", &["003A"]);
    sf.add("bob@example.com", &["003B"]);
    let start = clock.now_ms();
    // Another integration spent the org's requests: the first call is refused.
    sf.spend(1);
    let ledger = MemoryLedger::default();
    harness::run(&destinations, &[entered("ada@example.com", 1)], &clock, &ledger).await;
    harness::run(&destinations, &[entered("bob@example.com", 1)], &clock, &ledger).await;
    assert_eq!(
        sf.counters.refused.load(Ordering::SeqCst),
        1,
        "one 403 REQUEST_LIMIT_EXCEEDED"
    );
    assert_eq!(
        sf.counters.violations(),
        Vec::<String>::new(),
        "no call until the window allowed"
    );
    assert!(clock.now_ms() >= start + WINDOW_MS);
    assert_eq!(sf.segments().len(), 2, "both written once the window allowed");
}

#[tokio::test]
async fn the_reserve_is_left_to_the_orgs_other_integrations() {
    let clock = clock();
    let mut sf = org(Faults::none(), clock.clone());
    sf.api_max = 4;
    let (sf, destinations) = start(sf, CLIENT_ID, 50).await;
    let ledger = MemoryLedger::default();
    for (i, contact) in ["a@x.test", "b@x.test", "c@x.test"].iter().enumerate() {
        sf.add(contact, &["003"]);
        let start = clock.now_ms();
        harness::run(&destinations, &[entered(contact, 1)], &clock, &ledger).await;
        // Two calls fit in 50% of 4; the third waits for the next window.
        assert_eq!(clock.now_ms() > start, i == 2, "call {i}");
    }
    assert_eq!(sf.segments().len(), 3);
    assert_eq!(
        sf.counters.refused.load(Ordering::SeqCst),
        0,
        "never refused: the reserve was kept"
    );
}

#[tokio::test]
async fn a_refused_token_request_is_dead_lettered_with_salesforces_reason() {
    let clock = clock();
    let (sf, destinations) = start(org(Faults::none(), clock.clone()), "3MVG9wrong", 20).await;
    sf.add("ada@example.com", &["003A"]);
    let report = harness::run(
        &destinations,
        &[entered("ada@example.com", 1)],
        &clock,
        &MemoryLedger::default(),
    )
    .await;
    assert_eq!(report.dead_letters, 1);
    let why = reason(&report, 0);
    assert!(why.contains("invalid_client_id"), "{why}");
}
