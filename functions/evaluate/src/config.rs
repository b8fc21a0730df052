use kairos_rules::{RuleSet, RulesError};
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
}

/// Why the configuration is unusable; names the variable or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
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
