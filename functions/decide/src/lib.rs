//! The decide function: `POST /v1/decide`, the synchronous send-time decision
//! an ESP or a journey tool asks for just before it sends, and the
//! reconciliation of the ESP's own reports of those sends.
//!
//! Main items: [`handle`] (the API Gateway handler over borrowed adapters),
//! [`Decide`] (what it borrows), [`DecideConfig`], [`DecisionStore`] (decisions,
//! send logs and variant counters: [`DynamoDecisions`] / [`MemoryDecisions`]),
//! [`reconcile`] (ESP `email.sent`/`email.delivered` and goal events against
//! recorded decisions).
//!
//! One decision: the API key (the check `/v1/events` uses), the body
//! `{"contact", "channel", "now"?}`, the contact's record (as the evaluate
//! function keeps it), its send log and the counters of the due step's
//! variants are read; the pure decision ([`kairos_decide::Decider`]) is
//! made; a send is recorded in one transaction (the decision unless its id
//! exists, the log if unchanged, the variant's send counter), so a retry or
//! a concurrent duplicate records nothing twice and gets the first answer.
//!
//! ```
//! use kairos_decide_fn::{handle, Decide, DecideConfig, MemoryDecisions};
//! use kairos_store::MemoryContacts;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let rules = kairos_rules::RuleSet::from_yaml(kairos_decide_fn::DEFAULT_RULES).unwrap();
//! let config = DecideConfig { api_keys: vec!["k1".into()], ..DecideConfig::default() };
//! let (contacts, decisions) = (MemoryContacts::default(), MemoryDecisions::default());
//! let decide = Decide { config: &config, rules: &rules, contacts: &contacts, decisions: &decisions };
//! let mut req = aws_lambda_events::apigw::ApiGatewayV2httpRequest::default();
//! req.raw_path = Some("/v1/decide".into());
//! req.headers.insert("x-api-key", "k1".parse().unwrap());
//! req.body = Some(r#"{"contact": "ada@example.com", "channel": "email", "now": "2026-11-27T10:00:00Z"}"#.into());
//! let response = handle(req, &decide, 1_795_773_600).await;
//! assert_eq!(response.status_code, 200);
//! # });
//! ```

mod config;
mod dynamo;
mod reconcile;
mod store;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, DecideConfig};
pub use dynamo::DynamoDecisions;
pub use reconcile::{reconcile, reconcile_batch, Reconciled};
pub use store::{DecisionStore, MemoryDecisions, Recorded, SendLog, VariantKey};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderValue, CONTENT_TYPE};
use kairos_decide::{Counts, CountsTable, Decider, History, Posteriors, Request, Sent};
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;

/// The example rules, embedded (as the evaluate function embeds them).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/segments.yaml");

/// A send log keeps every send of this long (the longest cap or wait a rules
/// file should use), and each sequence's first and last send beyond it.
pub const LOG_KEEP_SECS: i64 = 90 * 86_400;
/// A send log holds at most this many sends.
pub const LOG_MAX_SENDS: usize = 64;

/// What the handler borrows: built once per cold start.
pub struct Decide<'a, C: ContactStore, D: DecisionStore> {
    /// The configuration.
    pub config: &'a DecideConfig,
    /// The compiled rules (segments and sequences), as evaluate compiles them.
    pub rules: &'a RuleSet,
    /// Contact records, read only.
    pub contacts: &'a C,
    /// Decisions, send logs and counters.
    pub decisions: &'a D,
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    contact: String,
    #[serde(default = "email")]
    channel: String,
    #[serde(default)]
    now: Option<chrono::DateTime<chrono::Utc>>,
}

fn email() -> String {
    "email".into()
}

/// Handles one API Gateway v2 request at server time `received` (unix seconds).
pub async fn handle<C: ContactStore, D: DecisionStore>(
    req: ApiGatewayV2httpRequest,
    decide: &Decide<'_, C, D>,
    received: i64,
) -> ApiGatewayV2httpResponse {
    let (status, body) = answer(&req, decide, received).await;
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}

async fn answer<C: ContactStore, D: DecisionStore>(
    req: &ApiGatewayV2httpRequest,
    decide: &Decide<'_, C, D>,
    received: i64,
) -> (u16, Value) {
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    if path != "/v1/decide" || decide.config.api_keys.is_empty() {
        return (404, json!({"error": format!("no route for {path}")}));
    }
    let presented = req.headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
    if !kairos_ingest::providers::shared::key_matches(presented, &decide.config.api_keys) {
        tracing::info!("decide refused: missing or unknown x-api-key");
        return (401, json!({"error": "unauthorized"}));
    }
    let body = match parse(req, decide.config, received) {
        Ok(body) => body,
        Err(error) => return (400, json!({"error": error})),
    };
    let key = req.headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    match decided(decide, &body, key).await {
        Ok(answer) => (200, answer),
        Err(e) if e.is_permanent() => {
            tracing::error!(error = %e, "decide failed for good");
            (500, json!({"error": "the contact's stored record cannot be read"}))
        }
        Err(e) => {
            tracing::warn!(error = %e, "decide failed; the caller may retry");
            (503, json!({"error": "storage is unavailable; retry"}))
        }
    }
}

/// The checked request: the normalized contact, the channel and the time.
struct Asked {
    contact: String,
    channel: String,
    now: i64,
}

fn parse(req: &ApiGatewayV2httpRequest, config: &DecideConfig, received: i64) -> Result<Asked, String> {
    let text = match &req.body {
        Some(text) if req.is_base64_encoded => {
            return Err(format!("expected a JSON body, not base64 ({} bytes)", text.len()))
        }
        Some(text) => text.as_str(),
        None => return Err("expected a JSON body {\"contact\", \"channel\", \"now\"}".into()),
    };
    if text.len() > config.max_body_bytes {
        return Err(format!(
            "body is {} bytes, over the limit of {}",
            text.len(),
            config.max_body_bytes
        ));
    }
    let body: Question = serde_json::from_str(text).map_err(|e| format!("body: {e}"))?;
    let contact = kairos_event::key::normalize_contact(&body.contact).map_err(|e| format!("`contact`: {e}"))?;
    let now = body.now.map_or(received, |t| t.timestamp());
    if now > received + config.max_clock_skew_secs {
        return Err(format!(
            "field `now` is {} s ahead of the time the request was received (at most {} s)",
            now - received,
            config.max_clock_skew_secs
        ));
    }
    Ok(Asked {
        contact,
        channel: body.channel,
        now,
    })
}

/// The posteriors a decision asks for, noted so that their counters are read.
#[derive(Default)]
struct Asking(Mutex<Vec<VariantKey>>);

impl Posteriors for Asking {
    fn counts(&self, sequence: &str, step: &str, variant: &str) -> Counts {
        let key = (sequence.to_string(), step.to_string(), variant.to_string());
        self.0.lock().expect("the asked keys' lock").push(key);
        Counts::default()
    }
}

/// Decides and records (retrying when the contact's log moved under it).
async fn decided<C: ContactStore, D: DecisionStore>(
    decide: &Decide<'_, C, D>,
    asked: &Asked,
    key: Option<&str>,
) -> Result<Value, StoreError> {
    let decider = Decider::new(decide.rules);
    let request = Request {
        contact: &asked.contact,
        channel: &asked.channel,
        now: asked.now,
        key,
        seed: None,
    };
    let mut record = decide.contacts.load(&asked.contact).await?.unwrap_or_default();
    // As of `now`, as the sweep would find it then.
    record.state.compact(asked.now);
    for _ in 0..3 {
        let log = decide.decisions.sends(&asked.contact).await?;
        let history = History {
            state: &record.state,
            sends: &log.sends,
        };
        // Deciding is pure and takes microseconds: once to learn which
        // variants' counters the due step reads, then with them.
        let asking = Asking::default();
        let probe = decider.decide(&request, &history, &asking);
        if key.is_some() {
            if let Some(stored) = decide.decisions.answer(&probe.decision_id).await? {
                return Ok(serde_json::from_str(&stored).unwrap_or(Value::String(stored)));
            }
        }
        if probe.send.is_none() {
            // No variant to choose: the probe is the answer (nothing to record).
            return Ok(probe.to_json());
        }
        let keys = asking.0.into_inner().expect("the asked keys' lock");
        let counts: CountsTable = keys
            .iter()
            .cloned()
            .zip(decide.decisions.counts(&keys).await?)
            .collect();
        let decision = decider.decide(&request, &history, &counts);
        let answer = decision.to_json();
        let Some(sent) = decision.sent() else {
            return Ok(answer);
        };
        let next = SendLog {
            sends: trimmed(&log.sends, &sent),
            version: log.version + 1,
        };
        let text = answer.to_string();
        match decide
            .decisions
            .record(&asked.contact, &sent, &text, &next, log.version)
            .await?
        {
            Recorded::New => return Ok(answer),
            Recorded::Existing(stored) => return Ok(serde_json::from_str(&stored).unwrap_or(answer)),
            Recorded::LogMoved => continue,
        }
    }
    Err(StoreError::Conflict)
}

/// The log with `sent` added, bounded: sends within [`LOG_KEEP_SECS`] of it,
/// and each sequence's first and last, at most [`LOG_MAX_SENDS`] (the oldest go).
pub fn trimmed(sends: &[Sent], sent: &Sent) -> Vec<Sent> {
    let mut all: Vec<Sent> = sends.iter().cloned().chain([sent.clone()]).collect();
    all.sort_by(|a, b| (a.at, &a.decision_id).cmp(&(b.at, &b.decision_id)));
    let keep = |i: usize, s: &Sent| {
        let first = all.iter().position(|x| x.sequence == s.sequence) == Some(i);
        let last = all.iter().rposition(|x| x.sequence == s.sequence) == Some(i);
        first || last || s.at > sent.at - LOG_KEEP_SECS
    };
    let mut out: Vec<Sent> = all
        .iter()
        .enumerate()
        .filter(|(i, s)| keep(*i, s))
        .map(|(_, s)| s.clone())
        .collect();
    let over = out.len().saturating_sub(LOG_MAX_SENDS);
    out.drain(..over);
    out
}
