use base64::Engine;
use std::time::Duration;

use crate::Backoff;

/// The write-back function's configuration, read from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `KAIROS_TABLE`: the DynamoDB table holding the delivery ledger.
    pub table: String,
    /// `KAIROS_WEBHOOK_URL`: where transitions are POSTed.
    pub webhook_url: String,
    /// `KAIROS_WEBHOOK_SECRET`: the signing secret, `whsec_<base64>` (or `ssm:<name>`,
    /// resolved before [`Config::secret_bytes`]).
    pub webhook_secret: String,
    /// `KAIROS_WEBHOOK_TIMEOUT_MS` (default 5000): per-request timeout.
    pub timeout: Duration,
    /// `KAIROS_WEBHOOK_MAX_ATTEMPTS` (default 4): attempts per transition per invocation.
    pub backoff: Backoff,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// Why the configuration is unusable; names the variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable's value has the wrong form.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What was expected.
        reason: &'static str,
    },
}

impl Config {
    /// Reads the variables through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| {
            get(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        name,
                        reason: "expected a positive integer",
                    })
            })
        };
        let webhook_url = required("KAIROS_WEBHOOK_URL")?;
        if !(webhook_url.starts_with("https://") || webhook_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "KAIROS_WEBHOOK_URL",
                reason: "expected an http(s) URL",
            });
        }
        Ok(Config {
            table: required("KAIROS_TABLE")?,
            webhook_url,
            webhook_secret: required("KAIROS_WEBHOOK_SECRET")?,
            timeout: Duration::from_millis(number("KAIROS_WEBHOOK_TIMEOUT_MS", 5000)?),
            backoff: Backoff {
                max_attempts: number("KAIROS_WEBHOOK_MAX_ATTEMPTS", 4)? as u32,
                ..Backoff::default()
            },
        })
    }

    /// The signing key: the base64 after `whsec_` (the prefix is optional).
    pub fn secret_bytes(&self) -> Result<Vec<u8>, ConfigError> {
        let encoded = self.webhook_secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|k| k.len() >= 16)
            .ok_or(ConfigError::Invalid {
                name: "KAIROS_WEBHOOK_SECRET",
                reason: "expected whsec_ followed by base64 of at least 16 bytes",
            })
    }

    /// The HTTP client: built once, with the timeout, and no redirects followed.
    pub fn http_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with a timeout and no redirects always builds")
    }
}
