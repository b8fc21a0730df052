//! The embedded default: the three stages in one process on in-memory
//! adapters, driven through their real handlers, printing a timeline.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_event::{Change, Event, EventsMessage, WritebackMessage};
use kairos_ingest::{Ingest, IngestConfig};
use kairos_rules::RuleSet;
use kairos_store::{
    ContactStore, DueIndex, MemoryClaims, MemoryContacts, MemoryDeadLetters, MemoryLedger, MemoryLookups, MemoryQueue,
    MemoryRedelivery, Message,
};
use kairos_sweep::Sweeper;
use kairos_writeback::http::DryRun;
use kairos_writeback::{AnyDestination, Clock, SystemClock, Writeback};
use std::io::Write;
use std::sync::Arc;

mod crm;
mod decide;

pub use crm::{dry_run_destinations, DryRunDestinations, DEFAULT_DESTINATIONS};

/// The sample event set, embedded (`events/demo/events.jsonl`).
pub const DEFAULT_EVENTS: &str = include_str!("../events/demo/events.jsonl");

const API_KEY: &str = "demo-api-key";
/// Longest request body shown.
const BODY_CHARS: usize = 240;
/// How far past the last event the demo lets time pass.
const SWEEP_HORIZON_SECS: i64 = 10 * 86_400;
/// The demo's human override: who is pinned into which segment, for how long.
const PIN: (&str, &str, i64) = ("ada@acme.test", "sales-ready", 86_400);

/// What the demo did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events accepted by ingest.
    pub accepted: usize,
    /// Lines rejected by ingest.
    pub rejected: usize,
    /// Accepted events that were already applied (redeliveries).
    pub duplicates: usize,
    /// Segment entries and exits.
    pub transitions: usize,
    /// Requests the destinations would have received (dry run).
    pub requests: usize,
    /// Send-time decisions asked of the decide handler (when the rules have sequences).
    pub decisions: usize,
}

struct Pipeline<'a> {
    ingest: Ingest<'a, MemoryQueue, MemoryClaims>,
    events: &'a MemoryQueue,
    evaluator: Evaluator<'a, MemoryContacts, MemoryQueue>,
    transitions: &'a MemoryQueue,
    writeback: Writeback<
        'a,
        AnyDestination<Arc<DryRun>, Arc<MemoryLookups>>,
        MemoryLedger,
        MemoryContacts,
        MemoryDeadLetters,
        MemoryRedelivery,
    >,
    crms: &'a DryRunDestinations,
}

/// Runs the demo over a rules file, JSON-lines events and a destinations
/// file, writing the timeline to `out`.
pub async fn run(
    rules_text: &str,
    events_text: &str,
    destinations_text: &str,
    out: &mut impl Write,
) -> Result<Summary, String> {
    let store = MemoryContacts::default();
    let horizon = SWEEP_HORIZON_SECS;
    run_into(&store, horizon, rules_text, events_text, destinations_text, out).await
}

/// [`run`] into a given contact store, which holds the contacts (and their
/// audit trails) afterwards (`kairos console` serves them), letting time
/// pass `horizon_secs` after the last event.
pub async fn run_into(
    store: &MemoryContacts,
    horizon_secs: i64,
    rules_text: &str,
    events_text: &str,
    destinations_text: &str,
    out: &mut impl Write,
) -> Result<Summary, String> {
    let rules = RuleSet::from_yaml(rules_text).map_err(|e| format!("rules file: {e}"))?;
    let segment_ids: Vec<&str> = rules.segments().map(|s| s.id).collect();
    let crms = dry_run_destinations(destinations_text, &segment_ids).await?;
    let config = IngestConfig {
        api_keys: vec![API_KEY.into()],
        ..IngestConfig::default()
    };
    let (events, transitions) = (MemoryQueue::default(), MemoryQueue::default());
    let (ledger, dead_letters, redelivery) = (
        MemoryLedger::default(),
        MemoryDeadLetters::default(),
        MemoryRedelivery::default(),
    );
    let pipeline = Pipeline {
        ingest: Ingest {
            config: &config,
            queue: &events,
            claims: &MemoryClaims::default(),
        },
        events: &events,
        evaluator: Evaluator::new(&rules, store, &transitions),
        transitions: &transitions,
        writeback: Writeback {
            destinations: &crms.destinations,
            ledger: &ledger,
            contacts: store,
            dead_letters: &dead_letters,
            redelivery: &redelivery,
            clock: &SystemClock,
        },
        crms: &crms,
    };
    let lines: Vec<(usize, &str)> = events_text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let w = |e: std::io::Error| e.to_string();
    writeln!(
        out,
        "Kairos demo: {} events through ingest → evaluate → write-back, in memory",
        lines.len()
    )
    .map_err(w)?;
    writeln!(out, "Segments: {}", segment_ids.join(", ")).map_err(w)?;
    let names: Vec<String> = crms
        .take()
        .into_iter()
        .map(|(name, cold)| format!("{name} ({} at cold start)", cold.len()))
        .collect();
    writeln!(
        out,
        "Destinations (dry run: the requests each would receive): {}\n",
        names.join(", ")
    )
    .map_err(w)?;
    let mut summary = Summary::default();
    let mut clock: Option<DateTime<Utc>> = None;
    for (line_no, line) in lines {
        pipeline
            .event(line_no, line, &mut clock, &mut summary, out)
            .await
            .map_err(w)?;
    }
    if let Some(end) = clock {
        pipeline.pin(end, &mut summary, out).await.map_err(w)?;
        writeln!(
            out,
            "\n── time passes, no new events: the sweep re-evaluates contacts whose answers are due ──"
        )
        .map_err(w)?;
        pipeline
            .sweep(store, end, horizon_secs, &mut summary, out)
            .await
            .map_err(w)?;
    }
    summary.decisions = decide::run(&rules, out).await.map_err(w)?;
    writeln!(
        out,
        "\n{} events accepted, {} rejected, {} duplicates ignored; {} segment changes; {} write-back requests; {} send-time decisions.",
        summary.accepted, summary.rejected, summary.duplicates, summary.transitions, summary.requests, summary.decisions
    )
    .map_err(w)?;
    Ok(summary)
}

impl Pipeline<'_> {
    /// A marketer pins [`PIN`]'s contact into its segment until it lapses, as
    /// `PUT /v1/contacts/{key}/overrides/{segment}` does (the same evaluator
    /// step); skipped when the rules have no such segment.
    async fn pin(&self, now: DateTime<Utc>, summary: &mut Summary, out: &mut impl Write) -> std::io::Result<()> {
        let (contact, segment, for_secs) = PIN;
        if self.evaluator.rules.segment_index(segment).is_none() {
            return Ok(());
        }
        writeln!(
            out,
            "\n── a marketer pins {contact} into {segment} for a day (PUT /v1/contacts/{{key}}/overrides/{{segment}}) ──"
        )?;
        let manual = kairos_engine::Manual::Pin(kairos_engine::Override {
            segment: segment.to_string(),
            member: true,
            actor: "admin-key:demo".to_string(),
            reason: "VIP account, asked by sales".to_string(),
            at: now.timestamp(),
            expires_at: Some(now.timestamp() + for_secs),
        });
        match self.evaluator.manual(contact, &manual, now).await {
            Ok(Some(_)) => {}
            Ok(None) => writeln!(out, "{:21}✗ {contact} has no record", "")?,
            Err(e) => writeln!(out, "{:21}✗ the override failed: {e}", "")?,
        }
        self.write_back(summary, out).await
    }

    async fn event(
        &self,
        line_no: usize,
        line: &str,
        clock: &mut Option<DateTime<Utc>>,
        summary: &mut Summary,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        // The story's events arrive as they happen: each is received at its own time.
        let own = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["at"].as_str().and_then(|at| DateTime::parse_from_rfc3339(at).ok()))
            .map(|at| at.timestamp());
        let received = own.or(clock.map(|c| c.timestamp())).unwrap_or(0);
        let response = kairos_ingest::handle(request(line), &self.ingest, received).await;
        if response.status_code != 202 {
            summary.rejected += 1;
            let reason = match &response.body {
                Some(Body::Text(t)) => serde_json::from_str::<serde_json::Value>(t)
                    .ok()
                    .and_then(|v| v["errors"][0]["error"].as_str().map(str::to_string)),
                _ => None,
            };
            let reason = reason.unwrap_or_else(|| "rejected".into());
            return writeln!(
                out,
                "line {line_no:>2}           ✗ ingest answered {}: {reason}",
                response.status_code
            );
        }
        for message in self.events.drain() {
            let Ok(EventsMessage::Event(event)) = EventsMessage::decode(message.body.as_bytes()) else {
                continue;
            };
            let now = clock.map_or(event.at, |c| c.max(event.at));
            *clock = Some(now);
            summary.accepted += 1;
            writeln!(
                out,
                "{}  {:<20} {:<18} {}",
                when(event.at),
                event.contact,
                event.kind.as_str(),
                details(&event)
            )?;
            let before = self.version_of(&event.contact).await;
            let response = kairos_evaluate::handle(sqs(&[message]), &self.evaluator, now).await;
            let after = self.version_of(&event.contact).await;
            if !response.batch_item_failures.is_empty() {
                writeln!(out, "{:21}✗ evaluate failed this message (see logs)", "")?;
            } else if before == after {
                summary.duplicates += 1;
                writeln!(out, "{:21}= already applied (redelivery): nothing changed", "")?;
            } else {
                self.guarded(&event.contact, after, out).await?;
            }
            self.write_back(summary, out).await?;
        }
        Ok(())
    }

    /// The consent guard's actions of the contact's write at `version`, from
    /// its audit trail: an entry decided but written as not a member.
    async fn guarded(&self, contact: &str, version: Option<u64>, out: &mut impl Write) -> std::io::Result<()> {
        use kairos_store::AuditTrail;
        let Ok(page) = self.evaluator.store.audit(contact, None, 20).await else {
            return Ok(());
        };
        let held = page
            .entries
            .iter()
            .filter(|e| Some(e.state_version) == version && e.kind == kairos_event::AuditKind::Guard);
        for entry in held {
            let segment = entry.segment.as_deref().unwrap_or_default();
            writeln!(out, "{:21}⊘ HELD    {segment}  (the rule says member)", "")?;
            writeln!(out, "{:23}why: {}", "", entry.summary)?;
        }
        Ok(())
    }

    async fn version_of(&self, contact: &str) -> Option<u64> {
        self.evaluator
            .store
            .load(contact)
            .await
            .ok()
            .flatten()
            .map(|r| r.version)
    }

    /// Time passes after the last event: the sweep function's run
    /// ([`kairos_sweep::Sweeper`], over the memory store's due index) at each
    /// next due time sends the contacts due to the events queue, and the
    /// evaluate function's handler re-decides each with no events, as on AWS.
    async fn sweep(
        &self,
        store: &MemoryContacts,
        end: DateTime<Utc>,
        horizon_secs: i64,
        summary: &mut Summary,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        let horizon = end.timestamp() + horizon_secs;
        let sweeper = Sweeper::new(store, self.events);
        let mut last = None;
        while let Some(at) = next_due(store, horizon).await {
            if last == Some(at) {
                writeln!(out, "{:21}✗ sweep made no progress at {at}", "")?;
                return Ok(());
            }
            last = Some(at);
            let now = DateTime::from_timestamp(at, 0).unwrap_or(end);
            let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
            sweeper.sweep(now, far).await;
            let mut swept = self.events.drain();
            swept.sort_by(|a, b| a.body.cmp(&b.body));
            for message in swept {
                let Ok(EventsMessage::Sweep(sweep)) = EventsMessage::decode(message.body.as_bytes()) else {
                    continue;
                };
                let response = kairos_evaluate::handle(sqs(&[message]), &self.evaluator, now).await;
                if !response.batch_item_failures.is_empty() {
                    writeln!(out, "{:21}✗ sweep failed for {} (see logs)", "", sweep.contact)?;
                    return Ok(());
                }
                // Only sweeps that changed an answer are worth a line.
                if !self.transitions.is_empty() {
                    let what = "(sweep: a window edge, deadline or decay threshold passed)";
                    writeln!(out, "{}  {:<20} {what}", when(now), sweep.contact)?;
                    self.write_back(summary, out).await?;
                }
            }
        }
        Ok(())
    }

    async fn write_back(&self, summary: &mut Summary, out: &mut impl Write) -> std::io::Result<()> {
        let messages = self.transitions.drain();
        for m in &messages {
            let Ok(WritebackMessage::Transition(t)) = WritebackMessage::decode(m.body.as_bytes()) else {
                continue;
            };
            summary.transitions += 1;
            let (mark, verb) = match t.change {
                Change::Entered => ("▶", "ENTERED"),
                Change::Exited => ("◀", "EXITED "),
            };
            writeln!(
                out,
                "{:21}{mark} {verb} {}  (rule {}, state v{})",
                "", t.segment, t.rule_version, t.state_version
            )?;
            writeln!(out, "{:23}why: {}", "", t.summary)?;
        }
        if messages.is_empty() {
            return Ok(());
        }
        let deadline = SystemClock.now_ms() + 60_000;
        let response = kairos_writeback::handle(sqs(&messages), deadline, &self.writeback).await;
        for (name, requests) in self.crms.take() {
            for r in requests {
                summary.requests += 1;
                let body: String = r.shown_body().chars().take(BODY_CHARS).collect();
                writeln!(out, "{:23}⇢ {name}: {}  {body}", "", r.redacted())?;
            }
        }
        for f in response.batch_item_failures {
            writeln!(out, "{:23}✗ write-back failed message {}", "", f.item_identifier)?;
        }
        Ok(())
    }
}

/// The soonest time the due index holds, if no later than `horizon`.
async fn next_due(store: &MemoryContacts, horizon: i64) -> Option<i64> {
    let mut soonest: Option<i64> = None;
    for shard in 0..store.shards() {
        let page = store.due(shard, horizon, None, 1).await.ok()?;
        if let Some(first) = page.due.first() {
            soonest = Some(soonest.map_or(first.due_at, |s| s.min(first.due_at)));
        }
    }
    soonest
}

fn request(body: &str) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some("/v1/events".into());
    req.headers
        .insert("x-api-key", aws_lambda_events::http::HeaderValue::from_static(API_KEY));
    req.body = Some(body.to_string());
    req
}

fn sqs(messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("msg-{i}"));
            record.body = Some(m.body.clone());
            record
        })
        .collect();
    event
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn details(e: &Event) -> String {
    let mut parts = vec![e.source.clone()];
    parts.extend(e.name.as_ref().map(|n| format!("\"{n}\"")));
    parts.extend(e.url.as_ref().map(|u| u.to_string()));
    if e.machine {
        parts.push("machine open (privacy proxy)".into());
    }
    parts.extend(e.traits.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join("  ")
}

#[cfg(test)]
mod tests;
