//! The sample payloads of `events/`, made for a given time (`kairos samples`):
//! the events they carry are dated just before it, so they are never refused
//! as stale, and each run's event ids are new, so a sample sent again after a
//! new `kairos samples` is not a duplicate.
//!
//! The SendGrid sample is signed with the local test key pair committed in
//! `events/` ([`SENDGRID_TEST_KEY`]; its public half is `KAIROS_SENDGRID_PUBLIC_KEY`
//! in `events/local.env`): for local development only, never for production.
//! The write-back sample is what the evaluate function sends for the evaluate
//! sample: the engine's own transitions, run in memory.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::Method;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

/// The SendGrid test signing key (PKCS#8 PEM). NOT FOR PRODUCTION: it is public.
pub const SENDGRID_TEST_KEY: &str = include_str!("../events/sendgrid-test-key.NOT-FOR-PRODUCTION.pem");
/// The API key `events/local.env` accepts on `/v1/events`.
pub const LOCAL_API_KEY: &str = "local-dev-key";

const APIGW_FIXTURE: &str = include_str!("../tests/fixtures/example-apigw-v2-request-no-authorizer.json");
const SQS_FIXTURE: &str = include_str!("../tests/fixtures/example-sqs-event.json");

/// One sample: its file name in `events/`, the function it is for, and the payload.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The file name, e.g. `ingest-sendgrid.json`.
    pub file: &'static str,
    /// The function to invoke with it (`ingest`, `evaluate`, `writeback`).
    pub function: &'static str,
    /// The Lambda event.
    pub payload: Value,
}

/// Why the samples could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The committed test key could not be read.
    #[error("the SendGrid test key in events/ is not a P-256 PKCS#8 PEM key: {0}")]
    Key(String),
    /// The embedded rules or the in-memory evaluation failed.
    #[error("evaluating the evaluate sample: {0}")]
    Evaluate(String),
}

/// Every sample, made for `now`.
pub async fn generate(now: DateTime<Utc>) -> Result<Vec<Sample>, SampleError> {
    let tag = now.timestamp();
    let evaluate_events = vec![
        event(
            &format!("eval-open-{tag}"),
            "ada@acme.test",
            "email.opened",
            now - Duration::minutes(2),
            "sendgrid",
            None,
        ),
        event(
            &format!("eval-click-{tag}"),
            "ada@acme.test",
            "email.clicked",
            now - Duration::minutes(1),
            "sendgrid",
            Some("https://kairos.example/pricing"),
        ),
        event(
            &format!("eval-view-{tag}"),
            "bob@globex.test",
            "page.viewed",
            now - Duration::minutes(1),
            "website",
            Some("https://kairos.example/pricing"),
        ),
    ];
    let transitions = transitions_of(&evaluate_events, now).await?;
    Ok(vec![
        Sample {
            file: "ingest-sendgrid.json",
            function: "ingest",
            payload: sendgrid(now)?,
        },
        Sample {
            file: "ingest-events.json",
            function: "ingest",
            payload: v1_events(now),
        },
        Sample {
            file: "evaluate-sqs.json",
            function: "evaluate",
            payload: sqs(&evaluate_events.iter().map(Value::to_string).collect::<Vec<_>>()),
        },
        Sample {
            file: "writeback-sqs.json",
            function: "writeback",
            payload: sqs(&transitions),
        },
    ])
}

/// A canonical event as JSON.
fn event(id: &str, contact: &str, kind: &str, at: DateTime<Utc>, source: &str, url: Option<&str>) -> Value {
    let mut e = json!({"id": id, "contact": contact, "type": kind, "at": at.to_rfc3339_opts(SecondsFormat::Secs, true), "source": source});
    if let Some(url) = url {
        e["url"] = json!(url);
    }
    e
}

/// A signed SendGrid webhook: delivered, opened, clicked, in the last minutes.
fn sendgrid(now: DateTime<Utc>) -> Result<Value, SampleError> {
    let key = SigningKey::from_pkcs8_pem(SENDGRID_TEST_KEY).map_err(|e| SampleError::Key(e.to_string()))?;
    let (tag, ts) = (now.timestamp(), |minutes: i64| {
        (now - Duration::minutes(minutes)).timestamp()
    });
    let body = json!([
        {"email": "ada@acme.test", "timestamp": ts(10), "event": "delivered", "sg_event_id": format!("sample-dlv-{tag}"), "sg_message_id": "m1.filter0001", "category": "newsletter"},
        {"email": "ada@acme.test", "timestamp": ts(5), "event": "open", "sg_machine_open": false, "sg_event_id": format!("sample-open-{tag}"), "sg_message_id": "m1.filter0001"},
        {"email": "ada@acme.test", "timestamp": ts(1), "event": "click", "url": "https://kairos.example/pricing", "sg_event_id": format!("sample-click-{tag}"), "sg_message_id": "m1.filter0001"},
    ])
    .to_string();
    let signature: Signature = key.sign(format!("{tag}{body}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let mut req = post("/webhooks/sendgrid", &body);
    let headers = [
        ("x-twilio-email-event-webhook-signature", signature),
        ("x-twilio-email-event-webhook-timestamp", tag.to_string()),
    ];
    for (name, value) in headers {
        req.headers
            .insert(name, value.parse().map_err(|_| SampleError::Key("header".into()))?);
    }
    Ok(serde_json::to_value(req).unwrap_or_default())
}

/// `POST /v1/events` with the local API key: two page views.
fn v1_events(now: DateTime<Utc>) -> Value {
    let tag = now.timestamp();
    let batch = json!({"batch": [
        event(&format!("web-1-{tag}"), "bob@globex.test", "page.viewed", now - Duration::minutes(5), "website", Some("https://kairos.example/pricing")),
        event(&format!("web-2-{tag}"), "bob@globex.test", "page.viewed", now - Duration::minutes(1), "website", Some("https://kairos.example/pricing#faq")),
    ]});
    let mut req = post("/v1/events", &batch.to_string());
    req.headers
        .insert("x-api-key", LOCAL_API_KEY.parse().expect("an ASCII header value"));
    serde_json::to_value(req).unwrap_or_default()
}

/// The official API Gateway v2 fixture as a JSON POST of `body` to `path`.
fn post(path: &str, body: &str) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(APIGW_FIXTURE).unwrap_or_default();
    req.request_context.http.method = Method::POST;
    req.request_context.http.path = Some(path.to_string());
    req.raw_path = Some(path.to_string());
    req.route_key = Some(format!("POST {path}"));
    req.headers
        .insert("content-type", "application/json".parse().expect("ASCII"));
    req.body = Some(body.to_string());
    req
}

/// The official SQS fixture's shape carrying these bodies.
pub fn sqs(bodies: &[String]) -> Value {
    let mut event: SqsEvent = serde_json::from_str(SQS_FIXTURE).unwrap_or_default();
    let template: SqsMessage = event.records.first().cloned().unwrap_or_default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut m = template.clone();
            m.message_id = Some(format!("sample-{}", i + 1));
            m.body = Some(body.clone());
            m
        })
        .collect();
    serde_json::to_value(event).unwrap_or_default()
}

/// The write-back messages the evaluate function sends for these events as of `now`.
async fn transitions_of(events: &[Value], now: DateTime<Utc>) -> Result<Vec<String>, SampleError> {
    let rules = kairos_rules::RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES)
        .map_err(|e| SampleError::Evaluate(e.to_string()))?;
    let (store, queue) = (
        kairos_store::MemoryContacts::default(),
        kairos_store::MemoryQueue::default(),
    );
    let evaluator = kairos_evaluate::Evaluator::new(&rules, &store, &queue);
    let bodies: Vec<String> = events.iter().map(Value::to_string).collect();
    let batch: SqsEvent = serde_json::from_value(sqs(&bodies)).map_err(|e| SampleError::Evaluate(e.to_string()))?;
    let failed = kairos_evaluate::handle(batch, &evaluator, now)
        .await
        .batch_item_failures;
    if !failed.is_empty() {
        return Err(SampleError::Evaluate(format!("{} message(s) failed", failed.len())));
    }
    Ok(queue.drain().into_iter().map(|m| m.body).collect())
}
