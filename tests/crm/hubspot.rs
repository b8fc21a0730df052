//! HubSpot: batch upserts, per-record errors, lists by record id, both 429
//! policies, and a storm.

use crate::harness::{self, transition, Workload, SEGMENTS};
use crate::support::crm::hubspot::{HubSpot, TOKEN};
use crate::support::crm::{clock, Faults};
use crate::support::writeback::{destinations_on, Destinations};
use kairos_event::Change;
use kairos_store::MemoryLedger;
use kairos_writeback::{Clock, ManualClock};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn file(url: &str) -> String {
    format!(
        "destinations:\n  - name: hubspot\n    kind: hubspot\n    segments: all\n    credentials: {{token: /t/hubspot}}\n    \
         mapping:\n      base_url: \"{url}\"\n      booleans: {{sales-ready: kairos_sales_ready}}\n      lists: {{pricing-intent: \"42\"}}\n"
    )
}

async fn start(hs: HubSpot, token: &str) -> (Arc<HubSpot>, Destinations) {
    let hs = Arc::new(hs);
    let url = hs.serve().await;
    let clock: Arc<ManualClock> = hs.clock.clone();
    let destinations = destinations_on(&file(&url), &[("/t/hubspot", token)], clock).await;
    (hs, destinations)
}

fn account(faults: Faults, clock: Arc<ManualClock>) -> HubSpot {
    HubSpot::new(&SEGMENTS, &["kairos_sales_ready"], &["42"], faults, clock)
}

fn entered(contact: &str, segment: &str, version: u64, members: &[&str]) -> kairos_event::Transition {
    let members: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    transition(contact, segment, Change::Entered, version, &members)
}

#[tokio::test]
async fn storm_every_final_membership_written_once_in_effect() {
    let clock = clock();
    let mut hs = account(Faults::new(7, 0.30, 0.03), clock.clone());
    hs.daily_limit = 200;
    let (hs, destinations) = start(hs, TOKEN).await;
    let work = Workload::new(2_500, 4, 11);
    let ledger = MemoryLedger::default();
    let report = harness::run(&destinations, &work.transitions, &clock, &ledger).await;
    let c = &hs.counters;
    crate::print(
        "hubspot",
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
    assert_eq!(hs.segments(), work.expected(&SEGMENTS));
    let regressions = work.regressions(&hs.history.lock().unwrap(), &SEGMENTS);
    assert!(regressions.is_empty(), "{regressions:?}");
    assert_eq!(
        c.violations(),
        Vec::<String>::new(),
        "a call after DAILY before midnight"
    );
    assert!(
        report.virtual_secs > 24 * 3600,
        "the daily limit was reached and waited out"
    );
    // The list holds exactly the final members of its segment.
    let ids: BTreeMap<String, String> = hs
        .contacts
        .lock()
        .unwrap()
        .iter()
        .map(|(e, (id, _))| (id.clone(), e.clone()))
        .collect();
    let listed: BTreeSet<&String> = hs.lists.lock().unwrap()["42"].iter().map(|id| &ids[id]).collect();
    let final_members = work
        .versions
        .iter()
        .filter(|(_, v)| v.last().unwrap().contains(&"pricing-intent".to_string()));
    let expected: BTreeSet<&String> = final_members.map(|(c, _)| c).collect();
    let wrong: Vec<_> = listed.symmetric_difference(&expected).collect();
    assert!(
        wrong.is_empty(),
        "{} listed, {} expected; differ: {:?}",
        listed.len(),
        expected.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[tokio::test]
async fn a_batch_error_fails_only_its_record_with_hubspots_reason() {
    let clock = clock();
    let (hs, destinations) = start(account(Faults::none(), clock.clone()), TOKEN).await;
    let batch = [
        entered("ada@example.com", "sales-ready", 1, &["sales-ready"]),
        entered("ada@localhost", "sales-ready", 1, &["sales-ready"]),
        entered("anon:7f3c", "sales-ready", 1, &["sales-ready"]),
        entered("bob@example.com", "gone-quiet", 3, &["gone-quiet"]),
    ];
    let report = harness::run(&destinations, &batch, &clock, &MemoryLedger::default()).await;
    assert_eq!(report.invocations, 1);
    assert_eq!(report.dead_letters, 1);
    let attributes = &report.letters[0].1;
    assert!(attributes.contains(&("kairos-destination".into(), "hubspot".into())));
    let reason = &attributes.iter().find(|(k, _)| k == "kairos-reason").unwrap().1;
    assert_eq!(reason, "VALIDATION_ERROR: Email address ada@localhost is invalid");
    assert!(
        !hs.contacts.lock().unwrap().contains_key("anon:7f3c"),
        "an anonymous visitor is skipped"
    );
    let props = hs.contacts.lock().unwrap()["ada@example.com"].1.clone();
    assert_eq!(
        (props["kairos_segments"].as_str(), props["kairos_sales_ready"].as_str()),
        (Some("sales-ready"), Some("true"))
    );
    assert_eq!(hs.segments()["bob@example.com"], "gone-quiet");
}

#[tokio::test]
async fn a_daily_429_stops_every_call_until_the_accounts_midnight() {
    let clock = clock();
    let mut hs = account(Faults::none(), clock.clone());
    hs.daily_limit = 2; // the account lookup and the upsert; the list call is refused
    let (hs, destinations) = start(hs, TOKEN).await;
    let start = clock.now_ms();
    let t = [entered("ada@example.com", "gone-quiet", 1, &["gone-quiet"])];
    let report = harness::run(&destinations, &t, &clock, &MemoryLedger::default()).await;
    assert_eq!(hs.counters.violations(), Vec::<String>::new());
    assert_eq!(
        hs.counters.calls(),
        5,
        "details, upsert, the DAILY answer; after midnight upsert and list call"
    );
    // 10:00Z is 05:00 in the account's UTC-5: midnight there is 19 hours later.
    let midnight = kairos_writeback::next_midnight(start, -5 * 3_600_000);
    assert_eq!(midnight - start, 19 * 3_600_000);
    assert!(clock.now_ms() >= midnight);
    assert_eq!(
        report.most_receives, 3,
        "put off 12 h (SQS's longest), then 7 h, then written"
    );
    assert_eq!(hs.segments()["ada@example.com"], "gone-quiet");
}

#[tokio::test]
async fn the_rate_limit_headers_slow_calls_down_before_a_429() {
    let clock = clock();
    let mut hs = account(Faults::none(), clock.clone());
    hs.per_window = 2; // after the account lookup and the upsert, 0 remain in the 10 s window
    let (hs, destinations) = start(hs, TOKEN).await;
    let t = [entered("ada@example.com", "gone-quiet", 1, &["gone-quiet"])];
    let report = harness::run(&destinations, &t, &clock, &MemoryLedger::default()).await;
    assert_eq!(
        (report.invocations, hs.counters.too_many.load(Ordering::SeqCst)),
        (1, 0)
    );
    assert!(report.virtual_secs >= 10, "waited the window out");
}

#[tokio::test]
async fn list_membership_follows_the_segment_by_record_id() {
    let clock = clock();
    let (hs, destinations) = start(account(Faults::none(), clock.clone()), TOKEN).await;
    let ledger = MemoryLedger::default();
    let enter = [entered("ada@example.com", "pricing-intent", 1, &["pricing-intent"])];
    harness::run(&destinations, &enter, &clock, &ledger).await;
    let id = hs.contacts.lock().unwrap()["ada@example.com"].0.clone();
    assert!(hs.lists.lock().unwrap()["42"].contains(&id));
    let exit = [transition("ada@example.com", "pricing-intent", Change::Exited, 2, &[])];
    harness::run(&destinations, &exit, &clock, &ledger).await;
    assert!(hs.lists.lock().unwrap()["42"].is_empty());
    assert_eq!(hs.segments()["ada@example.com"], "", "the property is cleared");
}

#[tokio::test]
async fn a_refused_token_is_dead_lettered_with_the_reason() {
    let clock = clock();
    let (_, destinations) = start(account(Faults::none(), clock.clone()), "pat-na1-revoked").await;
    let t = [entered("ada@example.com", "gone-quiet", 1, &["gone-quiet"])];
    let report = harness::run(&destinations, &t, &clock, &MemoryLedger::default()).await;
    assert_eq!(
        (report.dead_letters, report.invocations),
        (1, 1),
        "at once, not after retries"
    );
    let reason = &report.letters[0]
        .1
        .iter()
        .find(|(k, _)| k == "kairos-reason")
        .unwrap()
        .1;
    assert!(
        reason.starts_with("HTTP 401") && reason.contains("INVALID_AUTHENTICATION"),
        "{reason}"
    );
}
