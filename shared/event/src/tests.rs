use super::*;

fn parse(json: &str) -> Result<Event, EventError> {
    Event::from_json(json.as_bytes())
}

#[test]
fn full_event_round_trips() {
    let json = r#"{"id":"e1","contact":"u-42","type":"track","name":"Demo Booked",
        "at":"2026-11-27T10:00:00+02:00","source":"api","url":"https://x.test/a",
        "campaign":"c1","message_id":"m1","properties":{"plan":"pro"},"traits":{}}"#;
    let event = parse(json).unwrap();
    assert_eq!(event.at.to_rfc3339(), "2026-11-27T08:00:00+00:00");
    assert_eq!(event.name.as_deref(), Some("Demo Booked"));
    let again = Event::from_json(event.to_json().as_bytes()).unwrap();
    assert_eq!(again, event);
    assert!(event.to_json().contains(r#""at":"2026-11-27T08:00:00Z""#));
}

#[test]
fn unknown_field_is_named() {
    let err = parse(
        r#"{"id":"e","contact":"c","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s","colour":"red"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("unknown field `colour`"), "{err}");
}

#[test]
fn unknown_type_is_named() {
    let err =
        parse(r#"{"id":"e","contact":"c","type":"page.seen","at":"2026-01-01T00:00:00Z","source":"s"}"#).unwrap_err();
    assert!(err.to_string().contains("page.seen"), "{err}");
}

#[test]
fn missing_required_field_is_named() {
    let err = parse(r#"{"id":"e","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"}"#).unwrap_err();
    assert!(err.to_string().contains("missing field `contact`"), "{err}");
}

#[test]
fn bad_timestamp_is_rejected() {
    let err = parse(r#"{"id":"e","contact":"c","type":"page.viewed","at":"yesterday","source":"s"}"#).unwrap_err();
    assert!(
        err.to_string().contains("input contains invalid characters") || err.to_string().contains("premature end"),
        "{err}"
    );
}

#[test]
fn track_needs_a_name() {
    let err = parse(r#"{"id":"e","contact":"c","type":"track","at":"2026-01-01T00:00:00Z","source":"s"}"#).unwrap_err();
    assert_eq!(err, EventError::Missing { field: "name" });
}

#[test]
fn empty_id_is_rejected() {
    let err =
        parse(r#"{"id":" ","contact":"c","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"}"#).unwrap_err();
    assert_eq!(err, EventError::Empty { field: "id" });
}

#[test]
fn email_contacts_are_lowercased_but_user_ids_are_not() {
    let email = parse(
        r#"{"id":"e","contact":" Ada@Example.COM","type":"email.clicked","at":"2026-01-01T00:00:00Z","source":"s"}"#,
    )
    .unwrap();
    assert_eq!(email.contact, "ada@example.com");
    let user = parse(r#"{"id":"e","contact":"User-AB","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"}"#)
        .unwrap();
    assert_eq!(user.contact, "User-AB");
}

#[test]
fn oversized_event_is_rejected_before_parsing() {
    let big = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES));
    assert!(matches!(parse(&big), Err(EventError::TooLarge { .. })));
}

#[test]
fn every_type_name_parses_back() {
    for t in EventType::ALL {
        assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{}\"", t.as_str()));
    }
    assert!("email.read".parse::<EventType>().is_err());
}

#[test]
fn a_bad_field_is_named_with_what_was_expected() {
    let at = |at: &str| {
        let json = format!(r#"{{"id":"e","contact":"c","type":"page.viewed","at":"{at}","source":"s"}}"#);
        parse(&json).unwrap_err().to_string()
    };
    let no_offset = at("2026-11-26T10:00:00");
    assert!(
        no_offset.starts_with("`at`: premature end of input (expected an RFC 3339 time"),
        "{no_offset}"
    );
    assert!(no_offset.ends_with(" at column 71"), "{no_offset}");
    assert!(at("2026-13-01T00:00:00Z").starts_with("`at`: input is out of range"));
    let number = parse(r#"{"id":"e","contact":"c","type":"page.viewed","at":5,"source":"s"}"#).unwrap_err();
    assert_eq!(number.to_string().matches("RFC 3339").count(), 1, "{number}");
    let kind = parse(r#"{"id":"e","contact":"c","type":7,"at":"2026-01-01T00:00:00Z","source":"s"}"#).unwrap_err();
    assert!(kind.to_string().starts_with("`type`: "), "{kind}");
    let trailing = parse(r#"{"id":"e","contact":"c","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"} x"#);
    assert!(trailing
        .unwrap_err()
        .to_string()
        .starts_with("trailing characters at column"));
    let value = serde_json::json!({"id":"e","contact":"c","type":"page.viewed","at":"yesterday","source":"s"});
    let err = Event::from_value(value).unwrap_err().to_string();
    assert!(err.starts_with("`at`: ") && !err.contains("column"), "{err}");
}

#[test]
fn a_consent_change_needs_a_known_status() {
    let consent = |properties: &str| {
        let json = format!(
            r#"{{"id":"e","contact":"c","type":"consent.changed","at":"2026-01-01T00:00:00Z","source":"s"{properties}}}"#
        );
        parse(&json).map(|e| e.properties["status"].clone())
    };
    assert_eq!(
        consent(r#","properties":{"status":"unsubscribed"}"#).unwrap(),
        "unsubscribed"
    );
    let wrong = consent(r#","properties":{"status":"Unsubscribed"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        wrong.starts_with("field `properties.status` must be subscribed, unsubscribed"),
        "{wrong}"
    );
    assert!(wrong.ends_with("found \"Unsubscribed\""), "{wrong}");
    let missing = consent("").unwrap_err().to_string();
    assert!(missing.ends_with("found nothing"), "{missing}");
}
