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

#[test]
fn times_outside_the_years_1970_to_9999_are_refused_naming_at() {
    let at = |at: &str| {
        parse(&format!(
            r#"{{"id":"e","contact":"c","type":"page.viewed","at":"{at}","source":"s"}}"#
        ))
    };
    let err = at("+10000-01-01T00:00:00Z").unwrap_err().to_string();
    assert_eq!(
        err,
        "field `at` must be a time in the years 1970 to 9999, found +10000-01-01T00:00:00Z"
    );
    assert!(at("1969-12-31T23:59:59Z")
        .unwrap_err()
        .to_string()
        .starts_with("field `at`"));
    assert!(at("9999-12-31T23:59:59Z").is_ok() && at("1970-01-01T00:00:00Z").is_ok());
}

#[test]
fn a_key_given_twice_is_refused_by_name_at_any_depth() {
    let with = |rest: &str| {
        parse(&format!(
            r#"{{"id":"e","contact":"c","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s",{rest}}}"#
        ))
    };
    let err = with(r#""properties":{"plan":"pro","plan":"free"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("duplicate key `properties.plan`"), "{err}");
    let err = with(r#""traits":{"address":{"city":"A","city":"B"}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("duplicate key `traits.address.city`"), "{err}");
    let err = with(r#""properties":{"list":[{"a":1,"a":1}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("duplicate key `properties.list[0].a`"), "{err}");
    let err = with(r#""contact":"d""#).unwrap_err().to_string();
    assert!(err.starts_with("duplicate field `contact`"), "{err}");
    assert!(
        with(r#""properties":{"a":{"x":1},"b":{"x":1}}"#).is_ok(),
        "same key in two objects"
    );
}

#[test]
fn every_event_type_gets_one_contact_key() {
    let consent = parse(
        r#"{"id":"e","contact":" Ada@Example.COM ","type":"consent.changed","at":"2026-01-01T00:00:00Z",
            "source":"postmark","properties":{"status":"unsubscribed"}}"#,
    )
    .unwrap();
    assert_eq!(consent.contact, "ada@example.com");
    let identified = parse(
        r#"{"id":"e","contact":"Ada@Example.com","type":"contact.identified","at":"2026-01-01T00:00:00Z",
            "source":"segment","properties":{"anonymous_id":" Visitor-1 "}}"#,
    )
    .unwrap();
    assert_eq!(identified.contact, "ada@example.com");
    assert_eq!(identified.properties["anonymous_id"], "Visitor-1");
    let control =
        parse(r#"{"id":"e","contact":"u\u0007","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"}"#);
    assert_eq!(
        control.unwrap_err().to_string(),
        "field `contact` has the control or invisible character U+0007 at character 1"
    );
    let number = parse(
        r#"{"id":"e","contact":"u","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s","properties":{"anonymous_id":7}}"#,
    );
    assert!(number
        .unwrap_err()
        .to_string()
        .starts_with("field `properties.anonymous_id` must be a string"));
    let long = format!(
        r#"{{"id":"e","contact":"{}","type":"page.viewed","at":"2026-01-01T00:00:00Z","source":"s"}}"#,
        "x".repeat(60_000)
    );
    assert_eq!(
        parse(&long).unwrap_err().to_string(),
        "field `contact` is 60000 bytes, over the 512-byte limit for contact keys"
    );
}

#[test]
fn an_event_dated_beyond_the_skew_is_refused_naming_at() {
    let event =
        parse(r#"{"id":"e","contact":"c","type":"page.viewed","at":"2026-01-01T00:05:01Z","source":"s"}"#).unwrap();
    let received = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let err = event.check_not_ahead(received, 300).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `at` is 301 s ahead of the time the event was received; at most 300 s of clock skew is allowed"
    );
    assert!(event.check_not_ahead(received, 301).is_ok());
}
