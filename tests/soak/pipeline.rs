//! The deployment the soak runs: the real ingest, evaluate, write-back and
//! sweep handlers, as Lambda invokes them, over memory adapters metered as
//! DynamoDB bills them and wrapped in faults, with simulated SQS queues
//! configured as `infra/template.yaml` configures them, and two CRMs in memory.

use crate::cost::{Lambda, Metered};
use crate::support::faults::{Faults, Faulty, Invocation, Kind};
use crate::support::sim::SimQueue;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_event::Event;
use kairos_ingest::{Ingest, IngestConfig};
use kairos_rules::RuleSet;
use kairos_store::{MemoryClaims, MemoryContacts, MemoryLedger};
use kairos_writeback::file::Segments;
use kairos_writeback::{Destination, Gate, ManualClock, Outcome, Policy, Write, Writeback};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every function's memory (the template's `Globals`).
pub const MEMORY_MB: u64 = 256;
/// The events queue: visibility timeout and `maxReceiveCount` (the template's).
const EVENTS_QUEUE: (i64, u32) = (180, 5);
/// The write-back queue: visibility timeout and `maxReceiveCount` (the template's).
const WRITEBACK_QUEUE: (i64, u32) = (360, 24);
/// The event source mappings' batch sizes (the template's).
const EVALUATE_BATCH: usize = 10;
const WRITEBACK_BATCH: usize = 100;
const API_KEY: &str = "soak-api-key";

/// A CRM in memory: each contact's membership as last written, and what
/// would be wrong in effect (an older version written over a newer one).
pub struct Crm {
    name: String,
    segments: Segments,
    gate: Gate,
    policy: Policy,
    /// Per contact: (version, segments) last written.
    pub state: Mutex<HashMap<String, (u64, Vec<String>)>>,
    /// Writes applied.
    pub writes: Mutex<u64>,
    /// Writes of a version already written (a lost answer retried: no change in effect).
    pub repeats: Mutex<u64>,
    /// Writes of a version older than the one written before (must be none).
    pub stale: Mutex<u64>,
}

impl Crm {
    /// A CRM named `name` receiving `segments`.
    pub fn new(name: &str, segments: Segments) -> Crm {
        Crm {
            name: name.into(),
            segments,
            gate: Gate::default(),
            policy: Policy::default(),
            state: Mutex::default(),
            writes: Mutex::default(),
            repeats: Mutex::default(),
            stale: Mutex::default(),
        }
    }
}

impl Destination for Crm {
    fn name(&self) -> &str {
        &self.name
    }

    fn segments(&self) -> &Segments {
        &self.segments
    }

    fn max_batch(&self) -> usize {
        100
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        let mut state = self.state.lock().unwrap();
        for w in writes {
            match state.get(&w.contact) {
                Some((v, _)) if *v > w.version => *self.stale.lock().unwrap() += 1,
                Some((v, _)) if *v == w.version => *self.repeats.lock().unwrap() += 1,
                _ => {}
            }
            *self.writes.lock().unwrap() += 1;
            state.insert(w.contact.clone(), (w.version, w.members.clone()));
        }
        writes.iter().map(|_| Outcome::Written).collect()
    }
}

/// What the run did, beyond the faults' own counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// HTTP API requests sent to ingest (retries included).
    pub api_requests: u64,
    /// Requests the client sent again (a 503, or no answer).
    pub client_retries: u64,
    /// Each function's invocations and time.
    pub ingest: Lambda,
    /// The evaluate function's.
    pub evaluate: Lambda,
    /// The write-back function's.
    pub writeback: Lambda,
    /// The sweep function's.
    pub sweep: Lambda,
    /// Invocations that died (a crash injected).
    pub crashed: u64,
    /// Messages an evaluate invocation reported failed (retried by SQS).
    pub evaluate_retries: u64,
    /// Messages a write-back invocation left for a retry.
    pub writeback_retries: u64,
}

/// The deployment.
pub struct Deployment {
    /// The rules in force (the embedded example rules).
    pub rules: RuleSet,
    /// The contacts table's records.
    pub contacts: Metered<MemoryContacts>,
    /// The table's delivery ledger items.
    pub ledger: Metered<MemoryLedger>,
    claims: Metered<MemoryClaims>,
    /// The events queue (and its dead-letter queue).
    pub events: SimQueue,
    /// The write-back queue (and its dead-letter queue).
    pub writeback: SimQueue,
    /// The destinations.
    pub crms: Vec<Crm>,
    /// Where faults are drawn.
    pub faults: Faults,
    config: IngestConfig,
    request: ApiGatewayV2httpRequest,
    /// What the run did.
    pub counters: Mutex<Counters>,
    /// Permanent destination failures injected by invocations that finished:
    /// each must be dead-lettered. `(destination, contact, version)`.
    pub permanent: Mutex<Vec<(String, String, u64)>>,
    /// Those injected by invocations that then crashed: dead-lettered or not.
    pub permanent_crashed: Mutex<Vec<(String, String, u64)>>,
}

/// Unix seconds as a time.
pub fn time(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).expect("in range")
}

impl Deployment {
    /// A fresh deployment with these faults.
    pub fn new(faults: Faults) -> Deployment {
        let mut request = crate::support::apigw_post("/v1/events", "");
        request
            .headers
            .insert("x-api-key", API_KEY.parse().expect("a header value"));
        Deployment {
            rules: crate::support::default_rules(),
            contacts: Metered::over(MemoryContacts::keeping_previous()),
            ledger: Metered::default(),
            claims: Metered::default(),
            events: SimQueue::new(EVENTS_QUEUE.0, EVENTS_QUEUE.1),
            writeback: SimQueue::new(WRITEBACK_QUEUE.0, WRITEBACK_QUEUE.1),
            crms: vec![
                Crm::new("crm", Segments::All),
                Crm::new(
                    "sales",
                    Segments::Only(vec![
                        "pricing-intent".into(),
                        "sales-ready".into(),
                        "engaged-reader".into(),
                    ]),
                ),
            ],
            faults,
            config: IngestConfig {
                api_keys: vec![API_KEY.into()],
                ..IngestConfig::default()
            },
            request,
            counters: Mutex::default(),
            permanent: Mutex::default(),
            permanent_crashed: Mutex::default(),
        }
    }

    /// Sends `events` to `POST /v1/events` as one batch request at `now`,
    /// again (a second later) until it is accepted, as a client retries a 503
    /// or a request left without an answer. Returns when it was accepted.
    pub async fn ingest(&self, events: &[Event], mut now: i64) -> i64 {
        let items: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_str(&e.to_json()).expect("an event's JSON"))
            .collect();
        let body = serde_json::json!({ "batch": items }).to_string();
        loop {
            let mut request = self.request.clone();
            request.body = Some(body.clone());
            let invocation = Invocation::default();
            let (queue, claims) = (
                Faulty::new(&self.events, &self.faults, &invocation),
                Faulty::new(&self.claims, &self.faults, &invocation),
            );
            let ingest = Ingest {
                config: &self.config,
                queue: &queue,
                claims: &claims,
            };
            let started = Instant::now();
            let answer = invocation.run(kairos_ingest::handle(request, &ingest, now)).await;
            let mut counters = self.counters.lock().unwrap();
            counters.ingest.add(started.elapsed());
            counters.api_requests += 1;
            match answer.map(|r| r.status_code) {
                Some(202) => return now,
                Some(503) => {}
                None => counters.crashed += 1,
                Some(other) => panic!("ingest answered {other} to a valid batch"),
            }
            counters.client_retries += 1;
            now += 1;
        }
    }

    /// Evaluates what the events queue holds visible at `now`, batch by batch.
    pub async fn evaluate(&self, now: i64) {
        loop {
            let batch = self.events.receive(now, EVALUATE_BATCH, &self.faults);
            if batch.is_empty() {
                return;
            }
            let failed = match self
                .faults
                .roll(Kind::ProcessedTwice, self.faults.rates().processed_twice)
            {
                true => {
                    let (a, b) = (Invocation::interleaved(), Invocation::interleaved());
                    let (_, second) = futures_util::join!(
                        self.evaluate_once(&a, batch.clone(), now),
                        self.evaluate_once(&b, batch.clone(), now)
                    );
                    second
                }
                false => self.evaluate_once(&Invocation::default(), batch.clone(), now).await,
            };
            self.events.settle(now, &batch, failed.as_deref(), &self.faults);
        }
    }

    /// One evaluate invocation: the ids it reported failed, `None` if it crashed.
    async fn evaluate_once(&self, invocation: &Invocation, batch: Vec<SqsMessage>, now: i64) -> Option<Vec<String>> {
        let (store, queue) = (
            Faulty::new(&self.contacts, &self.faults, invocation),
            Faulty::new(&self.writeback, &self.faults, invocation),
        );
        let evaluator = Evaluator {
            hot_seen_secs: hot_seen_secs(),
            ..Evaluator::new(&self.rules, &store, &queue)
        };
        let started = Instant::now();
        let answer = invocation
            .run(kairos_evaluate::handle(lambda_event(batch), &evaluator, time(now)))
            .await;
        let failed = answer.map(|r| crate::support::failed(&r));
        let mut counters = self.counters.lock().unwrap();
        counters.evaluate.add(started.elapsed());
        match &failed {
            Some(ids) => counters.evaluate_retries += ids.len() as u64,
            None => counters.crashed += 1,
        }
        failed
    }

    /// Writes back what the write-back queue holds visible at `now`, batch by batch.
    pub async fn write_back(&self, now: i64) {
        loop {
            let batch = self.writeback.receive(now, WRITEBACK_BATCH, &self.faults);
            if batch.is_empty() {
                return;
            }
            let failed = match self
                .faults
                .roll(Kind::ProcessedTwice, self.faults.rates().processed_twice)
            {
                true => {
                    let (a, b) = (Invocation::interleaved(), Invocation::interleaved());
                    let (_, second) = futures_util::join!(
                        self.write_back_once(&a, batch.clone(), now),
                        self.write_back_once(&b, batch.clone(), now)
                    );
                    second
                }
                false => self.write_back_once(&Invocation::default(), batch.clone(), now).await,
            };
            self.writeback.settle(now, &batch, failed.as_deref(), &self.faults);
        }
    }

    /// One write-back invocation: the ids it left for a retry, `None` if it crashed.
    async fn write_back_once(&self, invocation: &Invocation, batch: Vec<SqsMessage>, now: i64) -> Option<Vec<String>> {
        let destinations: Vec<Faulty<Crm>> = self
            .crms
            .iter()
            .map(|crm| Faulty::new(crm, &self.faults, invocation))
            .collect();
        let (ledger, contacts) = (
            Faulty::new(&self.ledger, &self.faults, invocation),
            Faulty::new(&self.contacts, &self.faults, invocation),
        );
        let clock = ManualClock::at(now as u64 * 1000);
        let wb = Writeback {
            destinations: &destinations,
            ledger: &ledger,
            contacts: &contacts,
            dead_letters: &self.writeback,
            redelivery: &self.writeback,
            clock: &clock,
        };
        let deadline = now as u64 * 1000 + 60_000;
        let started = Instant::now();
        let answer = invocation
            .run(kairos_writeback::handle(lambda_event(batch), deadline, &wb))
            .await;
        let failed = answer.map(|r| crate::support::failed(&r));
        let permanent = invocation.take_permanent();
        match failed.is_some() {
            true => self.permanent.lock().unwrap().extend(permanent),
            false => self.permanent_crashed.lock().unwrap().extend(permanent),
        }
        let mut counters = self.counters.lock().unwrap();
        counters.writeback.add(started.elapsed());
        match &failed {
            Some(ids) => counters.writeback_retries += ids.len() as u64,
            None => counters.crashed += 1,
        }
        failed
    }

    /// One sweep run at `now`; whether it left contacts for the next run.
    pub async fn sweep(&self, now: i64) -> bool {
        let invocation = Invocation::default();
        let (index, queue) = (
            Faulty::new(&self.contacts, &self.faults, &invocation),
            Faulty::new(&self.events, &self.faults, &invocation),
        );
        let sweeper = kairos_sweep::Sweeper::new(&index, &queue);
        let stop_at = Instant::now() + Duration::from_secs(45);
        let event = crate::support::sweep::schedule(time(now));
        let started = Instant::now();
        let report = invocation
            .run(kairos_sweep::handle(event, &sweeper, time(now), stop_at))
            .await;
        let mut counters = self.counters.lock().unwrap();
        counters.sweep.add(started.elapsed());
        match report {
            Some(Ok(report)) => report.more,
            Some(Err(_)) => true,
            None => {
                counters.crashed += 1;
                true
            }
        }
    }
}

/// An SQS event carrying `records`.
fn lambda_event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// How long the records keep event ids before they move to cold days
/// (`KAIROS_SOAK_HOT_HOURS`; the evaluator's default unless set).
fn hot_seen_secs() -> i64 {
    std::env::var("KAIROS_SOAK_HOT_HOURS")
        .ok()
        .and_then(|h| h.parse::<i64>().ok())
        .map_or(kairos_state::HOT_SEEN_SECS, |h| h * 3600)
}
