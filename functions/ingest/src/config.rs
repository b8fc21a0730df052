//! The ingest configuration: one validated struct, read from the environment
//! once at cold start ([`IngestConfig::from_env`]; the Lambda reads it through
//! [`IngestConfig::load`], which first fills in SSM parameters and resolves
//! `ssm:<parameter name>` values).

use std::sync::Arc;

use crate::providers::{Settings, PROVIDERS};
use crate::webhook::Webhook;

/// Default largest request body (bytes): well under API Gateway's and Lambda's limits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default replay window for signed timestamps and one-time tokens (seconds).
pub const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

/// The ingest configuration, validated and ready to use.
#[derive(Clone)]
pub struct IngestConfig {
    /// `KAIROS_EVENTS_QUEUE_URL`: the events queue (required by the Lambda).
    pub events_queue_url: String,
    /// `KAIROS_TABLE`: the table holding one-time tokens (required by the Lambda).
    pub table: String,
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
    /// `KAIROS_MAX_CLOCK_SKEW_SECS`: how far ahead of its receipt an event may be dated.
    pub max_clock_skew_secs: i64,
    /// `KAIROS_LOG_HASH_KEY`: the key of the hashes that stand for contacts in logs.
    pub log_hash_key: Option<String>,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            events_queue_url: String::new(),
            table: String::new(),
            api_keys: Vec::new(),
            write_keys: Vec::new(),
            webhooks: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
            max_clock_skew_secs: kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS,
            log_hash_key: None,
        }
    }
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.webhooks.iter().map(|w| w.name()).collect();
        f.debug_struct("IngestConfig")
            .field("events_queue_url", &self.events_queue_url)
            .field("table", &self.table)
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("write_keys", &format_args!("[{} redacted]", self.write_keys.len()))
            .field("webhooks", &names)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("replay_window_secs", &self.replay_window_secs)
            .field("max_clock_skew_secs", &self.max_clock_skew_secs)
            .field("log_hash_key", &self.log_hash_key.as_ref().map(|_| "[redacted]"))
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
    /// An SSM parameter could not be read (names it, never its value).
    #[error("{0}")]
    Secret(String),
}

impl IngestConfig {
    /// Reads and validates the variables through `var` (secrets already resolved).
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<IngestConfig, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let max_body = positive("KAIROS_MAX_BODY_BYTES", get("KAIROS_MAX_BODY_BYTES"))?;
        let window = positive("KAIROS_REPLAY_WINDOW_SECS", get("KAIROS_REPLAY_WINDOW_SECS"))?;
        let skew = positive("KAIROS_MAX_CLOCK_SKEW_SECS", get("KAIROS_MAX_CLOCK_SKEW_SECS"))?;
        let replay_window_secs = window.unwrap_or(DEFAULT_REPLAY_WINDOW_SECS);
        let mut webhooks = Vec::new();
        for provider in &PROVIDERS {
            let settings = Settings::from_env(provider.name, replay_window_secs, var);
            webhooks.extend((provider.build)(&settings)?);
        }
        Ok(IngestConfig {
            events_queue_url: required("KAIROS_EVENTS_QUEUE_URL")?,
            table: required("KAIROS_TABLE")?,
            api_keys: list(get("KAIROS_API_KEYS")),
            write_keys: list(get("KAIROS_WRITE_KEYS")),
            webhooks,
            max_body_bytes: max_body.map_or(DEFAULT_MAX_BODY_BYTES, |n| n as usize),
            replay_window_secs,
            max_clock_skew_secs: skew.unwrap_or(kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS),
            log_hash_key: get("KAIROS_LOG_HASH_KEY"),
        })
    }

    /// Reads the Lambda's configuration: the `KAIROS_*` environment, filled in
    /// by the parameters under `KAIROS_SECRETS_PATH` (the environment wins), each
    /// `ssm:<name>` value resolved, then [`IngestConfig::from_env`].
    #[cfg(feature = "aws")]
    pub async fn load(ssm: &aws_sdk_ssm::Client) -> Result<IngestConfig, ConfigError> {
        use kairos_store::{parameters_under, resolve_secret};
        use std::collections::HashMap;

        let secret = |e: kairos_store::SecretError| ConfigError::Secret(e.to_string());
        let mut vars: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("KAIROS_")).collect();
        if let Some(path) = vars.get("KAIROS_SECRETS_PATH").cloned() {
            for (name, value) in parameters_under(&path, ssm).await.map_err(secret)? {
                vars.entry(name).or_insert(value);
            }
        }
        for value in vars.values_mut() {
            *value = resolve_secret(value, ssm).await.map_err(secret)?;
        }
        IngestConfig::from_env(&|name| vars.get(name).cloned())
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
