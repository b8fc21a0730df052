//! The contact state under arbitrary event sequences: times anywhere from
//! 1970 to far in the future, ids that repeat or never do, traits of any
//! number and size, anonymous visitors merged, time passing; the demo rules
//! decided after each batch. A panic, a record over its budget or a state
//! that does not survive its encoding is a finding.

use chrono::DateTime;
use kairos_event::{Event, EventType};
use kairos_rules::RuleSet;
use kairos_state::{ContactState, STATE_BUDGET_BYTES};
use kairos_store::{StoredContact, ITEM_BUDGET_BYTES};
use serde_json::{Map, Value};
use std::sync::OnceLock;

const KINDS: [EventType; 10] = [
    EventType::PageViewed,
    EventType::EmailOpened,
    EventType::EmailClicked,
    EventType::EmailDelivered,
    EventType::EmailUnsubscribed,
    EventType::ConsentChanged,
    EventType::ContactIdentified,
    EventType::Track,
    EventType::ChatMessage,
    EventType::AdClicked,
];

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::from_yaml(include_str!("../../rules/segments.yaml")).expect("the demo rules compile"))
}

/// Reads the input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// One event from the input, received at `now`; none if its time is not representable.
fn event(input: &mut Input, now: i64, serial: u32) -> Option<Event> {
    let kind = KINDS[usize::from(input.byte()) % KINDS.len()];
    let id = match input.byte() {
        0..=127 => format!("e{}", input.byte()),
        _ => format!("u{serial}"),
    };
    let at = match input.byte() % 4 {
        0 => now - i64::from(input.u16()),
        1 => now + i64::from(input.u16()),
        _ => now + i64::from(input.i32()) * 64,
    };
    let mut e = Event {
        id,
        contact: "c".into(),
        kind,
        name: (kind == EventType::Track).then(|| "Demo Booked".into()),
        at: DateTime::from_timestamp(at, 0)?,
        source: "fuzz".into(),
        machine: input.byte() % 4 == 0,
        url: Some(["/pricing", "/compare", "/x"][usize::from(input.byte()) % 3].into()),
        campaign: None,
        message_id: None,
        properties: Map::new(),
        traits: Map::new(),
    };
    let status = ["subscribed", "unsubscribed", "bounced", "complained"][usize::from(input.byte()) % 4];
    e.properties.insert("status".into(), Value::from(status));
    if kind == EventType::ContactIdentified {
        for _ in 0..input.byte() % 8 {
            let name = "n".repeat(usize::from(input.byte()) % 80) + &input.byte().to_string();
            e.traits.insert(name, Value::from("v".repeat(usize::from(input.u16()) % 1200)));
        }
    }
    Some(e)
}

/// Applies the input's events in batches as evaluate does, deciding the demo
/// rules and holding the record to its budget after each.
pub fn state(data: &[u8]) {
    let rules = rules();
    let mut input = Input(data);
    let mut record = StoredContact::default();
    let mut now: i64 = 1_795_000_000;
    let mut serial = 0u32;
    while !input.0.is_empty() {
        now += i64::from(input.u16()) * i64::from(input.byte() % 8) * 60;
        if input.byte() % 16 == 0 {
            let anonymous = format!("anon:{}", input.u16());
            record.state.absorb(&anonymous, &ContactState::default(), now + 86_400);
        }
        for _ in 0..1 + input.byte() % 10 {
            serial += 1;
            if let Some(e) = event(&mut input, now, serial) {
                record.state.apply(&e, &rules.signals_for(&e), now);
            }
        }
        record.state.compact(now);
        let (decisions, _explained) = rules.decide_explained(&record.state, now, None);
        for &(i, member) in &decisions.members {
            record.state.set_membership(rules.segment_id(i), member, now);
        }
        record.state.record_decision(decisions.deadlines, decisions.holds);
        let report = record.fit("fuzz@x.test");
        assert!(report.fits() && report.after <= ITEM_BUDGET_BYTES, "{report:?}");
        let bytes = record.state.to_bytes();
        assert!(bytes.len() <= STATE_BUDGET_BYTES, "state of {} bytes", bytes.len());
        let decoded = ContactState::from_bytes(&bytes).expect("a state decodes as encoded");
        assert_eq!(decoded.to_bytes(), bytes, "a state survives its encoding");
    }
}
