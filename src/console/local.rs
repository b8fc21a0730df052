//! [`Local`]: the embedded default behind `kairos console`. The demo's
//! events played through the real ingest, evaluate and sweep handlers into
//! memory; the rules' versions in memory; a publish re-decides every
//! contact in the request, as the sweep's backfill does on AWS.

use super::backend::{Backend, ConsoleError, Listed, Published, Sample};
use super::rules::{MemoryRules, PublishError, Version};
use super::time;
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_event::Event;
use kairos_store::{ContactStore, MemoryContacts, MemoryQueue};
use std::sync::Arc;

/// The dry-run destination the console's playback writes back to (any rules file fits it).
const CONSOLE_DESTINATIONS: &str = "destinations:
  - name: webhook
    kind: webhook
    segments: all
    credentials: { secret: /kairos/demo/webhook-secret }
    mapping: { url: \"https://crm.example.test/kairos\" }
";

/// The local console's state: contacts and transitions in memory, the
/// published rules in memory, the events played, and a clock standing at
/// the last of them.
pub struct Local {
    store: MemoryContacts,
    transitions: MemoryQueue,
    rules: MemoryRules,
    sample: Arc<Sample>,
    clock: DateTime<Utc>,
}

impl Local {
    /// A rules file and JSON-lines events, played through the demo's
    /// pipeline (what fell due by the last event swept).
    pub async fn new(rules_text: &str, events_text: &str) -> Result<Local, String> {
        let store = MemoryContacts::default();
        // The demo's write-back is a dry run; the console keeps one webhook for every segment.
        crate::demo::run_into(
            &store,
            0,
            rules_text,
            events_text,
            CONSOLE_DESTINATIONS,
            &mut std::io::sink(),
        )
        .await?;
        let events: Vec<Event> = events_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| Event::from_json(l.as_bytes()).ok())
            .collect();
        let clock = events.iter().map(|e| e.at).max().unwrap_or_else(Utc::now);
        let rules = MemoryRules::new(rules_text, "kairos demo", "the embedded example rules", clock)
            .map_err(|e| format!("rules file: {e}"))?;
        let sample = Sample {
            events,
            // The sequences report reads the events as given.
            text: events_text.to_string(),
            source: "demo events".into(),
        };
        Ok(Local {
            store,
            transitions: MemoryQueue::default(),
            rules,
            sample: Arc::new(sample),
            clock,
        })
    }

    /// The contacts.
    pub fn store(&self) -> &MemoryContacts {
        &self.store
    }

    /// The published rules.
    pub fn rules(&self) -> &MemoryRules {
        &self.rules
    }

    /// Every contact re-decided with no events (a sweep) under `version`.
    async fn redecide(&self, version: &Version) -> usize {
        let mut evaluator = Evaluator::new(&version.rules, &self.store, &self.transitions);
        evaluator.rules_seq = version.number;
        let mut done = 0;
        for key in self.store.contacts() {
            match evaluator.contact(&key, &[], self.clock).await {
                Ok(_) => done += 1,
                Err(err) => tracing::warn!(contact = %key, error = %err, "console: re-deciding after a publish"),
            }
        }
        self.transitions.drain();
        done
    }
}

impl Backend for Local {
    type Store = MemoryContacts;
    type Queue = MemoryQueue;

    fn store(&self) -> &MemoryContacts {
        &self.store
    }

    fn queue(&self) -> &MemoryQueue {
        &self.transitions
    }

    fn clock(&self) -> DateTime<Utc> {
        self.clock
    }

    fn changed(&self) {
        self.transitions.drain();
    }

    fn backfills(&self) -> bool {
        false
    }

    async fn current(&self) -> Result<Arc<Version>, ConsoleError> {
        Ok(self.rules.current())
    }

    async fn history(&self) -> Result<Vec<Listed>, ConsoleError> {
        let versions = self.rules.history();
        let listed = versions.iter().take(super::backend::HISTORY).map(|v| Listed {
            id: v.id.clone(),
            at: time(v.at),
            by: v.by.clone(),
            message: v.message.clone(),
        });
        Ok(listed.collect())
    }

    async fn text_of(&self, id: &str) -> Result<String, PublishError> {
        let number = id.parse().map_err(|_| PublishError::NoSuchVersion(id.to_string()))?;
        let version = self
            .rules
            .get(number)
            .ok_or_else(|| PublishError::NoSuchVersion(id.to_string()))?;
        Ok(version.text.clone())
    }

    async fn publish(&self, text: &str, by: &str, message: &str, base: &str) -> Result<Published, PublishError> {
        let read = base.trim().parse().map_err(|_| PublishError::Conflict {
            read: base.to_string(),
            current: self.rules.current().id.clone(),
        })?;
        let version = self.rules.publish(text, by, message, read, self.clock)?;
        let redecided = self.redecide(&version).await;
        Ok(Published {
            version,
            redecided: Some(redecided),
        })
    }

    async fn contact_count(&self) -> Option<u64> {
        let mut contacts = 0;
        for key in self.store.contacts() {
            if let Ok(Some(record)) = self.store.load(&key).await {
                contacts += u64::from(record.version > 0 && record.merged_into.is_none());
            }
        }
        Some(contacts)
    }

    async fn sample(&self) -> Result<Arc<Sample>, ConsoleError> {
        Ok(Arc::clone(&self.sample))
    }
}
