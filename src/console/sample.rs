//! The backtest's sample on AWS: the most recent day(s) of the event
//! archive, bounded in events, read partition by partition (never the
//! whole archive listed); or a JSON-lines file the user uploads, bounded in
//! size.

use super::backend::Sample;
use crate::archive::{partition, Source};
use chrono::{DateTime, Days, NaiveDate, Utc};
use kairos_event::Event;

/// The most events a sample holds unless configured (`KAIROS_CONSOLE_SAMPLE_EVENTS`).
pub const DEFAULT_SAMPLE_EVENTS: usize = 10_000;
/// The most events a sample may be configured to hold.
pub const MAX_SAMPLE_EVENTS: usize = 100_000;
/// How many days back a sample reads unless configured (`KAIROS_CONSOLE_SAMPLE_DAYS`).
pub const DEFAULT_SAMPLE_DAYS: u32 = 1;
/// The most days a sample may be configured to read.
pub const MAX_SAMPLE_DAYS: u32 = 7;
/// The largest uploaded sample (bytes of JSON lines).
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024;

/// How much of the archive a sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Days back from now, today included.
    pub days: u32,
    /// The most events kept (the most recent ones).
    pub events: usize,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            days: DEFAULT_SAMPLE_DAYS,
            events: DEFAULT_SAMPLE_EVENTS,
        }
    }
}

/// The most recent events of the archive: the last `bounds.days` days up to
/// `now`, newest partitions first, stopping once `bounds.events` are read
/// and keeping the most recent of them.
pub async fn recent(source: &Source, now: DateTime<Utc>, bounds: Bounds) -> Result<Sample, String> {
    let since = now - chrono::Duration::days(i64::from(bounds.days));
    let mut events: Vec<Event> = Vec::new();
    let (mut objects, mut rejected) = (0usize, 0usize);
    'days: for back in 0..bounds.days {
        let Some(day) = now.date_naive().checked_sub_days(Days::new(u64::from(back))) else {
            break;
        };
        for (narrowed, key) in keys_of_day(source, day).await? {
            let bytes = narrowed.read(&key).await?;
            let (parsed, bad) = crate::replay::read(&bytes);
            objects += 1;
            rejected += bad.len();
            events.extend(parsed.into_iter().filter(|e| e.at >= since && e.at <= now));
            if events.len() >= bounds.events {
                break 'days;
            }
        }
    }
    events.sort_by_key(|e| e.at);
    let kept = events.len().min(bounds.events);
    let events = events.split_off(events.len() - kept);
    let days = if bounds.days == 1 { "day" } else { "days" };
    let mut described = format!(
        "events of the last {} {days} in the archive ({objects} objects; at most {})",
        bounds.days, bounds.events
    );
    if rejected > 0 {
        described.push_str(&format!("; {rejected} lines were not valid events"));
    }
    Ok(Sample::of(events, described))
}

/// The objects filed under `day` (either layout), newest key first, each
/// with the source to read it from.
async fn keys_of_day(source: &Source, day: NaiveDate) -> Result<Vec<(Source, String)>, String> {
    let mut found = Vec::new();
    match source {
        Source::S3 { client, bucket, prefix } => {
            let dated = format!("{prefix}dt={day}/");
            let arrived = format!("{prefix}{}/", day.format("%Y/%m/%d"));
            for under in [dated, arrived] {
                let narrowed = Source::S3 {
                    client: client.clone(),
                    bucket: bucket.clone(),
                    prefix: under,
                };
                for key in narrowed.list().await? {
                    found.push((narrowed.clone(), key));
                }
            }
        }
        Source::Dir(_) => {
            for key in source.list().await? {
                if partition(&key).is_some_and(|p| p.day() == day) {
                    found.push((source.clone(), key));
                }
            }
        }
    }
    found.sort_by(|a, b| b.1.cmp(&a.1));
    Ok(found)
}

/// An uploaded JSON-lines file as a sample (at most [`MAX_UPLOAD_BYTES`]).
pub fn uploaded(text: &str) -> Result<Sample, String> {
    if text.len() > MAX_UPLOAD_BYTES {
        return Err(format!(
            "the uploaded events are {} bytes; at most {MAX_UPLOAD_BYTES} are read",
            text.len()
        ));
    }
    let (events, rejected) = crate::replay::read(text.as_bytes());
    if let Some(first) = rejected.first() {
        return Err(format!(
            "the uploaded events: {first} ({} lines rejected)",
            rejected.len()
        ));
    }
    let n = events.len();
    let mut sample = Sample::of(events, format!("uploaded events ({n})"));
    sample.text = text.to_string();
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, at: &str) -> Event {
        let line = format!(r#"{{"id":"{id}","contact":"a@x.test","type":"email.opened","at":"{at}","source":"t"}}"#);
        Event::from_json(line.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn the_sample_is_the_latest_days_most_recent_events_within_the_bound() {
        let dir = std::env::temp_dir().join(format!("kairos-sample-{}", std::process::id()));
        let events = [
            event("old", "2026-11-28T10:00:00Z"),
            event("y1", "2026-11-30T10:00:00Z"),
            event("t1", "2026-12-01T08:00:00Z"),
            event("t2", "2026-12-01T09:00:00Z"),
            event("t3", "2026-12-01T10:00:00Z"),
            event("later", "2026-12-01T13:00:00Z"),
        ];
        crate::archive::write_dir(&dir, "part", &events).unwrap();
        let source = Source::Dir(dir.clone());
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").unwrap().to_utc();
        let ids = |s: &Sample| s.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        let two_days = recent(&source, now, Bounds { days: 2, events: 10 }).await.unwrap();
        assert_eq!(ids(&two_days), ["y1", "t1", "t2", "t3"]);
        assert_eq!(two_days.text.lines().count(), 4);
        let bounded = recent(&source, now, Bounds { days: 2, events: 2 }).await.unwrap();
        assert_eq!(ids(&bounded), ["t2", "t3"], "the most recent ones");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_upload_is_bounded_and_every_line_must_be_an_event() {
        let good = serde_json::to_string(&event("u1", "2026-12-01T08:00:00Z")).unwrap();
        assert_eq!(uploaded(&good).unwrap().events.len(), 1);
        assert!(uploaded(&format!("{good}\nnot json")).unwrap_err().contains("line 2"));
        let huge = "x".repeat(MAX_UPLOAD_BYTES + 1);
        assert!(uploaded(&huge).unwrap_err().contains("at most"));
    }
}
