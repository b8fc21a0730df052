//! The sweep function over the stack: the handler run on a scheduled event
//! (`events/sweep-schedule.json`, its time set) with the template's table,
//! due index and events queue, as the deployed function builds them.

use super::Stack;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use kairos_sweep::{Report, Sweeper};
use std::time::{Duration, Instant};

/// The scheduled event `cargo lambda invoke sweep` sends.
pub const SCHEDULE: &str = include_str!("../../events/sweep-schedule.json");

/// The schedule's event as EventBridge Scheduler sends it for a run at `at`.
pub fn schedule(at: DateTime<Utc>) -> EventBridgeEvent {
    let mut event: EventBridgeEvent = serde_json::from_str(SCHEDULE).expect("the scheduled-event fixture");
    event.time = Some(at);
    event
}

impl Stack {
    /// The transitions the write-back queue holds, taken off it.
    pub async fn drain_transitions(&self) -> Vec<kairos_event::Transition> {
        let mut out = Vec::new();
        loop {
            let messages = self.receive("WritebackQueue", 10).await;
            if messages.is_empty() {
                return out;
            }
            for m in &messages {
                let body = m.body().expect("a write-back message body");
                let kairos_event::WritebackMessage::Transition(t) =
                    kairos_event::WritebackMessage::decode(body.as_bytes()).expect("a write-back message");
                out.push(t);
            }
            self.ack("WritebackQueue", &messages, &Default::default()).await;
        }
    }

    /// One sweep run scheduled at `at`, with a minute to go.
    pub async fn sweep(&self, at: DateTime<Utc>) -> Report {
        self.sweep_within(at, Duration::from_secs(60)).await
    }

    /// One sweep run scheduled at `at`, with `budget` to go.
    pub async fn sweep_within(&self, at: DateTime<Utc>, budget: Duration) -> Report {
        let (index, queue) = (self.store(), self.queue("EventsQueue"));
        let sweeper = Sweeper::new(&index, &queue);
        let stop_at = Instant::now() + budget;
        kairos_sweep::handle(schedule(at), &sweeper, Utc::now(), stop_at)
            .await
            .expect("every shard swept")
    }
}

impl Stack {
    /// One backfill run for rules version `seq` over the template's table and
    /// events queue (`segments` segments, `page` items a scan), with a minute to go.
    pub async fn backfill(&self, seq: Option<u64>, segments: u32, page: usize) -> kairos_sweep::BackfillReport {
        let (store, queue) = (self.store(), self.queue("EventsQueue"));
        let backfill = kairos_sweep::Backfiller {
            segments,
            page,
            ..kairos_sweep::Backfiller::new(&store, &queue)
        };
        let stop_at = Instant::now() + Duration::from_secs(60);
        backfill.run(seq, stop_at).await.expect("backfill run")
    }

    /// Evaluates what the events queue holds, batch by batch, under the
    /// live rules (as the deployed evaluate function does), until it is empty.
    pub async fn evaluate_queue<O: kairos_store::RulesObject>(
        &self,
        live: &kairos_evaluate::LiveRules<O>,
        now: DateTime<Utc>,
    ) -> usize {
        let (store, writeback) = (self.store(), self.queue("WritebackQueue"));
        let mut evaluated = 0;
        loop {
            let messages = self.receive("EventsQueue", 10).await;
            if messages.is_empty() {
                return evaluated;
            }
            let batch = super::sqs_event(&messages);
            let (response, _) = kairos_evaluate::handle_live(batch, live, &store, &writeback, 300, now).await;
            assert!(super::failed(&response).is_empty(), "{response:?}");
            self.ack("EventsQueue", &messages, &response).await;
            evaluated += messages.len();
        }
    }
}
