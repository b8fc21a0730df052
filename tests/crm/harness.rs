//! A storm harness: transitions generated per contact with increasing
//! versions, sent through an in-memory queue with SQS's semantics (batches of
//! visible messages, visibility, receive counts, redrive to a dead-letter
//! queue at `maxReceiveCount`) to the real write-back handler, on a virtual
//! clock; and checks that each contact's final membership was written and no
//! older one written after a newer.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use kairos_event::{Change, Transition, WritebackMessage};
use kairos_store::{MemoryContacts, MemoryDeadLetters, MemoryLedger, MemoryRedelivery};
use kairos_writeback::{handle, Clock, Destination, ManualClock, Writeback};
use std::collections::BTreeMap;

/// The writeback queue's `maxReceiveCount` in infra/template.yaml.
pub const MAX_RECEIVES: u32 = 24;
/// Its visibility timeout (seconds): the wait when nobody asked for another.
pub const VISIBILITY_SECS: u64 = 360;
/// The writeback event source's batch size.
pub const BATCH: usize = 100;

pub const SEGMENTS: [&str; 5] = [
    "pricing-intent",
    "engaged-reader",
    "sales-ready",
    "gone-quiet",
    "comparing-vendors",
];

/// Seeded pseudo-random numbers.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Transitions and, per contact, its membership at each version.
pub struct Workload {
    pub transitions: Vec<Transition>,
    pub versions: BTreeMap<String, Vec<Vec<String>>>,
}

impl Workload {
    /// `contacts` contacts with versions 1..=`per_contact` each (one
    /// transition per version), shuffled.
    pub fn new(contacts: usize, per_contact: usize, seed: u64) -> Workload {
        Workload::mixed(&[(contacts, per_contact)], seed)
    }

    /// Groups of `(contacts, transitions each)`, shuffled together.
    pub fn mixed(groups: &[(usize, usize)], seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        let mut transitions = Vec::new();
        let mut versions = BTreeMap::new();
        let contacts = groups
            .iter()
            .flat_map(|&(n, per_contact)| std::iter::repeat_n(per_contact, n));
        for (c, per_contact) in contacts.enumerate() {
            let contact = format!("contact{c}@example.com");
            let mut members: Vec<String> = Vec::new();
            let mut history = Vec::new();
            for v in 1..=per_contact as u64 {
                let segment = SEGMENTS[rng.next(SEGMENTS.len())];
                let change = match members.iter().position(|m| m == segment) {
                    Some(i) => {
                        members.remove(i);
                        Change::Exited
                    }
                    None => {
                        members.push(segment.to_string());
                        members.sort();
                        Change::Entered
                    }
                };
                history.push(members.clone());
                transitions.push(transition(&contact, segment, change, v, &members));
            }
            versions.insert(contact, history);
        }
        for i in (1..transitions.len()).rev() {
            transitions.swap(i, rng.next(i + 1));
        }
        Workload { transitions, versions }
    }

    /// Each contact's newest membership, among `received` segments.
    pub fn expected(&self, received: &[&str]) -> BTreeMap<String, String> {
        self.versions
            .iter()
            .map(|(c, v)| (c.clone(), filter(v.last().unwrap(), received)))
            .collect()
    }

    /// Contacts whose `written` values (in order) are not a walk forward
    /// through their versions: an older answer written after a newer one.
    pub fn regressions(&self, written: &BTreeMap<String, Vec<String>>, received: &[&str]) -> Vec<String> {
        let mut bad = Vec::new();
        for (contact, values) in written {
            let versions: Vec<String> = self.versions[contact].iter().map(|m| filter(m, received)).collect();
            let mut at = 0;
            for value in values {
                match (at..versions.len()).find(|&i| &versions[i] == value) {
                    Some(i) => at = i,
                    None => bad.push(format!("{contact}: {value:?} after version {}", at + 1)),
                }
            }
        }
        bad
    }
}

fn filter(members: &[String], received: &[&str]) -> String {
    let kept: Vec<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| received.contains(m))
        .collect();
    kept.join(";")
}

pub fn transition(contact: &str, segment: &str, change: Change, version: u64, members: &[String]) -> Transition {
    Transition {
        contact: contact.into(),
        segment: segment.into(),
        change,
        rule_version: "abcd1234".into(),
        state_version: version,
        at: "2026-11-27T10:00:00Z".parse().unwrap(),
        trigger: None,
        summary: format!("{segment} {change:?}"),
        explanation: serde_json::json!({"condition": segment, "result": change == Change::Entered}),
        members: Some(members.to_vec()),
    }
}

/// What a storm came to.
#[derive(Debug, Default)]
pub struct Report {
    pub invocations: usize,
    pub dead_letters: usize,
    /// Each dead letter's body and attributes.
    pub letters: Vec<(String, Vec<(String, String)>)>,
    pub redriven_to_dlq: usize,
    pub most_receives: u32,
    pub virtual_secs: u64,
}

struct Sim {
    id: String,
    body: String,
    visible_at: u64,
    receives: u32,
}

/// Sends `transitions` through the queue to the handler until it is empty.
pub async fn run<D: Destination>(
    destinations: &[D],
    transitions: &[Transition],
    clock: &ManualClock,
    ledger: &MemoryLedger,
) -> Report {
    let start = clock.now_ms();
    let mut queue: Vec<Sim> = transitions
        .iter()
        .enumerate()
        .map(|(i, t)| Sim {
            id: format!("m{i}"),
            body: WritebackMessage::transition_body(t),
            visible_at: start,
            receives: 0,
        })
        .collect();
    let (contacts, dead, redelivery) = (
        MemoryContacts::default(),
        MemoryDeadLetters::default(),
        MemoryRedelivery::default(),
    );
    let wb = Writeback {
        destinations,
        ledger,
        contacts: &contacts,
        dead_letters: &dead,
        redelivery: &redelivery,
        clock,
    };
    let mut report = Report::default();
    while !queue.is_empty() {
        let now = clock.now_ms();
        let picked: Vec<usize> = (0..queue.len())
            .filter(|&i| queue[i].visible_at <= now)
            .take(BATCH)
            .collect();
        if picked.is_empty() {
            clock.advance_to(queue.iter().map(|m| m.visible_at).min().unwrap());
            continue;
        }
        let mut event = SqsEvent::default();
        for &i in &picked {
            queue[i].receives += 1;
            report.most_receives = report.most_receives.max(queue[i].receives);
            let mut m = SqsMessage::default();
            m.message_id = Some(queue[i].id.clone());
            m.receipt_handle = Some(queue[i].id.clone());
            m.body = Some(queue[i].body.clone());
            event.records.push(m);
        }
        report.invocations += 1;
        let response = handle(event, now + 60_000, &wb).await;
        let after = clock.now_ms().max(now + 1);
        let delays: BTreeMap<String, u32> = redelivery.drain().into_iter().collect();
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let mut keep = Vec::new();
        for (i, m) in queue.into_iter().enumerate() {
            if !picked.contains(&i) {
                keep.push(m);
            } else if failed.contains(&m.id) {
                if m.receives >= MAX_RECEIVES {
                    report.redriven_to_dlq += 1;
                    continue;
                }
                let secs = delays.get(&m.id).map_or(VISIBILITY_SECS, |s| u64::from(*s));
                keep.push(Sim {
                    visible_at: after + secs * 1000,
                    ..m
                });
            }
        }
        queue = keep;
    }
    report.letters = dead.letters();
    report.dead_letters = report.letters.len();
    report.virtual_secs = (clock.now_ms() - start) / 1000;
    report
}
