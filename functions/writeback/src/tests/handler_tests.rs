//! The batch handler over in-memory adapters and scripted destinations.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use kairos_event::{Change, Transition, WritebackMessage};
use kairos_store::{
    ContactStore, DeliveryLedger, MemoryContacts, MemoryDeadLetters, MemoryLedger, MemoryRedelivery, StoredContact,
};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::file::Segments;
use crate::{handle, Clock, Destination, Gate, ManualClock, Outcome, Policy, Write, Writeback};

const NOW: u64 = 1_795_822_200_000;

/// A destination that records what it is asked to write and answers from a script.
struct Scripted {
    name: &'static str,
    segments: Segments,
    gate: Gate,
    policy: Policy,
    script: Mutex<VecDeque<Outcome>>,
    written: Mutex<Vec<Write>>,
    calls: Mutex<usize>,
    /// Requests a call sends one after another.
    requests: u32,
}

impl Scripted {
    fn new(name: &'static str, segments: Segments, script: Vec<Outcome>) -> Scripted {
        Scripted {
            name,
            segments,
            gate: Gate::default(),
            policy: Policy::default(),
            script: Mutex::new(script.into()),
            written: Mutex::new(Vec::new()),
            calls: Mutex::new(0),
            requests: 1,
        }
    }

    fn written(&self) -> Vec<(String, u64, Vec<String>)> {
        let w = self.written.lock().unwrap();
        w.iter()
            .map(|w| (w.contact.clone(), w.version, w.members.clone()))
            .collect()
    }
}

impl Destination for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn segments(&self) -> &Segments {
        &self.segments
    }
    fn max_batch(&self) -> usize {
        100
    }
    fn gate(&self) -> &Gate {
        &self.gate
    }
    fn policy(&self) -> &Policy {
        &self.policy
    }
    fn requests(&self, _writes: &[&Write]) -> u32 {
        self.requests
    }
    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        *self.calls.lock().unwrap() += 1;
        let mut out = Vec::new();
        for w in writes {
            let outcome = self.script.lock().unwrap().pop_front().unwrap_or(Outcome::Written);
            if outcome == Outcome::Written {
                self.written.lock().unwrap().push(w.clone());
            }
            out.push(outcome);
        }
        out
    }
}

fn transition(contact: &str, segment: &str, version: u64, members: Option<&[&str]>) -> Transition {
    Transition {
        contact: contact.into(),
        segment: segment.into(),
        change: Change::Entered,
        rule_version: "abcd1234".into(),
        state_version: version,
        at: "2026-11-27T10:00:00Z".parse().unwrap(),
        trigger: None,
        summary: "s".into(),
        explanation: serde_json::json!({}),
        members: members.map(|m| m.iter().map(|s| s.to_string()).collect()),
    }
}

fn message(id: &str, body: String, only: Option<&str>) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("receipt-{id}"));
    m.body = Some(body);
    if let Some(dest) = only {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(dest.into());
        a.data_type = Some("String".into());
        m.message_attributes.insert(crate::DESTINATION_ATTRIBUTE.into(), a);
    }
    m
}

fn batch(items: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = items;
    e
}

fn body(t: &Transition) -> String {
    WritebackMessage::transition_body(t)
}

struct World {
    ledger: MemoryLedger,
    contacts: MemoryContacts,
    dead: MemoryDeadLetters,
    redelivery: MemoryRedelivery,
    clock: ManualClock,
}

impl World {
    fn new() -> World {
        World {
            ledger: MemoryLedger::default(),
            contacts: MemoryContacts::default(),
            dead: MemoryDeadLetters::default(),
            redelivery: MemoryRedelivery::default(),
            clock: ManualClock::at(NOW),
        }
    }

    async fn run(&self, destinations: &[Scripted], messages: Vec<SqsMessage>) -> Vec<String> {
        let wb = Writeback {
            destinations,
            ledger: &self.ledger,
            contacts: &self.contacts,
            dead_letters: &self.dead,
            redelivery: &self.redelivery,
            clock: &self.clock,
        };
        let deadline = self.clock.now_ms() + 60_000;
        let response = handle(batch(messages), deadline, &wb).await;
        response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }
}

#[tokio::test]
async fn a_contacts_transitions_collapse_to_the_newest_and_repeats_are_dropped() {
    let world = World::new();
    let crm = [Scripted::new("crm", Segments::All, vec![])];
    let msgs = vec![
        message("m1", body(&transition("ada@x.test", "a", 1, Some(&["a"]))), None),
        message("m2", body(&transition("ada@x.test", "b", 3, Some(&["a", "b"]))), None),
        message("m3", body(&transition("ada@x.test", "a", 2, Some(&[]))), None),
        message("m4", body(&transition("bob@x.test", "a", 1, Some(&["a"]))), None),
    ];
    assert!(world.run(&crm, msgs.clone()).await.is_empty());
    assert_eq!(
        crm[0].written(),
        [
            ("ada@x.test".into(), 3, vec!["a".into(), "b".into()]),
            ("bob@x.test".into(), 1, vec!["a".into()])
        ]
    );
    assert_eq!(*crm[0].calls.lock().unwrap(), 1, "one batched call");
    // Redelivered, and an older exit arriving late: nothing is written again.
    let late = message("m5", body(&transition("ada@x.test", "b", 2, Some(&["a"]))), None);
    assert!(world.run(&crm, [msgs, vec![late]].concat()).await.is_empty());
    assert_eq!(crm[0].written().len(), 2);
    assert_eq!(
        world.ledger.delivered("crm:ada@x.test").await.unwrap(),
        Some(crate::ledger_mark(3, true))
    );
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_for_its_destination_only_and_redriven_there() {
    let world = World::new();
    let t = transition("ada@x.test", "a", 4, Some(&["a"]));
    let dests = [
        Scripted::new("webhook", Segments::All, vec![]),
        Scripted::new(
            "hubspot",
            Segments::All,
            vec![Outcome::Permanent("VALIDATION_ERROR: bad email".into())],
        ),
    ];
    assert!(
        world.run(&dests, vec![message("m1", body(&t), None)]).await.is_empty(),
        "acknowledged"
    );
    assert_eq!(dests[0].written().len(), 1);
    let letters = world.dead.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, body(&t));
    assert!(letters[0].1.contains(&("kairos-destination".into(), "hubspot".into())));
    assert!(letters[0]
        .1
        .contains(&("kairos-reason".into(), "VALIDATION_ERROR: bad email".into())));
    // Redelivered (for another reason): not dead-lettered twice, not called again.
    world.run(&dests, vec![message("m1", body(&t), None)]).await;
    assert_eq!((world.dead.letters().len(), *dests[1].calls.lock().unwrap()), (1, 1));
    // After a fix, the redrive goes to HubSpot only, and is written.
    assert!(world
        .run(&dests, vec![message("r1", body(&t), Some("hubspot"))])
        .await
        .is_empty());
    assert_eq!(dests[1].written(), [("ada@x.test".into(), 4, vec!["a".into()])]);
    assert_eq!(dests[0].written().len(), 1, "the webhook is not sent it again");
}

#[tokio::test]
async fn a_wait_longer_than_sqs_allows_asks_for_the_longest_delay_sqs_accepts() {
    let world = World::new();
    // HubSpot's daily limit reached in the morning: midnight is 15 hours away.
    let daily = Outcome::Retry {
        reason: "HTTP 429 DAILY".into(),
        after: Some(Duration::from_secs(15 * 3600)),
    };
    let dests = [Scripted::new("down", Segments::All, vec![daily])];
    let t = transition("ada@x.test", "a", 1, Some(&["a"]));
    assert_eq!(world.run(&dests, vec![message("m1", body(&t), None)]).await, ["m1"]);
    let delays = world.redelivery.drain();
    assert_eq!(delays, [("receipt-m1".to_string(), kairos_store::MAX_DELAY_SECS)]);
    // SQS counts its 12 hours from the receipt: the delay leaves room for the time already held.
    assert!(delays[0].1 + 600 <= kairos_store::MAX_VISIBILITY_SECS);
}

#[tokio::test]
async fn a_long_wait_goes_back_to_the_queue_and_the_others_are_not_held() {
    let world = World::new();
    let daily = Outcome::Retry {
        reason: "HTTP 429 DAILY".into(),
        after: Some(Duration::from_secs(5 * 3600)),
    };
    let dests = [
        Scripted::new("down", Segments::All, vec![daily]),
        Scripted::new("up", Segments::All, vec![]),
    ];
    let t = transition("ada@x.test", "a", 1, Some(&["a"]));
    assert_eq!(world.run(&dests, vec![message("m1", body(&t), None)]).await, ["m1"]);
    assert_eq!(world.redelivery.drain(), [("receipt-m1".to_string(), 5 * 3600)]);
    assert_eq!(dests[1].written().len(), 1, "the healthy destination wrote at once");
    assert_eq!(world.clock.now_ms(), NOW, "nobody slept through the wait");
    // Redelivered: only the one that needs it is called.
    assert!(world.run(&dests, vec![message("m1", body(&t), None)]).await.is_empty());
    assert_eq!(
        (*dests[0].calls.lock().unwrap(), *dests[1].calls.lock().unwrap()),
        (2, 1)
    );
}

#[tokio::test]
async fn short_retries_happen_within_the_invocation_until_the_deadline() {
    let world = World::new();
    let busy = || Outcome::Retry {
        reason: "HTTP 503".into(),
        after: Some(Duration::from_secs(2)),
    };
    let crm = [Scripted::new("crm", Segments::All, vec![busy(), busy()])];
    let t = transition("ada@x.test", "a", 1, Some(&["a"]));
    assert!(world.run(&crm, vec![message("m1", body(&t), None)]).await.is_empty());
    assert_eq!(*crm[0].calls.lock().unwrap(), 3);
    assert_eq!(world.clock.now_ms(), NOW + 4_000, "two waits of Retry-After: 2");
    // With the deadline too close for a call, nothing is attempted.
    let crm = [Scripted::new("crm", Segments::All, vec![])];
    let wb = Writeback {
        destinations: &crm,
        ledger: &world.ledger,
        contacts: &world.contacts,
        dead_letters: &world.dead,
        redelivery: &world.redelivery,
        clock: &world.clock,
    };
    let t2 = transition("bob@x.test", "a", 1, Some(&["a"]));
    let r = handle(
        batch(vec![message("m2", body(&t2), None)]),
        world.clock.now_ms() + 3_000,
        &wb,
    )
    .await;
    assert_eq!(r.batch_item_failures.len(), 1);
    assert_eq!(*crm[0].calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn segments_filter_what_a_destination_receives_and_writes() {
    let world = World::new();
    let dests = [Scripted::new("vip-only", Segments::Only(vec!["vip".into()]), vec![])];
    let msgs = vec![
        message(
            "m1",
            body(&transition("ada@x.test", "newsletter", 2, Some(&["newsletter", "vip"]))),
            None,
        ),
        message(
            "m2",
            body(&transition("bob@x.test", "vip", 5, Some(&["newsletter", "vip"]))),
            None,
        ),
    ];
    assert!(world.run(&dests, msgs).await.is_empty());
    assert_eq!(dests[0].written(), [("bob@x.test".into(), 5, vec!["vip".into()])]);
}

#[tokio::test]
async fn a_format_1_transition_takes_the_stored_membership_and_a_malformed_one_is_dead_lettered() {
    let world = World::new();
    let mut record = StoredContact {
        version: 7,
        ..StoredContact::default()
    };
    record.state.set_membership("b", true, 1);
    record.state.set_membership("c", true, 1);
    world.contacts.save("ada@x.test", None, &record).await.unwrap();
    let v1 = transition("ada@x.test", "b", 5, None).to_json();
    assert!(!v1.contains("\"v\""));
    let crm = [Scripted::new("crm", Segments::All, vec![])];
    let failed = world
        .run(&crm, vec![message("m1", v1, None), message("m2", "{oops".into(), None)])
        .await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        crm[0].written(),
        [("ada@x.test".into(), 7, vec!["b".into(), "c".into()])]
    );
    let letters = world.dead.letters();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].1[0].1.starts_with("malformed message"), "{letters:?}");
}

#[tokio::test]
async fn an_older_state_is_not_written_while_a_newer_one_is_being_retried() {
    let world = World::new();
    let busy = Outcome::Retry {
        reason: "a list call failed after the upsert".into(),
        after: Some(Duration::from_secs(3600)),
    };
    let crm = [Scripted::new("crm", Segments::All, vec![busy])];
    let v4 = message("m4", body(&transition("ada@x.test", "b", 4, Some(&["b"]))), None);
    assert_eq!(world.run(&crm, vec![v4.clone()]).await, ["m4"]);
    // v3 arrives while v4 waits: v4 may be half written, so v3 is dropped.
    let v3 = message("m3", body(&transition("ada@x.test", "a", 3, Some(&["a"]))), None);
    assert!(world.run(&crm, vec![v3]).await.is_empty());
    assert!(crm[0].written().is_empty());
    assert!(world.run(&crm, vec![v4]).await.is_empty());
    assert_eq!(crm[0].written(), [("ada@x.test".into(), 4, vec!["b".into()])]);
}

#[tokio::test]
async fn a_pause_is_shared_with_the_functions_other_instances() {
    let world = World::new();
    let daily = Outcome::Retry {
        reason: "HTTP 429 DAILY".into(),
        after: Some(Duration::from_secs(3600)),
    };
    let first = [Scripted::new("crm", Segments::All, vec![])];
    first[0].gate.pause(NOW + 3_600_000, "daily limit");
    let t = transition("ada@x.test", "a", 1, Some(&["a"]));
    assert_eq!(world.run(&first, vec![message("m1", body(&t), None)]).await, ["m1"]);
    // Another instance (its own gate) reads the pause from the ledger and calls nothing.
    let other = [Scripted::new("crm", Segments::All, vec![daily])];
    assert_eq!(world.run(&other, vec![message("m1", body(&t), None)]).await, ["m1"]);
    assert_eq!(*other[0].calls.lock().unwrap(), 0);
    world.clock.advance(Duration::from_secs(3600));
    assert!(world
        .run(
            &[Scripted::new("crm", Segments::All, vec![])],
            vec![message("m1", body(&t), None)]
        )
        .await
        .is_empty());
}

/// A destination whose first call meets a 429 while another instance of the
/// function writes a newer version of the same contact (its ledger marks).
struct Overtaken<'l> {
    crm: Scripted,
    ledger: &'l MemoryLedger,
    newer: u64,
}

impl Destination for Overtaken<'_> {
    fn name(&self) -> &str {
        self.crm.name()
    }
    fn segments(&self) -> &Segments {
        self.crm.segments()
    }
    fn max_batch(&self) -> usize {
        self.crm.max_batch()
    }
    fn gate(&self) -> &Gate {
        self.crm.gate()
    }
    fn policy(&self) -> &Policy {
        self.crm.policy()
    }
    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        if *self.crm.calls.lock().unwrap() == 0 {
            let key = crate::ledger_key(self.crm.name, &writes[0].contact);
            let written = crate::ledger_mark(self.newer, true);
            self.ledger.record(&key, written).await.unwrap();
        }
        self.crm.write(writes).await
    }
}

#[tokio::test]
async fn a_write_retried_after_another_instance_wrote_a_newer_version_is_dropped_not_written_over_it() {
    let world = World::new();
    let busy = Outcome::Retry {
        reason: "HTTP 429".into(),
        after: Some(Duration::from_secs(1)),
    };
    let crm = Scripted::new("crm", Segments::All, vec![busy]);
    let overtaken = Overtaken {
        crm,
        ledger: &world.ledger,
        newer: 6,
    };
    let write = Write {
        contact: "ada@x.test".into(),
        version: 5,
        redrive: false,
        members: vec!["a".into()],
        transitions: vec![transition("ada@x.test", "a", 5, Some(&["a"]))],
    };
    let (finals, retries) = crate::drive(&overtaken, &[write], &world.ledger, &world.clock, NOW + 60_000).await;
    assert_eq!((finals, retries), (vec![crate::Final::Done], 1));
    assert!(overtaken.crm.written().is_empty(), "version 5 was not written over 6");
    assert_eq!(*overtaken.crm.calls.lock().unwrap(), 1, "not called again");
    let mark = world.ledger.delivered(&crate::ledger_key("crm", "ada@x.test")).await;
    assert_eq!(mark.unwrap(), Some(crate::ledger_mark(6, true)));
}

#[tokio::test]
async fn a_call_starts_only_with_time_left_for_every_request_it_sends() {
    let world = World::new();
    let write = Write {
        contact: "ada@x.test".into(),
        version: 1,
        redrive: false,
        members: vec!["a".into()],
        transitions: vec![transition("ada@x.test", "a", 1, Some(&["a"]))],
    };
    // 12 s left, 5 s a request and 1 s kept back: room for two requests, not three.
    let deadline = NOW + 12_000;
    for (requests, called) in [(3, 0), (2, 1)] {
        let crm = Scripted {
            requests,
            ..Scripted::new("crm", Segments::All, vec![])
        };
        let (finals, _) = crate::drive(
            &crm,
            std::slice::from_ref(&write),
            &world.ledger,
            &world.clock,
            deadline,
        )
        .await;
        assert_eq!(*crm.calls.lock().unwrap(), called, "{requests} requests");
        let expected = if called == 0 {
            crate::Final::Pending(None)
        } else {
            crate::Final::Done
        };
        assert_eq!(finals, [expected]);
    }
    // A call whose requests could outlast any invocation is held back only so long: it is made.
    let crm = Scripted {
        requests: 40,
        ..Scripted::new("crm", Segments::All, vec![])
    };
    let deadline = NOW + crate::MAX_CALL_RESERVE.as_millis() as u64 + 1_000;
    let newer = Write { version: 2, ..write };
    let (finals, _) = crate::drive(&crm, &[newer], &world.ledger, &world.clock, deadline).await;
    assert_eq!((finals, *crm.calls.lock().unwrap()), (vec![crate::Final::Done], 1));
}
