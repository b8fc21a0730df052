//! Applying a batch of events to a contact's state: each event once (by
//! source and id, within the dedupe horizon), each into the signals it
//! matches.

use kairos_event::Event;
use kairos_rules::{Delta, RuleSet};
use kairos_state::{Applied, ContactState, SignalKey};

use crate::Refused;

/// What applying a batch did.
pub(crate) struct Batch<'e> {
    /// Each applied event with the signals it matched, in input order.
    pub applied: Vec<(&'e Event, Vec<SignalKey>)>,
    /// The events not applied.
    pub refused: Vec<Refused>,
    /// How many of `applied` are late: older than the dedupe horizon, only
    /// their consent change or traits applied (with no signals).
    pub late: usize,
    /// What the applied events changed, for a decision on the delta.
    pub delta: Delta,
}

/// Applies `events` to `state` as of `now` (unix seconds), refusing those
/// dated more than `max_skew_secs` ahead of it.
pub(crate) fn apply<'e>(
    rules: &RuleSet,
    state: &mut ContactState,
    events: &'e [Event],
    now: i64,
    max_skew_secs: i64,
) -> Batch<'e> {
    let mut batch = Batch {
        applied: Vec::with_capacity(events.len()),
        refused: Vec::new(),
        late: 0,
        delta: Delta::default(),
    };
    for (i, event) in events.iter().enumerate() {
        let signals = rules.signals_for(event);
        match state.apply_with_skew(event, &signals, now, max_skew_secs) {
            Applied::Applied => {
                batch.delta.record(event, &signals);
                batch.applied.push((event, signals));
            }
            Applied::Late => {
                batch.delta.record(event, &[]);
                batch.applied.push((event, Vec::new()));
                batch.late += 1;
            }
            why => batch.refused.push(Refused { index: i, why }),
        }
    }
    batch
}

impl Batch<'_> {
    /// The latest applied event (by time, then id).
    pub fn latest(&self) -> Option<&Event> {
        latest(self.applied.iter().map(|(e, _)| *e))
    }

    /// The latest applied event that can change consent, as a trigger.
    pub fn consent_trigger(&self) -> Option<kairos_event::Trigger> {
        let consent = self
            .applied
            .iter()
            .map(|(e, _)| *e)
            .filter(|e| kairos_state::affects_consent(e));
        latest(consent).map(|e| kairos_event::Trigger {
            id: e.id.clone(),
            kind: e.kind,
            at: e.at,
        })
    }

    /// What changed segment `i`'s answer: the latest applied event it reads
    /// (none when time, a rules change or a merge did).
    pub fn trigger(&self, rules: &RuleSet, i: usize) -> Option<&Event> {
        let read = self
            .applied
            .iter()
            .filter(|(e, signals)| rules.segment_reads(i, e, signals));
        latest(read.map(|(e, _)| *e))
    }
}

/// The latest of `events` by time, then id.
fn latest<'e>(events: impl Iterator<Item = &'e Event>) -> Option<&'e Event> {
    events.max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)))
}
