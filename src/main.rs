//! `kairos`: the command line. `kairos demo` runs the whole pipeline in one
//! process on in-memory adapters and prints a readable timeline.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Kairos: real-time segment decisions from behavioural signals.
#[derive(Debug, Parser)]
#[command(name = "kairos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run ingest → evaluate → write-back in memory over a sample event set and
    /// print the timeline: events, segment entries/exits with explanations, and
    /// the write-back requests. No AWS account, server or network needed.
    Demo {
        /// Rules file (YAML or JSON). Default: the embedded rules/segments.yaml.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Canonical events, one JSON object per line. Default: the embedded
        /// events/demo/events.jsonl.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Destinations file: the requests each destination would receive are
        /// shown (dry run). Default: the embedded events/demo/destinations.yaml.
        #[arg(long)]
        destinations: Option<PathBuf>,
    },
    /// Serve the marketer's console (segments, contacts, overrides, rules:
    /// validate, backtest, publish) on 127.0.0.1 over the embedded default:
    /// the demo's events and rules played into memory. Prints the URL.
    Console {
        /// The loopback address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: std::net::SocketAddr,
        /// Rules file (YAML or JSON). Default: the embedded rules/segments.yaml.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Canonical events, one JSON object per line. Default: the embedded events/demo/events.jsonl.
        #[arg(long)]
        events: Option<PathBuf>,
    },
    /// Check or describe a write-back destinations file.
    Destinations {
        #[command(subcommand)]
        command: DestinationsCommand,
    },
    /// Inspect the write-back dead-letter queue, or send its messages back.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Check or describe a rules file.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Backtest: replay canonical events (JSON lines; any order, duplicates
    /// allowed) through the engine in memory and print one JSON line per
    /// contact, sorted by contact: {"contact", "segments", "next_change_at"}.
    /// The events come from a file (--events) or from the event archive
    /// (--archive, read day by day; --since, --until).
    /// Exits 1 if some input lines were not valid events (reported on stderr).
    Replay {
        /// The rules file (YAML or JSON).
        #[arg(long)]
        rules: PathBuf,
        /// Canonical events, one JSON object per line.
        #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
        events: Option<PathBuf>,
        /// Evaluate as of this time (RFC 3339; default: the latest event's time).
        #[arg(long, conflicts_with = "archive")]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Add each segment's explanation.
        #[arg(long)]
        explain: bool,
        /// Human overrides to play among the events, one JSON object per line:
        /// {"contact", "segment", "member": true|false|null, "reason", "actor",
        /// "at", "expires_at"?} (docs/governance.md).
        #[arg(long, conflicts_with = "archive")]
        overrides: Option<PathBuf>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Recompute contact states from the event archive into a table (after a
    /// bug; runbook: docs/rebuild.md): each record written above its stored
    /// version, conditioned on it. Prints {"objects", "events", "contacts",
    /// "conflicts", "rejected"}.
    Rebuild {
        /// The rules in force (YAML or JSON): the published version's file.
        #[arg(long)]
        rules: PathBuf,
        /// The DynamoDB table to write (the live one, or a new one of the template's schema).
        #[arg(long)]
        table: String,
        /// The table's due-index shard count (the template's DueShards).
        #[arg(long, env = "KAIROS_DUE_SHARDS", default_value_t = kairos_store::DEFAULT_DUE_SHARDS)]
        due_shards: u32,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Decide a send for one contact as `POST /v1/decide` would on this history
    /// of canonical events (JSON lines), as of `--at` (default: the latest
    /// event's time): prints {"send", "reason", "explanation", "decision_id"}.
    Decide {
        /// The rules file (YAML or JSON) with the sequences.
        #[arg(long)]
        rules: PathBuf,
        /// Canonical events, one JSON object per line: the contact's state, its
        /// sequence sends (`email.sent` with a template id of the rules) and everyone's goals.
        #[arg(long)]
        events: PathBuf,
        /// The contact key.
        #[arg(long)]
        contact: String,
        /// Decide as of this time (RFC 3339; default: the latest event's time).
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// The channel.
        #[arg(long, default_value = "email")]
        channel: String,
        /// Seed the variant choice (default: derived from the decision id, as the API does).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Send-time sequences on a history of events.
    Sequences {
        #[command(subcommand)]
        command: SequencesCommand,
    },
    /// Verify and normalize one provider webhook body as the ingest function
    /// would: print its canonical events as JSON lines and exit 0, or exit 1
    /// with the error (bad signature, stale timestamp, malformed payload, or
    /// the items that were rejected) on stderr.
    Normalize {
        /// The provider, as in /webhooks/<name> (sendgrid, mailgun, ...).
        #[arg(long)]
        provider: String,
        /// A request header as received, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The provider's shared secret (signing key, token, user:password; for ses the SNS topic ARN).
        #[arg(long)]
        secret: Option<String>,
        /// The provider's public verification key (sendgrid).
        #[arg(long)]
        public_key: Option<String>,
        /// The webhook URL as configured at the provider (mandrill signs it).
        #[arg(long)]
        url: Option<String>,
        /// The `user:password` of the webhook URL (mailgun's second factor; give the
        /// request's Authorization header with --header).
        #[arg(long)]
        basic_auth: Option<String>,
        /// Check timestamps as of this unix time (default: now).
        #[arg(long)]
        now: Option<i64>,
        /// Parse without checking the signature or credential (for unsigned samples).
        #[arg(long)]
        skip_verify: bool,
        /// The request body file, bytes exactly as sent.
        body: PathBuf,
    },
    /// Print the hash that stands for a contact key in the functions' logs
    /// (the key is normalized first, as ingest does), with the key in
    /// KAIROS_LOG_HASH_KEY: what to search the logs for.
    LogHash {
        /// The contact key or email address.
        contact: String,
    },
    /// Create the table and queues of infra/template.yaml on a local endpoint
    /// (moto server), and the local webhook's secret parameter, and print them
    /// as KEY=value lines for the functions' environment. Used by `make watch`.
    LocalInfra {
        /// The endpoint speaking the DynamoDB and SQS protocols.
        #[arg(long, default_value = "http://127.0.0.1:5005")]
        endpoint: String,
    },
    /// Pass messages from the template's queues on a local endpoint to the
    /// functions in `cargo lambda watch`, as Lambda's SQS event source
    /// mappings do (batch size, batching window, ReportBatchItemFailures;
    /// successes deleted, failures left for redelivery). Used by `make watch`.
    LocalPoll {
        /// The endpoint speaking SQS (moto server).
        #[arg(long, default_value = "http://127.0.0.1:5005")]
        endpoint: String,
        /// The runtime emulator's invoke address (`cargo lambda watch`).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke: String,
    },
    /// Receive write-back's webhook on 127.0.0.1: verify each delivery's
    /// Standard Webhooks signature and print it readably. Used by `make watch`.
    LocalReceive {
        /// The port on 127.0.0.1 (the path is /kairos).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// The signing secret (whsec_...): default, the local one `kairos local-infra` stores.
        #[arg(long, env = "KAIROS_LOCAL_WEBHOOK_SECRET", default_value = kairos::local::LOCAL_WEBHOOK_SECRET, hide_default_value = true)]
        secret: String,
    },
    /// Print a stored contact as JSON: memberships, next change, consent,
    /// traits, signals (named as the rules count them, with counts over the
    /// last 24 hours, 7 and 30 days), version. Exits 1 if there is none.
    Inspect {
        /// The DynamoDB endpoint (e.g. `make watch`'s http://127.0.0.1:5005,
        /// with dummy credentials); default: AWS as configured in the environment.
        #[arg(long)]
        endpoint: Option<String>,
        /// The table (the stack's table name; KairosTable locally).
        #[arg(long, env = "KAIROS_TABLE")]
        table: String,
        /// The rules file that names the signals (default: the embedded rules/segments.yaml).
        #[arg(long, env = "KAIROS_RULES_FILE")]
        rules: Option<PathBuf>,
        /// The contact key or email address.
        contact: String,
    },
    /// Erase a contact (docs/governance.md): its record becomes a tombstone
    /// that drops its late events for the window, its linked anonymous
    /// records, kept consent, audit trail, delivery-ledger and cache entries
    /// are deleted, destinations are told it left every segment (through the
    /// write-back queue), and one receipt is kept under a salted hash of the
    /// key. Prints what was done as JSON; exits 1 if there is no such contact.
    Erase {
        /// The AWS endpoint (moto or `make watch`'s); default: AWS as configured.
        #[arg(long)]
        endpoint: Option<String>,
        /// The contacts table.
        #[arg(long, env = "KAIROS_TABLE")]
        table: String,
        /// The audit table (the receipt goes there; the trail is deleted from it).
        #[arg(long, env = "KAIROS_AUDIT_TABLE")]
        audit_table: String,
        /// The write-back queue the exits are sent to.
        #[arg(long, env = "KAIROS_WRITEBACK_QUEUE_URL")]
        queue_url: String,
        /// The rules in force (their versions go on the exits; default: the embedded ones).
        #[arg(long, env = "KAIROS_RULES_FILE")]
        rules: Option<PathBuf>,
        /// The receipt hash's salt, or `ssm:<parameter>` (never printed).
        #[arg(long, env = "KAIROS_ERASURE_SALT", hide_env_values = true)]
        salt: String,
        /// Days the tombstone drops late events (1 to 3650).
        #[arg(long, env = "KAIROS_ERASURE_WINDOW_DAYS", default_value_t = kairos_engine::erasure::DEFAULT_WINDOW_DAYS, value_parser = |v: &str| kairos_engine::erasure::parse_window_days(v))]
        window_days: i64,
        /// Who erases (recorded on the receipt).
        #[arg(long)]
        actor: String,
        /// The contact key or email address.
        contact: String,
    },
    /// Write the sample Lambda events of `events/` (ingest-sendgrid.json,
    /// ingest-events.json, evaluate-sqs.json, writeback-sqs.json) for the
    /// current time, so they are never stale; the SendGrid one signed with the
    /// local test key (NOT FOR PRODUCTION). `make watch` runs it.
    Samples {
        /// The folder to write them to.
        #[arg(long, default_value = "events")]
        out: PathBuf,
        /// Date them as of this time instead of now (RFC 3339).
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, Subcommand)]
enum SequencesCommand {
    /// The bias check, as JSON: per content variant (and per segment) sends,
    /// goals and goal rate, and the holdout group against everyone else.
    Report {
        /// The rules file (YAML or JSON) with the sequences.
        #[arg(long)]
        rules: PathBuf,
        /// Canonical events, one JSON object per line.
        #[arg(long)]
        events: PathBuf,
        /// Report as of this time (RFC 3339; default: the latest event's time).
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Compile a rules file: exit 0, or 1 with every problem (segment, field path, what was expected).
    Validate {
        /// The rules file (YAML or JSON).
        file: PathBuf,
    },
    /// Print the JSON Schema of rules files, for editor autocompletion.
    Schema,
    /// Validate a rules file, then publish it to the versioned bucket the
    /// evaluate function reads (KAIROS_RULES_URI); prints the new version id.
    Publish {
        /// The rules file (YAML or JSON).
        file: PathBuf,
        /// Where: s3://bucket/key (the template's `RulesUri` output).
        #[arg(long)]
        uri: String,
        /// Why, recorded with the version.
        #[arg(long, short, default_value = "")]
        message: String,
        /// Who, recorded with the version. Default: $USER.
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
        /// First show who the file would move in and out of each segment on
        /// the archive's history (as `rules diff` from the rules published
        /// now), then ask for confirmation.
        #[arg(long, requires = "archive")]
        backtest: bool,
        /// Publish after the backtest without asking.
        #[arg(long, requires = "backtest")]
        yes: bool,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Who a rules change would move: replays the archive's events under OLD
    /// and NEW and prints, per segment, one JSON line {"segment", "old",
    /// "new", "entering", "leaving", "examples": [{"contact", "change",
    /// "old", "new"}]} (member counts; examples with both explanations).
    Diff {
        /// The rules in force (YAML or JSON).
        old: PathBuf,
        /// The changed rules.
        new: PathBuf,
        /// Example contacts listed per change.
        #[arg(long, default_value_t = kairos::diff::DEFAULT_EXAMPLES)]
        examples: usize,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// List the published versions, newest first: one JSON object a line
    /// {"version", "at", "by", "message", "fingerprint", "latest"}.
    History {
        /// s3://bucket/key.
        #[arg(long)]
        uri: String,
    },
    /// Republish an older version as the newest (validated again); prints the new version id.
    Rollback {
        /// s3://bucket/key.
        #[arg(long)]
        uri: String,
        /// The version id to bring back (from `history`).
        #[arg(long)]
        to: String,
        /// Who, recorded with the version. Default: $USER.
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
enum DestinationsCommand {
    /// Read a destinations file (`${VARIABLE}`s from the environment): exit 0,
    /// or 1 with every problem (field path, what was expected).
    Validate {
        /// The destinations file (YAML or JSON).
        file: PathBuf,
        /// A rules file: segment ids it does not define are problems.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Print the JSON Schema of destinations files, for editor autocompletion.
    Schema,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Print dead letters as JSON lines (id, destination, reason, contact, segment, version), leaving them there.
    Show {
        /// The write-back dead-letter queue's URL (the stack's WritebackDeadLetterQueueUrl output).
        #[arg(long, env = "KAIROS_WRITEBACK_DLQ_URL")]
        dlq: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Send dead letters back to the write-back queue (after a fix); each is
    /// written again only to the destination it failed at.
    Redrive {
        /// The write-back dead-letter queue's URL.
        #[arg(long, env = "KAIROS_WRITEBACK_DLQ_URL")]
        dlq: String,
        /// The write-back queue's URL (the stack's WritebackQueueUrl output).
        #[arg(long, env = "KAIROS_WRITEBACK_QUEUE_URL")]
        queue: String,
        /// Only the dead letters of this destination.
        #[arg(long)]
        destination: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
    },
}

fn destinations(command: DestinationsCommand) -> Result<(), String> {
    match command {
        DestinationsCommand::Validate { file, rules } => {
            let known = match rules {
                Some(path) => {
                    let rules = kairos_rules::RuleSet::from_yaml(&read(&path)?)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Some(rules.segments().map(|s| s.id.to_string()).collect::<Vec<_>>())
                }
                None => None,
            };
            let known: Option<Vec<&str>> = known.as_ref().map(|ids| ids.iter().map(String::as_str).collect());
            let text = read(&file)?;
            let parsed = kairos_writeback::file::interpolate(&text, |name| std::env::var(name).ok())
                .and_then(|text| kairos_writeback::file::parse(&text, known.as_deref()))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let names: Vec<String> = parsed
                .destinations
                .iter()
                .map(|d| format!("{} ({})", d.name(), d.kind()))
                .collect();
            println!(
                "{}: ok, {} destination{}: {}",
                file.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            Ok(())
        }
        DestinationsCommand::Schema => {
            let schema = kairos_writeback::destinations_schema();
            println!("{}", serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?);
            Ok(())
        }
    }
}

async fn dlq(command: DlqCommand) -> Result<(), String> {
    let sqs = aws_sdk_sqs::Client::new(&kairos_store::sdk::load_with_sdk_defaults().await);
    match command {
        DlqCommand::Show { dlq, max } => {
            for letter in kairos::dlq::show(&sqs, &dlq, max).await.map_err(|e| e.to_string())? {
                println!("{letter}");
            }
        }
        DlqCommand::Redrive {
            dlq,
            queue,
            destination,
            max,
        } => {
            let moved = kairos::dlq::redrive(&sqs, &dlq, &queue, destination.as_deref(), max)
                .await
                .map_err(|e| e.to_string())?;
            println!("{moved} message(s) sent back to the write-back queue");
        }
    }
    Ok(())
}

async fn rules(command: RulesCommand) -> Result<(), String> {
    match command {
        RulesCommand::Validate { file } => {
            let text = read(&file)?;
            let rules = kairos_rules::RuleSet::from_yaml(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let n = rules.segments().count();
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            // Sequences, when the file has any.
            let q = rules.sequences().len();
            let sequences = match q {
                0 => String::new(),
                q => format!(", {q} sequence{}", plural(q)),
            };
            println!("{}: ok, {n} segment{}{sequences}", file.display(), plural(n));
            for warning in rules.warnings() {
                eprintln!("{}: warning: {warning}", file.display());
            }
            Ok(())
        }
        RulesCommand::Schema => {
            let schema = kairos_rules::RuleSet::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?);
            Ok(())
        }
        RulesCommand::Diff {
            old,
            new,
            examples,
            archive,
        } => print_diff(&load_rules(&old)?, &load_rules(&new)?, &archive, examples).await,
        published => publish(published).await,
    }
}

/// `kairos rules publish|history|rollback`.
async fn publish(command: RulesCommand) -> Result<(), String> {
    use kairos::publish;
    let s3 = publish::client().await;
    match command {
        RulesCommand::Publish {
            file,
            uri,
            message,
            by,
            backtest,
            yes,
            archive,
        } => {
            let text = read(&file)?;
            // The version in force now: the upload is conditional on it (a publish in between refuses this one).
            let base = publish::read(&s3, &uri).await?;
            if backtest {
                let current = published_rules(&s3, &uri).await?;
                let changed = load_rules(&file)?;
                print_diff(&current, &changed, &archive, kairos::diff::DEFAULT_EXAMPLES).await?;
                if !yes && !confirm(&format!("publish {} to {uri}?", file.display()))? {
                    return Err("not published".to_string());
                }
            }
            let version = publish::publish_read(&s3, &uri, &text, &by, &message, &base)
                .await
                .map_err(|e| format!("{}: {e}", file.display()))?;
            println!("{version}");
        }
        RulesCommand::History { uri } => {
            for v in publish::history(&s3, &uri).await? {
                println!("{}", serde_json::to_string(&v).map_err(|e| e.to_string())?);
            }
        }
        RulesCommand::Rollback { uri, to, by } => println!("{}", publish::rollback(&s3, &uri, &to, &by).await?),
        RulesCommand::Validate { .. } | RulesCommand::Schema | RulesCommand::Diff { .. } => {}
    }
    Ok(())
}

/// The rules published at `uri` now; the embedded rules if none are.
async fn published_rules(s3: &aws_sdk_s3::Client, uri: &str) -> Result<kairos_rules::RuleSet, String> {
    use kairos_store::RulesObject;
    let object = kairos_store::S3Rules::new(s3.clone(), uri)?;
    let text = match object.fetch(None).await.map_err(|e| format!("reading {uri}: {e}"))? {
        kairos_store::Fetched::Object { text, .. } => text,
        _ => kairos_evaluate::DEFAULT_RULES.to_string(),
    };
    kairos_rules::RuleSet::from_yaml(&text).map_err(|e| format!("the rules published at {uri}: {e}"))
}

/// Prints `rules diff`'s lines for OLD and NEW on the archive.
async fn print_diff(
    old: &kairos_rules::RuleSet,
    new: &kairos_rules::RuleSet,
    archive: &ArchiveArgs,
    examples: usize,
) -> Result<(), String> {
    let (source, window) = archive.open().await?.ok_or("give --archive (or KAIROS_ARCHIVE)")?;
    let (segments, read) = kairos::diff::diff_archive(old, new, &source, window, examples).await?;
    let mut stdout = std::io::stdout().lock();
    for segment in &segments {
        let line = serde_json::to_string(segment).map_err(|e| e.to_string())?;
        writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
    }
    for reason in &read.rejected {
        eprintln!("kairos: the archive: {reason}");
    }
    eprintln!(
        "kairos: {} event(s) from {} object(s) of the archive",
        read.events, read.objects
    );
    Ok(())
}

/// Asks `question` on stderr; true for an answer starting with y.
fn confirm(question: &str) -> Result<bool, String> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.trim().to_ascii_lowercase().starts_with('y'))
}

/// Where and which part of the event archive to read (README, "Event archive").
#[derive(Debug, clap::Args)]
struct ArchiveArgs {
    /// The event archive: s3://bucket/prefix (the stack's ArchiveUri output) or a folder.
    #[arg(long, env = "KAIROS_ARCHIVE")]
    archive: Option<String>,
    /// The earliest event read: a duration back from now (30d, 12h) or an RFC 3339 time.
    #[arg(long, requires = "archive")]
    since: Option<String>,
    /// The latest event read, and the evaluation time (default: the latest event's time).
    #[arg(long, requires = "archive")]
    until: Option<String>,
}

impl ArchiveArgs {
    /// The archive's source and window; `None` without `--archive`.
    async fn open(&self) -> Result<Option<(kairos::archive::Source, kairos::archive::Window)>, String> {
        let Some(uri) = &self.archive else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        let time = |t: &Option<String>| t.as_deref().map(|t| kairos::archive::parse_time(t, now)).transpose();
        let window = kairos::archive::Window {
            since: time(&self.since).map_err(|e| format!("--since {e}"))?,
            until: time(&self.until).map_err(|e| format!("--until {e}"))?,
        };
        let s3 = kairos::publish::client().await;
        Ok(Some((kairos::archive::Source::parse(uri, || s3)?, window)))
    }
}

async fn replay(
    rules: &PathBuf,
    events: Option<&PathBuf>,
    overrides: Option<&PathBuf>,
    archive: &ArchiveArgs,
    at: Option<chrono::DateTime<chrono::Utc>>,
    explain: bool,
) -> Result<(), String> {
    let rules = load_rules(rules)?;
    let overrides = overrides.map(read_bytes).transpose()?.unwrap_or_default();
    let (out, origin) = match (events, archive.open().await?) {
        (Some(events), _) => (
            kairos::replay::replay_with_overrides(&rules, &read_bytes(events)?, &overrides, at, explain),
            events.display().to_string(),
        ),
        (None, Some((source, window))) => (
            kairos::replay::replay_archive(&rules, &source, window, explain).await?,
            "the archive".to_string(),
        ),
        (None, None) => return Err("give --events or --archive".to_string()),
    };
    let mut stdout = std::io::stdout().lock();
    for line in &out.lines {
        writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
    }
    for reason in &out.rejected {
        eprintln!("kairos: {origin}: {reason}");
    }
    match out.rejected.len() {
        0 => Ok(()),
        n => Err(format!("{n} line(s) of {origin} were not valid events")),
    }
}

async fn rebuild(rules: &PathBuf, table: &str, due_shards: u32, archive: &ArchiveArgs) -> Result<(), String> {
    let rules = load_rules(rules)?;
    let (source, window) = archive.open().await?.ok_or("give --archive (or KAIROS_ARCHIVE)")?;
    let aws = kairos_store::sdk::load_with_sdk_defaults().await;
    let store =
        kairos_store::DynamoContacts::new(aws_sdk_dynamodb::Client::new(&aws), table).with_due_shards(due_shards);
    let done = kairos::rebuild::rebuild(&rules, &source, window, &store, chrono::Utc::now()).await?;
    println!("{}", serde_json::to_string(&done).map_err(|e| e.to_string())?);
    Ok(())
}

fn load_rules(path: &PathBuf) -> Result<kairos_rules::RuleSet, String> {
    kairos_rules::RuleSet::from_yaml(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn played_json(
    rules: &PathBuf,
    events: &PathBuf,
    at: Option<chrono::DateTime<chrono::Utc>>,
    answer: impl FnOnce(&kairos::sequences::Played) -> Result<serde_json::Value, String>,
) -> Result<(), String> {
    let rules = load_rules(rules)?;
    let played = kairos::sequences::play(&rules, &read_bytes(events)?, at);
    for reason in &played.rejected {
        eprintln!("kairos: {}: {reason}", events.display());
    }
    println!("{}", answer(&played)?);
    match played.rejected.len() {
        0 => Ok(()),
        n => Err(format!("{n} line(s) of {} were not valid events", events.display())),
    }
}

async fn normalize(input: Result<kairos::normalize::Input, String>) -> Result<(), String> {
    let parsed = kairos::normalize::normalize(&input?).await?;
    let mut stdout = std::io::stdout().lock();
    for event in &parsed.events {
        writeln!(stdout, "{}", event.to_json()).map_err(|e| e.to_string())?;
    }
    for r in &parsed.rejected {
        eprintln!("kairos: item {}: {}", r.index, r.error);
    }
    match parsed.rejected.len() {
        0 => Ok(()),
        n => Err(format!("{n} item(s) rejected")),
    }
}

async fn local_infra(endpoint: &str) -> Result<(), String> {
    let config = kairos::local::sdk_config(endpoint).await;
    let infra = kairos::local::create(&config).await.map_err(|e| e.to_string())?;
    println!("KAIROS_TABLE={}", infra.table);
    println!(
        "KAIROS_AUDIT_TABLE={}",
        infra.tables.get("AuditTable").map_or("", String::as_str)
    );
    println!("KAIROS_EVENTS_QUEUE_URL={}", infra.queue("EventsQueue"));
    println!("KAIROS_WRITEBACK_QUEUE_URL={}", infra.queue("WritebackQueue"));
    println!("KAIROS_WRITEBACK_DLQ_URL={}", infra.queue("WritebackDeadLetterQueue"));
    kairos::local::put_local_secrets(&config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn demo(rules: Option<PathBuf>, events: Option<PathBuf>, destinations: Option<PathBuf>) -> Result<(), String> {
    let or = |path: Option<PathBuf>, default: &str| path.as_ref().map_or(Ok(default.to_string()), read);
    let rules = or(rules, kairos_evaluate::DEFAULT_RULES)?;
    let events = or(events, kairos::demo::DEFAULT_EVENTS)?;
    let destinations = or(destinations, kairos::demo::DEFAULT_DESTINATIONS)?;
    let out = &mut std::io::stdout().lock();
    kairos::demo::run(&rules, &events, &destinations, out).await.map(|_| ())
}

async fn samples(out: &std::path::Path, at: Option<chrono::DateTime<chrono::Utc>>) -> Result<(), String> {
    let samples = kairos::samples::generate(at.unwrap_or_else(chrono::Utc::now))
        .await
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for sample in samples {
        let path = out.join(sample.file);
        let text = serde_json::to_string_pretty(&sample.payload).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "{}  (cargo lambda invoke {} --data-file {})",
            path.display(),
            sample.function,
            path.display()
        );
    }
    Ok(())
}

/// Prints a line to stdout at once (`make watch` interleaves several programs).
fn printer() -> kairos::local::receive::Printer {
    std::sync::Arc::new(|line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
}

async fn local_poll(endpoint: &str, invoke: &str) -> Result<(), String> {
    let config = kairos::local::sdk_config(endpoint).await;
    kairos::local::poll::run(&config, invoke.trim_end_matches('/'), printer())
        .await
        .map_err(|e| e.to_string())
}

async fn local_receive(port: u16, secret: &str) -> Result<(), String> {
    let key = kairos_writeback::secret_bytes(secret)
        .ok_or("the receiver's secret is not a whsec_ base64 key of 16 bytes or more")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    printer()(format!("receiver: listening on http://127.0.0.1:{port}/kairos"));
    kairos::local::receive::serve(listener, key, printer())
        .await
        .map_err(|e| e.to_string())
}

async fn inspect(endpoint: Option<String>, table: &str, rules: Option<PathBuf>, contact: &str) -> Result<(), String> {
    let rules_text = rules
        .as_ref()
        .map_or(Ok(kairos_evaluate::DEFAULT_RULES.to_string()), read)?;
    let rules = kairos_rules::RuleSet::from_yaml(&rules_text).map_err(|e| format!("rules: {e}"))?;
    let config = match endpoint {
        Some(endpoint) => kairos::local::sdk_config(&endpoint).await,
        None => kairos_store::sdk::load_with_sdk_defaults().await,
    };
    let store = kairos_store::DynamoContacts::new(aws_sdk_dynamodb::Client::new(&config), table);
    let shown = kairos::inspect::inspect(&store, &rules, contact, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn erase(
    endpoint: Option<String>,
    table: &str,
    audit_table: &str,
    queue_url: &str,
    rules: Option<PathBuf>,
    salt: &str,
    window_days: i64,
    actor: &str,
    contact: &str,
) -> Result<(), String> {
    let rules_text = rules
        .as_ref()
        .map_or(Ok(kairos_evaluate::DEFAULT_RULES.to_string()), read)?;
    let rules = kairos_rules::RuleSet::from_yaml(&rules_text).map_err(|e| format!("rules: {e}"))?;
    let done = kairos::erase::run(
        endpoint,
        table,
        audit_table,
        queue_url,
        &rules,
        contact,
        actor,
        salt,
        window_days,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&done).map_err(|e| e.to_string())?);
    Ok(())
}

fn log_hash(contact: &str) -> Result<(), String> {
    let key = std::env::var("KAIROS_LOG_HASH_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .ok_or("set KAIROS_LOG_HASH_KEY to the functions' log hash key")?;
    let contact = kairos_event::key::normalize_contact(contact).map_err(|e| format!("the contact {e}"))?;
    println!("{}", kairos_event::log::hash_with(key.trim().as_bytes(), &contact));
    Ok(())
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_bytes(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `kairos console`: the local console has no sign-in, so it listens on loopback only.
async fn console(addr: std::net::SocketAddr, rules: Option<PathBuf>, events: Option<PathBuf>) -> Result<(), String> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--addr {addr}: the local console has no sign-in; listen on a loopback address (127.0.0.1)"
        ));
    }
    let text = |path: Option<PathBuf>, default: &str| match path {
        Some(p) => read(&p),
        None => Ok(default.to_string()),
    };
    let rules = text(rules, kairos_evaluate::DEFAULT_RULES)?;
    let events = text(events, kairos::demo::DEFAULT_EVENTS)?;
    let console = kairos::console::Console::new(&rules, &events).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let url = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "Kairos console: http://{url}/ (clock {}; Ctrl-C stops it)",
        console.clock()
    );
    kairos::console::serve(listener, std::sync::Arc::new(console))
        .await
        .map_err(|e| format!("serving: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            rules,
            events,
            destinations,
        } => demo(rules, events, destinations).await,
        Command::Console { addr, rules, events } => console(addr, rules, events).await,
        Command::Destinations { command } => destinations(command),
        Command::Dlq { command } => dlq(command).await,
        Command::Rules { command } => rules(command).await,
        Command::Replay {
            rules,
            events,
            at,
            explain,
            overrides,
            archive,
        } => replay(&rules, events.as_ref(), overrides.as_ref(), &archive, at, explain).await,
        Command::Rebuild {
            rules,
            table,
            due_shards,
            archive,
        } => rebuild(&rules, &table, due_shards, &archive).await,
        Command::Decide {
            rules,
            events,
            contact,
            at,
            channel,
            seed,
        } => played_json(&rules, &events, at, |p| p.decide(&contact, &channel, seed)),
        Command::Sequences {
            command: SequencesCommand::Report { rules, events, at },
        } => played_json(&rules, &events, at, |p| Ok(p.report())),
        Command::Normalize {
            provider,
            headers,
            secret,
            public_key,
            url,
            basic_auth,
            now,
            skip_verify,
            body,
        } => {
            let input = read_bytes(&body).map(|body| kairos::normalize::Input {
                provider,
                headers,
                settings: kairos_ingest::providers::Settings {
                    secret,
                    public_key,
                    url,
                    basic_auth,
                    replay_window_secs: kairos_ingest::DEFAULT_REPLAY_WINDOW_SECS,
                },
                now: now.unwrap_or_else(|| chrono::Utc::now().timestamp()),
                max_clock_skew_secs: kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS,
                skip_verify,
                body,
            });
            normalize(input).await
        }
        Command::LogHash { contact } => log_hash(&contact),
        Command::LocalInfra { endpoint } => local_infra(&endpoint).await,
        Command::LocalPoll { endpoint, invoke } => local_poll(&endpoint, &invoke).await,
        Command::LocalReceive { port, secret } => local_receive(port, &secret).await,
        Command::Inspect {
            endpoint,
            table,
            rules,
            contact,
        } => inspect(endpoint, &table, rules, &contact).await,
        Command::Samples { out, at } => samples(&out, at).await,
        Command::Erase {
            endpoint,
            table,
            audit_table,
            queue_url,
            rules,
            salt,
            window_days,
            actor,
            contact,
        } => {
            erase(
                endpoint,
                &table,
                &audit_table,
                &queue_url,
                rules,
                &salt,
                window_days,
                &actor,
                &contact,
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kairos: {message}");
            ExitCode::FAILURE
        }
    }
}
