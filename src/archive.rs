//! The event archive's read side: `kairos replay|rules diff|rebuild --archive`.
//!
//! An archive is objects of JSON lines (canonical events), gzip or plain,
//! under `s3://bucket/prefix` or a local folder ([`Source`]). Two layouts are
//! read, told apart per object by its key ([`partition`]):
//! - the template's delivery stream partitions by the event's date:
//!   `<prefix>dt=YYYY-MM-DD/<object>`;
//! - Firehose's default (and moto's) by arrival hour: `<prefix>YYYY/MM/DD/HH/<object>`.
//!
//! [`play`] hands the events to a callback one day of partitions at a time,
//! in partition order, each object read and parsed as it comes: memory holds
//! one day's events (and whatever the callback keeps), never the archive.
//! With the event-date layout the days follow each other in time, so a
//! replay day by day equals one over all the events at once; with the
//! arrival layout an event that arrived a day late plays late, as it did live.

use chrono::{DateTime, Days, NaiveDate, Utc};
use kairos_event::Event;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Where an archive is: `s3://bucket/prefix` or a local folder.
#[derive(Debug, Clone)]
pub enum Source {
    /// Objects under a prefix of an S3 bucket.
    S3 {
        /// The client (path-style on a local endpoint).
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
    /// Files under a folder, their paths relative to it as keys.
    Dir(PathBuf),
}

impl Source {
    /// `s3://bucket/prefix` (through `client`) or a folder path.
    pub fn parse(uri: &str, client: impl FnOnce() -> aws_sdk_s3::Client) -> Result<Source, String> {
        match uri.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!("`{uri}`: expected s3://bucket/prefix"));
                }
                Ok(Source::S3 {
                    client: client(),
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            None if Path::new(uri).is_dir() => Ok(Source::Dir(PathBuf::from(uri))),
            None => Err(format!("`{uri}`: expected s3://bucket/prefix or a folder")),
        }
    }

    /// Every object's key, sorted.
    pub async fn list(&self) -> Result<Vec<String>, String> {
        let mut keys = match self {
            Source::S3 { client, bucket, prefix } => {
                let mut keys = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        let e = aws_sdk_s3::error::DisplayErrorContext(e);
                        format!("listing s3://{bucket}/{prefix}: {e}")
                    })?;
                    keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                }
                keys
            }
            Source::Dir(root) => {
                let mut keys = Vec::new();
                walk(root, root, &mut keys)?;
                keys
            }
        };
        keys.sort();
        Ok(keys)
    }

    /// An object's bytes, decompressed if gzip.
    pub async fn read(&self, key: &str) -> Result<Vec<u8>, String> {
        let bytes = match self {
            Source::S3 { client, bucket, .. } => {
                let fail = |e: String| format!("reading s3://{bucket}/{key}: {e}");
                let out = client.get_object().bucket(bucket).key(key).send().await;
                let out = out.map_err(|e| fail(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
                out.body.collect().await.map_err(|e| fail(e.to_string()))?.to_vec()
            }
            Source::Dir(root) => {
                let path = root.join(key);
                std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?
            }
        };
        gunzip(bytes).map_err(|e| format!("{}: {e}", self.name(key)))
    }

    /// An object's name for messages: its URI or path.
    pub fn name(&self, key: &str) -> String {
        match self {
            Source::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
            Source::Dir(root) => root.join(key).display().to_string(),
        }
    }
}

/// The files under `dir`, as paths relative to `root` with `/` separators.
fn walk(root: &Path, dir: &Path, keys: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?.path();
        if path.is_dir() {
            walk(root, &path, keys)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            keys.push(parts.join("/"));
        }
    }
    Ok(())
}

/// The bytes, decompressed if they start with gzip's magic number (every
/// member of a multi-member file); as they are otherwise.
pub fn gunzip(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 8);
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| format!("not valid gzip: {e}"))?;
    Ok(out)
}

/// The partition an object's key files it under: `dt=YYYY-MM-DD` (the
/// event-date layout) or `YYYY/MM/DD/HH` (the arrival layout); `None` in neither.
pub fn partition(key: &str) -> Option<Partition> {
    let parts: Vec<&str> = key.split('/').collect();
    if let Some(day) = parts.iter().find_map(|p| p.strip_prefix("dt=")) {
        return NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .ok()
            .map(Partition::EventDate);
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.windows(5).find_map(|w| {
        let dated = digits(w[0], 4) && digits(w[1], 2) && digits(w[2], 2) && digits(w[3], 2);
        // The last part is the object, not another folder.
        (dated && !w[4].is_empty())
            .then(|| NaiveDate::parse_from_str(&format!("{}-{}-{}", w[0], w[1], w[2]), "%Y-%m-%d").ok())
            .flatten()
            .map(Partition::Arrival)
    })
}

/// The events of interest: from `since` (inclusive) to `until` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// The earliest event time read.
    pub since: Option<DateTime<Utc>>,
    /// The latest event time read.
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// Whether an event at `at` is inside.
    pub fn holds(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at <= u)
    }

    /// Whether a partition may hold events inside. An event-date partition
    /// holds its day's events; an arrival partition holds events that
    /// happened before it (or up to the clock skew after), however long
    /// before: it is skipped only when it is a day before `since`.
    fn may_hold(&self, partition: Partition) -> bool {
        let after_since = |day: NaiveDate| self.since.is_none_or(|s| day >= s.date_naive() - Days::new(1));
        match partition {
            Partition::EventDate(day) => after_since(day) && self.until.is_none_or(|u| day <= u.date_naive()),
            Partition::Arrival(day) => after_since(day),
        }
    }
}

/// The day an object is filed under, by layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Partition {
    /// `dt=YYYY-MM-DD`: the events' date.
    EventDate(NaiveDate),
    /// `YYYY/MM/DD/HH`: the date they arrived.
    Arrival(NaiveDate),
}

impl Partition {
    /// The partition's day.
    pub fn day(self) -> NaiveDate {
        match self {
            Partition::EventDate(day) | Partition::Arrival(day) => day,
        }
    }
}

/// What reading an archive found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects read.
    pub objects: usize,
    /// Events handed on (inside the window).
    pub events: u64,
    /// Lines that were not valid events: `<object> line N: reason`.
    pub rejected: Vec<String>,
}

/// Reads the archive's objects day by day in partition order, calling
/// `day` with each day's events inside `window`. An object in neither
/// layout is an error naming it, as is an object that cannot be read.
pub async fn play(source: &Source, window: Window, mut day: impl FnMut(Vec<Event>)) -> Result<Stats, String> {
    let mut days: Vec<(NaiveDate, String)> = Vec::new();
    for key in source.list().await? {
        let partition = partition(&key).ok_or_else(|| {
            format!(
                "{}: not in an archive layout (expected dt=YYYY-MM-DD/ or YYYY/MM/DD/HH/ in its key)",
                source.name(&key)
            )
        })?;
        if window.may_hold(partition) {
            days.push((partition.day(), key));
        }
    }
    days.sort();
    let mut read = Stats::default();
    for group in days.chunk_by(|a, b| a.0 == b.0) {
        let mut events = Vec::new();
        for (_, key) in group {
            let bytes = source.read(key).await?;
            let (parsed, rejected) = crate::replay::read(&bytes);
            read.objects += 1;
            let name = source.name(key);
            read.rejected
                .extend(rejected.into_iter().map(|r| format!("{name} {r}")));
            events.extend(parsed.into_iter().filter(|e| window.holds(e.at)));
        }
        read.events += events.len() as u64;
        day(events);
    }
    Ok(read)
}

/// Parses `--since`/`--until`: a duration back from `now` (`30d`, `12h`,
/// `90m`) or an RFC 3339 time.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let unit = |c: char| match c {
        'd' => Some(86_400),
        'h' => Some(3_600),
        'm' => Some(60),
        _ => None,
    };
    if let Some((n, secs)) = text
        .char_indices()
        .last()
        .and_then(|(i, c)| Some((text[..i].parse::<i64>().ok()?, unit(c)?)))
    {
        if n >= 0 {
            return Ok(now - chrono::Duration::seconds(n.saturating_mul(secs)));
        }
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{text}`: expected a duration back from now (30d, 12h, 90m) or an RFC 3339 time"))
}

/// Writes events as a gzip object of the event-date layout under `root`
/// (`dt=YYYY-MM-DD/<name>.gz`), one file per day: the archive as the
/// delivery stream writes it, for the bench and tests. Returns the files.
pub fn write_dir(root: &Path, name: &str, events: &[Event]) -> Result<Vec<PathBuf>, String> {
    use std::io::Write;
    let mut by_day: std::collections::BTreeMap<NaiveDate, Vec<&Event>> = Default::default();
    for event in events {
        by_day.entry(event.at.date_naive()).or_default().push(event);
    }
    let mut files = Vec::new();
    for (day, events) in by_day {
        let dir = root.join(format!("dt={day}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.gz"));
        let file = std::fs::File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
        for event in events {
            let line = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            gz.write_all(&line)
                .and_then(|_| gz.write_all(b"\n"))
                .map_err(|e| e.to_string())?;
        }
        gz.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_name_their_day_and_others_none() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let dated = partition("events/dt=2026-11-27/kairos-1-2026-11-27.gz");
        assert_eq!(dated, Some(Partition::EventDate(day(2026, 11, 27))));
        let arrived = partition("events/2026/11/28/09/kairos-1-2026-11-28-09-00-00-x");
        assert_eq!(arrived, Some(Partition::Arrival(day(2026, 11, 28))));
        assert_eq!(
            partition("2026/11/28/09/x"),
            Some(Partition::Arrival(day(2026, 11, 28)))
        );
        assert_eq!(partition("events/dt=2026-13-01/x"), None);
        assert_eq!(partition("events/2026/11/28/x"), None);
        assert_eq!(partition("errors/readme.txt"), None);
    }

    #[test]
    fn a_window_skips_event_days_outside_it_and_arrivals_only_before_it() {
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().to_utc());
        let window = Window {
            since: t("2026-11-10T12:00:00Z"),
            until: t("2026-11-20T12:00:00Z"),
        };
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let event_days: Vec<u32> = (1..=30)
            .filter(|d| window.may_hold(Partition::EventDate(day(*d))))
            .collect();
        assert_eq!(event_days, (9..=20).collect::<Vec<_>>());
        let arrivals: Vec<u32> = (1..=30)
            .filter(|d| window.may_hold(Partition::Arrival(day(*d))))
            .collect();
        assert_eq!(
            arrivals,
            (9..=30).collect::<Vec<_>>(),
            "a late arrival may hold events inside"
        );
    }

    #[test]
    fn times_are_durations_back_or_rfc3339() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(
            parse_time("30d", now).unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("12h", now).unwrap().to_rfc3339(),
            "2026-11-30T12:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-02T10:00:00+01:00", now).unwrap().to_rfc3339(),
            "2026-11-02T09:00:00+00:00"
        );
        assert!(parse_time("30 days", now).unwrap_err().contains("expected a duration"));
    }

    #[test]
    fn gzip_is_read_member_by_member_and_plain_text_as_it_is() {
        use std::io::Write;
        let member = |text: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap()
        };
        let mut two = member("a\n");
        two.extend(member("b\n"));
        assert_eq!(gunzip(two).unwrap(), b"a\nb\n");
        assert_eq!(gunzip(b"plain\n".to_vec()).unwrap(), b"plain\n");
        assert!(gunzip(vec![0x1f, 0x8b, 0]).unwrap_err().contains("not valid gzip"));
    }
}
