//! `make bench-archive`: replay throughput from the event archive, and what
//! archiving costs.
//!
//! Writes a seeded archive of `KAIROS_BENCH_EVENTS` events (default 10
//! million) over 30 days and `KAIROS_BENCH_CONTACTS` contacts (default
//! 200,000) as the template's delivery stream lays it out (gzip JSON lines
//! under `dt=YYYY-MM-DD/`) into `build/bench-archive`, then replays it with
//! `rules/segments.yaml` as `kairos replay --archive` does, on one thread, and
//! prints events per second and the replay's peak resident memory (VmHWM,
//! reset after the archive is written). Then the archive's cost per million
//! events at list prices from the measured event and object sizes.

use chrono::{DateTime, Duration, Utc};
use kairos::archive::{Source, Window};
use kairos_event::Event;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

const DAYS: u64 = 30;
const KINDS: [&str; 6] = [
    "email.opened",
    "email.clicked",
    "page.viewed",
    "email.delivered",
    "form.submitted",
    "email.opened",
];
const PAGES: [&str; 4] = ["/pricing", "/compare", "/blog/post", "/docs"];

/// Firehose Direct PUT ingestion, per GB, billed per record in 5 KB steps (us-east-1 list price).
const FIREHOSE_PER_GB: f64 = 0.029;
/// Dynamic partitioning, per GB delivered, and per 1,000 objects.
const PARTITIONING_PER_GB: f64 = 0.020;
/// S3 Standard storage per GB-month.
const S3_PER_GB_MONTH: f64 = 0.023;
/// Months kept: the template's default 400 days.
const RETENTION_MONTHS: f64 = 400.0 / 30.4;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(rng: &mut rand::rngs::StdRng, i: u64, contacts: u64, at: DateTime<Utc>) -> Event {
    let contact = format!("c{}@bench.test", rng.gen_range(0..contacts));
    let kind = KINDS[rng.gen_range(0..KINDS.len())];
    let url = match kind {
        "page.viewed" => format!(
            r#","url":"https://kairos.example{}""#,
            PAGES[rng.gen_range(0..PAGES.len())]
        ),
        _ => String::new(),
    };
    let json = format!(
        r#"{{"id":"evt-{i}","contact":"{contact}","type":"{kind}","at":"{}","source":"sendgrid","message_id":"m-{}","campaign":"november-newsletter"{url}}}"#,
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        i / 3
    );
    Event::from_json(json.as_bytes()).expect("a valid bench event")
}

/// Writes the archive day by day; returns (serialized bytes, objects, gzip bytes).
fn generate(dir: &PathBuf, events: u64, contacts: u64) -> (u64, u64, u64) {
    let _ = std::fs::remove_dir_all(dir);
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let start = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().to_utc();
    let per_day = events / DAYS;
    let (mut bytes, mut objects, mut gzip) = (0u64, 0u64, 0u64);
    for day in 0..DAYS {
        let n = if day == DAYS - 1 {
            events - per_day * (DAYS - 1)
        } else {
            per_day
        };
        let mut batch = Vec::with_capacity(n as usize);
        for j in 0..n {
            let at = start + Duration::days(day as i64) + Duration::seconds(rng.gen_range(0..86_400));
            let e = event(&mut rng, day * per_day + j, contacts, at);
            bytes += serde_json::to_vec(&e).unwrap().len() as u64 + 1;
            batch.push(e);
        }
        // Several objects a day, as the stream's buffer flushes them.
        for (k, chunk) in batch.chunks(100_000).enumerate() {
            for file in kairos::archive::write_dir(dir, &format!("part-{k}"), chunk).unwrap() {
                gzip += std::fs::metadata(&file).unwrap().len();
                objects += 1;
            }
        }
    }
    (bytes, objects, gzip)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn main() {
    let events = env("KAIROS_BENCH_EVENTS", 10_000_000);
    let contacts = env("KAIROS_BENCH_CONTACTS", 200_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/bench-archive");
    let started = Instant::now();
    let (bytes, objects, gzip) = generate(&dir, events, contacts);
    println!(
        "archive: {events} events, {contacts} contacts, {DAYS} days, {objects} objects, {:.1} MB gzip ({:.1} MB JSON) written in {:.1} s",
        gzip as f64 / 1e6,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    // Peak memory from here on: the replay's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rules = kairos_rules::RuleSet::from_yaml(&std::fs::read_to_string("rules/segments.yaml").unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let source = Source::Dir(dir.clone());
    let replay = runtime.block_on(kairos::replay::replay_archive(
        &rules,
        &source,
        Window::default(),
        false,
    ));
    let replay = replay.expect("the archive replays");
    let secs = started.elapsed().as_secs_f64();
    assert!(replay.rejected.is_empty());
    println!(
        "replay from the archive (one thread): {:.0} events/s ({events} events in {secs:.1} s), {} contacts, peak RSS {:.0} MiB",
        events as f64 / secs,
        replay.lines.len(),
        peak_rss_kib() as f64 / 1024.0
    );
    // Cost per million events at list prices.
    let per_event = bytes as f64 / events as f64;
    let billed_kb = (per_event / 5120.0).ceil() * 5.0;
    let ingest = 1e6 * billed_kb * 1024.0 / 1024f64.powi(3) * FIREHOSE_PER_GB;
    let partitioning = 1e6 * per_event / 1024f64.powi(3) * PARTITIONING_PER_GB;
    let stored_gb = gzip as f64 / events as f64 * 1e6 / 1024f64.powi(3);
    let storage = stored_gb * S3_PER_GB_MONTH * RETENTION_MONTHS;
    println!(
        "archive cost per million events: {per_event:.0} B/event billed as {billed_kb} KB: ingestion ${ingest:.3}, partitioning ${partitioning:.4}, S3 storage {:.1} MB gzip x 400 d ${storage:.4}; total ${:.3}",
        stored_gb * 1024.0,
        ingest + partitioning + storage
    );
    std::fs::remove_dir_all(&dir).ok();
}
