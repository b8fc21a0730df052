//! The soak's second run, on the wire (issue 22 item 2): the same traffic
//! through the real ingest, evaluate and write-back handlers and the sweep,
//! with the real AWS SDK and the DynamoDB and SQS adapters talking to moto
//! server through [`FaultProxy`], which answers a share of requests with the
//! services' throttling errors and drops a share of answers after forwarding.
//! The SDK clients are built as the functions build them
//! ([`kairos_store::sdk`]: standard mode, 3 attempts, attempt and operation
//! timeouts); what the SDK cannot absorb reaches the adapters as a retryable
//! error, the handler reports the message failed and SQS redelivers it.
//! The CRMs are the memory soak's, with permanent errors injected
//! ([`Rates::permanent`]) so the dead-letter check means something.
//!
//! Lambda's SQS poller is played by a direct client (no faults): batches of
//! 10 (events) and 100 (write-back), messages not reported failed deleted,
//! failed ones made visible again at once (the visibility timeout, shortened),
//! moto moving a message to the dead-letter queue after `maxReceiveCount`.

use crate::arrivals::{Arrival, Traffic};
use crate::check::{self, Findings, Observed};
use crate::pipeline::{time, Crm};
use crate::support::faults::{Faults, Faulty, Invocation, Rates};
use crate::support::proxy::{deployed_config, CallTally, FaultProxy, SdkCalls, Tally, WireRates};
use crate::support::sim::Stored;
use crate::support::{sqs_event, Stack};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message};
use kairos_evaluate::Evaluator;
use kairos_ingest::{Ingest, IngestConfig};
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, DynamoClaims, DynamoContacts, DynamoLedger, SqsQueue};
use kairos_writeback::file::Segments;
use kairos_writeback::{ManualClock, Writeback};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per DynamoDB or SQS request: throttled 1%, answer dropped 0.5%.
pub const WIRE_RATES: WireRates = WireRates {
    throttle: 0.01,
    drop: 0.005,
};
const NO_WIRE_FAULTS: WireRates = WireRates {
    throttle: 0.0,
    drop: 0.0,
};
/// Permanent CRM errors, per write (dead-lettered by the write-back function).
const PERMANENT: Rates = Rates {
    permanent: 0.002,
    ..Rates::NONE
};
const API_KEY: &str = "wire-api-key";
/// Events per `POST /v1/events` request.
const REQUEST_EVENTS: usize = 10;
/// Requests between two runs of the queues' pollers.
const TICK_REQUESTS: usize = 10;
/// Time between sweep runs (simulated).
const SWEEP_EVERY_SECS: i64 = 24 * 3600;
/// A malformed message put on the events queue every this many requests.
const MALFORMED_EVERY: usize = 100;
/// The event source mappings' batch sizes (the template's).
const EVALUATE_BATCH: usize = 10;
const WRITEBACK_BATCH: usize = 100;
/// Batches one poller drains before it gives up (a message failing forever
/// reaches the dead-letter queue long before).
const MAX_BATCHES: usize = 100_000;

/// What the handlers did.
#[derive(Debug, Default)]
pub struct Counters {
    /// `POST /v1/events` requests (retries included).
    pub api_requests: u64,
    /// Requests the client sent again (a 503).
    pub client_retries: u64,
    /// Evaluate invocations.
    pub evaluate_invocations: u64,
    /// Messages an evaluate invocation reported failed (redelivered).
    pub evaluate_retries: u64,
    /// Of those, the injected malformed messages.
    pub evaluate_malformed: u64,
    /// Write-back invocations.
    pub writeback_invocations: u64,
    /// Messages a write-back invocation reported failed (redelivered).
    pub writeback_retries: u64,
    /// Sweep runs (and those that failed).
    pub sweeps: (u64, u64),
}

/// The deployment on moto, behind the fault proxy.
pub struct Wire {
    stack: Stack,
    /// The proxy between the adapters' SDK clients and moto.
    pub proxy: FaultProxy,
    /// The adapters' SDK clients' operations and attempts.
    pub calls: SdkCalls,
    rules: RuleSet,
    store: DynamoContacts,
    contacts: DynamoContacts,
    ledger: DynamoLedger,
    claims: DynamoClaims,
    events: SqsQueue,
    writeback: SqsQueue,
    writeback_dead: SqsQueue,
    /// The destinations.
    pub crms: Vec<Crm>,
    faults: Faults,
    config: IngestConfig,
    request: ApiGatewayV2httpRequest,
    /// What the handlers did.
    pub counters: Mutex<Counters>,
    /// Permanent CRM errors injected: `(destination, contact, version)`.
    pub permanent: Mutex<BTreeSet<(String, String, u64)>>,
}

/// What the driver saw.
pub struct WireRun {
    /// The time the pipeline was quiesced and compared at.
    pub end: i64,
    /// Wall time of the faulty phase.
    pub elapsed: Duration,
    /// What the proxy saw and injected in the faulty phase.
    pub wire: Tally,
    /// The SDK's operations and attempts in the faulty phase.
    pub sdk: CallTally,
    /// Malformed messages put on the events queue.
    pub malformed: Vec<String>,
    /// The dead-letter queues after the faulty phase.
    pub events_dead: Vec<Stored>,
    /// The write-back one.
    pub writeback_dead: Vec<Stored>,
}

impl Wire {
    /// moto with the template's resources, the proxy in front of it, and
    /// the functions' adapters over SDK clients pointed at the proxy.
    pub async fn start(seed: u64) -> Wire {
        let stack = Stack::start().await;
        let proxy = FaultProxy::start(&stack.moto.endpoint, seed, WIRE_RATES).await;
        let calls = SdkCalls::default();
        let aws = deployed_config(&proxy.endpoint).await;
        let (dynamodb, sqs) = (calls.dynamodb(&aws), calls.sqs(&aws));
        let table = stack.infra.table.clone();
        let store = DynamoContacts::new(dynamodb.clone(), &table)
            .with_audit(stack.audit_table(), kairos_store::DEFAULT_AUDIT_RETENTION_DAYS);
        let mut request = crate::support::apigw_post("/v1/events", "");
        request
            .headers
            .insert("x-api-key", API_KEY.parse().expect("a header value"));
        Wire {
            rules: crate::support::default_rules(),
            store,
            contacts: DynamoContacts::new(dynamodb.clone(), &table),
            ledger: DynamoLedger::new(dynamodb.clone(), &table),
            claims: DynamoClaims::new(dynamodb, &table),
            events: SqsQueue::new(sqs.clone(), stack.url("EventsQueue")),
            writeback: SqsQueue::new(sqs.clone(), stack.url("WritebackQueue")),
            writeback_dead: SqsQueue::new(sqs, stack.url("WritebackDeadLetterQueue")),
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
            faults: Faults::new(seed, PERMANENT),
            config: IngestConfig {
                api_keys: vec![API_KEY.into()],
                ..IngestConfig::default()
            },
            request,
            counters: Mutex::default(),
            permanent: Mutex::default(),
            stack,
            proxy,
            calls,
        }
    }

    /// Pushes the traffic through with the faults on, drains the queues,
    /// takes the dead letters; then, faults off, redrives the write-back
    /// dead letters (as `kairos dlq redrive` would) and sweeps at the end
    /// time until nothing is due or queued.
    pub async fn run(&mut self, traffic: &Traffic) -> WireRun {
        let started = Instant::now();
        let first = traffic.arrivals.first().map_or(0, |a| a.at);
        let (mut now, mut next_sweep) = (first, first + SWEEP_EVERY_SECS);
        let mut malformed = Vec::new();
        for (k, request) in traffic.arrivals.chunks(REQUEST_EVENTS).enumerate() {
            now = now.max(request.last().map_or(now, |a| a.at));
            now = self.ingest(request, now).await;
            if k % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
                let body = format!(r#"{{"id":"malformed-{k}","contact":"x@x.test","type":"email.clicked"}}"#);
                self.stack.send("EventsQueue", std::slice::from_ref(&body)).await;
                malformed.push(body);
            }
            if (k + 1) % TICK_REQUESTS == 0 {
                self.evaluate(now).await;
                self.write_back(now).await;
            }
            if now >= next_sweep {
                self.sweep(now).await;
                next_sweep = now + SWEEP_EVERY_SECS;
            }
        }
        while self.evaluate(now).await + self.write_back(now).await > 0 {}
        let elapsed = started.elapsed();
        let (wire, sdk) = (self.proxy.tally(), self.calls.tally());
        let events_dead = self.take_all("EventsDeadLetterQueue").await;
        let writeback_dead = self.take_all("WritebackDeadLetterQueue").await;

        self.proxy.set_rates(NO_WIRE_FAULTS);
        self.faults = Faults::new(0, Rates::NONE);
        for letter in &writeback_dead {
            self.redrive(letter).await;
        }
        let end = now.max(traffic.arrivals.last().map_or(0, |a| a.at)) + 86_400;
        for _ in 0..1000 {
            let more = self.sweep(end).await;
            let handled = self.evaluate(end).await + self.write_back(end).await;
            if !more && handled == 0 {
                return WireRun {
                    end,
                    elapsed,
                    wire,
                    sdk,
                    malformed,
                    events_dead,
                    writeback_dead,
                };
            }
        }
        panic!("the pipeline never quiesced at the end time: the sweep keeps finding contacts due");
    }

    /// One `POST /v1/events` batch at `now`, sent again (a second later)
    /// until accepted, as a client retries a 503. Returns when it was accepted.
    async fn ingest(&self, request: &[Arrival], mut now: i64) -> i64 {
        let items: Vec<serde_json::Value> = request
            .iter()
            .map(|a| serde_json::from_str(&a.event.to_json()).expect("an event's JSON"))
            .collect();
        let body = serde_json::json!({ "batch": items }).to_string();
        let ingest = Ingest {
            config: &self.config,
            queue: &self.events,
            claims: &self.claims,
        };
        for _ in 0..100 {
            let mut request = self.request.clone();
            request.body = Some(body.clone());
            let status = kairos_ingest::handle(request, &ingest, now).await.status_code;
            let mut counters = self.counters.lock().unwrap();
            counters.api_requests += 1;
            match status {
                202 => return now,
                503 => counters.client_retries += 1,
                other => panic!("ingest answered {other} to a valid batch"),
            }
            now += 1;
        }
        panic!("ingest refused a valid batch 100 times");
    }

    /// Evaluates what the events queue holds, batch by batch; messages handled.
    async fn evaluate(&self, now: i64) -> usize {
        let evaluator = Evaluator::new(&self.rules, &self.store, &self.writeback);
        let mut handled = 0;
        for _ in 0..MAX_BATCHES {
            let batch = self.poll("EventsQueue", EVALUATE_BATCH).await;
            if batch.is_empty() {
                return handled;
            }
            let response = kairos_evaluate::handle(sqs_event(&batch), &evaluator, time(now)).await;
            let failed = crate::support::failed(&response);
            let malformed = (batch.iter())
                .filter(|m| failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
                .filter(|m| m.body().is_some_and(|b| b.contains(r#""id":"malformed-"#)))
                .count();
            {
                let mut counters = self.counters.lock().unwrap();
                counters.evaluate_invocations += 1;
                counters.evaluate_retries += failed.len() as u64;
                counters.evaluate_malformed += malformed as u64;
            }
            self.settle("EventsQueue", &batch, &failed).await;
            handled += batch.len();
        }
        panic!("the events queue never drained");
    }

    /// Writes back what the write-back queue holds, batch by batch; messages handled.
    async fn write_back(&self, now: i64) -> usize {
        let mut handled = 0;
        for _ in 0..MAX_BATCHES {
            let batch = self.poll("WritebackQueue", WRITEBACK_BATCH).await;
            if batch.is_empty() {
                return handled;
            }
            let invocation = Invocation::default();
            let destinations: Vec<Faulty<Crm>> = (self.crms.iter())
                .map(|crm| Faulty::new(crm, &self.faults, &invocation))
                .collect();
            let clock = ManualClock::at(now as u64 * 1000);
            let wb = Writeback {
                destinations: &destinations,
                ledger: &self.ledger,
                contacts: &self.contacts,
                dead_letters: &self.writeback_dead,
                redelivery: &self.writeback,
                clock: &clock,
            };
            let deadline = now as u64 * 1000 + 60_000;
            let response = kairos_writeback::handle(sqs_event(&batch), deadline, &wb).await;
            self.permanent.lock().unwrap().extend(invocation.take_permanent());
            let failed = crate::support::failed(&response);
            {
                let mut counters = self.counters.lock().unwrap();
                counters.writeback_invocations += 1;
                counters.writeback_retries += failed.len() as u64;
            }
            self.settle("WritebackQueue", &batch, &failed).await;
            handled += batch.len();
        }
        panic!("the write-back queue never drained");
    }

    /// One sweep run at `now` (the schedule's time and the clock agree);
    /// whether it left contacts for the next run.
    async fn sweep(&self, now: i64) -> bool {
        let sweeper = kairos_sweep::Sweeper::new(&self.store, &self.events);
        let stop_at = Instant::now() + Duration::from_secs(45);
        let event = crate::support::sweep::schedule(time(now));
        let report = kairos_sweep::handle(event, &sweeper, time(now), stop_at).await;
        let mut counters = self.counters.lock().unwrap();
        counters.sweeps.0 += 1;
        match report {
            Ok(report) => report.more,
            Err(_) => {
                counters.sweeps.1 += 1;
                true
            }
        }
    }

    /// Up to `max` visible messages, as Lambda's poller hands them over.
    async fn poll(&self, queue: &str, max: usize) -> Vec<Message> {
        let mut out = Vec::new();
        while out.len() < max {
            let receive = self.stack.sqs.receive_message().queue_url(self.stack.url(queue));
            let got = receive
                .max_number_of_messages((max - out.len()).min(10) as i32)
                .message_attribute_names("All")
                .wait_time_seconds(0)
                .send()
                .await
                .expect("the poller receives");
            if got.messages().is_empty() {
                break;
            }
            out.extend(got.messages().iter().cloned());
        }
        out
    }

    /// Deletes what the handler did not report failed; makes the failed
    /// visible again at once.
    async fn settle(&self, queue: &str, batch: &[Message], failed: &[String]) {
        let url = self.stack.url(queue);
        let is_failed = |m: &&Message| failed.iter().any(|f| Some(f.as_str()) == m.message_id());
        let (retry, done): (Vec<&Message>, Vec<&Message>) = batch.iter().partition(is_failed);
        for chunk in done.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, m)| {
                let entry = DeleteMessageBatchRequestEntry::builder().id(i.to_string());
                entry.receipt_handle(m.receipt_handle().unwrap_or_default()).build()
            });
            let entries = entries.collect::<Result<Vec<_>, _>>().expect("delete entries");
            let delete = self.stack.sqs.delete_message_batch().queue_url(url);
            delete.set_entries(Some(entries)).send().await.expect("deleted");
        }
        for chunk in retry.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, m)| {
                let entry = ChangeMessageVisibilityBatchRequestEntry::builder().id(i.to_string());
                let entry = entry.receipt_handle(m.receipt_handle().unwrap_or_default());
                entry.visibility_timeout(0).build()
            });
            let entries = entries.collect::<Result<Vec<_>, _>>().expect("visibility entries");
            let again = self.stack.sqs.change_message_visibility_batch().queue_url(url);
            again.set_entries(Some(entries)).send().await.expect("made visible");
        }
    }

    /// Every message of a queue, taken off it.
    async fn take_all(&self, queue: &str) -> Vec<Stored> {
        let mut out = Vec::new();
        loop {
            let batch = self.poll(queue, 10).await;
            if batch.is_empty() {
                return out;
            }
            for m in &batch {
                let attributes = m.message_attributes().into_iter().flatten();
                let attributes = attributes.filter_map(|(name, v)| Some((name.clone(), v.string_value()?.to_string())));
                out.push(Stored {
                    body: m.body().unwrap_or_default().to_string(),
                    attributes: attributes.collect(),
                    receives: 0,
                });
            }
            self.settle(queue, &batch, &[]).await;
        }
    }

    /// A write-back dead letter sent back to its destination only.
    async fn redrive(&self, letter: &Stored) {
        let mut send = self
            .stack
            .sqs
            .send_message()
            .queue_url(self.stack.url("WritebackQueue"));
        send = send.message_body(&letter.body);
        for (name, value) in &letter.attributes {
            if name == kairos_writeback::DESTINATION_ATTRIBUTE {
                let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("an attribute");
                send = send.message_attributes(name, value);
            }
        }
        send.send().await.expect("redriven");
    }

    /// Every contact record on moto (merged ones included), read past the proxy.
    async fn records(&self) -> BTreeMap<String, kairos_store::StoredContact> {
        let scan = self.stack.dynamodb.scan().table_name(&self.stack.infra.table);
        let pages = scan.projection_expression("pk").into_paginator().items().send();
        let items: Vec<_> = pages.collect::<Result<_, _>>().await.expect("the table scanned");
        let direct = self.stack.store();
        let mut out = BTreeMap::new();
        for item in &items {
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
            if let Some(key) = pk.strip_prefix("contact#") {
                let record = direct.load(key).await.expect("load");
                out.insert(key.to_string(), record.expect("a scanned record"));
            }
        }
        out
    }

    /// The memory soak's checks on what moto holds and the CRMs were written.
    pub async fn check(&self, traffic: &Traffic, run: &WireRun) -> Findings {
        let observed = Observed {
            rules: &self.rules,
            records: self.records().await,
            crms: &self.crms,
            permanent: self.permanent.lock().unwrap().clone(),
            permanent_crashed: BTreeSet::new(),
            malformed: &run.malformed,
            events_dead: &run.events_dead,
            writeback_dead: &run.writeback_dead,
        };
        check::compare(&observed, traffic, run.end)
    }
}

/// Prints the wire run's figures (stderr, shown with `--nocapture`).
pub fn print(wire: &Wire, traffic: &Traffic, run: &WireRun, findings: &Findings) {
    let secs = run.elapsed.as_secs_f64();
    eprintln!(
        "\nwire soak: {} events ({} deliveries) of {} contacts through the real SDK, the fault proxy and moto: {secs:.1} s, {:.0} events/s",
        traffic.events,
        traffic.arrivals.len(),
        traffic.contacts,
        traffic.events as f64 / secs
    );
    let (dynamodb, sqs) = (
        run.wire.requests_for(crate::support::proxy::Service::DynamoDb),
        run.wire.requests_for(crate::support::proxy::Service::Sqs),
    );
    eprintln!(
        "requests through the proxy: {dynamodb} DynamoDB, {sqs} SQS ({:.1} s waiting on moto); by operation: {:?}",
        run.wire.upstream.as_secs_f64(),
        run.wire.requests
    );
    eprintln!("faults injected:");
    for (kind, n) in &run.wire.faults {
        eprintln!("  {:<48} {n:>7}", kind.label());
    }
    let sdk = &run.sdk;
    eprintln!(
        "SDK (standard mode, {} attempts, backoff {:?}..{:?}, attempt timeout {:?}, operation timeout {:?}): {} operations, {} attempts: {} retries; {} operations ended in an error with every attempt spent",
        kairos_store::sdk::MAX_ATTEMPTS,
        kairos_store::sdk::INITIAL_BACKOFF,
        kairos_store::sdk::MAX_BACKOFF,
        kairos_store::sdk::ATTEMPT_TIMEOUT,
        kairos_store::sdk::OPERATION_TIMEOUT,
        sdk.operations_total(),
        sdk.attempts,
        sdk.attempts.saturating_sub(sdk.operations_total()),
        sdk.exhausted
    );
    eprintln!("operations that ended in an error (count, attempts spent):");
    for (what, (n, attempts)) in &sdk.errors {
        eprintln!("  {n:>6} {attempts:>6}  {what}");
    }
    let counters = wire.counters.lock().unwrap();
    eprintln!(
        "handlers: {} ingest requests ({} sent again after a 503); {} evaluate invocations, {} messages failed and redelivered ({} of them malformed); {} write-back invocations, {} messages failed and redelivered; {} sweeps ({} failed)",
        counters.api_requests,
        counters.client_retries,
        counters.evaluate_invocations,
        counters.evaluate_retries,
        counters.evaluate_malformed,
        counters.writeback_invocations,
        counters.writeback_retries,
        counters.sweeps.0,
        counters.sweeps.1
    );
    eprintln!(
        "dead letters: events {} ({} malformed injected), write-back {} messages / {} writes ({} permanent CRM errors injected)",
        run.events_dead.len(),
        run.malformed.len(),
        run.writeback_dead.len(),
        findings.writeback_dead_writes,
        wire.permanent.lock().unwrap().len()
    );
    eprintln!(
        "checked {} contacts: mismatches {} (memberships {}, destinations {:?}, stale writes {:?}); repeated writes (no change in effect) {:?}",
        findings.contacts,
        findings.mismatches(),
        findings.membership_mismatches.len(),
        findings.destination_mismatches.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>(),
        findings.stale_writes,
        findings.repeats
    );
}
