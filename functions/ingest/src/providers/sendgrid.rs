//! `POST /webhooks/sendgrid`: SendGrid's signed Event Webhook.
//!
//! The signature is ECDSA P-256 / SHA-256 over the timestamp header followed by
//! the raw body bytes exactly as received; it is checked before the body is
//! parsed, and the timestamp must be within the replay window.

use base64::Engine;
use chrono::DateTime;
use kairos_event::{Event, EventType};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::{json, Map, Value};

use super::shared::{finish, json_items};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{checked, NormalizeError, Parsed, Policy, Request, Verification, Verified, Webhook};

const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// Why a SendGrid request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signature or timestamp header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp header is not a unix time.
    #[error("timestamp header is not an integer")]
    BadTimestamp,
    /// The timestamp is outside the replay window.
    #[error("timestamp is {0} s away from now, outside the replay window")]
    Stale(i64),
    /// The signature is not base64 DER.
    #[error("signature is not base64-encoded DER")]
    Malformed,
    /// The signature does not verify against the configured key.
    #[error("signature does not verify")]
    Invalid,
}

/// Verifies a SendGrid signature over `timestamp || body` and the replay window.
pub fn verify(
    key: &VerifyingKey,
    signature_b64: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(ts) > window_secs.unsigned_abs() {
        return Err(SignatureError::Stale(now.saturating_sub(ts)));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_der(&der).map_err(|_| SignatureError::Malformed)?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.verify(&message, &signature).map_err(|_| SignatureError::Invalid)
}

/// The SendGrid route, configured with its verification key.
#[derive(Debug, Clone)]
pub struct SendGrid {
    key: VerifyingKey,
    window_secs: i64,
}

impl SendGrid {
    /// Verifies with `key`, accepting timestamps within `window_secs` of now.
    pub fn new(key: VerifyingKey, window_secs: i64) -> SendGrid {
        SendGrid { key, window_secs }
    }

    /// Built from `public_key` (`KAIROS_SENDGRID_PUBLIC_KEY`: base64 SPKI DER as the console shows it, or PEM).
    pub fn build(settings: &Settings) -> Result<Option<SendGrid>, ConfigError> {
        let Some(text) = &settings.public_key else {
            return Ok(None);
        };
        Ok(Some(SendGrid {
            key: parse_public_key(text)?,
            window_secs: settings.replay_window_secs,
        }))
    }

    fn check(&self, req: &Request<'_>, now: i64) -> Result<Verified, SignatureError> {
        let header = |name: &'static str| req.header(name).ok_or(SignatureError::MissingHeader(name));
        let signature = header(SIGNATURE_HEADER)?;
        let timestamp = header(TIMESTAMP_HEADER)?;
        verify(&self.key, signature, timestamp, req.body, now, self.window_secs)?;
        Ok(Verified::default())
    }
}

impl Webhook for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a> {
        checked(self.check(req, now))
    }
}

/// SendGrid retries any non-2xx for 24 hours, so a batch with some bad events
/// answers 200 (the good ones are enqueued; resending them would only be deduped,
/// and resending the bad ones can never succeed). An unreadable body answers 400.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses a SendGrid request body: a JSON array of events.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let items = json_items(req.body, false, "expected a JSON array of SendGrid events")?;
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let id = item
            .as_ref()
            .ok()
            .and_then(|i| i.get("sg_event_id"))
            .and_then(Value::as_str);
        parsed.push(
            index,
            id.map(str::to_string),
            item.as_ref().map_err(Clone::clone).and_then(normalize),
        );
    }
    Ok(parsed)
}

/// Parses SendGrid's verification key: base64 SPKI DER (as the console shows it) or PEM.
pub(crate) fn parse_public_key(text: &str) -> Result<VerifyingKey, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: Settings::variable("sendgrid", "PUBLIC_KEY"),
        reason: reason.to_string(),
    };
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|_| invalid("not a P-256 public key in PEM form"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| invalid("expected base64 (SPKI DER) or PEM"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| invalid("not a P-256 public key"))
}

/// Maps one SendGrid event object to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let obj = item.as_object().ok_or("expected an event object")?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let required = |field: &str| {
        text(field)
            .filter(|s| !s.is_empty())
            .ok_or(format!("missing or non-string field `{field}`"))
    };
    let kind_name = required("event")?;
    let kind = kind_of(&kind_name).ok_or(format!("field `event`: unknown SendGrid event `{kind_name}`"))?;
    let timestamp = obj
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or("missing or non-integer field `timestamp`")?;
    let at = DateTime::from_timestamp(timestamp, 0).ok_or("field `timestamp` is out of range")?;
    let mut properties: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if kind == EventType::ConsentChanged {
        properties.insert("status".into(), json!("subscribed"));
    }
    let event = Event {
        id: required("sg_event_id")?,
        contact: required("email")?,
        kind,
        name: None,
        at,
        source: "sendgrid".into(),
        machine: obj.get("sg_machine_open").and_then(Value::as_bool).unwrap_or(false),
        url: text("url"),
        campaign: text("marketing_campaign_name").or_else(|| text("singlesend_name")),
        message_id: text("sg_message_id"),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Fields mapped to canonical fields rather than kept as properties.
const CONSUMED: [&str; 9] = [
    "email",
    "timestamp",
    "event",
    "sg_event_id",
    "sg_message_id",
    "sg_machine_open",
    "url",
    "marketing_campaign_name",
    "singlesend_name",
];

fn kind_of(event: &str) -> Option<EventType> {
    Some(match event {
        "processed" => EventType::EmailSent,
        "delivered" => EventType::EmailDelivered,
        "deferred" => EventType::EmailDeferred,
        "dropped" => EventType::EmailDropped,
        "bounce" => EventType::EmailBounced,
        "open" => EventType::EmailOpened,
        "click" => EventType::EmailClicked,
        "spamreport" => EventType::EmailComplained,
        "unsubscribe" | "group_unsubscribe" => EventType::EmailUnsubscribed,
        "group_resubscribe" => EventType::ConsentChanged,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
