//! `kairos console`: the marketer's console, server-rendered HTML over the
//! embedded default (the demo's events played through the real ingest,
//! evaluate and sweep handlers into in-memory adapters).
//!
//! Pages: Segments, Contact (search, memberships with explanations, consent,
//! traits, next change, overrides, merged ids, the audit timeline),
//! Overrides (pin in or out with a reason and an expiry, lift) and Rules
//! (current rules and version history; validate with every problem at its
//! line; backtest of the edited rules on the demo events; publish, conditional
//! on the version read; rollback) and Sequences (per sequence, step and
//! variant: sends, goals, rates, posteriors, the holdout comparison, read
//! through `kairos sequences report`'s code, [`crate::sequences`]).
//!
//! Nothing here re-implements the engine: contacts are read and pinned through
//! the admin API's handler ([`kairos_admin::handle`]), backtests run through
//! [`crate::diff::Diff`], and a publish re-decides every contact with the
//! evaluate function's [`Evaluator`]. Every change needs the CSRF token
//! ([`csrf`]); templates (askama) escape everything they print.
//!
//! Main items: [`Console`] (the state a server borrows), [`Console::demo`],
//! [`serve`], [`router`].

pub mod access;
mod admin;
pub mod csrf;
mod explain;
pub mod jwt;
pub mod lambda;
mod pages;
pub mod rules;
mod sequences;
pub mod signin;

use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_event::Event;
use kairos_store::{MemoryContacts, MemoryQueue};
use rules::{MemoryRules, PublishError, Version};
use std::sync::Arc;

pub use csrf::COOKIE_NAME;

/// The user the local console acts as (every change is attributed to it).
pub const LOCAL_USER: &str = "console-local";

/// The dry-run destination the console's playback writes back to (any rules file fits it).
const CONSOLE_DESTINATIONS: &str = "destinations:
  - name: webhook
    kind: webhook
    segments: all
    credentials: { secret: /kairos/demo/webhook-secret }
    mapping: { url: \"https://crm.example.test/kairos\" }
";

/// The console's state: the contacts, the published rules, the events a
/// backtest replays, and the console's clock.
pub struct Console {
    store: MemoryContacts,
    transitions: MemoryQueue,
    rules: MemoryRules,
    events: Vec<Event>,
    /// The events as given (JSON lines), for the sequences report.
    events_text: String,
    clock: DateTime<Utc>,
    /// The admin key the console presents to the admin handler (random per process).
    admin_keys: Vec<(String, String)>,
}

impl Console {
    /// The embedded default: the example rules and the demo's events, played
    /// into memory as `kairos demo` does.
    pub async fn demo() -> Result<Console, String> {
        Console::new(kairos_evaluate::DEFAULT_RULES, crate::demo::DEFAULT_EVENTS).await
    }

    /// A console over a rules file and JSON-lines events, played through the
    /// demo's pipeline (what fell due by the last event swept). The clock
    /// stands at the last event's time.
    pub async fn new(rules_text: &str, events_text: &str) -> Result<Console, String> {
        let store = MemoryContacts::default();
        // The demo's write-back is a dry run; the console keeps one webhook for every segment.
        let destinations = CONSOLE_DESTINATIONS;
        crate::demo::run_into(&store, 0, rules_text, events_text, destinations, &mut std::io::sink()).await?;
        let events: Vec<Event> = events_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| Event::from_json(l.as_bytes()).ok())
            .collect();
        let clock = events.iter().map(|e| e.at).max().unwrap_or_else(Utc::now);
        let rules = MemoryRules::new(rules_text, "kairos demo", "the embedded example rules", clock)
            .map_err(|e| format!("rules file: {e}"))?;
        let secret = hex::encode(rand::random::<[u8; 32]>());
        Ok(Console {
            store,
            transitions: MemoryQueue::default(),
            rules,
            events,
            events_text: events_text.to_string(),
            clock,
            admin_keys: vec![(LOCAL_USER.to_string(), secret)],
        })
    }

    /// The console's time: what "now" means for explanations, pins and publishes.
    pub fn clock(&self) -> DateTime<Utc> {
        self.clock
    }

    /// The contacts.
    pub fn store(&self) -> &MemoryContacts {
        &self.store
    }

    /// The published rules.
    pub fn rules(&self) -> &MemoryRules {
        &self.rules
    }

    /// Publishes `text` on top of version `base` (refused if another publish
    /// came first), then re-decides every contact under it, as the sweep's
    /// backfill does after a publish on AWS. Returns the new version and how
    /// many contacts were re-decided.
    pub async fn publish(&self, text: &str, message: &str, base: u64) -> Result<(Arc<Version>, usize), PublishError> {
        let version = self.rules.publish(text, &access::actor(), message, base, self.clock)?;
        let redecided = self.redecide(&version).await;
        Ok((version, redecided))
    }

    /// Republishes version `to` as the newest (conditional on `base` like a publish).
    pub async fn rollback(&self, to: u64, base: u64) -> Result<(Arc<Version>, usize), PublishError> {
        let old = self.rules.get(to).ok_or(PublishError::NoSuchVersion(to))?;
        self.publish(&old.text, &format!("rollback to version {to}"), base)
            .await
    }

    /// Every contact re-decided with no events (a sweep) under `version`.
    async fn redecide(&self, version: &Version) -> usize {
        let evaluator = self.evaluator(version);
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

    fn evaluator<'a>(&'a self, version: &'a Version) -> Evaluator<'a, MemoryContacts, MemoryQueue> {
        let mut evaluator = Evaluator::new(&version.rules, &self.store, &self.transitions);
        evaluator.rules_seq = version.number;
        evaluator
    }
}

/// The console's routes for the local console: the user has every role.
pub fn router(console: Arc<Console>) -> Router {
    signed_in_router(console).layer(Extension(access::Identity::local()))
}

/// The console's routes behind sign-in: each request must carry the
/// signed-in [`access::Identity`] in its extensions (the AWS function puts it
/// there from the verified token's claims) and is refused what its role does
/// not allow ([`access::check`]).
pub fn signed_in_router(console: Arc<Console>) -> Router {
    let check = axum::middleware::from_fn_with_state(Arc::clone(&console), access::check);
    pages::router(console).layer(check)
}

/// Serves the console on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, console: Arc<Console>) -> std::io::Result<()> {
    axum::serve(listener, router(console)).await
}
