//! `POST /webhooks/brevo`: Brevo's transactional and marketing email webhooks.
//!
//! The body is one JSON event, or an array of them when the webhook is created
//! with `"batched": true`. Brevo does not sign webhooks; it sends the credential
//! configured on the webhook: a bearer token (`"auth": {"type": "bearer", "token"}`,
//! sent as `Authorization: Bearer <token>`) or basic auth from credentials in the
//! URL (`https://user:password@host/...`). Either is compared in constant time
//! with the configured secret.
//!
//! Brevo events carry no event id (`id` is the webhook's id), so the dedupe id
//! is derived from the event name, message id, address, time and link.

use chrono::{DateTime, Utc};
use kairos_event::{Event, EventType};
use serde_json::{Map, Value};

use super::shared::{basic_auth_matches, bearer_matches, credential, derived_id, finish, json_items};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{ready, NormalizeError, Parsed, Policy, Request, Unauthorized, Verification, Verified, Webhook};

/// The Brevo route, configured with its token or `user:password`.
#[derive(Clone)]
pub struct Brevo {
    secret: String,
}

impl std::fmt::Debug for Brevo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Brevo { secret: <redacted> }")
    }
}

impl Brevo {
    /// Accepts `Authorization: Bearer <secret>` or basic auth with `secret` as `user:password`.
    pub fn new(secret: &str) -> Brevo {
        Brevo {
            secret: secret.to_string(),
        }
    }

    /// Built from `secret` (`KAIROS_BREVO_SECRET`: the webhook's bearer token, or `user:password`).
    pub fn build(settings: &Settings) -> Result<Option<Brevo>, ConfigError> {
        let expected = "expected a bearer token or `user:password` of at least 8 characters";
        Ok(credential(settings, "brevo", expected)?.map(Brevo::new))
    }
}

impl Webhook for Brevo {
    fn name(&self) -> &'static str {
        "brevo"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, _now: i64) -> Verification<'a> {
        let header = req.header("authorization");
        let ok = bearer_matches(header, &self.secret) | basic_auth_matches(header, &self.secret);
        ready(match ok {
            true => Ok(Verified::default()),
            false => Err(Unauthorized("missing or wrong Authorization (bearer or basic)".into())),
        })
    }
}

/// Brevo retries only 429 (and unanswered requests); any other 4xx stops the
/// retries and discards the request: <https://developers.brevo.com/docs/retry-mechanism>.
/// An unreadable body gets 400 (not resent). A partial batch gets 200: its good
/// events are enqueued, and 200 is safe whatever Brevo does with other codes
/// (the page's wording about 5xx is ambiguous); the bad items are named in the reply.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses a Brevo webhook body: one event object or an array of them.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let items = json_items(req.body, true, "expected a Brevo event object or an array of them")?;
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let result = item.and_then(|item| normalize(&item));
        let id = result.as_ref().ok().map(|e| e.id.clone());
        parsed.push(index, id, result);
    }
    Ok(parsed)
}

/// Maps one Brevo webhook event to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let obj = item.as_object().ok_or("expected an event object")?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let name = text("event").ok_or("missing or non-string field `event`")?;
    let (kind, machine) = kind_of(&name).ok_or(format!("field `event`: unknown Brevo event `{name}`"))?;
    let at = time_of(obj)?;
    let contact = text("email")
        .filter(|s| !s.is_empty())
        .ok_or("missing or non-string field `email`")?;
    let message_id = text("message-id");
    let url = text("link").or_else(|| text("URL"));
    let id = derived_id(
        "brevo",
        &[
            &name,
            message_id.as_deref().unwrap_or_default(),
            &contact,
            &at.timestamp_millis().to_string(),
            url.as_deref().unwrap_or_default(),
        ],
    );
    let properties: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let event = Event {
        id,
        contact,
        kind,
        name: None,
        at,
        source: "brevo".into(),
        machine,
        url,
        campaign: text("campaign name"),
        message_id,
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Fields mapped to canonical fields rather than kept as properties (`event`
/// stays, as several Brevo names map to one type; `id` is the webhook's id and stays).
const CONSUMED: [&str; 5] = ["email", "message-id", "link", "URL", "campaign name"];

/// The event time: `ts_epoch` (milliseconds) when present, else `ts_event` or `ts`
/// (seconds). `s_epoch` (milliseconds) appears instead of `ts_epoch` in Brevo's
/// proxy-open example and is accepted last.
fn time_of(obj: &Map<String, Value>) -> Result<DateTime<Utc>, String> {
    let int = |field: &str| obj.get(field).and_then(Value::as_i64);
    let at = if let Some(ms) = int("ts_epoch") {
        DateTime::from_timestamp_millis(ms)
    } else if let Some(s) = int("ts_event").or_else(|| int("ts")) {
        DateTime::from_timestamp(s, 0)
    } else if let Some(ms) = int("s_epoch") {
        DateTime::from_timestamp_millis(ms)
    } else {
        return Err("missing integer field `ts_epoch` (or `ts_event`, `ts`)".into());
    };
    at.ok_or("event time is out of range".into())
}

/// The canonical type of a Brevo event name, and whether it is a machine open.
/// Transactional names (`hard_bounce`) and marketing names (`hardBounce`) both map.
fn kind_of(name: &str) -> Option<(EventType, bool)> {
    let kind = match name {
        "request" | "sent" => EventType::EmailSent,
        "delivered" => EventType::EmailDelivered,
        "opened" | "unique_opened" | "first_opening" => EventType::EmailOpened,
        "proxy_open" | "unique_proxy_open" => return Some((EventType::EmailOpened, true)),
        "click" | "clicked" => EventType::EmailClicked,
        "hard_bounce" | "hardBounce" => EventType::EmailBounced,
        "soft_bounce" | "softBounce" | "deferred" => EventType::EmailDeferred,
        "spam" | "complaint" => EventType::EmailComplained,
        "unsubscribed" | "unsubscribe" => EventType::EmailUnsubscribed,
        "blocked" | "invalid_email" | "error" => EventType::EmailDropped,
        _ => return None,
    };
    Some((kind, false))
}

#[cfg(test)]
mod tests;
