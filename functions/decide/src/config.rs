//! The decide function's configuration, read once at cold start.

use kairos_rules::RuleSet;

/// Default largest request body (bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("missing required setting {0}")]
    Missing(&'static str),
    /// A value does not read (names the variable).
    #[error("invalid setting {name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An SSM parameter could not be read.
    #[error("secret: {0}")]
    Secret(String),
}

/// The decide function's settings (`KAIROS_*` variables).
#[derive(Clone)]
pub struct DecideConfig {
    /// `KAIROS_API_KEYS`: accepted `x-api-key` values (the same keys as
    /// `/v1/events`, from the same parameters); empty disables the route (404).
    pub api_keys: Vec<String>,
    /// `KAIROS_TABLE`: the table of contacts, decisions, send logs and counters.
    pub table: String,
    /// `KAIROS_RULES_FILE`: a rules file to load instead of the embedded one.
    pub rules_file: Option<String>,
    /// `KAIROS_MAX_BODY_BYTES`: largest accepted body.
    pub max_body_bytes: usize,
    /// `KAIROS_MAX_CLOCK_SKEW_SECS`: how far ahead of the server's clock `now` may be.
    pub max_clock_skew_secs: i64,
}

impl Default for DecideConfig {
    fn default() -> DecideConfig {
        DecideConfig {
            api_keys: Vec::new(),
            table: String::new(),
            rules_file: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_clock_skew_secs: kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS,
        }
    }
}

impl std::fmt::Debug for DecideConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideConfig")
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("table", &self.table)
            .field("rules_file", &self.rules_file)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_clock_skew_secs", &self.max_clock_skew_secs)
            .finish()
    }
}

impl DecideConfig {
    /// Reads the settings from `get` (the environment, filled in from SSM by [`DecideConfig::load`]).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<DecideConfig, ConfigError> {
        let number = |name: &'static str| -> Result<Option<i64>, ConfigError> {
            get(name)
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|e| ConfigError::Invalid {
                        name,
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        let api_keys = get("KAIROS_API_KEYS")
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        let defaults = DecideConfig::default();
        Ok(DecideConfig {
            api_keys,
            table: get("KAIROS_TABLE").ok_or(ConfigError::Missing("KAIROS_TABLE"))?,
            rules_file: get("KAIROS_RULES_FILE").filter(|f| !f.trim().is_empty()),
            max_body_bytes: number("KAIROS_MAX_BODY_BYTES")?.map_or(defaults.max_body_bytes, |n| n.max(0) as usize),
            max_clock_skew_secs: number("KAIROS_MAX_CLOCK_SKEW_SECS")?.unwrap_or(defaults.max_clock_skew_secs),
        })
    }

    /// The Lambda's settings: the `KAIROS_*` environment, filled in by the
    /// parameters under `KAIROS_SECRETS_PATH` (ingest's, so the API keys are
    /// the same), each `ssm:<name>` value resolved.
    pub async fn load(ssm: &aws_sdk_ssm::Client) -> Result<DecideConfig, ConfigError> {
        use kairos_store::{parameters_under, resolve_secret};
        let secret = |e: kairos_store::SecretError| ConfigError::Secret(e.to_string());
        let mut vars: std::collections::HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with("KAIROS_")).collect();
        if let Some(path) = vars.get("KAIROS_SECRETS_PATH").cloned() {
            for (name, value) in parameters_under(&path, ssm).await.map_err(secret)? {
                vars.entry(name).or_insert(value);
            }
        }
        for value in vars.values_mut() {
            *value = resolve_secret(value, ssm).await.map_err(secret)?;
        }
        DecideConfig::from_env(&|name| vars.get(name).cloned())
    }

    /// The rules: the file named by `KAIROS_RULES_FILE`, else the embedded example.
    pub fn rules(&self) -> Result<RuleSet, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "KAIROS_RULES_FILE",
            reason,
        };
        let text = match &self.rules_file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| invalid(format!("{path}: {e}")))?,
            None => crate::DEFAULT_RULES.to_string(),
        };
        RuleSet::from_yaml(&text).map_err(|e| invalid(e.to_string()))
    }
}
