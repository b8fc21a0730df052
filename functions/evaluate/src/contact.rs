use chrono::{DateTime, Utc};
use kairos_event::{Event, Transition, WritebackMessage};
use kairos_rules::{Delta, RuleSet};

use crate::diff;
use crate::link::{self, Frozen};
use kairos_state::{Applied, RETENTION_SECS};
use kairos_store::{ContactStore, Message, Queue, QueueError, StoreError, StoredContact};

/// How often a contact's read-modify-write is retried after losing a race.
pub(crate) const MAX_ATTEMPTS: usize = 8;
/// A record outlives its last event by this long before the table's TTL removes it.
pub(crate) const TTL_AFTER_LAST_EVENT_SECS: i64 = RETENTION_SECS + 30 * 86_400;

/// Why one contact's events could not be processed. All are retryable.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// Reading or writing the contact's record failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Every attempt lost the race to a concurrent writer.
    #[error("gave up after {MAX_ATTEMPTS} conflicting concurrent writes")]
    Contended,
    /// The transitions were written but could not be sent; they stay in the outbox.
    #[error("sending transitions: {0}")]
    Send(#[from] QueueError),
}

/// What processing one contact did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Events applied (not duplicates, not stale).
    pub applied: usize,
    /// Transitions produced by this evaluation.
    pub transitions: Vec<Transition>,
    /// The state version written, if anything was written.
    pub version: Option<u64>,
    /// Anonymous contacts merged into this one by this write.
    pub merged: usize,
}

/// The per-contact logic, over borrowed rules, store and write-back queue.
pub struct Evaluator<'a, S, Q> {
    /// The compiled segments.
    pub rules: &'a RuleSet,
    /// Where contact records live.
    pub store: &'a S,
    /// Where transitions go.
    pub queue: &'a Q,
}

impl<S: ContactStore, Q: Queue> Evaluator<'_, S, Q> {
    /// Applies a contact's events as of `now`, evaluates its segments, writes
    /// the state and outbox conditionally, then sends and clears the outbox.
    ///
    /// Identity: events for a known contact that carry `properties.anonymous_id`
    /// link that anonymous contact to it, and events for an anonymous contact
    /// that is linked are processed as the known contact's (`docs/identity.md`).
    ///
    /// With no events this is a sweep: the contact is re-evaluated if its
    /// `next_change_at` has passed (a window edge or absence deadline), and the
    /// resulting transitions carry no trigger.
    pub async fn contact(&self, contact: &str, events: &[Event], now: DateTime<Utc>) -> Result<Outcome, ContactError> {
        let mut key = contact.to_string();
        let mut links = link::links(contact, events);
        // Frozen anonymous records read so far: they never change, so a retry reuses them.
        let mut frozen: Vec<Frozen> = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.store.load(&key).await?;
            if let Some(target) = loaded.as_ref().and_then(|r| link::linked_to(&key, r)) {
                // A linked anonymous contact: its events are the known contact's.
                let target = target.to_string();
                let record = loaded.unwrap_or_default();
                self.flush(&key, &record).await?;
                links = vec![key.clone()];
                frozen.push(Frozen { key, record });
                key = target;
                continue;
            }
            let expected = loaded.as_ref().map(|r| r.version);
            let mut record = loaded.unwrap_or_default();
            self.freeze_links(&key, &record.state, &links, &mut frozen, now).await?;
            let outcome = self.update(&key, &mut record, &frozen, events, now);
            if outcome.version.is_some() {
                match self.store.save(&key, expected, &record).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
            self.flush(&key, &record).await?;
            return Ok(outcome);
        }
        Err(ContactError::Contended)
    }

    /// Merges the frozen anonymous records linked to this contact, applies
    /// events and, if anything changed or a time-based answer is due,
    /// evaluates, in memory; returns what changed. After a merge every segment
    /// is evaluated.
    fn update(
        &self,
        contact: &str,
        record: &mut StoredContact,
        frozen: &[Frozen],
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Outcome {
        let now_secs = now.timestamp();
        let merged = link::absorb(contact, record, frozen, now_secs);
        let (applied, trigger, mut delta) = self.apply(record, events, now_secs);
        let due = record.next_change_at.is_some_and(|t| t <= now_secs);
        let rules_changed = record.state.rules_fingerprint() != self.rules.fingerprint();
        if trigger.is_none() && !due && !rules_changed && merged == 0 {
            return Outcome::default();
        }
        record.state.compact(now_secs);
        // A new contact: only what this batch's events can affect differs from an empty state.
        delta.blank = record.state.rules_fingerprint() == 0 && merged == 0;
        let full = (rules_changed && !delta.blank) || merged > 0;
        let (decisions, verdicts) = self
            .rules
            .decide_explained(&record.state, now_secs, (!full).then_some(&delta));
        record.version += 1;
        let transitions = diff::apply(self.rules, contact, record, (&decisions, verdicts), full, trigger, now);
        record
            .outbox
            .extend(transitions.iter().map(WritebackMessage::transition_body));
        record.next_change_at = decisions.next_change_at;
        record.state.record_decision(decisions.deadlines, decisions.holds);
        if let Some(t) = trigger {
            record.expires_at = record.expires_at.max(t.at.timestamp() + TTL_AFTER_LAST_EVENT_SECS);
        }
        Outcome {
            applied,
            transitions,
            version: Some(record.version),
            merged,
        }
    }

    /// Applies events to the state: how many applied, the latest applied (the
    /// trigger) and what they touched.
    fn apply<'e>(
        &self,
        record: &mut StoredContact,
        events: &'e [Event],
        now: i64,
    ) -> (usize, Option<&'e Event>, Delta) {
        let mut trigger: Option<&Event> = None;
        let mut delta = Delta::default();
        let mut applied = 0;
        for event in events {
            let signals = self.rules.signals_for(event);
            match record.state.apply(event, &signals, now) {
                Applied::Applied => {
                    applied += 1;
                    delta.record(event, &signals);
                    if trigger.is_none_or(|t| (event.at, &event.id) > (t.at, &t.id)) {
                        trigger = Some(event);
                    }
                }
                Applied::Duplicate => {
                    tracing::debug!(event_id = %kairos_event::log::id(&event.id), "duplicate event ignored")
                }
                Applied::Stale => {
                    tracing::warn!(event_id = %kairos_event::log::id(&event.id), at = %event.at, "stale event refused: older than the dedupe horizon")
                }
            }
        }
        (applied, trigger, delta)
    }

    /// Sends the outbox, then clears it if the record has not moved on.
    pub(crate) async fn flush(&self, contact: &str, record: &StoredContact) -> Result<(), ContactError> {
        if record.outbox.is_empty() {
            return Ok(());
        }
        let messages: Vec<Message> = record
            .outbox
            .iter()
            .enumerate()
            .map(|(i, body)| Message {
                id: i.to_string(),
                body: body.clone(),
            })
            .collect();
        self.queue.send(&messages).await?;
        if !self.store.clear_outbox(contact, record.version).await? {
            tracing::debug!(contact, "outbox not cleared: a newer write carries it");
        }
        Ok(())
    }
}
