use super::*;
use kairos_event::EventsMessage;
use kairos_store::{due_shard, ContactStore, MemoryContacts, MemoryQueue, StoredContact};
use std::collections::BTreeSet;

const SCHEDULE: &str = include_str!("../../../events/sweep-schedule.json");

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

async fn due(store: &MemoryContacts, key: &str, due_at: i64) {
    let record = StoredContact {
        version: 1,
        next_change_at: Some(due_at + 5),
        due_at: Some(due_at),
        ..StoredContact::default()
    };
    store.save(key, None, &record).await.unwrap();
}

fn swept(queue: &MemoryQueue) -> BTreeSet<String> {
    let bodies = queue
        .drain()
        .into_iter()
        .map(|m| EventsMessage::decode(m.body.as_bytes()).unwrap());
    bodies
        .map(|m| match m {
            EventsMessage::Sweep(s) => s.contact,
            other => panic!("not a sweep: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_run_sends_every_contact_due_by_now_in_every_shard_and_no_other() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    for i in 0..40 {
        due(&store, &format!("c{i}"), 1_000 + i).await;
    }
    let shards: BTreeSet<u32> = (0..30).map(|i| due_shard(&format!("c{i}"), 8)).collect();
    assert!(shards.len() > 4, "the contacts fall into several shards: {shards:?}");
    let report = Sweeper::new(&store, &queue).sweep(at(1_029), later()).await;
    let expected: BTreeSet<String> = (0..30).map(|i| format!("c{i}")).collect();
    assert_eq!(swept(&queue), expected);
    assert_eq!((report.sent, report.more), (30, false));
    // The latest is 29 s late at the run's time (and later by the run's own time).
    assert!(report.lateness.max >= 29 && report.lateness.p50 >= 14, "{report:?}");
}

#[test]
fn lateness_is_reported_as_nearest_rank_percentiles() {
    let late: Vec<i64> = (0..30).rev().collect();
    assert_eq!(
        Lateness::of(late),
        Lateness {
            p50: 14,
            p99: 29,
            max: 29
        }
    );
    let spread: Vec<i64> = (1..=1000).collect();
    assert_eq!(
        Lateness::of(spread),
        Lateness {
            p50: 500,
            p99: 990,
            max: 1000
        }
    );
    assert_eq!(Lateness::of(Vec::new()), Lateness::default());
}

#[tokio::test]
async fn a_run_stops_at_its_bound_and_the_next_one_carries_on() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let n = 2 * PAGE + 100;
    for i in 0..n {
        due(&store, &format!("c{i}"), 1_000).await;
    }
    let sweeper = Sweeper {
        max_per_run: PAGE + 60,
        ..Sweeper::new(&store, &queue)
    };
    let first = sweeper.sweep(at(1_000), later()).await;
    assert_eq!((first.sent, first.more), (PAGE + 60, true));
    // The evaluate function re-decides what was sent: it leaves the index.
    let sent = swept(&queue);
    for key in &sent {
        let mut record = store.load(key).await.unwrap().unwrap();
        record.due_at = None;
        store.save(key, Some(1), &record).await.unwrap();
    }
    let second = sweeper.sweep(at(1_060), later()).await;
    assert_eq!((second.sent, second.more), (n - PAGE - 60, false));
    let rest = swept(&queue);
    assert!(rest.is_disjoint(&sent));
    assert_eq!(rest.len() + sent.len(), n);
}

#[tokio::test]
async fn a_run_out_of_time_sends_nothing_and_says_there_is_more() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    due(&store, "ada", 1_000).await;
    let report = Sweeper::new(&store, &queue).sweep(at(1_000), Instant::now()).await;
    assert_eq!((report.sent, report.more, queue.len()), (0, true, 0));
}

#[tokio::test]
async fn the_handler_sweeps_as_of_the_scheduled_time() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    let event: EventBridgeEvent = serde_json::from_str(SCHEDULE).unwrap();
    let scheduled = event.time.unwrap().timestamp();
    due(&store, "ada", scheduled - 90).await;
    due(&store, "bob", scheduled + 1).await;
    let sweeper = Sweeper::new(&store, &queue);
    let report = handle(event, &sweeper, at(scheduled - 3_600), later()).await.unwrap();
    assert!(report.lateness.max >= 90, "{report:?}");
    assert_eq!(swept(&queue), BTreeSet::from(["ada".to_string()]));
}

#[test]
fn the_configuration_is_read_and_checked_in_one_place() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    };
    let config = Config::from_env(env(&[("KAIROS_TABLE", "t"), ("KAIROS_EVENTS_QUEUE_URL", "q")])).unwrap();
    assert_eq!(
        (config.due_shards, config.max_per_run),
        (kairos_store::DEFAULT_DUE_SHARDS, DEFAULT_MAX_PER_RUN)
    );
    let err = Config::from_env(env(&[("KAIROS_TABLE", "t")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable KAIROS_EVENTS_QUEUE_URL is required"
    );
    let err = Config::from_env(env(&[
        ("KAIROS_TABLE", "t"),
        ("KAIROS_EVENTS_QUEUE_URL", "q"),
        ("KAIROS_DUE_SHARDS", "0"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("KAIROS_DUE_SHARDS is invalid: `0`: expected a whole number from 1 to 1000"),
        "{err}"
    );
}

#[tokio::test]
async fn a_runs_metrics_carry_what_it_sent_and_how_late() {
    let (store, queue) = (MemoryContacts::default(), MemoryQueue::default());
    due(&store, "ada@example.com", 1_000).await;
    due(&store, "bob@example.com", 1_040).await;
    let report = Sweeper::new(&store, &queue).sweep(at(1_100), later()).await;
    let lines = report.metrics().lines(0);
    assert_eq!(lines.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        (&doc["Function"], &doc["SweepSent"], &doc["SweepMore"]),
        (&"sweep".into(), &2.into(), &0.into())
    );
    assert_eq!(doc["SweepLatenessMax"], 100);
    assert_eq!(doc["SweepLatenessP50"], 60);
    let quiet = Sweeper::new(&store, &queue).sweep(at(900), later()).await.metrics();
    let quiet: serde_json::Value = serde_json::from_str(&quiet.lines(0)[0]).unwrap();
    assert_eq!(quiet["SweepSent"], 0);
    assert!(
        quiet.get("SweepLatenessMax").is_none(),
        "no lateness without a due contact"
    );
}
