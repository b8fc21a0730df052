//! HubSpot as its API reference describes it:
//! - private app tokens as `Authorization: Bearer` (401 `INVALID_AUTHENTICATION`
//!   otherwise: <https://developers.hubspot.com/docs/guides/apps/authentication/intro-to-auth>);
//! - `POST /crm/v3/objects/contacts/batch/upsert`: 1 to 100 `inputs`, each
//!   `{idProperty, id, properties, objectWriteTraceId}`; results echo the
//!   trace id; per-record errors make the answer 207 with `errors`
//!   (<https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts>);
//!   a multi-select value is option values joined by `;`, each an allowed
//!   option, `""` clearing it; a boolean property takes `true`/`false`;
//! - `PUT /crm/v3/lists/{listId}/memberships/add|remove`: a JSON array of
//!   record ids; answers `recordsIdsAdded` / `recordIdsRemoved` /
//!   `recordIdsMissing` (<https://developers.hubspot.com/docs/api-reference/legacy/crm/lists/memberships/add-to-list>);
//! - limits (<https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details>):
//!   a rolling 10-second window (`X-HubSpot-RateLimit-Max`, `-Remaining`,
//!   `-Interval-Milliseconds` on answers) and a daily limit resetting at
//!   midnight in the account's time zone (`GET /account-info/v3/details`,
//!   `utcOffsetMilliseconds`); over either, 429 with
//!   `{"status":"error","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"|"DAILY",...}`.

use super::{answer, midnight, refuse, serve, Counters, Fault, Faults, Refusal};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use kairos_writeback::{Clock, ManualClock};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A contact: its record id and properties.
pub type Record = (String, Map<String, Value>);

pub const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
const WINDOW_MS: u64 = 10_000;

/// A HubSpot account.
pub struct HubSpot {
    pub options: Vec<String>,
    pub booleans: Vec<String>,
    pub utc_offset_ms: i64,
    pub per_window: usize,
    pub daily_limit: usize,
    pub faults: Faults,
    pub counters: Counters,
    pub clock: Arc<ManualClock>,
    /// Email → (record id, properties).
    pub contacts: Mutex<BTreeMap<String, Record>>,
    /// Email → every `kairos_segments` value written, in order.
    pub history: Mutex<BTreeMap<String, Vec<String>>>,
    /// List id → record ids.
    pub lists: Mutex<BTreeMap<String, BTreeSet<String>>>,
    window: Mutex<VecDeque<u64>>,
    daily: Mutex<(u64, usize)>,
    closed_until: AtomicU64,
    /// When the limit answer that closed the window was given.
    closed_at: AtomicU64,
    next_id: AtomicU64,
}

impl HubSpot {
    pub fn new(
        options: &[&str],
        booleans: &[&str],
        lists: &[&str],
        faults: Faults,
        clock: Arc<ManualClock>,
    ) -> HubSpot {
        HubSpot {
            options: options.iter().map(|s| s.to_string()).collect(),
            booleans: booleans.iter().map(|s| s.to_string()).collect(),
            utc_offset_ms: -5 * 3_600_000,
            per_window: 100,
            daily_limit: usize::MAX,
            faults,
            counters: Counters::default(),
            clock,
            contacts: Mutex::default(),
            history: Mutex::default(),
            lists: Mutex::new(lists.iter().map(|l| (l.to_string(), BTreeSet::new())).collect()),
            window: Mutex::default(),
            daily: Mutex::default(),
            closed_until: AtomicU64::new(0),
            closed_at: AtomicU64::new(0),
            next_id: AtomicU64::new(5001),
        }
    }

    /// Serves it: the base URL.
    pub async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new()
            .route("/account-info/v3/details", get(details))
            .route("/crm/v3/objects/contacts/batch/upsert", post(upsert))
            .route("/crm/v3/lists/{list}/memberships/{action}", put(membership))
            .with_state(self.clone());
        serve(app).await
    }

    /// The `kairos_segments` value of each contact.
    pub fn segments(&self) -> BTreeMap<String, String> {
        let contacts = self.contacts.lock().unwrap();
        contacts
            .iter()
            .map(|(email, (_, p))| (email.clone(), p["kairos_segments"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// Authentication, then the daily and ten-second limits, then injected faults.
    fn admit(&self, headers: &HeaderMap) -> Result<Vec<(&'static str, String)>, Refusal> {
        self.counters.calls.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
            let body = json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"});
            return Err(refuse(401, body, &[]));
        }
        let now = self.clock.now_ms();
        let limited = |policy: &str, message: &str| {
            self.counters.too_many.fetch_add(1, Ordering::SeqCst);
            let body = json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                              "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": policy});
            refuse(429, body, &[])
        };
        let closed = self.closed_until.load(Ordering::SeqCst);
        // A call made at the very instant of the answer was already on its way.
        if now < closed && now > self.closed_at.load(Ordering::SeqCst) {
            self.counters
                .violation(format!("call at {now} after DAILY, before {closed}"));
        }
        if now < closed {
            return Err(limited("DAILY", "You have reached your daily limit."));
        }
        {
            let mut daily = self.daily.lock().unwrap();
            let day = midnight(now, self.utc_offset_ms);
            if daily.0 != day {
                *daily = (day, 0);
            }
            daily.1 += 1;
            if daily.1 > self.daily_limit {
                self.counters.refused.fetch_add(1, Ordering::SeqCst);
                self.closed_until.store(day, Ordering::SeqCst);
                self.closed_at.store(now, Ordering::SeqCst);
                return Err(limited("DAILY", "You have reached your daily limit."));
            }
        }
        let mut window = self.window.lock().unwrap();
        while window.front().is_some_and(|&t| t + WINDOW_MS <= now) {
            window.pop_front();
        }
        if window.len() >= self.per_window {
            return Err(limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
            ));
        }
        window.push_back(now);
        match self.faults.roll() {
            Fault::TooMany => {
                return Err(limited(
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                ))
            }
            Fault::Unavailable => {
                self.counters.unavailable.fetch_add(1, Ordering::SeqCst);
                return Err(refuse(502, json!({"status": "error", "message": "Bad Gateway"}), &[]));
            }
            Fault::None => {}
        }
        Ok(vec![
            ("x-hubspot-ratelimit-max", self.per_window.to_string()),
            (
                "x-hubspot-ratelimit-remaining",
                (self.per_window - window.len()).to_string(),
            ),
            ("x-hubspot-ratelimit-interval-milliseconds", WINDOW_MS.to_string()),
        ])
    }

    /// Why a property value is refused, if it is.
    fn refuse(&self, name: &str, value: &Value) -> Option<String> {
        let Some(text) = value.as_str() else {
            return Some(format!("Property values must be strings: {name}"));
        };
        if name == "kairos_segments" {
            let bad = text
                .split(';')
                .filter(|o| !o.is_empty())
                .find(|o| !self.options.iter().any(|x| x == o));
            return bad.map(|o| format!("{o} was not one of the allowed options: {}", self.options.join(", ")));
        }
        if self.booleans.iter().any(|b| b == name) {
            return (!matches!(text, "true" | "false")).then(|| format!("{text} is not a valid boolean for {name}"));
        }
        Some(format!("Property \"{name}\" does not exist"))
    }
}

fn bad_request(message: &str) -> Response {
    answer(
        400,
        json!({"status": "error", "category": "VALIDATION_ERROR", "message": message}),
        &[],
    )
}

async fn details(State(hs): State<Arc<HubSpot>>, headers: HeaderMap) -> Response {
    if let Err(r) = hs.admit(&headers) {
        return *r;
    }
    answer(
        200,
        json!({"portalId": 2519445, "timeZone": "US/Eastern", "utcOffsetMilliseconds": hs.utc_offset_ms, "utcOffset": "-05:00"}),
        &[],
    )
}

async fn upsert(State(hs): State<Arc<HubSpot>>, headers: HeaderMap, body: String) -> Response {
    let limits = match hs.admit(&headers) {
        Ok(limits) => limits,
        Err(r) => return *r,
    };
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid input JSON: {e}")),
    };
    let Some(inputs) = body["inputs"].as_array().filter(|i| (1..=100).contains(&i.len())) else {
        return bad_request("inputs must be a list of 1 to 100 records");
    };
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let (Some("email"), Some(email), Some(props)) = (
            input["idProperty"].as_str(),
            input["id"].as_str(),
            input["properties"].as_object(),
        ) else {
            return bad_request("each input needs idProperty (a unique property), id and properties");
        };
        let refused = props.iter().find_map(|(k, v)| hs.refuse(k, v));
        let valid = email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        let refused = refused.or_else(|| (!valid).then(|| format!("Email address {email} is invalid")));
        if let Some(message) = refused {
            errors.push(json!({"status": "error", "category": "VALIDATION_ERROR", "message": message, "context": {"ids": [email]}}));
            continue;
        }
        let email = email.to_lowercase();
        let mut contacts = hs.contacts.lock().unwrap();
        let new = !contacts.contains_key(&email);
        let entry = contacts
            .entry(email.clone())
            .or_insert_with(|| (hs.next_id.fetch_add(1, Ordering::SeqCst).to_string(), Map::new()));
        entry.1.extend(props.clone());
        if let Some(v) = props.get("kairos_segments").and_then(Value::as_str) {
            hs.history
                .lock()
                .unwrap()
                .entry(email.clone())
                .or_default()
                .push(v.to_string());
        }
        results.push(json!({"id": entry.0, "new": new, "objectWriteTraceId": input["objectWriteTraceId"], "properties": {"email": email, "hs_object_id": entry.0}}));
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    let mut out = json!({"status": "COMPLETE", "results": results, "startedAt": "2026-11-27T10:00:00Z", "completedAt": "2026-11-27T10:00:01Z"});
    if !errors.is_empty() {
        out["numErrors"] = json!(errors.len());
        out["errors"] = Value::Array(errors);
    }
    answer(status, out, &limits)
}

async fn membership(
    State(hs): State<Arc<HubSpot>>,
    Path((list, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let limits = match hs.admit(&headers) {
        Ok(limits) => limits,
        Err(r) => return *r,
    };
    let Ok(ids) = serde_json::from_str::<Vec<String>>(&body) else {
        return bad_request("the body is a JSON array of record ids (strings)");
    };
    let known: BTreeSet<String> = hs.contacts.lock().unwrap().values().map(|(id, _)| id.clone()).collect();
    let mut lists = hs.lists.lock().unwrap();
    let Some(members) = lists.get_mut(&list) else {
        return answer(
            404,
            json!({"status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("List {list} not found")}),
            &[],
        );
    };
    let (present, missing): (Vec<String>, Vec<String>) = ids.into_iter().partition(|id| known.contains(id));
    let body = match action.as_str() {
        "add" => {
            members.extend(present.iter().cloned());
            json!({"recordIdsMissing": missing, "recordIdsRemoved": [], "recordsIdsAdded": present})
        }
        "remove" => {
            present.iter().for_each(|id| {
                members.remove(id);
            });
            json!({"recordIdsMissing": missing, "recordIdsRemoved": present, "recordsIdsAdded": []})
        }
        _ => return answer(404, json!({"status": "error", "message": "Not found"}), &[]),
    };
    answer(200, body, &limits)
}
