//! States written by earlier releases (`tests/fixtures/v*/`) decode, keep what
//! they held, and carry forward: apply an event, encode in this build's
//! format, decode again.

use kairos_event::{Event, EventsMessage};
use kairos_state::{Applied, CodecError, ConsentStatus, ContactState, SeenId, TraitValue, STATE_FORMAT};

const V1: [(&str, &[u8]); 6] = [
    ("empty", include_bytes!("fixtures/v1/empty.bin")),
    ("ada@acme.test", include_bytes!("fixtures/v1/ada.bin")),
    ("bob@globex.test", include_bytes!("fixtures/v1/bob.bin")),
    ("carol@initech.test", include_bytes!("fixtures/v1/carol.bin")),
    ("dave@hooli.test", include_bytes!("fixtures/v1/dave.bin")),
    ("anon:v-42", include_bytes!("fixtures/v1/anon.bin")),
];

const V2: [(&str, &[u8]); 6] = [
    ("empty", include_bytes!("fixtures/v2/empty.bin")),
    ("ada@acme.test", include_bytes!("fixtures/v2/ada.bin")),
    ("bob@globex.test", include_bytes!("fixtures/v2/bob.bin")),
    ("carol@initech.test", include_bytes!("fixtures/v2/carol.bin")),
    ("dave@hooli.test", include_bytes!("fixtures/v2/dave.bin")),
    ("anon:v-42", include_bytes!("fixtures/v2/anon.bin")),
];

const V3: [(&str, &[u8]); 6] = [
    ("empty", include_bytes!("fixtures/v3/empty.bin")),
    ("ada@acme.test", include_bytes!("fixtures/v3/ada.bin")),
    ("bob@globex.test", include_bytes!("fixtures/v3/bob.bin")),
    ("carol@initech.test", include_bytes!("fixtures/v3/carol.bin")),
    ("dave@hooli.test", include_bytes!("fixtures/v3/dave.bin")),
    ("anon:v-42", include_bytes!("fixtures/v3/anon.bin")),
];

/// The events the fixtures were written from, as the events queue carried them.
fn written_from() -> Vec<Event> {
    let lines = include_str!("../../event/tests/fixtures/events-v1.jsonl").lines();
    lines
        .map(|line| match EventsMessage::decode(line.as_bytes()) {
            Ok(EventsMessage::Event(event)) => event,
            Ok(other) => panic!("{line}: not an event: {other:?}"),
            Err(err) => panic!("{line}: {err}"),
        })
        .collect()
}

fn now() -> i64 {
    "2026-11-28T12:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp()
}

/// `contact`'s fixture of `format`, decoded.
fn decoded(fixtures: &[(&str, &[u8])], format: u32, contact: &str) -> ContactState {
    let (_, bytes) = fixtures.iter().find(|(c, _)| *c == contact).unwrap();
    ContactState::decode(bytes, format).unwrap_or_else(|e| panic!("{contact}: {e}"))
}

/// Every event the fixtures were written from is a duplicate to the state
/// `load` gives for its contact (and, for the anonymous visitor's, for bob's,
/// which it was merged into).
fn assert_every_event_is_known(load: impl Fn(&str) -> ContactState) {
    for event in written_from() {
        let merged_into = (event.contact == "anon:v-42").then_some("bob@globex.test");
        for key in std::iter::once(event.contact.as_str()).chain(merged_into) {
            let mut state = load(key);
            assert_eq!(
                state.apply(&event, &[1], now()),
                Applied::Duplicate,
                "{} in {key}",
                event.id
            );
        }
    }
}

fn v1(contact: &str) -> ContactState {
    decoded(&V1, 1, contact)
}

#[test]
fn format_1_states_keep_what_they_held() {
    assert_eq!(v1("empty"), ContactState::default());
    let bob = v1("bob@globex.test");
    assert_eq!(
        bob.trait_value("job_title"),
        Some(&TraitValue::Text("VP Marketing".into()))
    );
    assert_eq!(bob.trait_value("company_size"), Some(&TraitValue::Number(250.0)));
    assert_eq!(bob.trait_value("tags"), Some(&TraitValue::Json(r#"["a","b"]"#.into())));
    assert!(bob.has_merged("anon:v-42"));
    assert!(bob.member_since("cross-channel-hot").is_some());
    assert!(!bob.signals().is_empty() && bob.rules_fingerprint() != 0);
    assert_eq!(v1("carol@initech.test").consent().status(), ConsentStatus::Unsubscribed);
    assert!(v1("dave@hooli.test").member_since("engaged-reader").is_some());
}

#[test]
fn format_1_states_still_know_every_event_they_applied() {
    let mut states: Vec<(&str, ContactState)> = V1.iter().map(|(c, _)| (*c, v1(c))).collect();
    for event in written_from() {
        // The anonymous visitor's events were merged into bob's state too.
        let merged_into = (event.contact == "anon:v-42").then_some("bob@globex.test");
        for key in std::iter::once(event.contact.as_str()).chain(merged_into) {
            let (_, state) = states.iter_mut().find(|(c, _)| *c == key).unwrap();
            assert_eq!(
                state.apply(&event, &[1], now()),
                Applied::Duplicate,
                "{} in {key}",
                event.id
            );
        }
    }
}

#[test]
fn format_1_states_carry_forward() {
    let open = Event::from_json(
        br#"{"id":"new-1","contact":"x","type":"email.opened","at":"2026-11-28T11:59:00Z","source":"sendgrid"}"#,
    )
    .unwrap();
    for (contact, _) in V1 {
        let mut state = v1(contact);
        assert_eq!(state.apply(&open, &[77], now()), Applied::Applied, "{contact}");
        let bytes = state.to_bytes();
        let again = ContactState::decode(&bytes, STATE_FORMAT).unwrap();
        assert_eq!(again, state, "{contact}");
        assert_eq!(again.signal(77).unwrap().count_since(now() - 3600, now()), 1);
    }
}

#[test]
fn a_newer_format_is_refused_by_name() {
    let bytes = ContactState::default().to_bytes();
    let err = ContactState::decode(&bytes, STATE_FORMAT + 1).unwrap_err();
    assert!(
        matches!(err, CodecError::Newer { found, supported } if found == STATE_FORMAT + 1 && supported == STATE_FORMAT)
    );
    assert!(err.to_string().contains("newer than this build reads"), "{err}");
    assert!(matches!(
        ContactState::decode(&[0xff; 3], 1),
        Err(CodecError::Invalid { format: 1, .. })
    ));
}

fn v2(contact: &str) -> ContactState {
    decoded(&V2, 2, contact)
}

#[test]
fn format_2_states_read_as_they_were_written_and_still_know_every_event() {
    // The v2 files are the v1 states as format 2 wrote them.
    for (contact, _) in V2 {
        assert_eq!(v2(contact), v1(contact), "{contact}");
    }
    assert_every_event_is_known(v2);
    assert!(v2("bob@globex.test").has_merged("anon:v-42"));
}

#[test]
fn format_2_states_carry_forward_in_fewer_bytes() {
    let open = Event::from_json(
        br#"{"id":"new-2","contact":"x","type":"email.opened","at":"2026-11-28T11:59:00Z","source":"sendgrid"}"#,
    )
    .unwrap();
    for (contact, bytes) in V2 {
        let mut state = v2(contact);
        let rewritten = state.to_bytes();
        // A byte less per remembered id (40-bit fingerprints), at most, and
        // the cold cutoff and days of format 4 (2 bytes when there are none).
        assert!(
            rewritten.len() <= bytes.len() + 2,
            "{contact}: {} > {}",
            rewritten.len(),
            bytes.len()
        );
        assert_eq!(state.apply(&open, &[77], now()), Applied::Applied, "{contact}");
        assert_eq!(state.apply(&open, &[77], now()), Applied::Duplicate, "{contact}");
        assert_eq!(
            ContactState::decode(&state.to_bytes(), STATE_FORMAT).unwrap(),
            state,
            "{contact}"
        );
    }
}

fn v3(contact: &str) -> ContactState {
    decoded(&V3, 3, contact)
}

#[test]
fn format_3_states_read_as_they_were_written_and_still_know_every_event() {
    // The v3 files are the v2 states as format 3 wrote them.
    for (contact, _) in V3 {
        assert_eq!(v3(contact), v2(contact), "{contact}");
        assert!(v3(contact).cold_days().is_empty() && v3(contact).cold_cutoff() == 0);
    }
    assert_every_event_is_known(v3);
}

#[test]
fn format_3_states_carry_forward_their_ids_moving_to_cold_days_as_they_age() {
    let open = Event::from_json(
        br#"{"id":"new-3","contact":"x","type":"email.opened","at":"2026-11-28T11:59:00Z","source":"sendgrid"}"#,
    )
    .unwrap();
    for (contact, bytes) in V3 {
        let mut state = v3(contact);
        // The same ids, and the cutoff and its (no) days: two bytes more.
        assert_eq!(state.to_bytes().len(), bytes.len() + 2, "{contact}");
        assert_eq!(state.apply(&open, &[77], now()), Applied::Applied, "{contact}");
        // Three days on, the fixtures' ids (of 2026-11-25 to 28) leave the record for their days.
        let later = now() + 3 * 86_400;
        state.age_seen(later, kairos_state::HOT_SEEN_SECS);
        let moved: Vec<SeenId> = state.cold_writes().into_iter().flat_map(|(_, ids)| ids).collect();
        let mut again = ContactState::decode(&state.to_bytes(), STATE_FORMAT).unwrap();
        assert_eq!(again.seen_bound(), state.seen_bound(), "{contact}");
        assert_eq!(again.cold_days().is_empty(), moved.is_empty(), "{contact}");
        // Read back from its day, the new event's id is known.
        again.add_cold_seen(&moved, later, true);
        assert_eq!(again.apply(&open, &[77], later), Applied::Duplicate, "{contact}");
    }
}
