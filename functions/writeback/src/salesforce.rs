//! Salesforce Contacts or Leads, written as an integration user authorized by
//! the OAuth 2.0 JWT bearer flow.
//!
//! From Salesforce's references:
//! - token: `POST {login_url}/services/oauth2/token` with
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an RS256 JWT
//!   (`iss` the consumer key, `sub` the username, `aud` the login URL, `exp`
//!   within three minutes); the answer has `access_token` and `instance_url`
//!   (<https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm>).
//!   The token is cached and asked for again once on `401 INVALID_SESSION_ID`;
//! - upsert: `PATCH /services/data/vNN.0/composite/sobjects/{sObject}/{externalIdField}`
//!   with `allOrNone: false` and up to 200 records, each with `attributes.type`;
//!   the answer is one result per record, in order, with `success` and `errors`
//!   (<https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html>).
//!   An external id matching several records is an error naming them (HTTP
//!   300 for a single-record upsert, <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html>):
//!   permanent. A record that would be created but lacks required fields
//!   (`REQUIRED_FIELD_MISSING`: the contact is not in Salesforce) is skipped;
//! - limits: every answer carries `Sforce-Limit-Info: api-usage=n/m` (the
//!   org's 24-hour API requests); `403 REQUEST_LIMIT_EXCEEDED` when none are
//!   left. Deliveries pause for [`LIMIT_PAUSE`] when usage reaches the share
//!   left after the configured reserve, or on that 403.

use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::deliver::{Destination, Outcome, Policy, Write};
use crate::file::{SalesforceMapping, Segments};
use crate::http::{HttpRequest, HttpResponse, Transport};
use crate::Gate;

/// sObject Collections' limit per call.
pub const MAX_BATCH: usize = 200;
/// How long deliveries pause when the org's API requests are spent (the
/// window is a rolling 24 hours: after this, one call shows where usage is).
pub const LIMIT_PAUSE: Duration = Duration::from_secs(3600);

/// An access token and the org's instance.
#[derive(Clone)]
struct Token {
    access: String,
    instance_url: String,
}

/// A Salesforce org's Contacts or Leads.
pub struct Salesforce<T> {
    name: String,
    segments: Segments,
    transport: T,
    key: SigningKey<Sha256>,
    mapping: SalesforceMapping,
    token: Mutex<Option<Token>>,
    policy: Policy,
    gate: Gate,
    clock: Arc<dyn Clock>,
}

/// Reads an RSA private key in PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn signing_key(pem: &str) -> Option<SigningKey<Sha256>> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .ok()?;
    Some(SigningKey::<Sha256>::new(key))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl<T: Transport> Salesforce<T> {
    /// Writes through `transport`, signing token requests with `key`.
    pub fn new(
        (name, segments): (String, Segments),
        transport: T,
        key: SigningKey<Sha256>,
        mapping: SalesforceMapping,
        (policy, clock): (Policy, Arc<dyn Clock>),
    ) -> Salesforce<T> {
        Salesforce {
            name,
            segments,
            transport,
            key,
            mapping,
            token: Mutex::new(None),
            policy,
            gate: Gate::default(),
            clock,
        }
    }

    /// The JWT bearer assertion, valid for three minutes.
    pub fn assertion(&self) -> String {
        let header = b64(br#"{"alg":"RS256"}"#);
        let exp = self.clock.now_ms() / 1000 + 180;
        let m = &self.mapping;
        let claims =
            json!({"iss": m.client_id, "sub": m.username, "aud": m.login_url.trim_end_matches('/'), "exp": exp});
        let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let signature = self.key.sign(signed.as_bytes()).to_vec();
        format!("{signed}.{}", b64(&signature))
    }

    /// The cached token, or a new one (`fresh`: the cached one was refused).
    async fn token(&self, fresh: bool) -> Result<Token, Outcome> {
        let cached = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(token) = cached.filter(|_| !fresh) {
            return Ok(token);
        }
        let url = format!("{}/services/oauth2/token", self.mapping.login_url.trim_end_matches('/'));
        let assertion = self.assertion();
        let request = HttpRequest::new("POST", url).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ]);
        let r = self.transport.send(request).await.map_err(|e| Outcome::retry(e.0))?;
        let body = r.value();
        match (r.status, body["access_token"].as_str(), body["instance_url"].as_str()) {
            (200, Some(access), Some(instance)) => {
                let token = Token {
                    access: access.to_string(),
                    instance_url: instance.trim_end_matches('/').to_string(),
                };
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
                Ok(token)
            }
            (s, ..) if s >= 500 || s == 429 => Err(Outcome::retry(format!("token: HTTP {s}"))),
            (s, ..) => Err(Outcome::Permanent(format!(
                "token refused: HTTP {s}: {} {}",
                body["error"].as_str().unwrap_or(""),
                body["error_description"].as_str().unwrap_or("")
            ))),
        }
    }

    fn record(&self, w: &Write) -> Value {
        let m = &self.mapping;
        let mut record = Map::new();
        record.insert("attributes".into(), json!({"type": m.sobject}));
        record.insert(m.external_id_field.clone(), w.contact.clone().into());
        record.insert(m.field.clone(), w.members.join(";").into());
        for (segment, field) in &m.checkboxes {
            record.insert(field.clone(), w.members.contains(segment).into());
        }
        Value::Object(record)
    }

    async fn upsert(&self, token: &Token, writes: &[Write]) -> Result<HttpResponse, Outcome> {
        let m = &self.mapping;
        let url = format!(
            "{}/services/data/v{}/composite/sobjects/{}/{}",
            token.instance_url, m.api_version, m.sobject, m.external_id_field
        );
        let records: Vec<Value> = writes.iter().map(|w| self.record(w)).collect();
        let request = HttpRequest::new("PATCH", url)
            .header("authorization", format!("Bearer {}", token.access))
            .json(&json!({"allOrNone": false, "records": records}));
        let r = self.transport.send(request).await.map_err(|e| Outcome::retry(e.0))?;
        self.watch_usage(&r);
        Ok(r)
    }

    /// Pauses when `Sforce-Limit-Info` shows usage into the reserve.
    fn watch_usage(&self, r: &HttpResponse) {
        let Some((used, max)) = r.header("sforce-limit-info").and_then(api_usage) else {
            return;
        };
        let allowed = max * (100 - u64::from(self.mapping.reserve_percent)) / 100;
        if used >= allowed {
            let reason = format!(
                "Salesforce API usage {used}/{max} reached the {}% reserve",
                self.mapping.reserve_percent
            );
            self.gate
                .pause(self.clock.now_ms() + LIMIT_PAUSE.as_millis() as u64, &reason);
        }
    }

    /// Outcomes for a whole-call answer other than 200.
    fn failed(&self, r: &HttpResponse) -> Outcome {
        let code = r.value()[0]["errorCode"].as_str().unwrap_or("").to_string();
        match r.status {
            403 if code == "REQUEST_LIMIT_EXCEEDED" => {
                self.gate.pause(
                    self.clock.now_ms() + LIMIT_PAUSE.as_millis() as u64,
                    "403 REQUEST_LIMIT_EXCEEDED",
                );
                Outcome::Retry {
                    reason: "HTTP 403 REQUEST_LIMIT_EXCEEDED".into(),
                    after: Some(LIMIT_PAUSE),
                }
            }
            300 => Outcome::Permanent(format!("several records match the external id: {}", r.excerpt())),
            s if s >= 500 || s == 429 => Outcome::retry(format!("HTTP {s}: {}", r.excerpt())),
            s => Outcome::Permanent(format!("HTTP {s}: {}", r.excerpt())),
        }
    }
}

/// `api-usage=18/5000` → (18, 5000).
fn api_usage(header: &str) -> Option<(u64, u64)> {
    let usage = header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// One record's result.
fn result_outcome(result: &Value, sobject: &str) -> Outcome {
    if result["success"].as_bool() == Some(true) {
        return Outcome::Written;
    }
    let error = &result["errors"][0];
    let code = error["statusCode"].as_str().unwrap_or("UNKNOWN");
    let message = error["message"].as_str().unwrap_or("");
    match code {
        "REQUIRED_FIELD_MISSING" => Outcome::Skipped(format!("no {sobject} with this key (not created: {message})")),
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "REQUEST_RUNNING_TOO_LONG" => {
            Outcome::retry(format!("{code}: {message}"))
        }
        "DUPLICATE_EXTERNAL_ID" | "DUPLICATE_VALUE" => {
            Outcome::Permanent(format!("several records match: {code}: {message}"))
        }
        _ => Outcome::Permanent(format!("{code}: {message}")),
    }
}

impl<T: Transport> Destination for Salesforce<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn segments(&self) -> &Segments {
        &self.segments
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A token (when none is cached) and the upsert, twice when the session
    /// was refused (401) and a fresh token is fetched.
    fn requests(&self, _writes: &[&Write]) -> u32 {
        4
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        let all = |o: Outcome| writes.iter().map(|_| o.clone()).collect::<Vec<_>>();
        let mut answer = Err(Outcome::retry("no attempt"));
        for fresh in [false, true] {
            let token = match self.token(fresh).await {
                Ok(token) => token,
                Err(outcome) => return all(outcome),
            };
            answer = self.upsert(&token, writes).await;
            let expired = matches!(&answer, Ok(r) if r.status == 401);
            if !expired {
                break;
            }
        }
        let r = match answer {
            Ok(r) if r.status == 401 => return all(Outcome::retry("session refused after a new token (401)")),
            Ok(r) => r,
            Err(outcome) => return all(outcome),
        };
        if r.status != 200 {
            return all(self.failed(&r));
        }
        let results = r.value();
        (0..writes.len())
            .map(|i| match results.get(i) {
                Some(result) => result_outcome(result, &self.mapping.sobject),
                None => Outcome::retry("no result for this record"),
            })
            .collect()
    }
}

/// What Salesforce answers on success, for a dry run.
pub fn simulated(request: &HttpRequest) -> HttpResponse {
    if request.url.ends_with("/services/oauth2/token") {
        return HttpResponse::json(
            200,
            json!({"access_token": "00Ddry!run", "instance_url": "https://example.my.salesforce.com", "token_type": "Bearer"}),
        );
    }
    let body: Value = request
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let results: Vec<Value> = body["records"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, _)| json!({"id": format!("003dry{i:012}"), "success": true, "errors": [], "created": false}))
        .collect();
    let mut r = HttpResponse::json(200, Value::Array(results));
    r.headers.push(("sforce-limit-info".into(), "api-usage=1/15000".into()));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_reads_the_limit_header() {
        assert_eq!(super::api_usage("api-usage=18/5000"), Some((18, 5000)));
        assert_eq!(
            super::api_usage("per-app-api-usage=2/100(appName=x), api-usage=7/10"),
            Some((7, 10))
        );
        assert_eq!(super::api_usage("nonsense"), None);
    }
}
