//! HubSpot contacts, written with a private app's token (Bearer).
//!
//! Requests, from HubSpot's API reference:
//! - `POST /crm/v3/objects/contacts/batch/upsert`, up to 100 inputs keyed by
//!   `idProperty` (email or another unique property), each with an
//!   `objectWriteTraceId` that the answer echoes in results and errors
//!   (<https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts>);
//!   the multi-select property takes option values joined by `;`, and an empty
//!   string clears it (<https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/update-contacts>);
//! - `PUT /crm/v3/lists/{listId}/memberships/add` and `.../remove` with the
//!   record ids the upsert returned, for MANUAL or SNAPSHOT lists
//!   (<https://developers.hubspot.com/docs/api-reference/legacy/crm/lists/memberships/add-to-list>);
//! - rate limits: `X-HubSpot-RateLimit-Remaining` and
//!   `-Interval-Milliseconds` on answers; a 429's body names its `policyName`,
//!   `TEN_SECONDLY_ROLLING` (wait the window) or `DAILY` (no calls until
//!   midnight in the account's time zone)
//!   (<https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details>);
//!   the time zone comes from `GET /account-info/v3/details`
//!   (`utcOffsetMilliseconds`, <https://developers.hubspot.com/docs/api-reference/legacy/account/account-information/get-account-details>).

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{until, Clock};
use crate::deliver::{Destination, Outcome, Policy, Write};
use crate::file::{HubSpotMapping, Segments};
use crate::gate::next_midnight;
use crate::http::{HttpRequest, HttpResponse, Transport};
use crate::Gate;

/// HubSpot's batch limit for upserts.
pub const MAX_BATCH: usize = 100;
/// The rolling window a 429 `TEN_SECONDLY_ROLLING` refers to.
const SECONDLY_WINDOW: Duration = Duration::from_secs(10);

/// A HubSpot account's contacts.
pub struct HubSpot<T> {
    name: String,
    segments: Segments,
    transport: T,
    token: String,
    mapping: HubSpotMapping,
    utc_offset_ms: AtomicI64,
    policy: Policy,
    gate: Gate,
    clock: Arc<dyn Clock>,
}

impl<T: Transport> HubSpot<T> {
    /// Writes through `transport` with the private app `token`.
    pub fn new(
        (name, segments): (String, Segments),
        transport: T,
        token: String,
        mapping: HubSpotMapping,
        (policy, clock): (Policy, Arc<dyn Clock>),
    ) -> HubSpot<T> {
        HubSpot {
            name,
            segments,
            transport,
            token,
            mapping,
            utc_offset_ms: AtomicI64::new(0),
            policy,
            gate: Gate::default(),
            clock,
        }
    }

    /// Cold start: reads the account's time zone, where the daily limit resets.
    /// Without it (logged), midnight UTC is assumed.
    pub async fn connect(&self) {
        let answer = self.send(self.request("GET", "/account-info/v3/details")).await;
        match answer.map(|r| (r.status, r.value()["utcOffsetMilliseconds"].as_i64())) {
            Ok((200, Some(offset))) => self.utc_offset_ms.store(offset, Ordering::Relaxed),
            other => {
                tracing::warn!(destination = %self.name, answer = ?other.map(|(s, _)| s), "HubSpot account time zone unknown; daily limits assumed to reset at midnight UTC")
            }
        }
    }

    fn request(&self, method: &'static str, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{path}", self.mapping.base_url.trim_end_matches('/')))
            .header("authorization", format!("Bearer {}", self.token))
    }

    /// Sends, and slows down before a 429 when the window has no calls left:
    /// a call (after the first of a write) that would go before the window
    /// allows is not made, and the write is retried once it does.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Outcome> {
        let (now, ready) = (self.clock.now_ms(), self.gate.ready_at());
        if ready > now {
            return Err(Outcome::Retry {
                reason: format!("waiting for HubSpot's rate window: {}", self.gate.reason()),
                after: Some(until(ready, now)),
            });
        }
        let r = self.transport.send(request).await.map_err(|e| Outcome::retry(e.0))?;
        if r.number("x-hubspot-ratelimit-remaining").is_some_and(|left| left == 0) {
            let interval = r.number("x-hubspot-ratelimit-interval-milliseconds").unwrap_or(10_000);
            self.gate.hold(self.clock.now_ms() + interval);
        }
        Ok(r)
    }

    /// A 429: held for the window (`TEN_SECONDLY_ROLLING`), or paused until
    /// the account's midnight (`DAILY`).
    fn limited(&self, r: &HttpResponse) -> Outcome {
        let now = self.clock.now_ms();
        let policy = r.value()["policyName"].as_str().unwrap_or("").to_string();
        let until_ms = match policy.as_str() {
            "DAILY" => {
                let until_ms = next_midnight(now, self.utc_offset_ms.load(Ordering::Relaxed));
                self.gate.pause(until_ms, "HubSpot daily limit reached (429 DAILY)");
                until_ms
            }
            _ => {
                let wait = r.number("retry-after").map(|s| s * 1000);
                let until_ms = now + wait.unwrap_or(SECONDLY_WINDOW.as_millis() as u64);
                self.gate.hold(until_ms);
                until_ms
            }
        };
        Outcome::Retry {
            reason: format!("HTTP 429 {policy}"),
            after: Some(until(until_ms, now)),
        }
    }

    /// What an answer other than 2xx means for every write of the call.
    fn failed(&self, r: &HttpResponse) -> Outcome {
        match r.status {
            429 => self.limited(r),
            s if s >= 500 => Outcome::retry(format!("HTTP {s}: {}", r.excerpt())),
            s => Outcome::Permanent(format!("HTTP {s}: {}", r.excerpt())),
        }
    }

    fn properties(&self, w: &Write) -> Value {
        let mut props = Map::new();
        props.insert(self.mapping.property.clone(), w.members.join(";").into());
        for (segment, property) in &self.mapping.booleans {
            props.insert(property.clone(), w.members.contains(segment).to_string().into());
        }
        Value::Object(props)
    }

    /// The upsert: an outcome and, when written, the record id, per write.
    async fn upsert(&self, writes: &[Write]) -> Vec<(Outcome, Option<String>)> {
        let inputs: Vec<Value> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({"idProperty": self.mapping.id_property, "id": w.contact,
                       "objectWriteTraceId": i.to_string(), "properties": self.properties(w)})
            })
            .collect();
        let request = self
            .request("POST", "/crm/v3/objects/contacts/batch/upsert")
            .json(&json!({ "inputs": inputs }));
        let r = match self.send(request).await {
            Ok(r) => r,
            Err(outcome) => return writes.iter().map(|_| (outcome.clone(), None)).collect(),
        };
        let body = r.value();
        let whole = (!matches!(r.status, 200 | 201 | 207)).then(|| self.failed(&r));
        let mut out: Vec<(Outcome, Option<String>)> = writes
            .iter()
            .map(|_| (whole.clone().unwrap_or(Outcome::retry("not in HubSpot's answer")), None))
            .collect();
        let find = |v: &Value| index_of(v, writes, &self.mapping.id_property);
        for result in body["results"].as_array().into_iter().flatten() {
            if let (Some(i), Some(id)) = (find(result), result["id"].as_str()) {
                out[i] = (Outcome::Written, Some(id.to_string()));
            }
        }
        for error in body["errors"].as_array().into_iter().flatten() {
            let message = error["message"].as_str().unwrap_or("record error").to_string();
            let outcome = match error["category"].as_str() {
                Some("RATE_LIMITS") => Outcome::retry(message),
                category => Outcome::Permanent(format!("{}: {message}", category.unwrap_or("ERROR"))),
            };
            for i in error_indexes(&error["context"], writes) {
                out[i] = (outcome.clone(), None);
            }
        }
        out
    }

    /// Static list memberships: members added, the others removed, by record id.
    async fn lists(&self, writes: &[Write], out: &mut [(Outcome, Option<String>)]) {
        for (segment, list) in &self.mapping.lists {
            for (action, wanted) in [("add", true), ("remove", false)] {
                let chosen: Vec<usize> = (0..writes.len())
                    .filter(|&i| out[i].1.is_some() && writes[i].members.contains(segment) == wanted)
                    .collect();
                if chosen.is_empty() {
                    continue;
                }
                let ids: Vec<&str> = chosen.iter().filter_map(|&i| out[i].1.as_deref()).collect();
                let path = format!("/crm/v3/lists/{list}/memberships/{action}");
                let failure = match self.send(self.request("PUT", &path).json(&json!(ids))).await {
                    Ok(r) if r.status == 200 => None,
                    Ok(r) => Some(self.failed(&r)),
                    Err(outcome) => Some(outcome),
                };
                if let Some(outcome) = failure {
                    // The property is written; the whole write is repeated (idempotent).
                    chosen.iter().for_each(|&i| out[i] = (outcome.clone(), None));
                }
            }
        }
    }
}

/// Which write a result or error is about: its echoed trace id, or its id property.
fn index_of(result: &Value, writes: &[Write], id_property: &str) -> Option<usize> {
    if let Some(i) = result["objectWriteTraceId"]
        .as_str()
        .and_then(|t| t.parse::<usize>().ok())
    {
        return (i < writes.len()).then_some(i);
    }
    let key = result["properties"][id_property].as_str()?;
    writes.iter().position(|w| w.contact.eq_ignore_ascii_case(key))
}

/// The writes an error's context names, by trace id or id.
fn error_indexes(context: &Value, writes: &[Write]) -> Vec<usize> {
    let named = |field: &str| -> Vec<String> {
        context[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut out: Vec<usize> = named("objectWriteTraceId")
        .iter()
        .filter_map(|t| t.parse::<usize>().ok())
        .filter(|&i| i < writes.len())
        .collect();
    for id in named("ids") {
        out.extend(writes.iter().position(|w| w.contact.eq_ignore_ascii_case(&id)));
    }
    out
}

impl<T: Transport> Destination for HubSpot<T> {
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

    /// The upsert, then an add and a remove per mapped list (the account's
    /// time zone is read once, at cold start, and counted too).
    fn requests(&self, _writes: &[&Write]) -> u32 {
        2 + 2 * u32::try_from(self.mapping.lists.len()).unwrap_or(u32::MAX / 4)
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        // Contacts keyed by something other than an email (a user id, an
        // anonymous visitor) have no HubSpot contact to upsert by email.
        let by_email = self.mapping.id_property == "email";
        let keyed: Vec<usize> = (0..writes.len())
            .filter(|&i| !by_email || writes[i].contact.contains('@'))
            .collect();
        let mut outcomes = vec![Outcome::Skipped("the contact key is not an email".into()); writes.len()];
        if keyed.is_empty() {
            return outcomes;
        }
        let chosen: Vec<Write> = keyed.iter().map(|&i| writes[i].clone()).collect();
        let mut out = self.upsert(&chosen).await;
        if !self.mapping.lists.is_empty() {
            self.lists(&chosen, &mut out).await;
        }
        for (i, (outcome, _)) in keyed.into_iter().zip(out) {
            outcomes[i] = outcome;
        }
        outcomes
    }
}

/// What HubSpot answers on success, for a dry run: each input upserted, each
/// list membership changed.
pub fn simulated(request: &HttpRequest) -> HttpResponse {
    let body: Value = request
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    if request.url.ends_with("/batch/upsert") {
        let results: Vec<Value> = body["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, input)| json!({"id": (1001 + i).to_string(), "objectWriteTraceId": input["objectWriteTraceId"], "properties": input["properties"]}))
            .collect();
        return HttpResponse::json(200, json!({"status": "COMPLETE", "results": results}));
    }
    if request.url.ends_with("/account-info/v3/details") {
        return HttpResponse::json(
            200,
            json!({"portalId": 1, "timeZone": "UTC", "utcOffsetMilliseconds": 0}),
        );
    }
    HttpResponse::json(
        200,
        json!({"recordIdsMissing": [], "recordIdsRemoved": [], "recordsIdsAdded": body}),
    )
}
