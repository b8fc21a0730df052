use std::sync::Arc;

use base64::Engine;
use kairos_event::EventType;
use kairos_store::MemoryClaims;
use serde_json::json;

use super::*;
use crate::providers::testing::{fixture, post, route};

const SECRET: &str = "kairos:pm-hook-pass";
const NOW: i64 = 1_795_000_000;

const BOUNCE: &str = include_str!("../../../../../tests/fixtures/esp/postmark_bounce.json");
const DELIVERY: &str = include_str!("../../../../../tests/fixtures/esp/postmark_delivery.json");
const OPEN: &str = include_str!("../../../../../tests/fixtures/esp/postmark_open.json");
const SPAM: &str = include_str!("../../../../../tests/fixtures/esp/postmark_spamcomplaint.json");
const SUBSCRIPTION: &str = include_str!("../../../../../tests/fixtures/esp/postmark_subscriptionchange.json");

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

fn hook() -> Arc<dyn Webhook> {
    Arc::new(Postmark::new(SECRET))
}

#[test]
fn fixtures_normalize_to_canonical_events() {
    let bounce = normalize(&fixture(BOUNCE)).unwrap();
    assert_eq!(bounce.kind, EventType::EmailBounced);
    assert_eq!(bounce.id, "postmark:Bounce:42");
    assert_eq!(bounce.contact, "john@example.com", "bounces name the address `Email`");
    assert_eq!(bounce.at.to_rfc3339(), "2025-04-05T16:33:54.907025900+00:00");
    assert_eq!(
        bounce.message_id.as_deref(),
        Some("883953f4-6105-42a2-a16a-77a8eac79483")
    );
    assert_eq!(bounce.properties["Type"], "HardBounce");
    assert_eq!(bounce.properties["Metadata"]["customer_id"], "12345");

    let delivery = normalize(&fixture(DELIVERY)).unwrap();
    assert_eq!(delivery.kind, EventType::EmailDelivered);
    assert!(delivery.id.starts_with("postmark:") && delivery.id.len() == 9 + 64);

    let open = normalize(&fixture(OPEN)).unwrap();
    assert_eq!((open.kind, open.machine), (EventType::EmailOpened, false));
    assert_eq!(open.contact, "john@example.com", "opens name the address `Recipient`");
    assert_eq!(open.properties["Platform"], "WebMail");
    assert_ne!(open.id, delivery.id, "same message and time, different record type");

    let spam = normalize(&fixture(SPAM)).unwrap();
    assert_eq!(
        (spam.kind, spam.id.as_str()),
        (EventType::EmailComplained, "postmark:SpamComplaint:42")
    );

    let unsubscribed = normalize(&fixture(SUBSCRIPTION)).unwrap();
    assert_eq!(unsubscribed.kind, EventType::EmailUnsubscribed);
    assert_eq!(unsubscribed.properties["SuppressionReason"], "ManualSuppression");
}

#[test]
fn derived_ids_are_stable_per_event_and_differ_between_events() {
    let open = fixture(OPEN);
    assert_eq!(normalize(&open).unwrap().id, normalize(&open).unwrap().id);
    let mut later = open.clone();
    later["ReceivedAt"] = json!("2025-04-05T17:00:00Z");
    assert_ne!(normalize(&open).unwrap().id, normalize(&later).unwrap().id);
}

#[test]
fn clicks_bounce_types_and_subscription_changes_are_mapped() {
    let mut click = fixture(OPEN);
    click["RecordType"] = json!("Click");
    click["OriginalLink"] = json!("https://example.com/pricing");
    let e = normalize(&click).unwrap();
    assert_eq!(
        (e.kind, e.url.as_deref()),
        (EventType::EmailClicked, Some("https://example.com/pricing"))
    );

    let mut bounce = fixture(BOUNCE);
    for (kind, inactive, expected) in [
        ("SoftBounce", false, EventType::EmailDeferred),
        ("Transient", false, EventType::EmailDeferred),
        ("BadEmailAddress", true, EventType::EmailBounced),
        ("ManuallyDeactivated", true, EventType::EmailDropped),
        ("Blocked", true, EventType::EmailBounced),
        ("Blocked", false, EventType::EmailDeferred),
    ] {
        bounce["Type"] = json!(kind);
        bounce["Inactive"] = json!(inactive);
        assert_eq!(normalize(&bounce).unwrap().kind, expected, "{kind}");
    }

    let mut change = fixture(SUBSCRIPTION);
    change["SuppressSending"] = json!(false);
    let e = normalize(&change).unwrap();
    assert_eq!(
        (e.kind, &e.properties["status"]),
        (EventType::ConsentChanged, &json!("subscribed"))
    );
    change["SuppressSending"] = json!(true);
    change["SuppressionReason"] = json!("HardBounce");
    let e = normalize(&change).unwrap();
    assert_eq!(
        (e.kind, &e.properties["status"]),
        (EventType::ConsentChanged, &json!("bounced"))
    );
}

#[test]
fn bad_records_name_the_problem() {
    let mut unknown = fixture(DELIVERY);
    unknown["RecordType"] = json!("Inbound");
    assert!(normalize(&unknown)
        .unwrap_err()
        .contains("unknown Postmark record type `Inbound`"));
    let mut no_time = fixture(DELIVERY);
    no_time["DeliveredAt"] = json!("soon");
    assert!(normalize(&no_time).unwrap_err().contains("DeliveredAt"));
    let mut no_address = fixture(OPEN);
    no_address.as_object_mut().unwrap().remove("Recipient");
    assert!(normalize(&no_address).unwrap_err().contains("Recipient"));
    assert!(normalize(&json!("Bounce")).is_err());
}

#[tokio::test]
async fn basic_auth_or_secret_header_is_accepted_and_the_event_enqueued() {
    let claims = MemoryClaims::default();
    let auth = basic(SECRET);
    for header in [("Authorization", auth.as_str()), ("X-Kairos-Webhook-Secret", SECRET)] {
        let out = route(hook(), post("postmark", BOUNCE, &[header]), &claims, NOW).await;
        assert_eq!(out.status, 200, "{:?}", out.body);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].kind, EventType::EmailBounced);
        assert_eq!(out.events[0].contact, "john@example.com");
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_refused_before_parsing() {
    let claims = MemoryClaims::default();
    let wrong = basic("kairos:guess");
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("Authorization", &wrong)],
        &[("X-Kairos-Webhook-Secret", "kairos:guess")],
        &[("Authorization", "Bearer kairos:pm-hook-pass")],
    ];
    for headers in cases {
        let out = route(hook(), post("postmark", "not even json", headers), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (401, 0), "{headers:?}");
        assert_eq!(out.body, json!({"error": "unauthorized"}));
    }
}

#[tokio::test]
async fn unreadable_bodies_get_403_so_postmark_stops_retrying() {
    let claims = MemoryClaims::default();
    let header = [("X-Kairos-Webhook-Secret", SECRET)];
    for body in ["not json", "[1, 2]", r#"{"RecordType": "Inbound"}"#] {
        let out = route(hook(), post("postmark", body, &header), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (403, 0), "{body}");
    }
}

#[test]
fn build_needs_a_secret_and_never_echoes_it() {
    let settings = |secret: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        ..Settings::default()
    };
    assert!(Postmark::build(&settings(None)).unwrap().is_none());
    assert!(Postmark::build(&settings(Some(SECRET))).unwrap().is_some());
    let err = Postmark::build(&settings(Some("a:b"))).unwrap_err().to_string();
    assert!(err.contains("KAIROS_POSTMARK_SECRET") && !err.contains("a:b"), "{err}");
    assert!(!format!("{:?}", Postmark::new(SECRET)).contains(SECRET));
}

/// Before, only `email.*` events were lowercased: the unsubscribe was filed under
/// `Ada@Example.COM` while the person's email events live under `ada@example.com`.
#[test]
fn a_subscription_change_lands_on_the_lowercase_key() {
    let mut change = fixture(SUBSCRIPTION);
    change["Recipient"] = json!(" Ada@Example.COM ");
    change["SuppressSending"] = json!(true);
    change["SuppressionReason"] = json!("HardBounce");
    let event = normalize(&change).unwrap();
    assert_eq!(
        (event.kind, event.contact.as_str()),
        (EventType::ConsentChanged, "ada@example.com")
    );
}
