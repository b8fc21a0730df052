//! `POST /webhooks/customerio`: Customer.io reporting webhooks.
//!
//! `X-CIO-Signature` is the hex HMAC-SHA256, keyed with the webhook signing key, of
//! `v0:<X-CIO-Timestamp>:<raw body>` (<https://docs.customer.io/api/webhooks/>); the
//! timestamp must be within the replay window. The body is one event
//! `{event_id, object_type, metric, timestamp, data: {...}}` (an array of such events
//! is accepted too). Only `object_type: email` maps to `email.*` types; `customer`
//! subscription changes map to `consent.changed`; other channels (push, SMS, in-app,
//! webhook, slack) are rejected with a reason.
//!
//! No one-time claim is recorded: a 401 for a legitimate retry would stall Customer.io's
//! whole webhook queue (see [`CustomerIo::policy`]); a replay within the window yields
//! the same `event_id`, which is deduplicated downstream.

use chrono::DateTime;
use hmac::{Hmac, Mac};
use kairos_event::{Event, EventType};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::shared::{finish, json_items};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{checked, NormalizeError, Parsed, Policy, Request, Verification, Verified, Webhook};

const SIGNATURE_HEADER: &str = "x-cio-signature";
const TIMESTAMP_HEADER: &str = "x-cio-timestamp";

/// Why a Customer.io request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `X-CIO-Signature` or `X-CIO-Timestamp` is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp header is not a unix time.
    #[error("timestamp header is not an integer")]
    BadTimestamp,
    /// The timestamp is outside the replay window.
    #[error("timestamp is {0} s away from now, outside the replay window")]
    Stale(i64),
    /// The signature is not hex.
    #[error("signature is not hex")]
    Malformed,
    /// The signature does not verify against the configured key.
    #[error("signature does not verify")]
    Invalid,
}

/// Verifies a Customer.io signature over `v0:<timestamp>:<body>` and the replay window.
pub fn verify(
    key: &[u8],
    signature_hex: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let distance = now.saturating_sub(ts);
    if distance.saturating_abs() > window_secs {
        return Err(SignatureError::Stale(distance));
    }
    let expected = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::Invalid)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Invalid)
}

/// The Customer.io route, configured with its webhook signing key.
#[derive(Clone)]
pub struct CustomerIo {
    key: Vec<u8>,
    window_secs: i64,
}

impl std::fmt::Debug for CustomerIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerIo")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl CustomerIo {
    /// Verifies with signing key `key`, accepting timestamps within `window_secs` of now.
    pub fn new(key: &str, window_secs: i64) -> CustomerIo {
        CustomerIo {
            key: key.as_bytes().to_vec(),
            window_secs,
        }
    }

    /// Built from `secret` (`KAIROS_CUSTOMERIO_SECRET`: the reporting webhook's signing key).
    pub fn build(settings: &Settings) -> Result<Option<CustomerIo>, ConfigError> {
        Ok(settings
            .secret
            .as_deref()
            .map(|key| CustomerIo::new(key.trim(), settings.replay_window_secs)))
    }

    fn check(&self, req: &Request<'_>, now: i64) -> Result<Verified, SignatureError> {
        let header = |name: &'static str| req.header(name).ok_or(SignatureError::MissingHeader(name));
        let signature = header(SIGNATURE_HEADER)?;
        let timestamp = header(TIMESTAMP_HEADER)?;
        verify(&self.key, signature, timestamp, req.body, now, self.window_secs)?;
        Ok(Verified::default())
    }
}

impl Webhook for CustomerIo {
    fn name(&self) -> &'static str {
        "customerio"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a> {
        checked(self.check(req, now))
    }
}

/// Customer.io retries any non-2xx (400 included) for up to seven days and holds
/// back every later webhook call until the failed one succeeds
/// (<https://docs.customer.io/api/webhooks/>, "Timeouts and failures"). A body we
/// cannot use will never become usable, so answering 4xx would only stall the good
/// events behind it: partial and malformed requests both get 200 (the reasons are
/// in the response body and the logs).
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 200,
};

/// Parses a Customer.io reporting webhook body: one event object (or an array of them).
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let items = json_items(req.body, true, "expected a Customer.io event object")?;
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let id = item
            .as_ref()
            .ok()
            .and_then(|i| i.get("event_id"))
            .and_then(Value::as_str);
        parsed.push(
            index,
            id.map(str::to_string),
            item.as_ref().map_err(Clone::clone).and_then(normalize),
        );
    }
    Ok(parsed)
}

/// Maps one Customer.io reporting event to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let obj = item.as_object().ok_or("expected an event object")?;
    let text = |map: &Map<String, Value>, field: &str| {
        map.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let object_type = text(obj, "object_type").ok_or("missing or non-string field `object_type`")?;
    let metric = text(obj, "metric").ok_or("missing or non-string field `metric`")?;
    let (kind, status) = kind_of(&object_type, &metric)?;
    let id = text(obj, "event_id").ok_or("missing or non-string field `event_id`")?;
    let timestamp = obj
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or("missing or non-integer field `timestamp`")?;
    let at = DateTime::from_timestamp(timestamp, 0).ok_or("field `timestamp` is out of range")?;
    let empty = Map::new();
    let data = obj.get("data").and_then(Value::as_object).unwrap_or(&empty);
    let identifiers = data.get("identifiers").and_then(Value::as_object).unwrap_or(&empty);
    let contact = text(data, "recipient")
        .filter(|r| r.contains('@'))
        .or_else(|| text(identifiers, "email"))
        .or_else(|| text(data, "email_address"))
        .ok_or("no email address: expected `data.recipient` or `data.identifiers.email`")?;
    let mut properties: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    properties.insert("object_type".into(), json!(object_type));
    properties.insert("metric".into(), json!(metric));
    if let Some(status) = status {
        properties.insert("status".into(), json!(status));
    }
    let event = Event {
        id,
        contact,
        name: (kind == EventType::Track).then(|| format!("{object_type}.{metric}")),
        kind,
        at,
        source: "customerio".into(),
        machine: false,
        url: text(data, "href"),
        campaign: data.get("campaign_id").and_then(id_text),
        message_id: text(data, "delivery_id"),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// A numeric or string id as text.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` fields mapped to canonical fields, or left out (`content`: the message body
/// when "Body Content" is enabled, too large for an event).
const CONSUMED: [&str; 6] = [
    "recipient",
    "email_address",
    "href",
    "campaign_id",
    "delivery_id",
    "content",
];

/// The canonical type (and consent status) for an object type and metric.
fn kind_of(object_type: &str, metric: &str) -> Result<(EventType, Option<&'static str>), String> {
    let kind = match (object_type, metric) {
        ("email", "sent") => EventType::EmailSent,
        ("email", "delivered") => EventType::EmailDelivered,
        ("email", "attempted") => EventType::EmailDeferred,
        ("email", "bounced") => EventType::EmailBounced,
        ("email", "dropped" | "failed" | "undeliverable") => EventType::EmailDropped,
        ("email", "opened") => EventType::EmailOpened,
        ("email", "clicked") => EventType::EmailClicked,
        ("email", "spammed") => EventType::EmailComplained,
        ("email", "unsubscribed") => EventType::EmailUnsubscribed,
        ("email", "converted") => EventType::Track,
        ("customer", "subscribed") => return Ok((EventType::ConsentChanged, Some("subscribed"))),
        ("customer", "unsubscribed") => return Ok((EventType::ConsentChanged, Some("unsubscribed"))),
        ("email" | "customer", other) => {
            return Err(format!(
                "field `metric`: unknown Customer.io {object_type} metric `{other}`"
            ))
        }
        (other, _) => {
            return Err(format!(
                "field `object_type`: `{other}` events are not email events (deselect them in the reporting webhook)"
            ))
        }
    };
    Ok((kind, None))
}

#[cfg(test)]
mod tests;
