//! `kairos console` and the console function: the marketer's console,
//! server-rendered HTML over where the console's state lives
//! ([`Backend`]): locally the embedded default ([`Local`]: the demo's events
//! played through the real ingest, evaluate and sweep handlers into
//! in-memory adapters), on AWS the deployment ([`Aws`]: DynamoDB, SQS, S3).
//!
//! Pages: Segments, Contact (search, memberships with explanations, consent,
//! traits, next change, overrides, merged ids, the audit timeline),
//! Overrides (pin in or out with a reason and an expiry, lift) and Rules
//! (current rules and version history; validate with every problem at its
//! line; backtest of the edited rules on a sample of recent events or an
//! uploaded file; publish, conditional on the version read; rollback) and
//! Sequences (per sequence, step and variant: sends, goals, rates,
//! posteriors, the holdout comparison, read through `kairos sequences
//! report`'s code, [`crate::sequences`]).
//!
//! Nothing here re-implements the engine: contacts are read and pinned through
//! the admin API's handler ([`kairos_admin::handle`]), backtests run through
//! [`crate::diff::Diff`], and after a publish every contact is re-decided
//! with the evaluate function's [`kairos_evaluate::Evaluator`] (locally, in
//! the request) or by the sweep's backfill (on AWS). Every change needs the
//! CSRF token ([`csrf`]); templates (askama) escape everything they print.
//!
//! Main items: [`Console`] (the state a server borrows), [`Console::demo`],
//! [`Console::aws`], [`serve`], [`router`], [`signed_in_router`].

pub mod access;
mod admin;
mod aws;
pub mod backend;
pub mod csrf;
mod explain;
pub mod jwt;
pub mod lambda;
mod local;
mod pages;
pub mod rules;
pub mod sample;
mod sequences;
pub mod signin;

use axum::{Extension, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use rules::{MemoryRules, PublishError};
use std::sync::Arc;

pub use aws::{Aws, AwsConfig, NOTHING_PUBLISHED, SAMPLE_TTL};
pub use backend::{Backend, ConsoleError, Published, Sample};
pub use csrf::COOKIE_NAME;
pub use local::Local;

/// The user the local console acts as (every change is attributed to it).
pub const LOCAL_USER: &str = "console-local";

/// The console: where its state lives, and the admin key it presents to the
/// admin handler in process (random per process).
pub struct Console<B = Local> {
    backend: B,
    admin_keys: Vec<(String, String)>,
}

impl<B: Backend> Console<B> {
    /// The console over `backend`.
    pub fn over(backend: B) -> Console<B> {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        Console {
            backend,
            admin_keys: vec![(LOCAL_USER.to_string(), secret)],
        }
    }

    /// Where the console's state lives.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The console's time: what "now" means for explanations, pins and publishes.
    pub fn clock(&self) -> DateTime<Utc> {
        self.backend.clock()
    }

    /// Publishes `text` on top of version `base` (refused if another publish
    /// came first) as the signed-in user; locally every contact is then
    /// re-decided under it, on AWS the sweep's backfill does that.
    pub async fn publish(&self, text: &str, message: &str, base: &str) -> Result<Published, PublishError> {
        self.backend.publish(text, &access::actor(), message, base).await
    }

    /// Republishes version `to` as the newest (conditional on `base` like a publish).
    pub async fn rollback(&self, to: &str, base: &str) -> Result<Published, PublishError> {
        let text = self.backend.text_of(to).await?;
        self.publish(&text, &format!("rollback to version {to}"), base).await
    }
}

impl Console<Local> {
    /// The embedded default: the example rules and the demo's events, played
    /// into memory as `kairos demo` does.
    pub async fn demo() -> Result<Console, String> {
        Console::new(kairos_evaluate::DEFAULT_RULES, crate::demo::DEFAULT_EVENTS).await
    }

    /// A console over a rules file and JSON-lines events, played through the
    /// demo's pipeline (what fell due by the last event swept). The clock
    /// stands at the last event's time.
    pub async fn new(rules_text: &str, events_text: &str) -> Result<Console, String> {
        Ok(Console::over(Local::new(rules_text, events_text).await?))
    }

    /// The contacts.
    pub fn store(&self) -> &kairos_store::MemoryContacts {
        self.backend.store()
    }

    /// The published rules.
    pub fn rules(&self) -> &MemoryRules {
        self.backend.rules()
    }
}

impl Console<Aws> {
    /// The console over the deployment (see [`Aws`]).
    pub fn aws(config: AwsConfig, aws: &aws_config::SdkConfig, s3: aws_sdk_s3::Client) -> Console<Aws> {
        Console::over(Aws::new(config, aws, s3))
    }
}

/// A time as pages show it (RFC 3339, seconds, UTC).
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The values of the request's cookies named `name`, in the order sent
/// (the CSRF token's and the sign-in's cookies are read through it).
pub(crate) fn request_cookies<'a>(headers: &'a axum::http::HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The console's routes for the local console: the user has every role.
pub fn router(console: Arc<Console>) -> Router {
    signed_in_router(console).layer(Extension(access::Identity::local()))
}

/// The console's routes behind sign-in: each request must carry the
/// signed-in [`access::Identity`] in its extensions (the AWS function puts it
/// there from the verified token's claims) and is refused what its role does
/// not allow ([`access::check`]).
pub fn signed_in_router<B: Backend>(console: Arc<Console<B>>) -> Router {
    let check = axum::middleware::from_fn_with_state(Arc::clone(&console), access::check::<B>);
    pages::router(console).layer(check)
}

/// Serves the console on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, console: Arc<Console>) -> std::io::Result<()> {
    axum::serve(listener, router(console)).await
}
