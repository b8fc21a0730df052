//! Pipedrive persons, written with an API token (`x-api-token` header).
//!
//! Pipedrive has no upsert, so per contact, from its API reference
//! (<https://developers.pipedrive.com/docs/api/v1/Persons>):
//! - find: `GET /api/v2/persons/search?term=<email>&fields=email&exact_match=true`
//!   (`data.items[].item.id`); the ids are cached in the table (`lookup#`
//!   items, 30 days), and a person that no longer exists (404 on update) is
//!   looked up again;
//! - write: `PATCH /api/v2/persons/{id}` with `{"custom_fields": {<key>: value}}`,
//!   the key of the custom field named in the mapping, resolved at cold start
//!   from `GET /api/v1/personFields` (<https://developers.pipedrive.com/docs/api/v1/PersonFields>):
//!   a multiple-options field takes the option ids of the member segments, a
//!   text field the ids joined by `;`;
//! - no person with the email: skipped (logged); several: each written
//!   (`duplicates: update_all`) or none, dead-lettered naming them (`fail`);
//! - limits (<https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>):
//!   `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds) for the burst
//!   window, `x-daily-requests-left` for the daily budget, which resets at
//!   midnight UTC; 429 when either is spent.

use kairos_store::Lookups;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{until, Clock};
use crate::deliver::{Destination, Outcome, Policy, Write};
use crate::file::{Duplicates, PipedriveMapping, Segments};
use crate::gate::next_midnight;
use crate::http::{HttpRequest, HttpResponse, Transport};
use crate::{Gate, SetupError};

/// Attempts at the field lookup at cold start.
const COLD_START_ATTEMPTS: u32 = 5;
/// How long a contact's person ids stay cached.
const CACHE_SECS: i64 = 30 * 86_400;
/// Contacts written at once (Pipedrive has no batch update; its burst window
/// allows tens of requests per 2 seconds).
pub const CONCURRENCY: usize = 10;

/// The resolved custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A multiple-options field: its key and option ids by label.
    Options(String, BTreeMap<String, i64>),
    /// A text field: its key.
    Text(String),
}

/// A Pipedrive company's persons.
pub struct Pipedrive<T, K> {
    name: String,
    segments: Segments,
    transport: T,
    token: String,
    mapping: PipedriveMapping,
    field: Field,
    lookups: K,
    policy: Policy,
    gate: Gate,
    clock: Arc<dyn Clock>,
}

impl<T: Transport, K: Lookups> Pipedrive<T, K> {
    /// Cold start: resolves the custom field by name (an error names it, or the
    /// segments it has no option for).
    pub async fn connect(
        (name, segments): (String, Segments),
        transport: T,
        token: String,
        mapping: PipedriveMapping,
        (lookups, policy, clock): (K, Policy, Arc<dyn Clock>),
    ) -> Result<Pipedrive<T, K>, SetupError> {
        let mut pipedrive = Pipedrive {
            name,
            segments,
            transport,
            token,
            mapping,
            field: Field::Text(String::new()),
            lookups,
            policy,
            gate: Gate::default(),
            clock,
        };
        pipedrive.field = pipedrive.resolve_field().await?;
        Ok(pipedrive)
    }

    async fn resolve_field(&self) -> Result<Field, SetupError> {
        let fail = |reason: String| SetupError::Connect {
            destination: self.name.clone(),
            reason,
        };
        // A cold start rides out a busy moment (429, 5xx) rather than fail.
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            let r = self
                .transport
                .send(self.request("GET", "/api/v1/personFields?limit=500"))
                .await
                .map_err(|e| fail(e.0))?;
            self.observe(&r);
            if (r.status != 429 && r.status < 500) || attempt == COLD_START_ATTEMPTS {
                break r;
            }
            let wait = until(self.gate.ready_at(), self.clock.now_ms()).max(Duration::from_secs(1));
            self.clock.sleep(wait).await;
        };
        if r.status != 200 {
            return Err(fail(format!("person fields: HTTP {}: {}", r.status, r.excerpt())));
        }
        let wanted = &self.mapping.field;
        let body = r.value();
        let field = body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"].as_str() == Some(wanted.as_str()))
            .ok_or_else(|| {
                fail(format!(
                    "no person field named `{wanted}`: create it (docs/destinations/pipedrive.md)"
                ))
            })?;
        let key = field["key"].as_str().unwrap_or_default().to_string();
        if field["field_type"].as_str() != Some("set") {
            return Ok(Field::Text(key));
        }
        let options: BTreeMap<String, i64> = field["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| Some((o["label"].as_str()?.to_string(), o["id"].as_i64()?)))
            .collect();
        if let Segments::Only(ids) = &self.segments {
            let missing: Vec<&str> = ids
                .iter()
                .filter(|s| !options.contains_key(*s))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(fail(format!(
                    "field `{wanted}` has no option for {}",
                    missing.join(", ")
                )));
            }
        }
        Ok(Field::Options(key, options))
    }

    fn request(&self, method: &'static str, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{path}", self.mapping.base_url.trim_end_matches('/')))
            .header("x-api-token", self.token.clone())
    }

    /// Sends, keeping to the burst window and the daily budget: a call the
    /// window does not allow yet is not made, and the write is retried.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Outcome> {
        let (now, ready) = (self.clock.now_ms(), self.gate.ready_at());
        if ready > now {
            return Err(Outcome::Retry {
                reason: format!("waiting for Pipedrive's rate window: {}", self.gate.reason()),
                after: Some(until(ready, now)),
            });
        }
        let r = self.transport.send(request).await.map_err(|e| Outcome::retry(e.0))?;
        self.observe(&r);
        if r.status == 429 {
            let now = self.clock.now_ms();
            return Err(Outcome::Retry {
                reason: "HTTP 429".into(),
                after: Some(until(self.gate.ready_at(), now)),
            });
        }
        if r.status >= 500 {
            return Err(Outcome::retry(format!("HTTP {}: {}", r.status, r.excerpt())));
        }
        Ok(r)
    }

    /// Keeps to the burst window and the daily budget the answer's headers report.
    fn observe(&self, r: &HttpResponse) {
        let now = self.clock.now_ms();
        let reset_ms = r.number("x-ratelimit-reset").map(|s| s.max(1) * 1000);
        if r.number("x-daily-requests-left") == Some(0) {
            self.gate.pause(next_midnight(now, 0), "Pipedrive daily budget spent");
        } else if r.number("x-ratelimit-remaining") == Some(0) || r.status == 429 {
            let wait = r.number("retry-after").map(|s| s * 1000).or(reset_ms).unwrap_or(2_000);
            self.gate.hold(now + wait);
        }
    }

    /// The person ids with this email: cached, or searched and cached.
    async fn persons(&self, email: &str) -> Result<Vec<i64>, Outcome> {
        let key = format!("pipedrive:{}:{email}", self.name);
        if let Ok(Some(cached)) = self.lookups.get(&key).await {
            return Ok(cached.split(',').filter_map(|id| id.parse().ok()).collect());
        }
        let term: String = form_urlencoded::byte_serialize(email.as_bytes()).collect();
        let path = format!("/api/v2/persons/search?term={term}&fields=email&exact_match=true&limit=100");
        let r = self.send(self.request("GET", &path)).await?;
        if r.status != 200 {
            return Err(Outcome::Permanent(format!(
                "person search: HTTP {}: {}",
                r.status,
                r.excerpt()
            )));
        }
        let ids: Vec<i64> = r.value()["data"]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["item"]["id"].as_i64())
            .collect();
        if !ids.is_empty() {
            let text: Vec<String> = ids.iter().map(i64::to_string).collect();
            if let Err(err) = self.lookups.put(&key, &text.join(","), CACHE_SECS).await {
                tracing::warn!(destination = %self.name, error = %err, "person ids not cached");
            }
        }
        Ok(ids)
    }

    fn value(&self, members: &[String]) -> Result<(String, Value), Outcome> {
        match &self.field {
            Field::Text(key) => Ok((key.clone(), json!(members.join(";")))),
            Field::Options(key, options) => {
                let ids: Result<Vec<i64>, String> = members
                    .iter()
                    .map(|m| options.get(m).copied().ok_or_else(|| m.clone()))
                    .collect();
                match ids {
                    Ok(ids) if ids.is_empty() => Ok((key.clone(), Value::Null)),
                    Ok(ids) => Ok((key.clone(), json!(ids))),
                    Err(m) => Err(Outcome::Permanent(format!(
                        "field `{}` has no option `{m}`",
                        self.mapping.field
                    ))),
                }
            }
        }
    }

    async fn write_one(&self, w: &Write) -> Result<Outcome, Outcome> {
        if !w.contact.contains('@') {
            return Ok(Outcome::Skipped("the contact key is not an email".into()));
        }
        let (key, value) = self.value(&w.members)?;
        let persons = self.persons(&w.contact).await?;
        match persons.len() {
            0 => return Ok(Outcome::Skipped("no Pipedrive person with this email".into())),
            n if n > 1 && self.mapping.duplicates == Duplicates::Fail => {
                let ids: Vec<String> = persons.iter().map(i64::to_string).collect();
                return Ok(Outcome::Permanent(format!(
                    "{n} persons have this email: ids {}",
                    ids.join(", ")
                )));
            }
            _ => {}
        }
        for id in persons {
            let body = json!({"custom_fields": {key.clone(): value.clone()}});
            let r = self
                .send(self.request("PATCH", &format!("/api/v2/persons/{id}")).json(&body))
                .await?;
            match r.status {
                200 => {}
                404 | 410 => {
                    let _ = self
                        .lookups
                        .forget(&format!("pipedrive:{}:{}", self.name, w.contact))
                        .await;
                    return Ok(Outcome::retry(format!(
                        "person {id} no longer exists; looked up again next time"
                    )));
                }
                s => return Ok(Outcome::Permanent(format!("person {id}: HTTP {s}: {}", r.excerpt()))),
            }
        }
        Ok(Outcome::Written)
    }
}

impl<T: Transport, K: Lookups> Destination for Pipedrive<T, K> {
    fn name(&self) -> &str {
        &self.name
    }

    fn segments(&self) -> &Segments {
        &self.segments
    }

    fn max_batch(&self) -> usize {
        CONCURRENCY
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Writes run side by side, each a person search (unless cached) and a
    /// PATCH per person with the email: three covers one duplicate.
    fn requests(&self, _writes: &[&Write]) -> u32 {
        3
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        let each = writes
            .iter()
            .map(|w| async move { self.write_one(w).await.unwrap_or_else(|outcome| outcome) });
        futures_util::future::join_all(each).await
    }
}

/// What Pipedrive answers on success, for a dry run: the field exists with an
/// option per segment id in the request, each email is one person.
pub fn simulated(field: &str, segments: &[String]) -> impl Fn(&HttpRequest) -> HttpResponse {
    let field = field.to_string();
    let options: Vec<Value> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i + 1, "label": s}))
        .collect();
    move |request: &HttpRequest| {
        if request.url.contains("/personFields") {
            let data = json!([{"key": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2", "name": field, "field_type": "set", "options": options}]);
            return HttpResponse::json(200, json!({"success": true, "data": data}));
        }
        if request.url.contains("/persons/search") {
            return HttpResponse::json(
                200,
                json!({"success": true, "data": {"items": [{"result_score": 1.0, "item": {"id": 42, "type": "person"}}]}}),
            );
        }
        HttpResponse::json(200, json!({"success": true, "data": {"id": 42}}))
    }
}
