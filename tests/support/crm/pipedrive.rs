//! Pipedrive as its API reference describes it:
//! - the API token in the `x-api-token` header (401 otherwise);
//! - `GET /api/v1/personFields`: `data[]` with `key` (a 40-character hash
//!   that differs per account), `name`, `field_type` and `options[{id,label}]`
//!   (<https://developers.pipedrive.com/docs/api/v1/PersonFields>);
//! - `GET /api/v2/persons/search?term=&fields=email&exact_match=true`:
//!   `data.items[].item` persons whose email matches exactly, case-insensitively
//!   (<https://developers.pipedrive.com/docs/api/v1/Persons#searchPersons>);
//! - `PATCH /api/v2/persons/{id}` with `{"custom_fields": {<key>: [option ids] | null}}`;
//!   404 for a person that does not exist
//!   (<https://developers.pipedrive.com/docs/api/v1/Persons#updatePerson>);
//! - limits (<https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>):
//!   a burst window (`x-ratelimit-limit`, `-remaining`, `-reset` in seconds)
//!   and a daily budget (`x-daily-requests-left`) that resets at midnight
//!   UTC; 429 when either is spent.

use super::{answer, midnight, refuse, serve, Counters, Fault, Faults, Refusal};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, patch};
use kairos_writeback::{Clock, ManualClock};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4";
pub const FIELD_KEY: &str = "8f4a1e2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";
const BURST_MS: u64 = 2_000;

/// A Pipedrive company.
pub struct Pipedrive {
    pub options: Vec<String>,
    pub burst: usize,
    pub daily_budget: usize,
    pub faults: Faults,
    pub counters: Counters,
    pub clock: Arc<ManualClock>,
    /// Person id → email.
    pub persons: Mutex<BTreeMap<i64, String>>,
    /// Person id → every field value written (option ids).
    pub history: Mutex<BTreeMap<i64, Vec<Vec<i64>>>>,
    burst_window: Mutex<(u64, usize)>,
    daily: Mutex<(u64, usize)>,
    closed_until: AtomicU64,
    /// When the limit answer that closed the window was given.
    closed_at: AtomicU64,
}

impl Pipedrive {
    pub fn new(options: &[&str], faults: Faults, clock: Arc<ManualClock>) -> Pipedrive {
        Pipedrive {
            options: options.iter().map(|s| s.to_string()).collect(),
            burst: 80,
            daily_budget: usize::MAX,
            faults,
            counters: Counters::default(),
            clock,
            persons: Mutex::default(),
            history: Mutex::default(),
            burst_window: Mutex::default(),
            daily: Mutex::default(),
            closed_until: AtomicU64::new(0),
            closed_at: AtomicU64::new(0),
        }
    }

    pub async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new()
            .route("/api/v1/personFields", get(fields))
            .route("/api/v2/persons/search", get(search))
            .route("/api/v2/persons/{id}", patch(update))
            .with_state(self.clone());
        serve(app).await
    }

    /// An option's id: its 1-based position.
    pub fn option_id(&self, label: &str) -> i64 {
        self.options.iter().position(|o| o == label).map_or(0, |i| i as i64 + 1)
    }

    /// The last value written per person, as option labels joined by `;`.
    pub fn segments(&self) -> BTreeMap<i64, String> {
        let history = self.history.lock().unwrap();
        history
            .iter()
            .map(|(id, v)| (*id, self.labels(v.last().map_or(&[][..], Vec::as_slice))))
            .collect()
    }

    pub fn labels(&self, ids: &[i64]) -> String {
        let labels: Vec<&str> = ids
            .iter()
            .filter_map(|&i| self.options.get(i as usize - 1))
            .map(String::as_str)
            .collect();
        labels.join(";")
    }

    /// Token, the daily budget and the burst window, then injected faults:
    /// the rate headers to send.
    fn admit(&self, headers: &HeaderMap) -> Result<Vec<(&'static str, String)>, Refusal> {
        self.counters.calls.fetch_add(1, Ordering::SeqCst);
        if headers.get("x-api-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return Err(refuse(
                401,
                json!({"success": false, "error": "unauthorized access", "errorCode": 401}),
                &[],
            ));
        }
        let now = self.clock.now_ms();
        let closed = self.closed_until.load(Ordering::SeqCst);
        let rate = |remaining: usize, reset_ms: u64, daily_left: usize| {
            vec![
                ("x-ratelimit-limit", self.burst.to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-reset", reset_ms.div_ceil(1000).max(1).to_string()),
                ("x-daily-requests-left", daily_left.to_string()),
            ]
        };
        let too_many = |headers: Vec<(&'static str, String)>| {
            self.counters.too_many.fetch_add(1, Ordering::SeqCst);
            refuse(
                429,
                json!({"success": false, "error": "Request over limit", "errorCode": 429}),
                &headers,
            )
        };
        if now < closed {
            // A call made at the very instant of the answer was already on its way.
            if now > self.closed_at.load(Ordering::SeqCst) {
                self.counters.violation(format!(
                    "call at {now} after the daily budget was spent, before {closed}"
                ));
            }
            return Err(too_many(rate(0, closed - now, 0)));
        }
        let daily_left = {
            let mut daily = self.daily.lock().unwrap();
            let day = midnight(now, 0);
            if daily.0 != day {
                *daily = (day, 0);
            }
            daily.1 += 1;
            if daily.1 > self.daily_budget {
                self.counters.refused.fetch_add(1, Ordering::SeqCst);
                self.closed_until.store(day, Ordering::SeqCst);
                self.closed_at.store(now, Ordering::SeqCst);
                return Err(too_many(rate(0, day - now, 0)));
            }
            self.daily_budget.saturating_sub(daily.1).min(1_000_000)
        };
        let mut window = self.burst_window.lock().unwrap();
        if now >= window.0 + BURST_MS {
            *window = (now, 0);
        }
        let reset = window.0 + BURST_MS - now;
        if window.1 >= self.burst {
            return Err(too_many(rate(0, reset, daily_left)));
        }
        window.1 += 1;
        let remaining = self.burst - window.1;
        match self.faults.roll() {
            Fault::TooMany => Err(too_many(rate(0, reset, daily_left))),
            Fault::Unavailable => {
                self.counters.unavailable.fetch_add(1, Ordering::SeqCst);
                Err(refuse(
                    503,
                    json!({"success": false, "error": "Service unavailable"}),
                    &[],
                ))
            }
            Fault::None => Ok(rate(remaining, reset, daily_left)),
        }
    }
}

async fn fields(State(pd): State<Arc<Pipedrive>>, headers: HeaderMap) -> Response {
    let rate = match pd.admit(&headers) {
        Ok(rate) => rate,
        Err(r) => return *r,
    };
    let options: Vec<Value> = pd
        .options
        .iter()
        .map(|o| json!({"id": pd.option_id(o), "label": o}))
        .collect();
    let data = json!([
        {"id": 9001, "key": "email", "name": "Email", "field_type": "varchar"},
        {"id": 9044, "key": FIELD_KEY, "name": "Kairos segments", "field_type": "set", "options": options}
    ]);
    answer(200, json!({"success": true, "data": data}), &rate)
}

async fn search(
    State(pd): State<Arc<Pipedrive>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let rate = match pd.admit(&headers) {
        Ok(rate) => rate,
        Err(r) => return *r,
    };
    let term = q.get("term").cloned().unwrap_or_default();
    if q.get("fields").map(String::as_str) != Some("email")
        || q.get("exact_match").map(String::as_str) != Some("true")
        || term.is_empty()
    {
        return answer(
            400,
            json!({"success": false, "error": "term, fields=email and exact_match=true expected here"}),
            &rate,
        );
    }
    let persons = pd.persons.lock().unwrap();
    let items: Vec<Value> = persons
        .iter()
        .filter(|(_, email)| email.eq_ignore_ascii_case(&term))
        .map(|(id, email)| json!({"result_score": 1.0, "item": {"id": id, "type": "person", "name": email, "emails": [email]}}))
        .collect();
    answer(
        200,
        json!({"success": true, "data": {"items": items}, "additional_data": {"next_cursor": null}}),
        &rate,
    )
}

async fn update(State(pd): State<Arc<Pipedrive>>, headers: HeaderMap, Path(id): Path<i64>, body: String) -> Response {
    let rate = match pd.admit(&headers) {
        Ok(rate) => rate,
        Err(r) => return *r,
    };
    if !pd.persons.lock().unwrap().contains_key(&id) {
        return answer(
            404,
            json!({"success": false, "error": "Person not found", "errorCode": 404}),
            &rate,
        );
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let Some(fields) = body["custom_fields"].as_object().filter(|f| f.len() == 1) else {
        return answer(
            400,
            json!({"success": false, "error": "custom_fields: an object of field keys"}),
            &rate,
        );
    };
    let value = match fields.get(FIELD_KEY) {
        Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids))
            if ids
                .iter()
                .all(|i| i.as_i64().is_some_and(|i| i >= 1 && i as usize <= pd.options.len())) =>
        {
            ids.iter().filter_map(Value::as_i64).collect()
        }
        _ => {
            return answer(
                400,
                json!({"success": false, "error": "custom field value must be option ids of the field"}),
                &rate,
            )
        }
    };
    pd.history.lock().unwrap().entry(id).or_default().push(value);
    answer(200, json!({"success": true, "data": {"id": id}}), &rate)
}
