//! Ingest's one-time-token claims under injected faults (`support::faults`):
//! Mailgun webhooks, each with its own token, sent while the claims store
//! throttles, times out after taking the claim, and the invocation dies after
//! enqueueing; the sender retries as Mailgun does. Every event reaches the
//! queue, and no retry is refused as a replay (which would lose it).

mod support;

use hmac::{Hmac, Mac};
use kairos_event::EventsMessage;
use kairos_ingest::providers::mailgun::Mailgun;
use kairos_ingest::{Ingest, IngestConfig, CLAIM_PENDING_SECS};
use kairos_store::{MemoryClaims, MemoryQueue};
use serde_json::json;
use sha2::Sha256;
use std::collections::BTreeSet;
use std::sync::Arc;
use support::faults::{Faults, Faulty, Invocation, Kind, Rates};

const KEY: &str = "key-soak-mailgun-signing";
const USER_PASSWORD: &str = "kairos:mg-hook-pass";
/// `Basic` + base64 of [`USER_PASSWORD`].
const AUTH: &str = "Basic a2Fpcm9zOm1nLWhvb2stcGFzcw==";
const DELIVERED: &str = include_str!("fixtures/esp/mailgun_delivered_full_envelope.json");
const NOW: i64 = 1_795_000_000;

fn signed_body(i: usize) -> String {
    let (ts, token) = (
        NOW.to_string(),
        format!("token-{i:04}-0123456789abcdef0123456789abcdef"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{ts}{token}").as_bytes());
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut data = serde_json::from_str::<serde_json::Value>(DELIVERED).unwrap()["event-data"].clone();
    data["id"] = json!(format!("mg-{i}"));
    json!({"signature": {"timestamp": ts, "token": token, "signature": signature}, "event-data": data}).to_string()
}

#[tokio::test]
async fn faulty_claims_and_crashes_never_lose_a_webhooks_events() {
    let rates = Rates {
        throttled: 0.1,
        ambiguous: 0.1,
        crash: 0.1,
        ..Rates::NONE
    };
    let faults = Faults::new(22, rates);
    let config = IngestConfig {
        webhooks: vec![Arc::new(Mailgun::new(KEY, USER_PASSWORD, 300))],
        ..IngestConfig::default()
    };
    let (queue, claims) = (MemoryQueue::default(), MemoryClaims::default());
    let (mut refused, mut retries) = (0, 0);
    for i in 0..200 {
        let mut req = support::apigw_post("/webhooks/mailgun", &signed_body(i));
        req.headers.insert("authorization", AUTH.parse().unwrap());
        let mut now = NOW + 1;
        loop {
            let invocation = Invocation::default();
            let (q, c) = (
                Faulty::new(&queue, &faults, &invocation),
                Faulty::new(&claims, &faults, &invocation),
            );
            let ingest = Ingest {
                config: &config,
                queue: &q,
                claims: &c,
            };
            let answer = invocation.run(kairos_ingest::handle(req.clone(), &ingest, now)).await;
            match answer.map(|r| r.status_code) {
                Some(200) => break,
                Some(401) => {
                    refused += 1;
                    break;
                }
                Some(503) | None => {}
                Some(other) => panic!("webhook {i} answered {other}"),
            }
            // Mailgun's retries come minutes apart; here just past a pending claim.
            retries += 1;
            now += CLAIM_PENDING_SECS + 1;
            assert!(now < NOW + 300, "webhook {i} still not accepted in the replay window");
        }
    }
    let enqueued: BTreeSet<String> = queue
        .drain()
        .iter()
        .map(|m| match EventsMessage::decode(m.body.as_bytes()).unwrap() {
            EventsMessage::Event(e) => e.id,
            EventsMessage::Sweep(_) => panic!("a sweep from ingest"),
        })
        .collect();
    let counts = faults.counts();
    eprintln!("faults {counts:?}; {retries} retries, {refused} refused as replays");
    assert_eq!(
        refused, 0,
        "a retry after a fault was refused as a replay: its event is lost"
    );
    assert_eq!(
        enqueued.len(),
        200,
        "every webhook's event is enqueued (copies are deduped downstream)"
    );
    for kind in [Kind::Throttled, Kind::Ambiguous, Kind::CrashAfterSend] {
        assert!(counts.get(&kind).is_some_and(|n| *n > 0), "{kind:?} was injected");
    }
}
