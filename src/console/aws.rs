//! [`Aws`]: the console's state in the deployment, as the console function
//! builds it from its environment ([`AwsConfig`]).
//!
//! - contacts, the audit trail, the segment counters, the pinned index and
//!   the backfill's progress: the contacts table ([`DynamoContacts`]), as
//!   the evaluate function writes them; overrides go through the admin
//!   handler and their transitions to the write-back queue ([`SqsQueue`]);
//! - the rules: the versioned object `KAIROS_RULES_URI` as `kairos rules
//!   publish` writes it (who, why and `kairos-seq` as metadata). Each page
//!   reads the version in force (a `HEAD`); its text is fetched and compiled
//!   once per version. A publish is an S3 conditional write on the version
//!   the editor read ([`crate::publish::publish_read`]): a publish that raced
//!   another is refused. Re-deciding every contact after it is the sweep's
//!   backfill (the bucket's event starts it), not the console's request;
//! - the backtest's sample: the last day(s) of the event archive
//!   (`KAIROS_ARCHIVE`), bounded, read again at most every [`SAMPLE_TTL`].

use super::backend::{Backend, ConsoleError, Listed, Published, Sample, HISTORY};
use super::rules::{PublishError, Version};
use super::sample::{self, Bounds};
use crate::archive::Source;
use crate::publish;
use chrono::{DateTime, Utc};
use kairos_evaluate::{Config, ConfigError};
use kairos_rules::RuleSet;
use kairos_store::{DynamoContacts, SqsQueue};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The id of "nothing published yet" (the rules the functions start with).
pub const NOTHING_PUBLISHED: &str = "none";

/// How long a sample read from the archive is reused.
pub const SAMPLE_TTL: Duration = Duration::from_secs(300);

/// The console function's configuration, read once at start.
#[derive(Debug)]
pub struct AwsConfig {
    /// The evaluate function's variables (`KAIROS_TABLE`,
    /// `KAIROS_WRITEBACK_QUEUE_URL`, `KAIROS_DUE_SHARDS`, `KAIROS_AUDIT_TABLE`,
    /// `KAIROS_AUDIT_RETENTION_DAYS`, `KAIROS_RULES_FILE`): the same table,
    /// queue and rules the functions use.
    pub functions: Config,
    /// `KAIROS_RULES_URI` (required): `s3://bucket/key` of the published rules.
    pub rules_uri: String,
    /// `KAIROS_ARCHIVE` (optional): `s3://bucket/prefix` of the event archive,
    /// the backtest's sample; unset: backtests need an uploaded file.
    pub archive_uri: Option<String>,
    /// `KAIROS_CONSOLE_SAMPLE_DAYS` and `KAIROS_CONSOLE_SAMPLE_EVENTS`
    /// (optional): how much of the archive a sample reads (default 1 day,
    /// 10,000 events; at most 7 days, 100,000 events).
    pub sample: Bounds,
}

impl AwsConfig {
    /// Reads and validates the configuration through `var` (usually `std::env::var`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<AwsConfig, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let functions = Config::from_env(&var)?;
        let rules_uri = functions
            .rules_uri
            .clone()
            .ok_or(ConfigError::Missing("KAIROS_RULES_URI"))?;
        let archive_uri = match get("KAIROS_ARCHIVE") {
            Some(uri)
                if uri
                    .trim()
                    .strip_prefix("s3://")
                    .is_some_and(|r| !r.is_empty() && !r.starts_with('/')) =>
            {
                Some(uri.trim().to_string())
            }
            Some(uri) => {
                return Err(ConfigError::Invalid {
                    name: "KAIROS_ARCHIVE",
                    reason: format!("`{uri}`: expected s3://bucket/prefix"),
                })
            }
            None => None,
        };
        let bounded = |name: &'static str, default: usize, max: usize| match get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: format!("`{v}`: expected a whole number from 1 to {max}"),
                }),
            },
        };
        let days = bounded(
            "KAIROS_CONSOLE_SAMPLE_DAYS",
            sample::DEFAULT_SAMPLE_DAYS as usize,
            sample::MAX_SAMPLE_DAYS as usize,
        )?;
        let events = bounded(
            "KAIROS_CONSOLE_SAMPLE_EVENTS",
            sample::DEFAULT_SAMPLE_EVENTS,
            sample::MAX_SAMPLE_EVENTS,
        )?;
        Ok(AwsConfig {
            functions,
            rules_uri,
            archive_uri,
            sample: Bounds {
                days: days as u32,
                events,
            },
        })
    }
}

/// The console's state in DynamoDB, SQS and S3.
pub struct Aws {
    store: DynamoContacts,
    queue: SqsQueue,
    s3: aws_sdk_s3::Client,
    rules_uri: String,
    /// The rules in force while nothing is published (`KAIROS_RULES_FILE` or the embedded ones).
    initial: Arc<Version>,
    archive: Option<Source>,
    bounds: Bounds,
    /// The last version read, reused while it stays in force.
    version: Mutex<Option<Arc<Version>>>,
    /// The last sample read and when.
    sample: Mutex<Option<(Instant, Arc<Sample>)>>,
}

impl Aws {
    /// The console over the deployment `config` names, through these clients
    /// (`s3`: path-style on a local endpoint, `kairos_store::s3_client`).
    pub fn new(config: AwsConfig, aws: &aws_config::SdkConfig, s3: aws_sdk_s3::Client) -> Aws {
        let functions = config.functions;
        let mut store = DynamoContacts::new(aws_sdk_dynamodb::Client::new(aws), &functions.table)
            .with_due_shards(functions.due_shards);
        if let Some(audit) = &functions.audit_table {
            store = store.with_audit(audit, functions.audit_retention_days);
        }
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(aws), &functions.writeback_queue_url);
        // Validated by `AwsConfig::from_env` (an s3:// URI with a bucket), so it parses.
        let archive = config
            .archive_uri
            .as_deref()
            .and_then(|uri| Source::parse(uri, || s3.clone()).ok());
        // The configuration read and compiled the file already; its text is shown as written.
        let text = match &functions.rules_file {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => kairos_evaluate::DEFAULT_RULES.to_string(),
        };
        let initial = Version {
            id: NOTHING_PUBLISHED.into(),
            number: 0,
            at: DateTime::<Utc>::default(),
            by: "kairos".into(),
            message: "the rules the functions start with (nothing published yet)".into(),
            text,
            rules: functions.rules,
        };
        Aws {
            store,
            queue,
            s3,
            rules_uri: config.rules_uri,
            initial: Arc::new(initial),
            archive,
            bounds: config.sample,
            version: Mutex::new(None),
            sample: Mutex::new(None),
        }
    }

    /// The version in force: its `HEAD`, then its text (once per version).
    async fn read_current(&self) -> Result<Arc<Version>, String> {
        let (bucket, key) = kairos_store::parse_s3_uri(&self.rules_uri)?;
        let head = match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(head) => head,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
                return Ok(Arc::clone(&self.initial));
            }
            Err(err) => return Err(aws_sdk_s3::error::DisplayErrorContext(err).to_string()),
        };
        let id = head.version_id().unwrap_or("null").to_string();
        if let Some(cached) = lock(&self.version).as_ref().filter(|v| v.id == id) {
            return Ok(Arc::clone(cached));
        }
        let meta = |name: &str| head.metadata().and_then(|m| m.get(name)).cloned().unwrap_or_default();
        let at = head.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(0);
        let text = publish::text_of(&self.s3, &self.rules_uri, &id).await?;
        let rules = RuleSet::from_yaml(&text).map_err(|e| format!("version {id} does not compile: {e}"))?;
        let version = Arc::new(Version {
            number: meta(kairos_store::RULES_SEQ_METADATA)
                .parse()
                .unwrap_or(u64::try_from(at).unwrap_or(0)),
            at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            by: meta(publish::BY),
            message: meta(publish::MESSAGE),
            id,
            text,
            rules,
        });
        *lock(&self.version) = Some(Arc::clone(&version));
        Ok(version)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Backend for Aws {
    type Store = DynamoContacts;
    type Queue = SqsQueue;

    fn store(&self) -> &DynamoContacts {
        &self.store
    }

    fn queue(&self) -> &SqsQueue {
        &self.queue
    }

    fn clock(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn backfills(&self) -> bool {
        true
    }

    async fn current(&self) -> Result<Arc<Version>, ConsoleError> {
        self.read_current().await.map_err(ConsoleError::Rules)
    }

    async fn history(&self) -> Result<Vec<Listed>, ConsoleError> {
        let versions = publish::latest(&self.s3, &self.rules_uri, HISTORY).await;
        let versions = versions.map_err(ConsoleError::Rules)?;
        Ok(versions
            .into_iter()
            .map(|v| Listed {
                id: v.version,
                at: v.at,
                by: v.by,
                message: v.message,
            })
            .collect())
    }

    async fn text_of(&self, id: &str) -> Result<String, PublishError> {
        if id == NOTHING_PUBLISHED {
            return Ok(self.initial.text.clone());
        }
        publish::text_of(&self.s3, &self.rules_uri, id)
            .await
            .map_err(|_| PublishError::NoSuchVersion(id.to_string()))
    }

    async fn publish(&self, text: &str, by: &str, message: &str, base: &str) -> Result<Published, PublishError> {
        RuleSet::from_yaml(text).map_err(PublishError::Invalid)?;
        if message.trim().is_empty() {
            return Err(PublishError::NoMessage);
        }
        let uri = &self.rules_uri;
        let read = publish::read(&self.s3, uri).await.map_err(PublishError::Backend)?;
        let in_force = read.version.clone().unwrap_or_else(|| NOTHING_PUBLISHED.into());
        if in_force != base {
            return Err(PublishError::Conflict {
                read: base.to_string(),
                current: in_force,
            });
        }
        // Conditional on the ETag read: a publish between the read and the write is refused by S3.
        if let Err(err) = publish::publish_read(&self.s3, uri, text, by, message.trim(), &read).await {
            let now = publish::read(&self.s3, uri).await.map_err(PublishError::Backend)?;
            return Err(match now.version {
                Some(current) if Some(&current) != read.version.as_ref() => PublishError::Conflict {
                    read: base.to_string(),
                    current,
                },
                _ => PublishError::Backend(err),
            });
        }
        let version = self.read_current().await.map_err(PublishError::Backend)?;
        Ok(Published {
            version,
            redecided: None,
        })
    }

    async fn contact_count(&self) -> Option<u64> {
        None
    }

    async fn sample(&self) -> Result<Arc<Sample>, ConsoleError> {
        if let Some((at, sample)) = lock(&self.sample).as_ref() {
            if at.elapsed() < SAMPLE_TTL {
                return Ok(Arc::clone(sample));
            }
        }
        let Some(source) = &self.archive else {
            let none = "no events: the console has no archive (KAIROS_ARCHIVE); upload a JSON-lines file";
            return Ok(Arc::new(Sample::of(Vec::new(), none.into())));
        };
        let sample = sample::recent(source, Utc::now(), self.bounds).await;
        let sample = Arc::new(sample.map_err(ConsoleError::Archive)?);
        *lock(&self.sample) = Some((Instant::now(), Arc::clone(&sample)));
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<AwsConfig, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("KAIROS_TABLE", "contacts"),
            ("KAIROS_WRITEBACK_QUEUE_URL", "https://sqs.test/writeback"),
            ("KAIROS_RULES_URI", "s3://rules/segments.yaml"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            env.insert(k.to_string(), v.to_string());
        }
        AwsConfig::from_env(|name| env.get(name).cloned())
    }

    #[test]
    fn the_rules_uri_is_required_and_the_sample_is_bounded() {
        let plain = config(&[]).unwrap();
        assert_eq!(plain.sample, Bounds::default());
        assert_eq!(plain.archive_uri, None);
        assert!(matches!(
            config(&[("KAIROS_RULES_URI", "")]),
            Err(ConfigError::Missing("KAIROS_RULES_URI"))
        ));
        let archive = config(&[("KAIROS_ARCHIVE", "/tmp/events")]).unwrap_err();
        assert!(archive.to_string().contains("KAIROS_ARCHIVE"), "{archive}");
        assert!(config(&[("KAIROS_ARCHIVE", "s3://")]).is_err(), "a bucket is needed");
        let days = config(&[("KAIROS_CONSOLE_SAMPLE_DAYS", "30")]).unwrap_err();
        assert!(days.to_string().contains("from 1 to 7"), "{days}");
        let events = config(&[("KAIROS_CONSOLE_SAMPLE_EVENTS", "0")]).unwrap_err();
        assert!(events.to_string().contains("KAIROS_CONSOLE_SAMPLE_EVENTS"), "{events}");
        let set = config(&[
            ("KAIROS_ARCHIVE", "s3://archive/events/"),
            ("KAIROS_CONSOLE_SAMPLE_DAYS", "2"),
            ("KAIROS_CONSOLE_SAMPLE_EVENTS", "500"),
        ])
        .unwrap();
        assert_eq!(set.sample, Bounds { days: 2, events: 500 });
    }
}
