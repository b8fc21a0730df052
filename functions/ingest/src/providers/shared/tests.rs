use super::*;

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

#[test]
fn basic_auth_must_match_user_and_password_exactly() {
    assert!(basic_auth_matches(Some(&basic("kairos:s3cret")), "kairos:s3cret"));
    assert!(basic_auth_matches(
        Some(&basic("kairos:s3cret").replace("Basic", "basic")),
        "kairos:s3cret"
    ));
    assert!(!basic_auth_matches(Some(&basic("kairos:s3cre")), "kairos:s3cret"));
    assert!(!basic_auth_matches(Some(&basic("other:s3cret")), "kairos:s3cret"));
    assert!(!basic_auth_matches(Some("Basic not-base64!"), "kairos:s3cret"));
    assert!(!basic_auth_matches(Some("Bearer kairos:s3cret"), "kairos:s3cret"));
    assert!(!basic_auth_matches(None, "kairos:s3cret"));
}

#[test]
fn bearer_must_match_the_token_exactly() {
    assert!(bearer_matches(Some("Bearer tok-1"), "tok-1"));
    assert!(bearer_matches(Some("bearer  tok-1 "), "tok-1"));
    assert!(!bearer_matches(Some("Bearer tok-2"), "tok-1"));
    assert!(!bearer_matches(Some("Bearer"), "tok-1"));
    assert!(!bearer_matches(Some("Basic tok-1"), "tok-1"));
    assert!(!bearer_matches(None, "tok-1"));
}

#[test]
fn times_convert_to_utc_and_out_of_range_values_are_refused() {
    let t = from_float_seconds(1_534_108_637.153_125).unwrap();
    assert_eq!((t.timestamp(), t.timestamp_subsec_micros()), (1_534_108_637, 153_125));
    assert_eq!(from_float_seconds(f64::NAN), None);
    assert_eq!(from_float_seconds(-1.0), None);
    assert_eq!(from_float_seconds(1e300), None);
    let t = from_rfc3339("2014-08-01T13:28:10.2735393-04:00").unwrap();
    assert_eq!(t.to_rfc3339(), "2014-08-01T17:28:10.273539300+00:00");
    assert_eq!(from_rfc3339("yesterday"), None);
}

/// Byte-flipped and truncated fixtures through every new provider's parser: errors, never panics.
#[test]
fn mutated_fixtures_never_panic() {
    use crate::providers::{brevo, mailgun, postmark, sparkpost};
    use crate::webhook::{NormalizeError, Parsed, Request};
    use aws_lambda_events::http::{HeaderMap, Method};
    use rand::{Rng, SeedableRng};

    type Parse = fn(&Request<'_>) -> Result<Parsed, NormalizeError>;
    let hooks: [(Parse, &str); 4] = [
        (
            mailgun::parse,
            include_str!("../../../../../tests/fixtures/esp/mailgun_delivered_full_envelope.json"),
        ),
        (
            postmark::parse,
            include_str!("../../../../../tests/fixtures/esp/postmark_open.json"),
        ),
        (
            brevo::parse,
            include_str!("../../../../../tests/fixtures/esp/brevo_request_sent.json"),
        ),
        (
            sparkpost::parse,
            include_str!("../../../../../tests/fixtures/esp/sparkpost_bounce_batch.json"),
        ),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let headers = HeaderMap::new();
    for (hook, fixture) in hooks {
        for _ in 0..500 {
            let mut body = fixture.as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..body.len());
                body[at] = rng.gen();
            }
            body.truncate(rng.gen_range(body.len() / 2..=body.len()));
            let req = Request {
                method: &Method::POST,
                headers: &headers,
                body: &body,
            };
            let _ = hook(&req);
        }
    }
}

/// An event over the queue limit is rejected alone by every provider, never
/// enqueued (it would fail the whole SQS batch and with it the good events).
#[test]
fn oversized_events_are_rejected_by_every_provider() {
    use crate::providers::{customerio, mandrill, resend, sendgrid, ses};
    use serde_json::json;

    let big = "x".repeat(MAX_EVENT_BYTES);
    let at = "2026-11-27T10:00:00Z";
    let sendgrid = sendgrid::normalize(&json!({
        "email": "a@b.test", "timestamp": 1_795_000_000, "event": "open", "sg_event_id": "e1", "big": big,
    }));
    let mandrill = mandrill::normalize(&json!({
        "event": "open", "_id": "m1", "ts": 1_795_000_000, "msg": {"email": "a@b.test", "subject": big},
    }));
    let resend = resend::normalize(
        &json!({"type": "email.opened", "created_at": at, "data": {"to": ["a@b.test"], "big": big}}),
        "msg_1",
    )
    .map(|p| p.rejected.into_iter().map(|r| r.error).collect::<Vec<_>>());
    let customerio = customerio::normalize(&json!({
        "object_type": "email", "metric": "opened", "event_id": "e1", "timestamp": 1_795_000_000,
        "data": {"recipient": "a@b.test", "big": big},
    }));
    let ses = ses::normalize(
        &json!({"eventType": "Open", "mail": {"destination": ["a@b.test"], "timestamp": at, "tags": {"big": [big]}},
                "open": {"timestamp": at}}),
        "sns-1",
    )
    .map(|outcomes| outcomes.into_iter().map(|(_, e)| e).collect::<Vec<_>>());
    let over = |r: &Result<Event, String>| r.as_ref().is_err_and(|e| e.contains("-byte limit"));
    assert!(over(&sendgrid), "sendgrid: {:?}", sendgrid.map(|e| e.id));
    assert!(over(&mandrill), "mandrill: {:?}", mandrill.map(|e| e.id));
    assert!(over(&customerio), "customerio: {:?}", customerio.map(|e| e.id));
    assert!(matches!(&resend, Ok(errors) if errors.len() == 1 && errors[0].contains("-byte limit")));
    assert!(matches!(&ses, Ok(events) if events.len() == 1 && over(&events[0])));
}

#[test]
fn derived_ids_are_stable_and_separate_their_parts() {
    let a = derived_id("p", &["ab", "c"]);
    assert_eq!(a, derived_id("p", &["ab", "c"]));
    assert_ne!(a, derived_id("p", &["a", "bc"]));
    assert!(a.starts_with("p:") && a.len() == 2 + 64);
}
