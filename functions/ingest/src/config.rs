//! The ingest configuration, read from the environment once at cold start.
//!
//! Secret values may be `ssm:<parameter name>`; the Lambda's `main` resolves
//! them before [`IngestConfig::from_env`] sees them.

use std::sync::Arc;

use crate::providers::{self, Settings};
use crate::webhook::Webhook;

/// Default largest request body (bytes): well under API Gateway's and Lambda's limits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default replay window for signed timestamps and one-time tokens (seconds).
pub const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

/// The ingest configuration, validated and ready to use.
#[derive(Clone)]
pub struct IngestConfig {
    /// `KAIROS_API_KEYS`: accepted `x-api-key` values for `/v1/events`; empty disables it (404).
    pub api_keys: Vec<String>,
    /// `KAIROS_WRITE_KEYS`: accepted Segment-style write keys for `/v1/track`, `/v1/page`,
    /// `/v1/identify` and `/v1/batch`; empty disables them (404).
    pub write_keys: Vec<String>,
    /// The configured provider webhooks; a provider not listed answers 404.
    pub webhooks: Vec<Arc<dyn Webhook>>,
    /// `KAIROS_MAX_BODY_BYTES`: largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// `KAIROS_REPLAY_WINDOW_SECS`: accepted distance between a signed timestamp and now.
    pub replay_window_secs: i64,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            api_keys: Vec::new(),
            write_keys: Vec::new(),
            webhooks: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
        }
    }
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.webhooks.iter().map(|w| w.name()).collect();
        f.debug_struct("IngestConfig")
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("write_keys", &format_args!("[{} redacted]", self.write_keys.len()))
            .field("webhooks", &names)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("replay_window_secs", &self.replay_window_secs)
            .finish()
    }
}

/// Why the ingest configuration is unusable; names the variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable's value has the wrong form.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable (or flag).
        name: String,
        /// What was expected.
        reason: String,
    },
}

impl IngestConfig {
    /// Reads and validates the variables through `var` (usually `std::env::var`
    /// with secrets already resolved).
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<IngestConfig, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let max_body = positive("KAIROS_MAX_BODY_BYTES", get("KAIROS_MAX_BODY_BYTES"))?;
        let window = positive("KAIROS_REPLAY_WINDOW_SECS", get("KAIROS_REPLAY_WINDOW_SECS"))?;
        let replay_window_secs = window.unwrap_or(DEFAULT_REPLAY_WINDOW_SECS);
        let mut webhooks = Vec::new();
        for name in providers::NAMES {
            let settings = Settings::from_env(name, replay_window_secs, var);
            webhooks.extend(providers::build(name, &settings)?);
        }
        Ok(IngestConfig {
            api_keys: list(get("KAIROS_API_KEYS")),
            write_keys: list(get("KAIROS_WRITE_KEYS")),
            webhooks,
            max_body_bytes: max_body.map_or(DEFAULT_MAX_BODY_BYTES, |n| n as usize),
            replay_window_secs,
        })
    }

    /// The configured webhook for `/webhooks/<name>`.
    pub fn webhook(&self, name: &str) -> Option<&dyn Webhook> {
        self.webhooks.iter().find(|w| w.name() == name).map(|w| w.as_ref())
    }
}

/// A comma-separated list, blanks dropped.
fn list(value: Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

fn positive(name: &'static str, value: Option<String>) -> Result<Option<i64>, ConfigError> {
    value
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid {
                    name: name.into(),
                    reason: "expected a positive integer".into(),
                })
        })
        .transpose()
}
