use kairos_rules::{RuleSet, RulesError};
use kairos_state::MAX_CLOCK_SKEW_LIMIT_SECS;
use std::path::PathBuf;

/// The evaluate function's configuration, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `KAIROS_TABLE`: the DynamoDB table holding contact records.
    pub table: String,
    /// `KAIROS_WRITEBACK_QUEUE_URL`: the SQS queue transitions are sent to.
    pub writeback_queue_url: String,
    /// `KAIROS_RULES_FILE` (optional): a rules file to use instead of the embedded one.
    pub rules_file: Option<PathBuf>,
    /// `KAIROS_MAX_CLOCK_SKEW_SECS` (optional): events dated more than this
    /// ahead of the evaluation's clock are refused; default
    /// [`DEFAULT_MAX_CLOCK_SKEW_SECS`](kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS),
    /// at most [`MAX_CLOCK_SKEW_LIMIT_SECS`].
    pub max_clock_skew_secs: i64,
}

/// Why the configuration is unusable; names the variable or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// An environment variable holds a value out of its range.
    #[error("environment variable {name} is `{value}`: expected {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: String,
    },
    /// The rules file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The rules file does not compile.
    #[error("rules file {path} is invalid: {source}")]
    Rules {
        /// The file (or `(embedded)`).
        path: PathBuf,
        /// Every problem found.
        source: RulesError,
    },
}

impl Config {
    /// Reads the configuration through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |name: &'static str| var(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        Ok(Config {
            table: required("KAIROS_TABLE")?,
            writeback_queue_url: required("KAIROS_WRITEBACK_QUEUE_URL")?,
            rules_file: var("KAIROS_RULES_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
            max_clock_skew_secs: max_clock_skew(var("KAIROS_MAX_CLOCK_SKEW_SECS"))?,
        })
    }

    /// Compiles the configured rules file, or the embedded default.
    pub fn rules(&self) -> Result<RuleSet, ConfigError> {
        let (path, text) = match &self.rules_file {
            None => (
                PathBuf::from("(embedded rules/segments.yaml)"),
                crate::DEFAULT_RULES.to_string(),
            ),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                (path.clone(), text)
            }
        };
        RuleSet::from_yaml(&text).map_err(|source| ConfigError::Rules { path, source })
    }
}

/// `KAIROS_MAX_CLOCK_SKEW_SECS`: whole seconds from 0 to a day, or the default when unset.
fn max_clock_skew(value: Option<String>) -> Result<i64, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS);
    };
    match value.trim().parse::<i64>() {
        Ok(secs) if (0..=MAX_CLOCK_SKEW_LIMIT_SECS).contains(&secs) => Ok(secs),
        _ => Err(ConfigError::Invalid {
            name: "KAIROS_MAX_CLOCK_SKEW_SECS",
            value,
            expected: format!("whole seconds from 0 to {MAX_CLOCK_SKEW_LIMIT_SECS}"),
        }),
    }
}
