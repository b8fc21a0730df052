//! The decide function's storage port ([`DecisionStore`]) and its in-memory
//! twin ([`MemoryDecisions`]); the DynamoDB adapter is `dynamo.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use kairos_decide::{Counts, Sent};
use kairos_store::StoreError;

/// A contact's recent sequence sends and the version they were stored at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    /// The sends, oldest first.
    pub sends: Vec<Sent>,
    /// 0 when nothing is stored; the condition of the next write.
    pub version: u64,
}

/// A (sequence, step, variant) whose counters a decision reads.
pub type VariantKey = (String, String, String);

/// What [`DecisionStore::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded now: the send counts for caps, progress and the variant's sends.
    New,
    /// This decision id was recorded before: its answer then (JSON), unchanged.
    Existing(String),
    /// The contact's send log changed since it was read: decide again.
    LogMoved,
}

/// Storage of decisions, each contact's send log and the variants' counters.
pub trait DecisionStore: Send + Sync {
    /// A contact's send log (empty at version 0 if none).
    fn sends(&self, contact: &str) -> impl Future<Output = Result<SendLog, StoreError>> + Send;

    /// The counters of these variants, in order (zero if never counted).
    fn counts(&self, keys: &[VariantKey]) -> impl Future<Output = Result<Vec<Counts>, StoreError>> + Send;

    /// The answer recorded under a decision id, if any.
    fn answer(&self, decision_id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Records a send at once and all or nothing: the decision (unless its id
    /// is recorded: [`Recorded::Existing`]), the contact's log (`log` with the
    /// send added, if the stored one is still at `expected`), and one more send
    /// on the variant's counter.
    fn record(
        &self,
        contact: &str,
        sent: &Sent,
        answer: &str,
        log: &SendLog,
        expected: u64,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Counts a goal for a recorded decision once: false if it had one, or no
    /// such decision is recorded.
    fn goal(&self, decision_id: &str, at: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes the ESP's message id on the contact's logged send of a decision,
    /// so that a goal carrying only the message id is attributed; false if
    /// the log has no such send or it already has one.
    fn note_message(
        &self,
        contact: &str,
        decision_id: &str,
        message_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes the ESP's report on a recorded decision (`sent`, `delivered`) at `at`; false if unknown.
    fn confirm(
        &self,
        decision_id: &str,
        status: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A decision as the memory twin keeps it.
#[derive(Debug, Clone, Default)]
struct Stored {
    sent: Option<Sent>,
    answer: String,
    goal_at: Option<i64>,
    statuses: BTreeMap<String, i64>,
}

/// The in-memory twin (the demo, unit tests).
#[derive(Debug, Default)]
pub struct MemoryDecisions {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    logs: BTreeMap<String, SendLog>,
    counts: BTreeMap<VariantKey, Counts>,
    decisions: BTreeMap<String, Stored>,
}

impl MemoryDecisions {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().expect("the memory store's lock"))
    }

    /// The statuses an ESP reported for a decision (tests, the demo).
    pub fn statuses(&self, decision_id: &str) -> BTreeMap<String, i64> {
        self.with(|m| {
            m.decisions
                .get(decision_id)
                .map(|d| d.statuses.clone())
                .unwrap_or_default()
        })
    }
}

/// Sets the message id of a decision's send in `sends`, if it has none yet.
pub(crate) fn with_message(sends: &mut [Sent], decision_id: &str, message_id: &str) -> bool {
    match sends
        .iter_mut()
        .find(|s| s.decision_id == decision_id && s.message_id.is_none())
    {
        Some(sent) => {
            sent.message_id = Some(message_id.to_string());
            true
        }
        None => false,
    }
}

fn key_of(sent: &Sent) -> VariantKey {
    (sent.sequence.clone(), sent.step.clone(), sent.variant.clone())
}

impl DecisionStore for MemoryDecisions {
    async fn sends(&self, contact: &str) -> Result<SendLog, StoreError> {
        Ok(self.with(|m| m.logs.get(contact).cloned().unwrap_or_default()))
    }

    async fn counts(&self, keys: &[VariantKey]) -> Result<Vec<Counts>, StoreError> {
        Ok(self.with(|m| {
            keys.iter()
                .map(|k| m.counts.get(k).copied().unwrap_or_default())
                .collect()
        }))
    }

    async fn answer(&self, decision_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.with(|m| m.decisions.get(decision_id).map(|d| d.answer.clone())))
    }

    async fn record(
        &self,
        contact: &str,
        sent: &Sent,
        answer: &str,
        log: &SendLog,
        expected: u64,
    ) -> Result<Recorded, StoreError> {
        Ok(self.with(|m| {
            if let Some(d) = m.decisions.get(&sent.decision_id) {
                return Recorded::Existing(d.answer.clone());
            }
            if m.logs.get(contact).map_or(0, |l| l.version) != expected {
                return Recorded::LogMoved;
            }
            m.logs.insert(contact.to_string(), log.clone());
            m.counts.entry(key_of(sent)).or_default().sends += 1;
            let stored = Stored {
                sent: Some(sent.clone()),
                answer: answer.to_string(),
                ..Stored::default()
            };
            m.decisions.insert(sent.decision_id.clone(), stored);
            Recorded::New
        }))
    }

    async fn goal(&self, decision_id: &str, at: i64) -> Result<bool, StoreError> {
        Ok(self.with(|m| {
            let Some(d) = m.decisions.get_mut(decision_id).filter(|d| d.goal_at.is_none()) else {
                return false;
            };
            d.goal_at = Some(at);
            let key = d.sent.as_ref().map(key_of).unwrap_or_default();
            m.counts.entry(key).or_default().goals += 1;
            true
        }))
    }

    async fn note_message(&self, contact: &str, decision_id: &str, message_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|m| {
            let Some(log) = m.logs.get_mut(contact) else {
                return false;
            };
            let noted = with_message(&mut log.sends, decision_id, message_id);
            log.version += u64::from(noted);
            noted
        }))
    }

    async fn confirm(&self, decision_id: &str, status: &str, at: i64) -> Result<bool, StoreError> {
        Ok(self.with(|m| match m.decisions.get_mut(decision_id) {
            Some(d) => {
                d.statuses.entry(status.to_string()).or_insert(at);
                true
            }
            None => false,
        }))
    }
}
