//! The one info line each invocation logs: what the batch did, with the
//! reason for every refusal, so a refused batch is never silent. Per-contact
//! detail is logged at debug. The same counts are the invocation's metrics
//! ([`Summary::metrics`]).

use kairos_engine::{Applied, Outcome};
use kairos_event::metrics::{Metrics, Unit};
use kairos_event::Change;

/// Counts over one batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Summary {
    /// Messages in the batch.
    pub messages: usize,
    /// Messages that were not readable events (failed, retried, then dead-lettered).
    pub malformed: usize,
    /// Sweep messages (re-decide a contact as of now, no event).
    pub swept: usize,
    /// Contacts evaluated successfully.
    pub contacts: usize,
    /// Contacts whose storage or send failed (their messages are retried).
    pub failed_contacts: usize,
    /// Messages of contacts decided under newer rules than those in force
    /// (evaluated again after a refresh, or retried).
    pub behind: usize,
    /// Events applied in full.
    pub applied: usize,
    /// Events already applied before (redeliveries).
    pub duplicates: usize,
    /// Events older than the dedupe horizon: refused.
    pub stale: usize,
    /// Events older than the dedupe horizon whose consent or traits were applied.
    pub late: usize,
    /// Events dated beyond the allowed clock skew: refused.
    pub future: usize,
    /// Segment entries.
    pub entered: usize,
    /// Segment exits.
    pub exited: usize,
    /// Each evaluated event's lag, from its time to the evaluation (ms).
    pub lags_ms: Vec<f64>,
}

impl Summary {
    /// Adds one contact's outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        self.contacts += 1;
        self.applied += outcome.applied;
        self.duplicates += outcome.refused_as(Applied::Duplicate);
        self.stale += outcome.refused_as(Applied::Stale);
        self.late += outcome.late;
        self.future += outcome.refused_as(Applied::Future);
        for t in &outcome.transitions {
            match t.change {
                Change::Entered => self.entered += 1,
                Change::Exited => self.exited += 1,
            }
        }
    }

    /// Why events were refused, in words ("" when none were).
    pub fn refused(&self, max_clock_skew_secs: i64) -> String {
        let horizon_days = kairos_state::DEDUPE_HORIZON_SECS / 86_400;
        let mut reasons = Vec::new();
        if self.stale > 0 {
            reasons.push(format!(
                "{} stale: dated more than {horizon_days} days before now, too old to tell from a repeat",
                self.stale
            ));
        }
        if self.future > 0 {
            reasons.push(format!(
                "{} future: dated more than {max_clock_skew_secs} s after now",
                self.future
            ));
        }
        reasons.join("; ")
    }

    /// The invocation's metrics (EMF, dimension `Function=evaluate`):
    /// `Messages`, `MessagesMalformed`, `ContactsFailed`, `EventsApplied`,
    /// `EventsDuplicate`, `EventsStale`, `EventsLate`, `EventsFuture`,
    /// `TransitionsEntered`, `TransitionsExited`, `Swept`, and the samples
    /// `LagToEvaluationMs` (event time to evaluation, each event).
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new("evaluate");
        let counts = [
            ("Messages", self.messages),
            ("MessagesMalformed", self.malformed),
            ("ContactsFailed", self.failed_contacts),
            ("EventsApplied", self.applied),
            ("EventsDuplicate", self.duplicates),
            ("EventsStale", self.stale),
            ("EventsLate", self.late),
            ("EventsFuture", self.future),
            ("TransitionsEntered", self.entered),
            ("TransitionsExited", self.exited),
            ("Swept", self.swept),
        ];
        for (name, n) in counts {
            m.count(name, &[], n as u64);
        }
        for lag in &self.lags_ms {
            m.sample("LagToEvaluationMs", Unit::Milliseconds, &[], *lag);
        }
        m
    }

    /// Logs the summary line at info.
    pub fn log(&self, max_clock_skew_secs: i64) {
        tracing::info!(
            messages = self.messages,
            malformed = self.malformed,
            swept = self.swept,
            contacts = self.contacts,
            failed_contacts = self.failed_contacts,
            behind = self.behind,
            applied = self.applied,
            duplicates = self.duplicates,
            stale = self.stale,
            late = self.late,
            future = self.future,
            entered = self.entered,
            exited = self.exited,
            refused = %self.refused(max_clock_skew_secs),
            "batch evaluated"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn the_metrics_carry_every_count_and_each_lag() {
        let summary = Summary {
            messages: 4,
            malformed: 1,
            applied: 2,
            duplicates: 1,
            entered: 1,
            lags_ms: vec![120.0, 3000.0],
            ..Default::default()
        };
        let lines = summary.metrics().lines(0);
        assert_eq!(lines.len(), 1);
        let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["Function"], "evaluate");
        assert_eq!((&doc["Messages"], &doc["MessagesMalformed"]), (&4.into(), &1.into()));
        assert_eq!(
            (&doc["EventsApplied"], &doc["EventsDuplicate"], &doc["EventsStale"]),
            (&2.into(), &1.into(), &0.into())
        );
        assert_eq!(
            (&doc["TransitionsEntered"], &doc["TransitionsExited"]),
            (&1.into(), &0.into())
        );
        assert_eq!(doc["LagToEvaluationMs"], serde_json::json!([120, 3000]));
        let names = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len();
        assert_eq!(names, 12);
    }

    #[test]
    fn the_refusal_reasons_name_each_kind_and_its_bound() {
        let none = Summary::default();
        assert_eq!(none.refused(300), "");
        let refused = Summary {
            stale: 2,
            future: 1,
            ..Default::default()
        };
        let text = refused.refused(300);
        assert!(text.starts_with("2 stale: dated more than "), "{text}");
        assert!(text.ends_with("1 future: dated more than 300 s after now"), "{text}");
    }
}
