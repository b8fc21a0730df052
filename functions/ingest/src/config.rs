use base64::Engine;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;

/// Default largest request body (bytes): well under API Gateway's and Lambda's limits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default replay window for signed timestamps (seconds).
pub const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

/// The ingest configuration as read from the environment, before secrets are
/// resolved (`ssm:<name>` values) and keys parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawConfig {
    /// `KAIROS_EVENTS_QUEUE_URL`: where events are enqueued.
    pub events_queue_url: String,
    /// `KAIROS_API_KEYS`: comma-separated keys for `/v1/events` (or `ssm:<name>`).
    pub api_keys: Option<String>,
    /// `KAIROS_SENDGRID_PUBLIC_KEY`: base64 SPKI DER or PEM (or `ssm:<name>`).
    pub sendgrid_public_key: Option<String>,
    /// `KAIROS_MAX_BODY_BYTES`: largest accepted body.
    pub max_body_bytes: Option<String>,
    /// `KAIROS_REPLAY_WINDOW_SECS`: accepted age of a signed timestamp.
    pub replay_window_secs: Option<String>,
}

/// The ingest configuration, validated and ready to use.
#[derive(Clone)]
pub struct IngestConfig {
    /// Accepted `x-api-key` values; empty disables `/v1/events` (404).
    pub api_keys: Vec<String>,
    /// SendGrid's verification key; `None` disables `/webhooks/sendgrid` (404).
    pub sendgrid_public_key: Option<VerifyingKey>,
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// Accepted distance between a signed timestamp and now, in seconds.
    pub replay_window_secs: i64,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            api_keys: Vec::new(),
            sendgrid_public_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
        }
    }
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestConfig")
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("sendgrid_public_key", &self.sendgrid_public_key.is_some())
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
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
}

impl RawConfig {
    /// Reads the variables through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<RawConfig, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        Ok(RawConfig {
            events_queue_url: get("KAIROS_EVENTS_QUEUE_URL").ok_or(ConfigError::Missing("KAIROS_EVENTS_QUEUE_URL"))?,
            api_keys: get("KAIROS_API_KEYS"),
            sendgrid_public_key: get("KAIROS_SENDGRID_PUBLIC_KEY"),
            max_body_bytes: get("KAIROS_MAX_BODY_BYTES"),
            replay_window_secs: get("KAIROS_REPLAY_WINDOW_SECS"),
        })
    }

    /// Validates the (secret-resolved) values.
    pub fn build(&self) -> Result<IngestConfig, ConfigError> {
        let api_keys = self
            .api_keys
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        let sendgrid_public_key = self.sendgrid_public_key.as_deref().map(parse_public_key).transpose()?;
        let number = |name: &'static str, value: &Option<String>| -> Result<Option<i64>, ConfigError> {
            value
                .as_deref()
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError::Invalid {
                            name,
                            reason: "expected a positive integer".into(),
                        })
                })
                .transpose()
        };
        let max_body = number("KAIROS_MAX_BODY_BYTES", &self.max_body_bytes)?;
        let window = number("KAIROS_REPLAY_WINDOW_SECS", &self.replay_window_secs)?;
        Ok(IngestConfig {
            api_keys,
            sendgrid_public_key,
            max_body_bytes: max_body.map_or(DEFAULT_MAX_BODY_BYTES, |n| n as usize),
            replay_window_secs: window.unwrap_or(DEFAULT_REPLAY_WINDOW_SECS),
        })
    }
}

/// Parses SendGrid's verification key: base64 SPKI DER (as the console shows it) or PEM.
pub(crate) fn parse_public_key(text: &str) -> Result<VerifyingKey, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "KAIROS_SENDGRID_PUBLIC_KEY",
        reason: reason.to_string(),
    };
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|_| invalid("not a P-256 public key in PEM form"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| invalid("expected base64 (SPKI DER) or PEM"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| invalid("not a P-256 public key"))
}
