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
    /// One sweep run scheduled at `at`, with a minute to go.
    pub async fn sweep(&self, at: DateTime<Utc>) -> Report {
        let (index, queue) = (self.store(), self.queue("EventsQueue"));
        let sweeper = Sweeper::new(&index, &queue);
        let stop_at = Instant::now() + Duration::from_secs(60);
        kairos_sweep::handle(schedule(at), &sweeper, Utc::now(), stop_at)
            .await
            .expect("every shard swept")
    }
}
