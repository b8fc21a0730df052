use chrono::{DateTime, Utc};
use kairos_engine::erasure::{self, Admit};
use kairos_engine::{identity, Applied, Engine, Frozen, Input, Manual, Outcome};
use kairos_event::Event;
use kairos_rules::RuleSet;

use crate::{link, record};
use kairos_store::{ContactStore, Message, Queue, QueueError, StoreError, StoredContact, ITEM_BUDGET_BYTES};

/// How often a contact's read-modify-write is retried after losing a race.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// The pause before the retry after the `lost`-th lost race
/// ([`kairos_store::pause::after_lost_race`]): eight racers on one record
/// settle in a few rounds; a ninth loss is [`ContactError::Contended`]
/// (retryable: the message is redelivered).
pub(crate) use kairos_store::pause::after_lost_race;

/// Why one contact's events could not be processed.
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
    /// The record was decided under a newer published rules version than the
    /// one in force here (or a backfill's sweep asks for one): evaluating it
    /// would move it back to, or leave it under, older rules.
    /// Retryable: the redelivery finds this instance (or another) refreshed.
    #[error("record decided under rules version {record}, newer than the {ours} in force here")]
    RulesBehind {
        /// The version that decided the record.
        record: u64,
        /// The version in force here.
        ours: u64,
    },
}

impl ContactError {
    /// Whether retrying cannot help (the stored record is unreadable by this
    /// build): the messages go to the dead-letter queue with this reason, to
    /// be redriven once a build that reads the record is deployed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ContactError::Store(err) if err.is_permanent())
    }
}

/// The per-contact logic, over borrowed rules, store and write-back queue.
pub struct Evaluator<'a, S, Q> {
    /// The compiled segments.
    pub rules: &'a RuleSet,
    /// Where contact records live.
    pub store: &'a S,
    /// Where transitions go.
    pub queue: &'a Q,
    /// Events dated more than this ahead of `now` are refused (seconds;
    /// `KAIROS_MAX_CLOCK_SKEW_SECS`).
    pub max_clock_skew_secs: i64,
    /// The sequence of the published rules version [`Evaluator::rules`] is
    /// (`0`: the embedded rules). A record decided under a newer one is not
    /// evaluated ([`ContactError::RulesBehind`]).
    pub rules_seq: u64,
    /// The record keeps the event ids of events dated from the UTC midnight
    /// at or before this long ago (seconds); older ones move to cold days
    /// (`cold.rs`). [`kairos_state::HOT_SEEN_SECS`] unless set.
    pub hot_seen_secs: i64,
}

impl<'a, S, Q> Evaluator<'a, S, Q> {
    /// An evaluator with the default clock skew
    /// ([`DEFAULT_MAX_CLOCK_SKEW_SECS`](kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS)).
    pub fn new(rules: &'a RuleSet, store: &'a S, queue: &'a Q) -> Self {
        Evaluator {
            rules,
            store,
            queue,
            max_clock_skew_secs: kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS,
            rules_seq: 0,
            hot_seen_secs: kairos_state::HOT_SEEN_SECS,
        }
    }

    /// The engine step as this evaluator runs it (its rules, clock skew and rules sequence).
    pub(crate) fn engine(&self) -> Engine<'a> {
        Engine {
            rules: self.rules,
            max_clock_skew_secs: self.max_clock_skew_secs,
            rules_seq: self.rules_seq,
        }
    }
}

impl<S: ContactStore, Q: Queue> Evaluator<'_, S, Q> {
    /// Loads the contact's record, runs the engine step on it with `events`
    /// as of `now` ([`kairos_engine::Engine::step`]), writes the record and
    /// its outbox conditioned on the version read (reloading and retrying a
    /// lost race), then sends and clears the outbox.
    ///
    /// Identity: events for a known contact that carry `properties.anonymous_id`
    /// link that anonymous contact to it (its record is frozen first, here),
    /// and events for an anonymous contact that is linked are processed as the
    /// known contact's (`docs/identity.md`).
    ///
    /// With no events this is a sweep ([`Evaluator::redecide`]).
    ///
    /// Reads: the first is eventually consistent
    /// ([`ContactStore::load_eventually`], half the read units), every
    /// retry strong. What this does with a stale first read:
    /// - the step's conditional write names the version read, so it loses
    ///   ([`StoreError::Conflict`]) and the retry re-reads strongly: nothing
    ///   applied or decided on the stale view is written;
    /// - an outcome that writes nothing (events all duplicates or refused, a
    ///   sweep with nothing due) and an erased contact's dropped events are
    ///   acted on only after a strong read: the attempt is redone strongly;
    /// - the outbox flushed before the write is one that the stale version
    ///   recorded, so its transitions were committed and are sent at least
    ///   once anyway: sending them again is a repeat of an older or the same
    ///   version, which write-back's ledger drops (no transition doubled in
    ///   effect), and its clear is conditioned on that version;
    /// - a link seen (`merged_into`) is final, never undone, so following it
    ///   is right on any read; a record decided under newer rules is newer
    ///   still on a fresh read (the sequence is never lowered), so
    ///   [`ContactError::RulesBehind`] is right too.
    pub async fn contact(&self, contact: &str, events: &[Event], now: DateTime<Utc>) -> Result<Outcome, ContactError> {
        let engine = self.engine();
        let mut key = contact.to_string();
        let mut links = identity::links(contact, events);
        // Frozen anonymous records read so far: they never change, so a retry reuses them.
        let mut frozen: Vec<Frozen> = Vec::new();
        let mut reopened: Vec<Event>;
        let mut strong = false;
        let mut lost = 0;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = match strong {
                true => self.store.load(&key).await?,
                false => self.store.load_eventually(&key).await?,
            };
            if let Some(target) = loaded.as_ref().and_then(|r| link::linked_to(&key, r)) {
                // A linked anonymous contact: its events are the known contact's.
                let target = target.to_string();
                let record = loaded.unwrap_or_default();
                self.flush(&key, &record).await?;
                links = vec![key.clone()];
                frozen.extend(record::frozen(&key, record));
                key = target;
                continue;
            }
            let expected = loaded.as_ref().map(|r| r.version);
            let mut stored = loaded.unwrap_or_default();
            // The outbox holds one write's transitions: what an earlier one left goes first.
            self.flush(&key, &stored).await?;
            stored.outbox.clear();
            // An erased contact's tombstone drops its events, unless a new consent re-opens it.
            let events = match erasure::admit(stored.erased_at, stored.expires_at, events, now.timestamp()) {
                Admit::All if stored.erased_at.is_some() => {
                    // The tombstone's window is over: the contact starts anew, no longer erased.
                    stored = StoredContact {
                        version: stored.version,
                        ..StoredContact::default()
                    };
                    events
                }
                Admit::All => events,
                Admit::Drop if !strong => {
                    strong = true;
                    continue;
                }
                Admit::Drop => {
                    let dropped = events.len();
                    tracing::info!(contact = %kairos_event::log::hashed(&key), dropped, "events of an erased contact dropped");
                    return Ok(Outcome::default());
                }
                Admit::Reopen(after) => {
                    tracing::info!(contact = %kairos_event::log::hashed(&key), "erased contact re-opened by a new consent");
                    stored = StoredContact {
                        version: stored.version,
                        ..StoredContact::default()
                    };
                    reopened = after;
                    &reopened[..]
                }
            };
            if engine.behind(stored.rules_seq) {
                return Err(ContactError::RulesBehind {
                    record: stored.rules_seq,
                    ours: self.rules_seq,
                });
            }
            self.freeze_links(&key, &stored.state, &links, &mut frozen, now).await?;
            self.warm(&key, &mut stored.state, events, &mut frozen, now.timestamp())
                .await?;
            let input = Input {
                events,
                frozen: &frozen,
                now,
            };
            let outcome = record::step(&engine, &key, &mut stored, &input);
            // A reindex (only the due index time moved) is saved at the same version.
            if outcome.save() {
                fit_budget(&key, &mut stored);
                match self.store.save(&key, expected, &stored).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => {
                        strong = true;
                        lost += 1;
                        after_lost_race(lost).await;
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            } else if !strong {
                // Nothing to write, on what may be a stale view: confirm on a strong read.
                strong = true;
                continue;
            }
            log(&key, events, &outcome);
            log_unmerged(&key, &stored, &frozen, now.timestamp());
            self.flush(&key, &stored).await?;
            return Ok(outcome);
        }
        Err(ContactError::Contended)
    }

    /// A human's override change ([`Manual`]) to a known contact as of `now`:
    /// load, the engine's manual step, the conditional write with its
    /// outbox and audit entries (reloading and retrying a lost race), send.
    /// `Ok(None)` if the contact has no record.
    pub async fn manual(
        &self,
        contact: &str,
        manual: &Manual,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, ContactError> {
        let engine = self.engine();
        for lost in 1..=MAX_ATTEMPTS as u32 {
            let Some(mut stored) = self
                .store
                .load(contact)
                .await?
                .filter(|r| r.version > 0 && r.erased_at.is_none())
            else {
                return Ok(None);
            };
            let expected = Some(stored.version);
            self.flush(contact, &stored).await?;
            stored.outbox.clear();
            if engine.behind(stored.rules_seq) {
                return Err(ContactError::RulesBehind {
                    record: stored.rules_seq,
                    ours: self.rules_seq,
                });
            }
            let outcome = record::manual(&engine, contact, &mut stored, manual, now);
            if outcome.save() {
                fit_budget(contact, &mut stored);
                match self.store.save(contact, expected, &stored).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => {
                        after_lost_race(lost).await;
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            self.flush(contact, &stored).await?;
            return Ok(Some(outcome));
        }
        Err(ContactError::Contended)
    }

    /// Re-decides a contact as of `now` with no events (a sweep): only the
    /// segments whose deadline has passed (all of them after a rules change).
    /// The transitions carry no trigger.
    pub async fn redecide(&self, contact: &str, now: DateTime<Utc>) -> Result<Outcome, ContactError> {
        self.contact(contact, &[], now).await
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
            tracing::debug!(contact = %kairos_event::log::hashed(contact), "outbox not cleared: a newer write carries it");
        }
        Ok(())
    }
}

/// Logs what the step refused and merged.
fn log(contact: &str, events: &[Event], outcome: &Outcome) {
    for refused in &outcome.refused {
        let (event, why) = (&events[refused.index], refused.why);
        match why {
            Applied::Duplicate => {
                tracing::debug!(event_id = %kairos_event::log::id(&event.id), "duplicate event ignored")
            }
            _ => {
                tracing::debug!(event_id = %kairos_event::log::id(&event.id), at = %event.at, refused = ?why, "event refused")
            }
        }
    }
    for anonymous in &outcome.merged {
        tracing::info!(contact = %kairos_event::log::hashed(contact), anonymous = %kairos_event::log::hashed(anonymous), "anonymous contact merged");
    }
    for event in events {
        for name in kairos_state::refused_traits(event) {
            tracing::warn!(event_id = %kairos_event::log::id(&event.id), trait_name = %name, "trait not stored: its name or value is too long");
        }
    }
}

/// Logs the linked anonymous visitors the contact could not merge: it holds
/// the most merged visitors ([`kairos_state::MAX_MERGED`]).
fn log_unmerged(contact: &str, stored: &StoredContact, frozen: &[Frozen], now: i64) {
    let unmerged = frozen
        .iter()
        .filter(|f| f.into == contact && !stored.state.has_merged(&f.key));
    for f in unmerged.filter(|f| identity::keep_until(f) >= now) {
        let max = kairos_state::MAX_MERGED;
        tracing::warn!(contact = %kairos_event::log::hashed(contact), anonymous = %kairos_event::log::hashed(&f.key), max, "anonymous history not merged: the contact holds the most merged visitors");
    }
}

/// Holds the record to its size budget before it is written, logging what it gave up.
fn fit_budget(contact: &str, record: &mut StoredContact) {
    let report = record.fit(contact);
    if !report.fits() {
        tracing::error!(
            contact = %kairos_event::log::hashed(contact),
            bytes = report.after,
            budget = ITEM_BUDGET_BYTES,
            "record over its size budget even degraded: too many memberships or transitions at once"
        );
    } else if report.degraded() {
        tracing::warn!(contact = %kairos_event::log::hashed(contact), ?report, "record over its size budget: degraded to fit");
    }
}
