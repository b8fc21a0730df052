use chrono::{DateTime, Utc};
use kairos_event::metrics::{Metrics, Unit};
use kairos_event::{EventsMessage, Sweep};
use kairos_store::{Due, DueIndex, Message, Queue, QueueError, StoreError};
use std::time::Instant;

/// Contacts asked of the index per query (one page).
pub const PAGE: usize = 500;

/// One run's work: finds the contacts due and sends them to the events queue.
pub struct Sweeper<'a, I, Q> {
    /// The due index (the contacts table's).
    pub index: &'a I,
    /// The events queue, which the evaluate function consumes.
    pub queue: &'a Q,
    /// Most contacts one run sends; the others are left for the next run.
    pub max_per_run: usize,
}

impl<'a, I, Q> Sweeper<'a, I, Q> {
    /// A sweeper sending at most [`crate::DEFAULT_MAX_PER_RUN`] contacts per run.
    pub fn new(index: &'a I, queue: &'a Q) -> Self {
        Sweeper {
            index,
            queue,
            max_per_run: crate::DEFAULT_MAX_PER_RUN,
        }
    }
}

/// What one run did: the figures its log line carries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Contacts found due and sent to the events queue.
    pub sent: usize,
    /// Lateness at sending (the run's time plus the time it had run when it
    /// sent the contact, minus the indexed due time; seconds): median, 99th
    /// percentile and maximum; 0 when none was due.
    pub lateness: Lateness,
    /// The run stopped before the end of the index (its time or
    /// `max_per_run` ran out): the next run carries on.
    pub more: bool,
    /// Shards whose query or send failed (logged); the next run retries them.
    pub failed_shards: Vec<u32>,
}

impl Report {
    /// The run's metrics (EMF, `Function=sweep`): `SweepSent`, `SweepMore`
    /// (1 when the run left due contacts for the next one),
    /// `SweepFailedShards`, and the lateness figures `SweepLatenessP50`,
    /// `SweepLatenessP99` and `SweepLatenessMax` (seconds; one value each per
    /// run, since a run may send thousands).
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new("sweep");
        m.count("SweepSent", &[], self.sent as u64);
        m.count("SweepMore", &[], u64::from(self.more));
        m.count("SweepFailedShards", &[], self.failed_shards.len() as u64);
        if self.sent > 0 {
            let figures = [
                ("SweepLatenessP50", self.lateness.p50),
                ("SweepLatenessP99", self.lateness.p99),
                ("SweepLatenessMax", self.lateness.max),
            ];
            for (name, secs) in figures {
                m.sample(name, Unit::Seconds, &[], secs as f64);
            }
        }
        m
    }
}

/// Lateness figures of one run, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lateness {
    /// The median.
    pub p50: i64,
    /// The 99th percentile.
    pub p99: i64,
    /// The largest.
    pub max: i64,
}

impl Lateness {
    /// The figures of these latenesses (any order).
    pub fn of(mut late: Vec<i64>) -> Lateness {
        late.sort_unstable();
        let at = |q: f64| {
            late.get(((late.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
        };
        Lateness {
            p50: at(0.5).unwrap_or(0),
            p99: at(0.99).unwrap_or(0),
            max: late.last().copied().unwrap_or(0),
        }
    }
}

/// Why a shard could not be swept this run.
#[derive(Debug, thiserror::Error)]
enum ShardError {
    #[error("querying the due index: {0}")]
    Index(#[from] StoreError),
    #[error("sending sweep messages: {0}")]
    Send(#[from] QueueError),
}

impl<I: DueIndex, Q: Queue> Sweeper<'_, I, Q> {
    /// Sends every contact due at or before `now` to the events queue as a
    /// sweep message, shard by shard, page by page, until the index has no
    /// more, `max_per_run` are sent, or `stop_at` comes.
    ///
    /// Runs start at a different shard each minute, so when there is more
    /// than one run can do no shard waits behind the others. A contact sent
    /// stays in the index until the evaluate function re-decides it (and
    /// moves its due time), so what a run could not reach the next one
    /// finds; one sent twice is re-decided twice, and the second finds
    /// nothing to do.
    pub async fn sweep(&self, now: DateTime<Utc>, stop_at: Instant) -> Report {
        let shards = self.index.shards().max(1);
        let first = (now.timestamp().div_euclid(60) % i64::from(shards)) as u32;
        let (mut report, mut late) = (Report::default(), Vec::new());
        let started = Instant::now();
        for shard in (0..shards).map(|i| (first + i) % shards) {
            match self.shard(shard, (now, started), stop_at, &mut late).await {
                Ok(done) if done => {}
                Ok(_) => {
                    report.more = true;
                    break;
                }
                Err(err) => {
                    tracing::error!(shard, error = %err, "sweep of a due-index shard failed; the next run retries it");
                    report.failed_shards.push(shard);
                }
            }
        }
        report.sent = late.len();
        report.lateness = Lateness::of(late);
        report
    }

    /// Sweeps one shard; false if the run's budget ran out first.
    async fn shard(
        &self,
        shard: u32,
        (now, started): (DateTime<Utc>, Instant),
        stop_at: Instant,
        late: &mut Vec<i64>,
    ) -> Result<bool, ShardError> {
        let mut after: Option<Due> = None;
        loop {
            let room = self.max_per_run.saturating_sub(late.len());
            if room == 0 || Instant::now() >= stop_at {
                return Ok(false);
            }
            let page = self
                .index
                .due(shard, now.timestamp(), after.as_ref(), room.min(PAGE))
                .await?;
            let messages: Vec<Message> = page
                .due
                .iter()
                .map(|d| Message {
                    id: d.contact.clone(),
                    body: EventsMessage::sweep_body(&Sweep {
                        contact: d.contact.clone(),
                        rules_seq: None,
                    }),
                })
                .collect();
            self.queue.send(&messages).await?;
            let sent_at = now.timestamp() + started.elapsed().as_secs() as i64;
            late.extend(page.due.iter().map(|d| sent_at - d.due_at));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(true),
            }
        }
    }
}
