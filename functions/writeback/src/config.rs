use crate::file::{self, DestinationsFile, FileError};

/// The destinations file embedded at build time (`destinations.yaml`): the
/// signed webhook of `KAIROS_WEBHOOK_URL`, every segment.
pub const DEFAULT_DESTINATIONS: &str = include_str!("../../../destinations.yaml");

/// The write-back function's configuration: read from the environment (and
/// the destinations file it names) in one place, validated before anything
/// is built.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KAIROS_TABLE`: the DynamoDB table (delivery ledger, cached CRM ids,
    /// contact records for format-1 transitions).
    pub table: String,
    /// `KAIROS_WRITEBACK_QUEUE_URL`: the queue consumed, whose messages'
    /// redelivery is put off when a destination asks to wait.
    pub queue_url: String,
    /// `KAIROS_WRITEBACK_DLQ_URL`: where permanent failures go at once.
    pub dead_letter_url: String,
    /// The destinations: `KAIROS_DESTINATIONS_FILE` (a path), else the
    /// embedded default; `${VARIABLE}` references replaced from the environment.
    pub destinations: DestinationsFile,
}

/// Why the configuration is unusable; names the variable or the file's
/// problems, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// The destinations file cannot be read.
    #[error("cannot read destinations file {path}: {reason}")]
    Unreadable {
        /// The path given.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The destinations file is invalid.
    #[error("{source_name}: {error}")]
    Destinations {
        /// The file's path, or `embedded destinations.yaml`.
        source_name: String,
        /// Every problem.
        error: FileError,
    },
}

impl Config {
    /// Reads the variables through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let (source_name, text) = match get("KAIROS_DESTINATIONS_FILE") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                (path, text)
            }
            None => (
                "embedded destinations.yaml".to_string(),
                DEFAULT_DESTINATIONS.to_string(),
            ),
        };
        let destinations = file::interpolate(&text, |name| get(name))
            .and_then(|text| file::parse(&text, None))
            .map_err(|error| ConfigError::Destinations { source_name, error })?;
        Ok(Config {
            table: required("KAIROS_TABLE")?,
            queue_url: required("KAIROS_WRITEBACK_QUEUE_URL")?,
            dead_letter_url: required("KAIROS_WRITEBACK_DLQ_URL")?,
            destinations,
        })
    }

    /// An HTTP client with this timeout that follows no redirects: one per destination, built once.
    pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with a timeout and no redirects always builds")
    }
}
