//! Queue bodies written by earlier releases (`tests/fixtures/`) still decode,
//! and carry forward: decoded, encoded by this build, decoded again, they are
//! the same message, still in the format an older build reads.

use kairos_event::{EventsMessage, WritebackMessage};

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

/// The body's top-level `"v"`, if any.
fn version(body: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(body)
        .unwrap()
        .get("v")
        .cloned()
}

#[test]
fn events_queue_format_1_bodies_decode_and_carry_forward() {
    let fixture = include_str!("fixtures/events-v1.jsonl");
    assert!(lines(fixture).count() >= 19);
    for body in lines(fixture) {
        let message = EventsMessage::decode(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let again = message.encode();
        assert_eq!(version(&again), None, "a plain event stays format 1: {again}");
        assert_eq!(EventsMessage::decode(again.as_bytes()).unwrap(), message);
    }
}

#[test]
fn write_back_format_1_bodies_decode_and_carry_forward() {
    let fixture = include_str!("fixtures/writeback-v1.jsonl");
    let mut untriggered = 0;
    for body in lines(fixture) {
        let message = WritebackMessage::decode(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let WritebackMessage::Transition(transition) = &message;
        untriggered += usize::from(transition.trigger.is_none());
        let again = message.encode();
        assert_eq!(version(&again), None, "a transition stays format 1: {again}");
        assert_eq!(WritebackMessage::decode(again.as_bytes()).unwrap(), message);
    }
    assert!(untriggered > 0, "the fixture holds time-based transitions too");
}
