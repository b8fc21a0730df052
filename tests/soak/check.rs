//! The soak's exact checks: memberships against `kairos replay`, each
//! destination against the memberships, nothing written backwards, and the
//! dead-letter queues against the injected permanent errors.

use crate::arrivals::Traffic;
use crate::pipeline::{time, Deployment};
use crate::Run;
use kairos_event::WritebackMessage;
use kairos_store::{ContactStore, StoredContact};
use std::collections::{BTreeMap, BTreeSet};

/// What the checks found; all zero (or empty) when the run was exact.
#[derive(Debug, Default)]
pub struct Findings {
    /// Contacts compared.
    pub contacts: usize,
    /// Contacts whose memberships differ from replay's (up to 5 shown).
    pub membership_mismatches: Vec<String>,
    /// Per destination: contacts whose written state differs from their memberships.
    pub destination_mismatches: BTreeMap<String, Vec<String>>,
    /// Per destination: writes of an older version over a newer one.
    pub stale_writes: BTreeMap<String, u64>,
    /// Per destination: writes repeating the version written (lost answers retried).
    pub repeats: BTreeMap<String, u64>,
    /// Events dead letters that were not injected malformed messages.
    pub events_dead_unexpected: Vec<String>,
    /// Injected malformed messages not dead-lettered.
    pub events_dead_missing: Vec<String>,
    /// Write-back dead letters that no injected permanent error explains.
    pub writeback_dead_unexpected: Vec<(String, String, u64)>,
    /// Injected permanent errors (in invocations that finished) not dead-lettered.
    pub writeback_dead_missing: Vec<(String, String, u64)>,
    /// Distinct writes dead-lettered.
    pub writeback_dead_writes: usize,
}

impl Findings {
    /// Every mismatch counted.
    pub fn mismatches(&self) -> usize {
        self.membership_mismatches.len()
            + self.destination_mismatches.values().map(Vec::len).sum::<usize>()
            + self.stale_writes.values().sum::<u64>() as usize
            + self.events_dead_unexpected.len()
            + self.events_dead_missing.len()
            + self.writeback_dead_unexpected.len()
            + self.writeback_dead_missing.len()
    }

    /// Fails the test with what differs.
    pub fn assert_clean(&self) {
        assert_eq!(self.mismatches(), 0, "the soak found mismatches: {self:#?}");
    }
}

/// What a quiesced run left, to be checked: the memory soak's deployment
/// and the wire soak's moto tables and queues alike.
pub struct Observed<'a> {
    /// The rules in force.
    pub rules: &'a kairos_rules::RuleSet,
    /// Every contact record stored, by key.
    pub records: BTreeMap<String, StoredContact>,
    /// The destinations.
    pub crms: &'a [crate::pipeline::Crm],
    /// Permanent destination errors injected by invocations that finished:
    /// each must be dead-lettered. `(destination, contact, version)`.
    pub permanent: BTreeSet<(String, String, u64)>,
    /// Those injected by invocations that then crashed: dead-lettered or not.
    pub permanent_crashed: BTreeSet<(String, String, u64)>,
    /// Bodies of the malformed messages put on the events queue.
    pub malformed: &'a [String],
    /// The events dead-letter queue after the faulty phase.
    pub events_dead: &'a [crate::support::sim::Stored],
    /// The write-back dead-letter queue after the faulty phase.
    pub writeback_dead: &'a [crate::support::sim::Stored],
}

/// Runs every check on the quiesced deployment.
pub async fn check(deployment: &Deployment, traffic: &Traffic, run: &Run, end: i64) -> Findings {
    let observed = Observed {
        rules: &deployment.rules,
        records: records(deployment).await,
        crms: &deployment.crms,
        permanent: deployment.permanent.lock().unwrap().iter().cloned().collect(),
        permanent_crashed: deployment.permanent_crashed.lock().unwrap().iter().cloned().collect(),
        malformed: &run.malformed,
        events_dead: &run.events_dead,
        writeback_dead: &run.writeback_dead,
    };
    compare(&observed, traffic, end)
}

/// Every check on what a run left, against `kairos replay` as of `end`.
pub fn compare(observed: &Observed, traffic: &Traffic, end: i64) -> Findings {
    let records = &observed.records;
    let live: BTreeMap<&str, Vec<String>> = records
        .iter()
        .filter(|(_, r)| r.merged_into.is_none())
        .map(|(k, r)| (k.as_str(), members(r)))
        .collect();
    let replayed = replayed(observed.rules, traffic, end);
    let mut findings = Findings {
        contacts: live.len().max(replayed.len()),
        ..Findings::default()
    };
    let keys: BTreeSet<&str> = live
        .keys()
        .copied()
        .chain(replayed.keys().map(String::as_str))
        .collect();
    for key in keys {
        if live.get(key) != replayed.get(key) {
            let (l, r) = (live.get(key), replayed.get(key));
            findings
                .membership_mismatches
                .push(format!("{key}: pipeline {l:?}, replay {r:?}"));
        }
    }
    for crm in observed.crms {
        let state = crm.state.lock().unwrap();
        let mut wrong = Vec::new();
        for (key, record) in records {
            let expected = crm_segments(crm, &guarded(observed.rules, record));
            let written = state.get(key).map(|(_, m)| m.clone()).unwrap_or_default();
            if written != expected {
                wrong.push(format!("{key}: written {written:?}, member of {expected:?}"));
            }
        }
        let name = kairos_writeback::Destination::name(crm).to_string();
        findings.destination_mismatches.insert(name.clone(), wrong);
        findings.stale_writes.insert(name.clone(), *crm.stale.lock().unwrap());
        findings.repeats.insert(name, *crm.repeats.lock().unwrap());
    }
    dead_letters(observed, &mut findings);
    findings
}

/// Every contact record stored, by key.
async fn records(deployment: &Deployment) -> BTreeMap<String, StoredContact> {
    let mut out = BTreeMap::new();
    for key in deployment.contacts.inner.contacts() {
        let record = deployment.contacts.inner.load(&key).await.expect("a memory load");
        out.insert(key, record.expect("a listed record"));
    }
    out
}

fn members(record: &StoredContact) -> Vec<String> {
    record.state.members().iter().map(|(id, _)| id.clone()).collect()
}

/// What destinations must hold (the consent guard): the memberships,
/// less marketing segments while consent is not `subscribed`. The soak's
/// rules pause no segment and the soak pins no contact.
fn guarded(rules: &kairos_rules::RuleSet, record: &StoredContact) -> Vec<String> {
    let subscribed = record.state.consent().status() == kairos_state::ConsentStatus::Subscribed;
    let marketing = |id: &String| rules.segment_index(id).is_some_and(|i| rules.is_marketing(i));
    members(record)
        .into_iter()
        .filter(|id| subscribed || !marketing(id))
        .collect()
}

fn crm_segments(crm: &crate::pipeline::Crm, members: &[String]) -> Vec<String> {
    kairos_writeback::Destination::segments(crm).filter(members)
}

/// `kairos replay` over every delivery as of `end`: each contact's segments.
fn replayed(rules: &kairos_rules::RuleSet, traffic: &Traffic, end: i64) -> BTreeMap<String, Vec<String>> {
    let mut lines = String::new();
    for arrival in &traffic.arrivals {
        lines.push_str(&arrival.event.to_json());
        lines.push('\n');
    }
    let out = kairos::replay::replay(rules, lines.as_bytes(), Some(time(end)), false);
    assert!(
        out.rejected.is_empty(),
        "replay rejected {:?}",
        &out.rejected[..out.rejected.len().min(5)]
    );
    out.lines
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a replay line");
            let segments = v["segments"].as_array().expect("segments").iter();
            let segments = segments
                .map(|s| s.as_str().expect("a segment id").to_string())
                .collect();
            (v["contact"].as_str().expect("a contact").to_string(), segments)
        })
        .collect()
}

/// The dead-letter queues against what was injected.
fn dead_letters(observed: &Observed, findings: &mut Findings) {
    let malformed: BTreeSet<&String> = observed.malformed.iter().collect();
    let dead: BTreeSet<&String> = observed.events_dead.iter().map(|d| &d.body).collect();
    findings.events_dead_unexpected = dead.difference(&malformed).map(|s| s.to_string()).collect();
    findings.events_dead_missing = malformed.difference(&dead).map(|s| s.to_string()).collect();

    let mut letters = BTreeSet::new();
    for letter in observed.writeback_dead {
        let destination = letter
            .attributes
            .iter()
            .find(|(name, _)| name == kairos_writeback::DESTINATION_ATTRIBUTE)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let WritebackMessage::Transition(t) =
            WritebackMessage::decode(letter.body.as_bytes()).expect("a write-back dead letter");
        letters.insert((destination, t.contact, t.state_version));
    }
    let (finished, crashed) = (&observed.permanent, &observed.permanent_crashed);
    findings.writeback_dead_missing = finished.difference(&letters).cloned().collect();
    findings.writeback_dead_unexpected = letters
        .iter()
        .filter(|l| !finished.contains(*l) && !crashed.contains(*l))
        .cloned()
        .collect();
    findings.writeback_dead_writes = letters.len();
}
