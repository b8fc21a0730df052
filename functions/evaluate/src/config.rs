use kairos_rules::RuleSet;
use kairos_state::MAX_CLOCK_SKEW_LIMIT_SECS;
use std::path::PathBuf;

/// The evaluate function's configuration: read from the environment in one
/// place, validated (the rules compiled) before anything is built.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KAIROS_TABLE`: the DynamoDB table holding contact records.
    pub table: String,
    /// `KAIROS_WRITEBACK_QUEUE_URL`: the SQS queue transitions are sent to.
    pub writeback_queue_url: String,
    /// `KAIROS_RULES_FILE` (optional): the rules file the segments come from;
    /// `None` for the embedded `rules/segments.yaml`.
    pub rules_file: Option<PathBuf>,
    /// The compiled segments, from that file: the rules in force until a
    /// published object's are read (with `rules_uri`).
    pub rules: RuleSet,
    /// `KAIROS_RULES_URI` (optional): `s3://bucket/key` of the published
    /// rules (`kairos rules publish`), re-read at most every
    /// `rules_refresh_secs`; `None`: the rules above, for good.
    pub rules_uri: Option<String>,
    /// `KAIROS_RULES_REFRESH_SECS` (optional): seconds between two reads of
    /// the published rules, 1 to 3600; default
    /// [`DEFAULT_REFRESH_SECS`](crate::DEFAULT_REFRESH_SECS).
    pub rules_refresh_secs: i64,
    /// `KAIROS_MAX_CLOCK_SKEW_SECS` (optional): events dated more than this
    /// ahead of the evaluation's clock are refused; default
    /// [`DEFAULT_MAX_CLOCK_SKEW_SECS`](kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS),
    /// at most [`MAX_CLOCK_SKEW_LIMIT_SECS`].
    pub max_clock_skew_secs: i64,
    /// `KAIROS_DUE_SHARDS` (optional): the due index's shard count, the same
    /// as the sweep function's; default [`kairos_store::DEFAULT_DUE_SHARDS`].
    pub due_shards: u32,
    /// `KAIROS_ARCHIVE_STREAM` (optional): the Firehose delivery stream the
    /// batch's events are archived to after the state write
    /// ([`archive_batch`](crate::archive_batch)); `None`: no archive.
    pub archive_stream: Option<String>,
    /// `KAIROS_AUDIT_TABLE` (optional): the table of the audit trail
    /// (`AuditTable` in the template), written with each record change;
    /// `None`: no audit trail is kept (the embedded demo keeps it in memory).
    pub audit_table: Option<String>,
    /// `KAIROS_AUDIT_RETENTION_DAYS` (optional): how long audit entries are
    /// kept, 1 to 3650 days; default [`kairos_store::DEFAULT_AUDIT_RETENTION_DAYS`].
    pub audit_retention_days: i64,
}

/// Why the configuration is unusable; names the variable (and the file).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable's value cannot be used: for `KAIROS_RULES_FILE`, the file
    /// cannot be read or does not compile (every problem listed).
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
        let rules_file = get("KAIROS_RULES_FILE").map(PathBuf::from);
        Ok(Config {
            table: required("KAIROS_TABLE")?,
            writeback_queue_url: required("KAIROS_WRITEBACK_QUEUE_URL")?,
            rules: rules(rules_file.as_deref())?,
            rules_file,
            max_clock_skew_secs: max_clock_skew(get("KAIROS_MAX_CLOCK_SKEW_SECS"))?,
            rules_uri: match get("KAIROS_RULES_URI") {
                None => None,
                Some(uri) => Some(rules_uri(uri)?),
            },
            rules_refresh_secs: refresh_secs(get("KAIROS_RULES_REFRESH_SECS"))?,
            due_shards: match get("KAIROS_DUE_SHARDS") {
                None => kairos_store::DEFAULT_DUE_SHARDS,
                Some(v) => kairos_store::parse_due_shards(&v).map_err(|reason| ConfigError::Invalid {
                    name: "KAIROS_DUE_SHARDS",
                    reason,
                })?,
            },
            archive_stream: get("KAIROS_ARCHIVE_STREAM").map(|v| v.trim().to_string()),
            audit_table: get("KAIROS_AUDIT_TABLE"),
            audit_retention_days: match get("KAIROS_AUDIT_RETENTION_DAYS") {
                None => kairos_store::DEFAULT_AUDIT_RETENTION_DAYS,
                Some(v) => kairos_store::parse_retention_days(&v).map_err(|reason| ConfigError::Invalid {
                    name: "KAIROS_AUDIT_RETENTION_DAYS",
                    reason,
                })?,
            },
        })
    }
}

/// `KAIROS_MAX_CLOCK_SKEW_SECS`: whole seconds from 0 to a day, or the default when unset.
fn max_clock_skew(value: Option<String>) -> Result<i64, ConfigError> {
    let Some(value) = value else {
        return Ok(kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS);
    };
    match value.trim().parse::<i64>() {
        Ok(secs) if (0..=MAX_CLOCK_SKEW_LIMIT_SECS).contains(&secs) => Ok(secs),
        _ => Err(ConfigError::Invalid {
            name: "KAIROS_MAX_CLOCK_SKEW_SECS",
            reason: format!("`{value}`: expected whole seconds from 0 to {MAX_CLOCK_SKEW_LIMIT_SECS}"),
        }),
    }
}

/// `KAIROS_RULES_URI`: `s3://bucket/key`.
fn rules_uri(uri: String) -> Result<String, ConfigError> {
    match kairos_store::parse_s3_uri(&uri) {
        Ok(_) => Ok(uri),
        Err(reason) => Err(ConfigError::Invalid {
            name: "KAIROS_RULES_URI",
            reason,
        }),
    }
}

/// `KAIROS_RULES_REFRESH_SECS`: 1 to 3600 seconds, or the default when unset.
fn refresh_secs(value: Option<String>) -> Result<i64, ConfigError> {
    let Some(value) = value else {
        return Ok(crate::DEFAULT_REFRESH_SECS);
    };
    match value.trim().parse::<i64>() {
        Ok(secs) if (1..=3600).contains(&secs) => Ok(secs),
        _ => Err(ConfigError::Invalid {
            name: "KAIROS_RULES_REFRESH_SECS",
            reason: format!("`{value}`: expected whole seconds from 1 to 3600"),
        }),
    }
}

/// Compiles the rules file at `path`, or the embedded default.
fn rules(path: Option<&std::path::Path>) -> Result<RuleSet, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "KAIROS_RULES_FILE",
        reason,
    };
    let Some(path) = path else {
        return RuleSet::from_yaml(crate::DEFAULT_RULES).map_err(|e| invalid(format!("the embedded rules: {e}")));
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    RuleSet::from_yaml(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))
}
