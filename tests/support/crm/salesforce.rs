//! Salesforce as its references describe it:
//! - `POST /services/oauth2/token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//!   and `assertion`: an RS256 JWT signed by the key whose certificate the
//!   connected app holds, `iss` its consumer key, `sub` the pre-authorized
//!   user, `aud` the login URL, `exp` at most a few minutes ahead; errors are
//!   400 `{"error":"invalid_grant","error_description":...}`
//!   (<https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm>);
//! - an expired session: 401 `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`;
//! - `PATCH /services/data/vNN.0/composite/sobjects/Contact/{externalIdField}`:
//!   `allOrNone`, up to 200 `records` each with `attributes.type`; 200 with one
//!   `{id, success, errors, created}` per record in order
//!   (<https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html>);
//!   a key matching several records is an error naming them; a key matching
//!   none creates a Contact, which without `LastName` is `REQUIRED_FIELD_MISSING`;
//!   an unknown field is `INVALID_FIELD`;
//! - every answer carries `Sforce-Limit-Info: api-usage=n/m`; past the org's
//!   limit, 403 `REQUEST_LIMIT_EXCEEDED`. (Salesforce's window is a rolling
//!   24 hours; here it is a fixed window of an hour, so a test sees it reopen.)

use super::{answer, refuse, serve, Counters, Fault, Faults, Refusal};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{patch, post};
use base64::Engine;
use kairos_writeback::{Clock, ManualClock};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "3MVG9test.consumer.key";
pub const USERNAME: &str = "kairos@acme.example";
pub const WINDOW_MS: u64 = 3_600_000;

/// A Salesforce org.
pub struct Salesforce {
    pub key: VerifyingKey<Sha256>,
    pub audience: Mutex<String>,
    pub options: Vec<String>,
    pub checkboxes: Vec<String>,
    pub api_max: usize,
    pub faults: Faults,
    pub counters: Counters,
    pub clock: Arc<ManualClock>,
    pub tokens_issued: AtomicUsize,
    /// External id → Contact ids (none: not in the org; several: duplicates).
    pub contacts: Mutex<BTreeMap<String, Vec<String>>>,
    /// External id → every segments value written.
    pub history: Mutex<BTreeMap<String, Vec<String>>>,
    tokens: Mutex<BTreeSet<String>>,
    used: Mutex<(u64, usize)>,
    closed_until: AtomicU64,
    /// When the limit answer that closed the window was given.
    closed_at: AtomicU64,
}

impl Salesforce {
    pub fn new(
        key: &rsa::RsaPrivateKey,
        options: &[&str],
        checkboxes: &[&str],
        faults: Faults,
        clock: Arc<ManualClock>,
    ) -> Salesforce {
        Salesforce {
            key: VerifyingKey::new(key.to_public_key()),
            audience: Mutex::default(),
            options: options.iter().map(|s| s.to_string()).collect(),
            checkboxes: checkboxes.iter().map(|s| s.to_string()).collect(),
            api_max: 1_000_000,
            faults,
            counters: Counters::default(),
            clock,
            tokens_issued: AtomicUsize::new(0),
            contacts: Mutex::default(),
            history: Mutex::default(),
            tokens: Mutex::default(),
            used: Mutex::default(),
            closed_until: AtomicU64::new(0),
            closed_at: AtomicU64::new(0),
        }
    }

    pub async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new()
            .route("/services/oauth2/token", post(token))
            .route(
                "/services/data/{version}/composite/sobjects/{sobject}/{field}",
                patch(upsert),
            )
            .with_state(self.clone());
        let url = serve(app).await;
        *self.audience.lock().unwrap() = url.clone();
        url
    }

    /// Every session ends (as when an admin revokes them or they time out).
    pub fn expire_sessions(&self) {
        self.tokens.lock().unwrap().clear();
    }

    /// Other integrations spend `n` of the org's API requests in this window.
    pub fn spend(&self, n: usize) {
        let mut used = self.used.lock().unwrap();
        let now = self.clock.now_ms();
        if now >= used.0 + WINDOW_MS {
            *used = (now, 0);
        }
        used.1 += n;
    }

    /// Adds Contacts with these external ids (two ids for one key: duplicates).
    pub fn add(&self, key: &str, ids: &[&str]) {
        self.contacts
            .lock()
            .unwrap()
            .insert(key.to_string(), ids.iter().map(|s| s.to_string()).collect());
    }

    /// The last segments value written per external id.
    pub fn segments(&self) -> BTreeMap<String, String> {
        let history = self.history.lock().unwrap();
        history
            .iter()
            .map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default()))
            .collect()
    }

    fn verify(&self, assertion: &str) -> Result<(), (&'static str, String)> {
        let invalid = |why: &str| ("invalid_grant", why.to_string());
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err(invalid("invalid assertion"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = b64
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| invalid("invalid assertion"))?;
        if header["alg"] != "RS256" {
            return Err(invalid("invalid assertion: alg must be RS256"));
        }
        let signature = b64
            .decode(signature)
            .ok()
            .and_then(|s| Signature::try_from(&s[..]).ok())
            .ok_or_else(|| invalid("invalid signature"))?;
        self.key
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .map_err(|_| invalid("invalid signature"))?;
        let claims: Value = b64
            .decode(claims)
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .ok_or_else(|| invalid("invalid assertion"))?;
        if claims["iss"] != CLIENT_ID {
            return Err(("invalid_client_id", "client identifier invalid".into()));
        }
        if claims["sub"] != USERNAME {
            return Err(invalid("user hasn't approved this consumer"));
        }
        if claims["aud"].as_str() != Some(self.audience.lock().unwrap().as_str()) {
            return Err(invalid("audience is invalid"));
        }
        let now = self.clock.now_ms() / 1000;
        match claims["exp"].as_u64() {
            Some(exp) if exp > now && exp <= now + 300 => Ok(()),
            _ => Err(invalid("expired authorization code")),
        }
    }

    /// The org's API limit, then injected faults: the usage header to send.
    fn admit(&self) -> Result<String, Refusal> {
        let now = self.clock.now_ms();
        let closed = self.closed_until.load(Ordering::SeqCst);
        let limit = json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        // A call made at the very instant of the answer was already on its way.
        if now < closed && now > self.closed_at.load(Ordering::SeqCst) {
            self.counters
                .violation(format!("call at {now} after REQUEST_LIMIT_EXCEEDED, before {closed}"));
        }
        if now < closed {
            return Err(refuse(403, limit, &[]));
        }
        let mut used = self.used.lock().unwrap();
        if now >= used.0 + WINDOW_MS {
            *used = (now, 0);
        }
        used.1 += 1;
        let usage = format!("api-usage={}/{}", used.1.min(self.api_max), self.api_max);
        if used.1 > self.api_max {
            self.counters.refused.fetch_add(1, Ordering::SeqCst);
            self.closed_until.store(used.0 + WINDOW_MS, Ordering::SeqCst);
            self.closed_at.store(now, Ordering::SeqCst);
            return Err(refuse(403, limit, &[("sforce-limit-info", usage)]));
        }
        match self.faults.roll() {
            Fault::TooMany => {
                self.counters.too_many.fetch_add(1, Ordering::SeqCst);
                Err(refuse(
                    429,
                    json!([{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
                    &[("sforce-limit-info", usage)],
                ))
            }
            Fault::Unavailable => {
                self.counters.unavailable.fetch_add(1, Ordering::SeqCst);
                Err(refuse(
                    503,
                    json!([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
                    &[],
                ))
            }
            Fault::None => Ok(usage),
        }
    }

    fn record(&self, record: &Value, field: &str) -> Value {
        let fail = |code: &str, message: String, fields: Vec<&str>| json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]});
        if record["attributes"]["type"] != "Contact" {
            return fail("INVALID_TYPE", "attributes.type must be Contact".into(), vec![]);
        }
        let Some(key) = record[field].as_str() else {
            return fail("MISSING_ARGUMENT", format!("{field} not specified"), vec![field]);
        };
        let Some(fields) = record.as_object() else {
            return fail("JSON_PARSER_ERROR", "not an object".into(), vec![]);
        };
        for (name, value) in fields {
            let ok = match name.as_str() {
                "attributes" => true,
                n if n == field => true,
                "Kairos_Segments__c" => value.as_str().is_some_and(|v| {
                    v.split(';')
                        .filter(|s| !s.is_empty())
                        .all(|s| self.options.iter().any(|o| o == s))
                }),
                n if self.checkboxes.iter().any(|c| c == n) => value.is_boolean(),
                n => {
                    return fail(
                        "INVALID_FIELD",
                        format!("No such column '{n}' on sobject of type Contact"),
                        vec![],
                    )
                }
            };
            if !ok {
                return fail(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("bad value for restricted picklist field: {value}"),
                    vec![name],
                );
            }
        }
        let ids = self.contacts.lock().unwrap().get(key).cloned().unwrap_or_default();
        match ids.len() {
            0 => fail(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LastName]".into(),
                vec!["LastName"],
            ),
            1 => {
                let value = record["Kairos_Segments__c"].as_str().unwrap_or("").to_string();
                self.history
                    .lock()
                    .unwrap()
                    .entry(key.to_string())
                    .or_default()
                    .push(value);
                json!({"id": ids[0], "success": true, "errors": [], "created": false})
            }
            _ => fail(
                "DUPLICATE_EXTERNAL_ID",
                format!("More than one record found for external id field: {ids:?}"),
                vec![field],
            ),
        }
    }
}

async fn token(State(sf): State<Arc<Salesforce>>, body: String) -> Response {
    sf.counters.calls.fetch_add(1, Ordering::SeqCst);
    let form: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return answer(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
            &[],
        );
    }
    if let Err((error, description)) = sf.verify(form.get("assertion").map_or("", String::as_str)) {
        return answer(400, json!({"error": error, "error_description": description}), &[]);
    }
    let n = sf.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let token = format!("00Dxx0000001gPL!AR8AQ.token{n}");
    sf.tokens.lock().unwrap().insert(token.clone());
    let instance = sf.audience.lock().unwrap().clone();
    answer(
        200,
        json!({"access_token": token, "instance_url": instance, "id": format!("{instance}/id/00Dxx/005xx"), "token_type": "Bearer", "scope": "api"}),
        &[],
    )
}

async fn upsert(
    State(sf): State<Arc<Salesforce>>,
    Path((version, sobject, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    sf.counters.calls.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| sf.tokens.lock().unwrap().contains(t)) {
        return answer(
            401,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
            &[],
        );
    }
    let usage = match sf.admit() {
        Ok(usage) => usage,
        Err(r) => return *r,
    };
    let bad = |message: &str| answer(400, json!([{"message": message, "errorCode": "INVALID_FIELD"}]), &[]);
    let numbered = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok_and(|n| n >= 46) && b == "0");
    if !numbered || sobject != "Contact" || field != "Kairos_Key__c" {
        return answer(
            404,
            json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]),
            &[],
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return bad("JSON parser error");
    };
    let Some(records) = body["records"].as_array().filter(|r| (1..=200).contains(&r.len())) else {
        return bad("records: a list of 1 to 200 sObjects");
    };
    if !body["allOrNone"].is_boolean() {
        return bad("allOrNone must be a boolean");
    }
    let results: Vec<Value> = records.iter().map(|r| sf.record(r, &field)).collect();
    answer(200, Value::Array(results), &[("sforce-limit-info", usage)])
}
