//! `POST /webhooks/sparkpost`: SparkPost's event webhooks.
//!
//! The body is a JSON array of `{"msys": {"<class>_event": {"type": ..., ...}}}`
//! (`message_event`, `track_event`, `unsubscribe_event`). SparkPost does not sign
//! batches; the webhook is created with basic auth (`auth_type: "basic"`), checked
//! here in constant time against the configured `user:password`.
//!
//! When a webhook is created or its target changed, SparkPost POSTs a test batch
//! whose items have an empty `msys` and requires HTTP 200; that batch is answered
//! 200 directly (after the credential check).

use chrono::DateTime;
use kairos_event::{Event, EventType};
use serde_json::{json, Map, Value};

use super::shared::{basic_auth_matches, credential, finish, invalid_credential, json_items};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{ready, NormalizeError, Parsed, Policy, Request, Unauthorized, Verification, Verified, Webhook};

/// The SparkPost route, configured with its basic-auth `user:password`.
#[derive(Clone)]
pub struct SparkPost {
    user_password: String,
}

impl std::fmt::Debug for SparkPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SparkPost { user_password: <redacted> }")
    }
}

impl SparkPost {
    /// Accepts basic auth with `user_password` (`user:password`).
    pub fn new(user_password: &str) -> SparkPost {
        SparkPost {
            user_password: user_password.to_string(),
        }
    }

    /// Built from `secret` (`KAIROS_SPARKPOST_SECRET`: the webhook's `user:password`).
    pub fn build(settings: &Settings) -> Result<Option<SparkPost>, ConfigError> {
        let expected = "expected `user:password` (basic auth), at least 8 characters";
        match credential(settings, "sparkpost", expected)? {
            Some(secret) if secret.split_once(':').is_some_and(|(user, _)| !user.is_empty()) => {
                Ok(Some(SparkPost::new(secret)))
            }
            Some(_) => Err(invalid_credential("sparkpost", expected)),
            None => Ok(None),
        }
    }
}

impl Webhook for SparkPost {
    fn name(&self) -> &'static str {
        "sparkpost"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, _now: i64) -> Verification<'a> {
        if !basic_auth_matches(req.header("authorization"), &self.user_password) {
            return ready(Err(Unauthorized("missing or wrong basic auth".into())));
        }
        let reply = is_test_batch(req.body).then(|| (200, json!({"accepted": 0, "rejected": 0})));
        ready(Ok(Verified { claims: vec![], reply }))
    }
}

/// SparkPost retries any batch not answered 200 for 8 hours, then discards it:
/// <https://developers.sparkpost.com/api/webhooks/>. A partial batch gets 200 so
/// its good events are not resent (and its bad ones not retried for nothing).
/// An unreadable body gets 400: it shows as failed in SparkPost's batch status, and
/// the 8 hours of retries let a fixed deployment still take it.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses a SparkPost webhook body: an array of `msys` events.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let items = json_items(req.body, false, "expected a JSON array of SparkPost events")?;
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let item = match item {
            Ok(item) => item,
            Err(duplicate) => {
                parsed.push(index, None, Err(duplicate));
                continue;
            }
        };
        let result = match item.get("msys") {
            // The creation test's empty items carry no event: nothing to accept or reject.
            Some(Value::Object(msys)) if msys.is_empty() => continue,
            _ => normalize(&item),
        };
        let id = item_event(&item)
            .and_then(|(_, e)| e.get("event_id"))
            .and_then(Value::as_str);
        parsed.push(index, id.map(str::to_string), result);
    }
    Ok(parsed)
}

/// True for SparkPost's creation test: a non-empty array whose items all have an empty `msys`.
fn is_test_batch(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get("msys").and_then(Value::as_object).is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// The `(class, fields)` of an item's single `msys` event.
fn item_event(item: &Value) -> Option<(&str, &Map<String, Value>)> {
    let (class, event) = item.get("msys")?.as_object()?.iter().next()?;
    Some((class.as_str(), event.as_object()?))
}

/// Maps one SparkPost batch item (`{"msys": {...}}`) to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let (class, obj) = item_event(item).ok_or("expected {\"msys\": {\"<class>_event\": {...}}}")?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let required = |field: &str| {
        text(field)
            .filter(|s| !s.is_empty())
            .ok_or(format!("missing or non-string field `{field}`"))
    };
    let kind_name = required("type")?;
    let (kind, category) =
        kind_of(&kind_name, obj).ok_or(format!("field `type`: unknown SparkPost event `{class}.{kind_name}`"))??;
    let seconds = match obj.get("timestamp") {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(v) => v.as_i64(),
        None => None,
    };
    let at = seconds
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or("missing or out-of-range unix-seconds field `timestamp`")?;
    let mut properties: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(category) = category {
        properties.insert("bounce_category".into(), json!(category));
    }
    let event = Event {
        id: required("event_id")?,
        contact: required("rcpt_to")?,
        kind,
        name: None,
        at,
        source: "sparkpost".into(),
        // SparkPost's events carry no machine-open flag.
        machine: false,
        url: text("target_link_url"),
        campaign: text("campaign_id").filter(|s| !s.is_empty()),
        message_id: text("message_id"),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Fields mapped to canonical fields rather than kept as properties (`type` stays).
const CONSUMED: [&str; 6] = [
    "event_id",
    "rcpt_to",
    "timestamp",
    "target_link_url",
    "campaign_id",
    "message_id",
];

type Kind = Result<(EventType, Option<&'static str>), String>;

/// The canonical type of a SparkPost event type (and the bounce category for bounces).
fn kind_of(kind: &str, obj: &Map<String, Value>) -> Option<Kind> {
    let plain = |k: EventType| Some(Ok((k, None)));
    match kind {
        "injection" => plain(EventType::EmailSent),
        "delivery" => plain(EventType::EmailDelivered),
        "delay" => plain(EventType::EmailDeferred),
        "bounce" | "out_of_band" => Some(bounce(obj)),
        "policy_rejection" | "generation_failure" | "generation_rejection" => plain(EventType::EmailDropped),
        "spam_complaint" => plain(EventType::EmailComplained),
        "open" | "initial_open" | "amp_open" | "amp_initial_open" => plain(EventType::EmailOpened),
        "click" | "amp_click" => plain(EventType::EmailClicked),
        "list_unsubscribe" | "link_unsubscribe" => plain(EventType::EmailUnsubscribed),
        _ => None,
    }
}

/// A bounce by its `bounce_class` (SparkPost's bounce classification codes): hard
/// classes bounce the address; admin ones mean SparkPost did not send; soft, block
/// and undetermined ones say nothing final about the address and are deferred.
fn bounce(obj: &Map<String, Value>) -> Kind {
    let class = match obj.get("bounce_class") {
        Some(Value::String(s)) => s.trim().parse::<u32>().ok(),
        Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()),
        None => None,
    }
    .ok_or("missing or non-numeric field `bounce_class`")?;
    Ok(match class {
        10 | 30 | 90 => (EventType::EmailBounced, Some("hard")),
        25 | 26 => (EventType::EmailDropped, Some("admin")),
        50..=59 => (EventType::EmailDeferred, Some("block")),
        1 => (EventType::EmailDeferred, Some("undetermined")),
        _ => (EventType::EmailDeferred, Some("soft")),
    })
}

#[cfg(test)]
mod tests;
