//! The soak (issue 22): the rules bench's seeded workload pushed through the
//! real ingest → evaluate → write-back handlers and the sweep, on memory
//! adapters wrapped in faults (`support::faults`) and simulated SQS queues
//! (`support::sim`), then checked exactly:
//!
//! - every contact's memberships equal `kairos replay`'s over the same
//!   deliveries (the same engine step, `kairos::replay::replay`);
//! - every destination's final state for every contact equals them;
//! - no older version is ever written over a newer one (nothing doubled in effect);
//! - the dead-letter queues hold exactly the injected permanent errors.
//!
//! It prints events/s on one core, the faults by kind, retries, dead letters,
//! mismatches and the cost per million events. Sized by `KAIROS_SOAK_CONTACTS`
//! (default 600: about 10,000 events, a normal test); `make soak` runs
//! 100,000 contacts (about a million events) in release.

mod support;

#[path = "../shared/rules/benches/throughput/workload.rs"]
#[allow(dead_code)]
mod workload;

#[path = "soak/arrivals.rs"]
mod arrivals;
#[path = "soak/check.rs"]
mod check;
#[path = "soak/cost.rs"]
mod cost;
#[path = "soak/pipeline.rs"]
mod pipeline;
#[path = "soak/report.rs"]
mod report;
#[path = "soak/wire.rs"]
mod wire;

use pipeline::Deployment;
use support::faults::{Faults, Rates};

/// Events per `POST /v1/events` request.
const REQUEST_EVENTS: usize = 10;
/// Requests between two runs of the queues' pollers.
const TICK_REQUESTS: usize = 10;
/// The pollers run at least this often in simulated time (an hour), as
/// Lambda's poller does whatever the traffic.
const TICK_SECS: i64 = 3600;
/// Time between sweep runs (simulated).
const SWEEP_EVERY_SECS: i64 = 3600;
/// A malformed message put on the events queue every this many requests.
const MALFORMED_EVERY: usize = 2000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_pipeline_under_faults_ends_exactly_where_replay_does() {
    let contacts = env_usize("KAIROS_SOAK_CONTACTS", 600).max(1);
    let seed = env_usize("KAIROS_SOAK_SEED", 7) as u64;
    memory_soak(contacts, seed, true);
}

/// Sparse traffic (40 contacts, about 800 events over 90 days): a lone
/// event must be evaluated as simulated time passes, not held until enough
/// requests arrive (it would wait past the dedupe horizon and be refused as
/// stale, where `kairos replay` applies it).
#[test]
fn sparse_traffic_ends_exactly_where_replay_does() {
    memory_soak(40, 7, false);
}

/// Runs the memory soak over `contacts` contacts and checks it, printing the figures if `print`.
fn memory_soak(contacts: usize, seed: u64, print: bool) {
    let traffic = arrivals::traffic(contacts, seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let (deployment, run) = runtime.block_on(soak(&traffic, seed));
    let end = run.end;
    let findings = runtime.block_on(check::check(&deployment, &traffic, &run, end));
    if print {
        report::print(&deployment, &traffic, &run, &findings);
    }
    findings.assert_clean();
}

/// The second run, smaller, through moto with the real SDK behind the
/// wire-level fault proxy (`soak/wire.rs`), checked the same way. Sized by
/// `KAIROS_WIRE_CONTACTS` (default 150: about 1,200 events, half a minute
/// against moto; `make soak` runs 760, over 10,000 events).
#[test]
fn through_the_sdk_the_fault_proxy_and_moto_the_pipeline_ends_exactly_where_replay_does() {
    let contacts = env_usize("KAIROS_WIRE_CONTACTS", 150).max(1);
    let seed = env_usize("KAIROS_SOAK_SEED", 7) as u64;
    let traffic = arrivals::traffic(contacts, seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut deployment = wire::Wire::start(seed).await;
        let run = deployment.run(&traffic).await;
        let findings = deployment.check(&traffic, &run).await;
        wire::print(&deployment, &traffic, &run, &findings);
        assert!(
            run.wire.faults_total() > 0 && run.sdk.attempts > run.sdk.operations_total(),
            "faults were injected on the wire and the SDK retried them"
        );
        findings.assert_clean();
    });
}

/// What the driver saw.
pub struct Run {
    /// The time the pipeline was quiesced and compared at.
    pub end: i64,
    /// Wall time of the faulty phase (ingest to drained queues).
    pub elapsed: std::time::Duration,
    /// Bodies of the malformed messages put on the events queue.
    pub malformed: Vec<String>,
    /// Faults injected, by kind, before the quiet phase.
    pub faults: std::collections::BTreeMap<support::faults::Kind, u64>,
    /// The events dead-letter queue after the faulty phase.
    pub events_dead: Vec<support::sim::Stored>,
    /// The write-back dead-letter queue after the faulty phase.
    pub writeback_dead: Vec<support::sim::Stored>,
}

/// Pushes the traffic through under faults, drains the queues, then
/// redrives the write-back dead letters and quiesces without faults at the end time.
async fn soak(traffic: &arrivals::Traffic, seed: u64) -> (Deployment, Run) {
    let mut deployment = Deployment::new(Faults::new(seed, Rates::SOAK));
    let started = std::time::Instant::now();
    let first = traffic.arrivals.first().map_or(0, |a| a.at);
    let (mut now, mut next_sweep) = (first, first + SWEEP_EVERY_SECS);
    let mut malformed = Vec::new();
    let mut polled = first;
    for (k, request) in traffic.arrivals.chunks(REQUEST_EVENTS).enumerate() {
        // The pollers also run as simulated time passes, not only every few
        // requests: in sparse traffic a lone event would otherwise wait for
        // the next requests, past the dedupe horizon, and be refused as stale.
        let next = request.last().map_or(now, |a| a.at);
        if next > polled + TICK_SECS {
            deployment.evaluate(now).await;
            deployment.write_back(now).await;
            polled = now;
        }
        now = now.max(next);
        let events: Vec<kairos_event::Event> = request.iter().map(|a| a.event.clone()).collect();
        now = deployment.ingest(&events, now).await;
        if k % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
            let body = format!(r#"{{"id":"malformed-{k}","contact":"x@x.test","type":"email.clicked"}}"#);
            deployment.events.push(body.clone(), Vec::new());
            malformed.push(body);
        }
        if (k + 1) % TICK_REQUESTS == 0 {
            deployment.evaluate(now).await;
            deployment.write_back(now).await;
            polled = now;
        }
        if now >= next_sweep {
            for _ in 0..3 {
                if !deployment.sweep(now).await {
                    break;
                }
            }
            next_sweep = now + SWEEP_EVERY_SECS;
        }
    }
    // Retries come back after their visibility timeouts.
    loop {
        deployment.evaluate(now).await;
        deployment.write_back(now).await;
        let next = [deployment.events.next_visible(), deployment.writeback.next_visible()];
        match next.into_iter().flatten().min() {
            Some(t) => now = now.max(t),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    let faults = deployment.faults.counts();
    let (events_dead, writeback_dead) = (deployment.events.take_dead(), deployment.writeback.take_dead());
    // An operator's redrive of the write-back dead letters, then the sweep at
    // the end time with the faults over, until nothing is due or queued.
    deployment.faults = Faults::new(seed, Rates::NONE);
    for letter in &writeback_dead {
        let only = letter
            .attributes
            .iter()
            .filter(|(name, _)| name == kairos_writeback::DESTINATION_ATTRIBUTE);
        deployment.writeback.push(letter.body.clone(), only.cloned().collect());
    }
    let end = now.max(traffic.arrivals.last().map_or(0, |a| a.at)) + 86_400;
    loop {
        let more = deployment.sweep(end).await;
        deployment.evaluate(end).await;
        deployment.write_back(end).await;
        if !more && deployment.events.len() == 0 && deployment.writeback.len() == 0 {
            break;
        }
    }
    let run = Run {
        end,
        elapsed,
        malformed,
        faults,
        events_dead,
        writeback_dead,
    };
    (deployment, run)
}
