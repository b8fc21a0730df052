use std::sync::Arc;

use base64::Engine;
use kairos_event::EventType;
use kairos_store::MemoryClaims;
use serde_json::{json, Value};

use super::*;
use crate::providers::testing::{fixture, post, route};

const USER_PASSWORD: &str = "kairos:sp-hook-pass";
const NOW: i64 = 1_795_000_000;
const BOUNCE_BATCH: &str = include_str!("../../../../../tests/fixtures/esp/sparkpost_bounce_batch.json");

fn hook() -> Arc<dyn Webhook> {
    Arc::new(SparkPost::new(USER_PASSWORD))
}

fn auth(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

/// The fixture's bounce item, with its event changed to `class.kind` plus `extra` fields.
fn item(class: &str, kind: &str, extra: Value) -> Value {
    let mut fields = fixture(BOUNCE_BATCH)[0]["msys"]["message_event"].clone();
    fields["type"] = json!(kind);
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    json!({"msys": {class: fields}})
}

#[test]
fn fixture_bounce_normalizes_to_a_hard_bounce() {
    let e = normalize(&fixture(BOUNCE_BATCH)[0]).unwrap();
    assert_eq!(e.kind, EventType::EmailBounced);
    assert_eq!(e.id, "84345317653491230");
    assert_eq!(e.contact, "bounce@example.com");
    assert_eq!(e.at.timestamp(), 1_464_824_548);
    assert_eq!(e.message_id.as_deref(), Some("0004e3724f57753a3561"));
    assert_eq!(e.properties["bounce_category"], "hard");
    assert_eq!(e.properties["bounce_class"], "10");
    assert_eq!(e.properties["type"], "bounce");
    assert!(!e.machine);
}

#[test]
fn event_types_and_bounce_classes_map() {
    for (class, kind, extra, expected) in [
        ("message_event", "delivery", json!({}), EventType::EmailDelivered),
        ("message_event", "injection", json!({}), EventType::EmailSent),
        ("message_event", "delay", json!({}), EventType::EmailDeferred),
        (
            "message_event",
            "bounce",
            json!({"bounce_class": "21"}),
            EventType::EmailDeferred,
        ),
        (
            "message_event",
            "bounce",
            json!({"bounce_class": "51"}),
            EventType::EmailDeferred,
        ),
        (
            "message_event",
            "bounce",
            json!({"bounce_class": "25"}),
            EventType::EmailDropped,
        ),
        (
            "message_event",
            "out_of_band",
            json!({"bounce_class": "30"}),
            EventType::EmailBounced,
        ),
        ("message_event", "policy_rejection", json!({}), EventType::EmailDropped),
        ("message_event", "spam_complaint", json!({}), EventType::EmailComplained),
        ("track_event", "initial_open", json!({}), EventType::EmailOpened),
        (
            "unsubscribe_event",
            "link_unsubscribe",
            json!({}),
            EventType::EmailUnsubscribed,
        ),
    ] {
        assert_eq!(normalize(&item(class, kind, extra)).unwrap().kind, expected, "{kind}");
    }
    let click = item(
        "track_event",
        "click",
        json!({"target_link_url": "https://example.com/x", "campaign_id": "fall"}),
    );
    let e = normalize(&click).unwrap();
    assert_eq!(
        (e.url.as_deref(), e.campaign.as_deref()),
        (Some("https://example.com/x"), Some("fall"))
    );
    let block = normalize(&item("message_event", "bounce", json!({"bounce_class": "50"}))).unwrap();
    assert_eq!(block.properties["bounce_category"], "block");
}

#[test]
fn bad_items_name_the_problem() {
    let relay = item("relay_event", "relay_delivery", json!({}));
    assert!(normalize(&relay).unwrap_err().contains("`relay_event.relay_delivery`"));
    let no_class = item("message_event", "bounce", json!({"bounce_class": null}));
    assert!(normalize(&no_class).unwrap_err().contains("bounce_class"));
    let bad_time = item("message_event", "delivery", json!({"timestamp": "1.5e9"}));
    assert!(normalize(&bad_time).unwrap_err().contains("timestamp"));
    let no_rcpt = item("message_event", "delivery", json!({"rcpt_to": ""}));
    assert!(normalize(&no_rcpt).unwrap_err().contains("rcpt_to"));
    assert!(normalize(&json!({"msys": []})).is_err());
    assert!(normalize(&json!(7)).is_err());
}

#[tokio::test]
async fn authorized_batch_is_enqueued() {
    let claims = MemoryClaims::default();
    let batch = json!([
        fixture(BOUNCE_BATCH)[0],
        item("track_event", "open", json!({"event_id": "2"}))
    ])
    .to_string();
    let out = route(
        hook(),
        post("sparkpost", &batch, &[("Authorization", &auth(USER_PASSWORD))]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    let ids: Vec<_> = out.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["84345317653491230", "2"]);
}

#[tokio::test]
async fn partial_batch_keeps_good_events_and_answers_200() {
    let claims = MemoryClaims::default();
    let batch = json!([
        item("message_event", "delivery", json!({"event_id": "1"})),
        item("relay_event", "relay_delivery", json!({"event_id": "2"})),
        {"msys": {}},
        "junk",
        item("track_event", "click", json!({"event_id": "3"})),
    ])
    .to_string();
    let out = route(
        hook(),
        post("sparkpost", &batch, &[("Authorization", &auth(USER_PASSWORD))]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(out.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(out.body["rejected"], 2);
    assert_eq!(
        out.body["errors"][0],
        json!({"index": 1, "id": "2", "error": out.body["errors"][0]["error"]})
    );
    assert_eq!(out.body["errors"][1]["index"], 3);
}

#[tokio::test]
async fn creation_test_batch_gets_200_and_nothing_is_enqueued() {
    let claims = MemoryClaims::default();
    let out = route(
        hook(),
        post(
            "sparkpost",
            r#"[{"msys":{}}]"#,
            &[("Authorization", &auth(USER_PASSWORD))],
        ),
        &claims,
        NOW,
    )
    .await;
    assert_eq!((out.status, out.events.len()), (200, 0));
    assert_eq!(out.body, json!({"accepted": 0, "rejected": 0}));
    let unauthorized = route(hook(), post("sparkpost", r#"[{"msys":{}}]"#, &[]), &claims, NOW).await;
    assert_eq!(unauthorized.status, 401);
}

#[tokio::test]
async fn unreadable_bodies_get_400_and_bad_credentials_401() {
    let claims = MemoryClaims::default();
    let good = auth(USER_PASSWORD);
    for body in ["not json", r#"{"msys": {}}"#, "[1, 2]"] {
        let out = route(
            hook(),
            post("sparkpost", body, &[("Authorization", &good)]),
            &claims,
            NOW,
        )
        .await;
        assert_eq!((out.status, out.events.len()), (400, 0), "{body}");
    }
    let wrong = auth("kairos:guess");
    for headers in [
        vec![],
        vec![("Authorization", wrong.as_str())],
        vec![("Authorization", "Bearer kairos:sp-hook-pass")],
    ] {
        let out = route(hook(), post("sparkpost", BOUNCE_BATCH, &headers), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (401, 0), "{headers:?}");
    }
}

#[test]
fn build_needs_user_and_password_and_never_echoes_them() {
    let settings = |secret: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        ..Settings::default()
    };
    assert!(SparkPost::build(&settings(None)).unwrap().is_none());
    assert!(SparkPost::build(&settings(Some(USER_PASSWORD))).unwrap().is_some());
    let err = SparkPost::build(&settings(Some("no-colon-here")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KAIROS_SPARKPOST_SECRET") && !err.contains("no-colon-here"),
        "{err}"
    );
    assert!(!format!("{:?}", SparkPost::new(USER_PASSWORD)).contains(USER_PASSWORD));
}
