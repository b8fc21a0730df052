//! API calls per 1,000 transitions for each destination on a realistic mix
//! (most contacts change once in a batch window, some two or four times),
//! in batches of the event source's size: the batching effect, printed for
//! the closing report.

use crate::harness::{self, Workload, SEGMENTS};
use crate::support::crm::{clock, hubspot, pipedrive, salesforce, Faults};
use crate::support::serve_webhook;
use crate::support::writeback::destinations_on;
use base64::Engine;
use kairos_store::MemoryLedger;
use kairos_writeback::ManualClock;
use rsa::pkcs8::EncodePrivateKey;
use std::sync::Arc;

const SECRET: &[u8] = b"calls-per-thousand-webhook-secret";

#[tokio::test]
async fn api_calls_per_1000_transitions() {
    // 450 contacts once, 175 twice, 50 four times: 1,000 transitions.
    let work = Workload::mixed(&[(450, 1), (175, 2), (50, 4)], 31);
    assert_eq!(work.transitions.len(), 1000);
    let clock: Arc<ManualClock> = clock();
    let hs = Arc::new(hubspot::HubSpot::new(
        &SEGMENTS,
        &["kairos_sales_ready"],
        &["42"],
        Faults::none(),
        clock.clone(),
    ));
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let sf = Arc::new(salesforce::Salesforce::new(
        &key,
        &SEGMENTS,
        &[],
        Faults::none(),
        clock.clone(),
    ));
    let pd = Arc::new(pipedrive::Pipedrive::new(&SEGMENTS, Faults::none(), clock.clone()));
    for (i, contact) in work.versions.keys().enumerate() {
        sf.add(contact, &["003"]);
        pd.persons.lock().unwrap().insert(i as i64 + 1, contact.clone());
    }
    let (hs_url, sf_url, pd_url) = (hs.serve().await, sf.serve().await, pd.serve().await);
    let (hook_url, receiver) = serve_webhook(SECRET).await;
    let file = format!(
        "destinations:\n\
         - {{name: webhook, kind: webhook, segments: all, credentials: {{secret: /t/w}}, mapping: {{url: \"{hook_url}\"}}}}\n\
         - {{name: hubspot, kind: hubspot, segments: all, credentials: {{token: /t/h}}, mapping: {{base_url: \"{hs_url}\", \
            booleans: {{sales-ready: kairos_sales_ready}}, lists: {{pricing-intent: \"42\"}}}}}}\n\
         - {{name: salesforce, kind: salesforce, segments: all, credentials: {{private_key: /t/s}}, mapping: {{login_url: \"{sf_url}\", \
            client_id: {}, username: {}, external_id_field: Kairos_Key__c, field: Kairos_Segments__c}}}}\n\
         - {{name: pipedrive, kind: pipedrive, segments: all, credentials: {{api_token: /t/p}}, mapping: {{base_url: \"{pd_url}\", field: Kairos segments}}}}\n",
        salesforce::CLIENT_ID,
        salesforce::USERNAME
    );
    let webhook_secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(SECRET));
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let secrets = [
        ("/t/w", webhook_secret.as_str()),
        ("/t/h", hubspot::TOKEN),
        ("/t/s", &pem),
        ("/t/p", pipedrive::TOKEN),
    ];
    let destinations = destinations_on(&file, &secrets, clock.clone()).await;
    let cold = [hs.counters.calls(), sf.counters.calls(), pd.counters.calls()];
    let report = harness::run(&destinations, &work.transitions, &clock, &MemoryLedger::default()).await;
    assert_eq!(report.dead_letters, 0);
    let calls = [
        ("webhook", receiver.received.lock().unwrap().len()),
        ("hubspot", hs.counters.calls() - cold[0]),
        ("salesforce", sf.counters.calls() - cold[1]),
        ("pipedrive", pd.counters.calls() - cold[2]),
    ];
    eprintln!(
        "API calls per 1,000 transitions ({} contacts, batches of {}, {} invocations; cold-start calls not counted):",
        work.versions.len(),
        harness::BATCH,
        report.invocations
    );
    for (name, n) in calls {
        eprintln!("  {name:<11} {n:>5}");
    }
    let pd_429 = pd.counters.too_many.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "  (pipedrive: {pd_429} of them answered 429 by the burst window; virtual time {} s)",
        report.virtual_secs
    );
    // Batching: a CRM with batch writes makes far fewer calls than transitions;
    // one without (Pipedrive) about two per contact the first time (search, update).
    assert!(calls[1].1 <= 40 && calls[2].1 <= 15, "{calls:?}");
    // (Pipedrive's include the 429s of its 2-second burst window.)
    assert!(
        calls[0].1 <= 1000 && calls[3].1 <= (work.versions.len() + calls[0].1) * 11 / 10,
        "{calls:?}"
    );
    assert_eq!(hs.segments(), work.expected(&SEGMENTS));
}
