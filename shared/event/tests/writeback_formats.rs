//! Every write-back queue format ever written still decodes: the committed
//! fixtures are what a queue may hold during a deploy.

use kairos_event::{MessageError, WritebackMessage};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn transition(name: &str) -> kairos_event::Transition {
    let WritebackMessage::Transition(t) = WritebackMessage::decode(&fixture(name)).unwrap();
    t
}

#[test]
fn format_1_is_a_bare_transition_without_members() {
    let t = transition("writeback-v1.json");
    assert_eq!((t.contact.as_str(), t.state_version), ("ada@acme.test", 1));
    assert_eq!(t.members, None);
    // Re-encoded, it stays format 1: a rolled-back build reads it.
    let body = WritebackMessage::transition_body(&t);
    assert!(!body.contains("\"v\""), "{body}");
    assert_eq!(
        WritebackMessage::decode(body.as_bytes()).unwrap(),
        WritebackMessage::Transition(t)
    );
}

#[test]
fn format_2_carries_the_full_membership() {
    let t = transition("writeback-v2.json");
    assert_eq!(
        t.members.as_deref(),
        Some(&["engaged-reader".to_string(), "pricing-intent".to_string()][..])
    );
    let body = WritebackMessage::transition_body(&t);
    assert!(body.starts_with("{\"v\":2,"), "{body}");
    assert_eq!(
        WritebackMessage::decode(body.as_bytes()).unwrap(),
        WritebackMessage::Transition(t)
    );
}

#[test]
fn a_format_mismatch_is_refused_by_name() {
    let v1 = String::from_utf8(fixture("writeback-v1.json")).unwrap();
    let without_members = v1.replacen('{', "{\"v\":2,", 1);
    let err = WritebackMessage::decode(without_members.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("missing field `members`"), "{err}");
    let v2 = String::from_utf8(fixture("writeback-v2.json")).unwrap();
    let unversioned = v2.replacen("\"v\":2,", "", 1);
    let err = WritebackMessage::decode(unversioned.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("`members` needs format v2"), "{err}");
    let newer = v2.replacen("\"v\":2", "\"v\":3", 1);
    assert!(matches!(
        WritebackMessage::decode(newer.as_bytes()),
        Err(MessageError::Newer { found: 3, supported: 2 })
    ));
}
