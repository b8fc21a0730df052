use std::sync::Arc;

use base64::Engine;
use kairos_event::EventType;
use kairos_store::MemoryClaims;
use serde_json::json;

use super::*;
use crate::providers::testing::{fixture, post, route};

const TOKEN: &str = "brevo-token-0123456789";
const NOW: i64 = 1_795_000_000;

const HARD_BOUNCE: &str = include_str!("../../../../../tests/fixtures/esp/brevo_hard_bounce.json");
const PROXY_OPEN: &str = include_str!("../../../../../tests/fixtures/esp/brevo_proxy_open.json");
const SENT: &str = include_str!("../../../../../tests/fixtures/esp/brevo_request_sent.json");

fn hook(secret: &str) -> Arc<dyn Webhook> {
    Arc::new(Brevo::new(secret))
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn fixtures_normalize_to_canonical_events() {
    let sent = normalize(&fixture(SENT)).unwrap();
    assert_eq!(sent.kind, EventType::EmailSent);
    assert_eq!(sent.contact, "recipient@example.com");
    assert_eq!(sent.at.timestamp(), 1_520_363_423, "ts_epoch (ms) wins over ts_event");
    assert_eq!(
        sent.message_id.as_deref(),
        Some("<201803062010.27287306012@smtp-relay.mailin.fr>")
    );
    assert_eq!(sent.properties["event"], "request");
    assert_eq!(sent.properties["tags"], json!(["tag1", "tag2"]));
    assert!(sent.id.starts_with("brevo:"));
    assert!(!sent.machine);

    let bounce = normalize(&fixture(HARD_BOUNCE)).unwrap();
    assert_eq!(bounce.kind, EventType::EmailBounced);
    assert_eq!(bounce.contact, "not-a-user@example.com");
    assert_eq!(bounce.at.timestamp(), 1_520_363_423);

    let proxy = normalize(&fixture(PROXY_OPEN)).unwrap();
    assert_eq!((proxy.kind, proxy.machine), (EventType::EmailOpened, true));
    assert_eq!(proxy.contact, "example@domain.com");
    assert_eq!(proxy.at.timestamp(), 1_534_486_682);
}

#[test]
fn ids_ignore_the_webhook_id_and_separate_distinct_events() {
    let sent = fixture(SENT);
    let mut other_webhook = sent.clone();
    other_webhook["id"] = json!(1);
    assert_eq!(normalize(&sent).unwrap().id, normalize(&other_webhook).unwrap().id);
    let mut delivered = sent.clone();
    delivered["event"] = json!("delivered");
    assert_ne!(normalize(&sent).unwrap().id, normalize(&delivered).unwrap().id);
    let mut two_links = (sent.clone(), sent);
    two_links.0["event"] = json!("click");
    two_links.1["event"] = json!("click");
    two_links.0["link"] = json!("https://example.com/a");
    two_links.1["link"] = json!("https://example.com/b");
    let (a, b) = (normalize(&two_links.0).unwrap(), normalize(&two_links.1).unwrap());
    assert_eq!(
        (a.kind, a.url.as_deref()),
        (EventType::EmailClicked, Some("https://example.com/a"))
    );
    assert_ne!(a.id, b.id);
}

#[test]
fn event_names_map_and_unknown_ones_are_named() {
    let mut e = fixture(HARD_BOUNCE);
    for (name, kind) in [
        ("soft_bounce", EventType::EmailDeferred),
        ("hardBounce", EventType::EmailBounced),
        ("spam", EventType::EmailComplained),
        ("unsubscribed", EventType::EmailUnsubscribed),
        ("blocked", EventType::EmailDropped),
        ("invalid_email", EventType::EmailDropped),
        ("unique_opened", EventType::EmailOpened),
    ] {
        e["event"] = json!(name);
        assert_eq!(normalize(&e).unwrap().kind, kind, "{name}");
    }
    e["event"] = json!("listAddition");
    assert!(normalize(&e)
        .unwrap_err()
        .contains("unknown Brevo event `listAddition`"));
    let mut no_time = fixture(HARD_BOUNCE);
    no_time.as_object_mut().unwrap().remove("ts_epoch");
    assert!(normalize(&no_time).unwrap_err().contains("ts_epoch"));
    let mut huge = fixture(HARD_BOUNCE);
    huge["ts_epoch"] = json!(i64::MAX);
    assert!(normalize(&huge).unwrap_err().contains("out of range"));
}

#[tokio::test]
async fn single_and_batched_bodies_are_enqueued_with_bearer_or_basic_auth() {
    let claims = MemoryClaims::default();
    let out = route(
        hook(TOKEN),
        post("brevo", SENT, &[("Authorization", &bearer())]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!((out.status, out.events.len()), (200, 1), "{:?}", out.body);

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("kairos:brevo-pass")
    );
    let batch = json!([fixture(SENT), fixture(HARD_BOUNCE), fixture(PROXY_OPEN)]).to_string();
    let out = route(
        hook("kairos:brevo-pass"),
        post("brevo", &batch, &[("Authorization", &basic)]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    let kinds: Vec<_> = out.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventType::EmailSent, EventType::EmailBounced, EventType::EmailOpened]
    );
}

#[tokio::test]
async fn partial_batch_keeps_good_events_and_answers_200() {
    let claims = MemoryClaims::default();
    let batch = json!([fixture(SENT), {"event": "listAddition"}, "junk", fixture(HARD_BOUNCE)]).to_string();
    let out = route(
        hook(TOKEN),
        post("brevo", &batch, &[("Authorization", &bearer())]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(out.events.len(), 2);
    assert_eq!(
        (out.body["accepted"].clone(), out.body["rejected"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(out.body["errors"][0]["index"], 1);
    assert_eq!(out.body["errors"][1]["index"], 2);
}

#[tokio::test]
async fn unreadable_bodies_get_400_and_bad_credentials_401() {
    let claims = MemoryClaims::default();
    for body in ["not json", "42", r#"[{"event": "opened"}]"#] {
        let out = route(
            hook(TOKEN),
            post("brevo", body, &[("Authorization", &bearer())]),
            &claims,
            NOW,
        )
        .await;
        assert_eq!((out.status, out.events.len()), (400, 0), "{body}");
    }
    let wrong: [&[(&str, &str)]; 3] = [
        &[],
        &[("Authorization", "Bearer brevo-token-012345678")],
        &[("Authorization", TOKEN)],
    ];
    for headers in wrong {
        let out = route(hook(TOKEN), post("brevo", SENT, headers), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (401, 0), "{headers:?}");
    }
}

#[test]
fn build_needs_a_secret_and_never_echoes_it() {
    let settings = |secret: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        ..Settings::default()
    };
    assert!(Brevo::build(&settings(None)).unwrap().is_none());
    assert!(Brevo::build(&settings(Some(TOKEN))).unwrap().is_some());
    let err = Brevo::build(&settings(Some("short"))).unwrap_err().to_string();
    assert!(err.contains("KAIROS_BREVO_SECRET") && !err.contains("short"), "{err}");
    assert!(!format!("{:?}", Brevo::new(TOKEN)).contains(TOKEN));
}
