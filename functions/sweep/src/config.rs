use kairos_store::{parse_due_shards, DEFAULT_DUE_SHARDS};

/// Most contacts one run sends unless configured (`KAIROS_SWEEP_MAX_PER_RUN`).
pub const DEFAULT_MAX_PER_RUN: usize = 20_000;

/// The sweep function's configuration: read from the environment in one
/// place, validated before anything is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `KAIROS_TABLE`: the DynamoDB table holding contact records and its due index.
    pub table: String,
    /// `KAIROS_EVENTS_QUEUE_URL`: where sweep messages go (the evaluate function's queue).
    pub events_queue_url: String,
    /// `KAIROS_DUE_SHARDS` (optional): the due index's shard count, the same
    /// as the evaluate function's; default [`DEFAULT_DUE_SHARDS`], 1 to [`kairos_store::MAX_DUE_SHARDS`].
    pub due_shards: u32,
    /// `KAIROS_SWEEP_MAX_PER_RUN` (optional): most contacts one run sends;
    /// the rest wait for the next run. Default [`DEFAULT_MAX_PER_RUN`].
    pub max_per_run: usize,
    /// `KAIROS_RULES_URI` (optional, `s3://bucket/key`): the published rules;
    /// their "Object Created" event starts a backfill under the new version.
    pub rules_uri: Option<String>,
}

/// Why the configuration is unusable; names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable's value cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Config {
    /// Reads and validates the configuration through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        Ok(Config {
            table: required("KAIROS_TABLE")?,
            events_queue_url: required("KAIROS_EVENTS_QUEUE_URL")?,
            due_shards: match get("KAIROS_DUE_SHARDS") {
                None => DEFAULT_DUE_SHARDS,
                Some(v) => parse_due_shards(&v).map_err(|reason| ConfigError::Invalid {
                    name: "KAIROS_DUE_SHARDS",
                    reason,
                })?,
            },
            max_per_run: max_per_run(get("KAIROS_SWEEP_MAX_PER_RUN"))?,
            rules_uri: get("KAIROS_RULES_URI"),
        })
    }
}

/// The largest `KAIROS_SWEEP_MAX_PER_RUN`.
const MAX_PER_RUN_LIMIT: usize = 1_000_000;

/// `KAIROS_SWEEP_MAX_PER_RUN`: 1 to [`MAX_PER_RUN_LIMIT`], or the default when unset.
fn max_per_run(value: Option<String>) -> Result<usize, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_PER_RUN);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PER_RUN_LIMIT).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            name: "KAIROS_SWEEP_MAX_PER_RUN",
            reason: format!("`{value}`: expected a whole number from 1 to {MAX_PER_RUN_LIMIT}"),
        }),
    }
}
