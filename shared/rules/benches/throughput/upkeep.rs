//! The due index's upkeep on the workload (untimed): every contact's events
//! through the engine step in time order, and between them the sweep's
//! re-decisions at each time the index holds, counting DynamoDB write units
//! for the table (a unit per started KiB of the item) and for the due index
//! (a keys-only GSI: one unit to put or delete an entry, two to change its key;
//! nothing when a write leaves the key as it was).
//!
//! Counted twice: with the cheap-upkeep rule (`kairos_engine::indexed_due`:
//! the indexed time may be earlier than the real one, rewritten only when
//! the real one moves earlier or the indexed one passes), and without it
//! (the index holds `next_change_at` itself, rewritten whenever it moves).

use kairos_engine::{Contact, Engine, Input};
use kairos_store::StoredContact;

use crate::workload::{self, PERIOD_SECS, PERIOD_START};

/// Write units counted for one way of keeping the index.
#[derive(Debug, Default, Clone, Copy)]
pub struct Units {
    /// Table write units: event writes and sweep writes (reindexes included).
    pub table: u64,
    /// Index write units.
    pub index: u64,
    /// Sweep re-decisions (sweep messages evaluated).
    pub sweeps: u64,
    /// Of those, wake-ups that only moved the index (reindexes).
    pub reindexes: u64,
}

/// The upkeep of both ways over `contacts`, and how many events they hold.
pub fn simulate(engine: &Engine, contacts: &[workload::Contact]) -> (usize, Units, Units) {
    let (mut with_rule, mut without) = (Units::default(), Units::default());
    let mut events = 0;
    for contact in contacts {
        events += contact.events.len();
        run(engine, contact, true, &mut with_rule);
        run(engine, contact, false, &mut without);
    }
    (events, with_rule, without)
}

/// One contact over the period; `cheap`: the rule keeps its index time.
fn run(engine: &Engine, contact: &workload::Contact, cheap: bool, units: &mut Units) {
    let Some(first) = contact.events.first() else { return };
    let key = first.contact.as_str();
    let end = PERIOD_START + PERIOD_SECS;
    let mut record = Contact::default();
    for event in &contact.events {
        sweep_until(engine, key, &mut record, event.at.timestamp(), cheap, units);
        let before = record.due_at;
        let outcome = engine.step(key, &mut record, &Input::events(std::slice::from_ref(event), event.at));
        if outcome.save() {
            write(key, &mut record, before, cheap, units);
        }
    }
    sweep_until(engine, key, &mut record, end, cheap, units);
}

/// The sweep's visits before `until`: the first run at or after each indexed
/// time (runs are on the minute), re-deciding as of the run's time, with no events.
fn sweep_until(engine: &Engine, key: &str, record: &mut Contact, until: i64, cheap: bool, units: &mut Units) {
    while let Some(t) = record.due_at.filter(|t| *t < until) {
        let before = record.due_at;
        let run = (t + 59).div_euclid(60) * 60;
        if run >= until {
            break;
        }
        let now = chrono::DateTime::from_timestamp(run, 0).expect("in range");
        let outcome = engine.step(key, record, &Input::at(now));
        units.sweeps += 1;
        units.reindexes += u64::from(outcome.reindex);
        if outcome.save() {
            write(key, record, before, cheap, units);
        }
        if record.due_at.is_some_and(|next| next <= run) {
            break; // Never expected: a step moves the index past its own time.
        }
    }
}

/// Counts one save of `record` whose indexed time was `before`.
fn write(key: &str, record: &mut Contact, before: Option<i64>, cheap: bool, units: &mut Units) {
    if !cheap {
        record.due_at = record.next_change_at;
    }
    let stored = StoredContact {
        version: record.version,
        state: record.state.clone(),
        next_change_at: record.next_change_at,
        due_at: record.due_at,
        expires_at: record.expires_at,
        ..StoredContact::default()
    };
    units.table += stored.item_size(key).div_ceil(1024) as u64;
    units.index += match (before, record.due_at) {
        (Some(a), Some(b)) if a == b => 0,
        (Some(_), Some(_)) => 2,
        (None, None) => 0,
        _ => 1,
    };
}
