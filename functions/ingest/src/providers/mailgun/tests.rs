use std::sync::Arc;

use hmac::{Hmac, Mac};
use kairos_event::EventType;
use kairos_store::MemoryClaims;
use serde_json::{json, Value};
use sha2::Sha256;

use super::*;
use crate::providers::testing::{fixture, post, route};

const KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const NOW: i64 = 1_795_000_000;
const TOKEN: &str = "651869375b9df3c98fc15c4889b102119add1235c38fc92824";

const DELIVERED: &str = include_str!("../../../../../tests/fixtures/esp/mailgun_delivered_full_envelope.json");
const OPENED: &str = include_str!("../../../../../tests/fixtures/esp/mailgun_opened.json");
const FAILED: &str = include_str!("../../../../../tests/fixtures/esp/mailgun_failed_permanent.json");
const COMPLAINED: &str = include_str!("../../../../../tests/fixtures/esp/mailgun_complained.json");
const DOC_BLOCK: &str = include_str!("../../../../../tests/fixtures/esp/mailgun_signature_block.json");

/// Signs as Mailgun documents: hex HMAC-SHA256(key, timestamp + token).
fn sign(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn block(ts: i64, token: &str) -> Value {
    json!({"timestamp": ts.to_string(), "token": token, "signature": sign(KEY, &ts.to_string(), token)})
}

fn body(signature: Value, event_data: Value) -> String {
    json!({"signature": signature, "event-data": event_data}).to_string()
}

const USER_PASSWORD: &str = "kairos:mg-hook-pass";
/// `Basic` + base64 of [`USER_PASSWORD`]: Mailgun sends the webhook URL's credentials so.
const AUTH: (&str, &str) = ("authorization", "Basic a2Fpcm9zOm1nLWhvb2stcGFzcw==");

fn hook() -> Arc<dyn Webhook> {
    Arc::new(Mailgun::new(KEY, USER_PASSWORD, 300))
}

fn signature_block(v: Value) -> SignatureBlock {
    serde_json::from_value(v).unwrap()
}

#[test]
fn documented_scheme_verifies_and_bad_signatures_do_not() {
    let good = signature_block(block(NOW, TOKEN));
    let claim = verify(KEY.as_bytes(), &good, NOW + 10, 300).unwrap();
    assert_eq!(claim.key, format!("mailgun:{TOKEN}"));
    assert_eq!(claim.expires_at, NOW + 300);
    let wrong_key = verify(b"another-key", &good, NOW, 300);
    assert_eq!(wrong_key, Err(SignatureError::Invalid));
    let mut other_token = good.clone();
    other_token.token.push('x');
    assert_eq!(
        verify(KEY.as_bytes(), &other_token, NOW, 300),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify(KEY.as_bytes(), &good, NOW + 301, 300),
        Err(SignatureError::Stale(301))
    );
    assert_eq!(
        verify(KEY.as_bytes(), &good, NOW - 301, 300),
        Err(SignatureError::Stale(-301))
    );
    let mut not_hex = good.clone();
    not_hex.signature = "zz".repeat(32);
    assert_eq!(
        verify(KEY.as_bytes(), &not_hex, NOW, 300),
        Err(SignatureError::Malformed)
    );
    let mut odd = good;
    odd.timestamp = "-9223372036854775808".into();
    assert!(matches!(
        verify(KEY.as_bytes(), &odd, NOW, 300),
        Err(SignatureError::Stale(_))
    ));
}

#[test]
fn documentation_signature_block_is_a_placeholder_and_is_refused() {
    // Its .source says the values are not a valid HMAC; it still parses as a block.
    let doc = signature_block(fixture(DOC_BLOCK));
    let ts: i64 = doc.timestamp.parse().unwrap();
    assert_eq!(verify(KEY.as_bytes(), &doc, ts, 300), Err(SignatureError::Invalid));
}

#[test]
fn fixtures_normalize_to_canonical_events() {
    let delivered = fixture(DELIVERED);
    let e = normalize(&delivered["event-data"]).unwrap();
    assert_eq!(e.kind, EventType::EmailDelivered);
    assert_eq!(e.id, "hTWCTD81RtiDN-...");
    assert_eq!(e.contact, "recipient@example.com");
    assert_eq!(
        (e.at.timestamp(), e.at.timestamp_subsec_micros()),
        (1_534_108_637, 153_125)
    );
    assert_eq!(
        e.message_id.as_deref(),
        Some("20180812211713.1.DF5966851B4BAA99@example.org")
    );
    assert_eq!(e.source, "mailgun");
    assert!(!e.properties.contains_key("user-variables"), "empty {{}} is dropped");
    assert_eq!(e.properties["delivery-status"]["code"], 250);

    let opened = normalize(&fixture(OPENED)).unwrap();
    assert_eq!((opened.kind, opened.machine), (EventType::EmailOpened, false));
    assert_eq!(opened.id, "q7DMpbLFRKW1QuiLC9XV4Q");
    assert_eq!(opened.at.timestamp(), 1_770_327_074);
    assert!(!opened.properties.contains_key("user-variables"), "empty [] is dropped");

    let failed = normalize(&fixture(FAILED)).unwrap();
    assert_eq!(failed.kind, EventType::EmailBounced);
    assert_eq!(failed.contact, "badrecipient@sample.mailgun.com");
    assert_eq!(
        failed.message_id.as_deref(),
        Some("20260212174255.58bbb7ce85a423e5@mailgun.com")
    );

    let complained = normalize(&fixture(COMPLAINED)).unwrap();
    assert_eq!(complained.kind, EventType::EmailComplained);
    assert_eq!(complained.at.timestamp(), 1_770_920_772);
}

#[test]
fn bot_opens_failure_severities_and_user_variables_are_mapped() {
    let mut opened = fixture(OPENED);
    opened["client-info"]["bot"] = json!("apple");
    opened["user-variables"] = json!({"plan": "pro"});
    let e = normalize(&opened).unwrap();
    assert!(e.machine);
    assert_eq!(e.properties["user-variables"], json!({"plan": "pro"}));

    let mut failed = fixture(FAILED);
    failed["severity"] = json!("temporary");
    assert_eq!(normalize(&failed).unwrap().kind, EventType::EmailDeferred);
    failed["severity"] = json!("permanent");
    failed["reason"] = json!("suppress-bounce");
    assert_eq!(normalize(&failed).unwrap().kind, EventType::EmailDropped);
    failed["severity"] = json!("sometimes");
    assert!(normalize(&failed).unwrap_err().contains("severity"));

    let mut clicked = fixture(OPENED);
    clicked["event"] = json!("clicked");
    clicked["url"] = json!("https://example.com/pricing");
    let e = normalize(&clicked).unwrap();
    assert_eq!(
        (e.kind, e.url.as_deref()),
        (EventType::EmailClicked, Some("https://example.com/pricing"))
    );
}

#[test]
fn bad_event_data_names_the_problem() {
    let mut unknown = fixture(OPENED);
    unknown["event"] = json!("stored");
    assert!(normalize(&unknown)
        .unwrap_err()
        .contains("unknown Mailgun event `stored`"));
    let mut no_time = fixture(OPENED);
    no_time["timestamp"] = json!("yesterday");
    assert!(normalize(&no_time).unwrap_err().contains("timestamp"));
    let mut no_recipient = fixture(OPENED);
    no_recipient.as_object_mut().unwrap().remove("recipient");
    assert!(normalize(&no_recipient).unwrap_err().contains("recipient"));
    assert!(normalize(&json!([1, 2])).is_err());
}

#[tokio::test]
async fn signed_event_is_enqueued_and_its_token_cannot_be_reused() {
    let claims = MemoryClaims::default();
    let data = fixture(DELIVERED)["event-data"].clone();
    let req = post("mailgun", &body(block(NOW, TOKEN), data.clone()), &[AUTH]);
    let first = route(hook(), req, &claims, NOW + 5).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].kind, EventType::EmailDelivered);

    let replay = route(
        hook(),
        post("mailgun", &body(block(NOW, TOKEN), data), &[AUTH]),
        &claims,
        NOW + 6,
    )
    .await;
    assert_eq!((replay.status, replay.events.len()), (401, 0));

    // The signature does not cover event-data: only the claimed token stops a swap.
    let swapped = body(block(NOW, TOKEN), fixture(COMPLAINED));
    let forged = route(hook(), post("mailgun", &swapped, &[AUTH]), &claims, NOW + 7).await;
    assert_eq!((forged.status, forged.events.len()), (401, 0));
    assert_eq!(forged.body, json!({"error": "unauthorized"}));
}

#[tokio::test]
async fn wrong_key_stale_or_unsigned_requests_are_refused() {
    let claims = MemoryClaims::default();
    let data = fixture(OPENED);
    let ts = NOW.to_string();
    let forged = json!({"timestamp": ts, "token": TOKEN, "signature": sign("wrong", &ts, TOKEN)});
    let cases = [
        body(forged, data.clone()),
        body(block(NOW - 301, "token-stale"), data.clone()),
        json!({"event-data": data}).to_string(),
        "not json".to_string(),
    ];
    for case in cases {
        let out = route(hook(), post("mailgun", &case, &[AUTH]), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (401, 0), "{case}");
    }
}

#[tokio::test]
async fn verified_but_unreadable_event_gets_406_so_mailgun_stops_retrying() {
    let claims = MemoryClaims::default();
    let mut data = fixture(OPENED);
    data["event"] = json!("stored");
    let out = route(
        hook(),
        post("mailgun", &body(block(NOW, "t-1"), data), &[AUTH]),
        &claims,
        NOW,
    )
    .await;
    assert_eq!((out.status, out.events.len()), (406, 0));
    assert!(out.body["errors"][0]["error"].as_str().unwrap().contains("stored"));
    let no_data = json!({"signature": block(NOW, "t-2")}).to_string();
    let out = route(hook(), post("mailgun", &no_data, &[AUTH]), &claims, NOW).await;
    assert_eq!(out.status, 406);
    assert!(out.body["error"].as_str().unwrap().contains("event-data"));
}

#[test]
fn build_needs_a_usable_signing_key_and_basic_auth_and_never_echoes_them() {
    let settings = |secret: Option<&str>, auth: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        basic_auth: auth.map(str::to_string),
        replay_window_secs: 300,
        ..Settings::default()
    };
    assert!(Mailgun::build(&settings(None, None)).unwrap().is_none());
    assert!(Mailgun::build(&settings(Some(KEY), Some(USER_PASSWORD)))
        .unwrap()
        .is_some());
    let err = Mailgun::build(&settings(Some("two words"), Some(USER_PASSWORD)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KAIROS_MAILGUN_SECRET") && !err.contains("two words"),
        "{err}"
    );
    for auth in [None, Some("nocolon-password"), Some(":password"), Some("u:p")] {
        let err = Mailgun::build(&settings(Some(KEY), auth)).unwrap_err().to_string();
        assert!(err.contains("KAIROS_MAILGUN_BASIC_AUTH"), "{auth:?}: {err}");
    }
    let debug = format!("{:?}", Mailgun::new(KEY, USER_PASSWORD, 300));
    assert!(!debug.contains(KEY) && !debug.contains("mg-hook-pass"));
}

/// Before, a fresh signature block from any other receiver of the account's
/// webhooks carried any event data in: the signature does not cover the body.
#[tokio::test]
async fn a_valid_signature_without_the_basic_auth_second_factor_is_refused() {
    let claims = MemoryClaims::default();
    let forged = body(block(NOW, "fresh-token-from-elsewhere"), fixture(COMPLAINED));
    for headers in [vec![], vec![("authorization", "Basic a2Fpcm9zOndyb25n")]] {
        let out = route(hook(), post("mailgun", &forged, &headers), &claims, NOW).await;
        assert_eq!((out.status, out.events.len()), (401, 0), "{headers:?}");
    }
    let out = route(hook(), post("mailgun", &forged, &[AUTH]), &claims, NOW).await;
    assert_eq!((out.status, out.events.len()), (200, 1), "with both factors");
}

#[test]
fn mailguns_window_outlasts_its_retries_whatever_the_shorter_default() {
    let settings = |window| Settings {
        secret: Some(KEY.to_string()),
        basic_auth: Some(USER_PASSWORD.to_string()),
        replay_window_secs: window,
        ..Settings::default()
    };
    let built = Mailgun::build(&settings(300)).unwrap().unwrap();
    assert_eq!(built.window_secs, RETRY_WINDOW_SECS);
    // A retry 8 hours after the first delivery, with its signature block, is accepted once.
    let block = signature_block(block(NOW, "token-retried"));
    let claim = verify(KEY.as_bytes(), &block, NOW + 8 * 3600, built.window_secs).unwrap();
    assert_eq!(claim.expires_at, NOW + RETRY_WINDOW_SECS);
    assert!(verify(KEY.as_bytes(), &block, NOW + RETRY_WINDOW_SECS + 1, built.window_secs).is_err());
    let longer = Mailgun::build(&settings(12 * 3600)).unwrap().unwrap();
    assert_eq!(longer.window_secs, 12 * 3600);
}
