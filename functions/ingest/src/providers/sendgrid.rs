//! `POST /webhooks/sendgrid`: SendGrid's signed Event Webhook.
//!
//! The signature is ECDSA P-256 / SHA-256 over the timestamp header followed by
//! the raw body bytes exactly as received; it is checked before the body is
//! parsed, and the timestamp must be within the replay window.

use base64::Engine;
use chrono::DateTime;
use kairos_event::{Event, EventType};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde_json::{json, Map, Value};
use x509_cert::der::asn1::{SequenceOf, UintRef};
use x509_cert::der::{pem, Decode};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

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

/// SendGrid's verification key: a P-256 point in uncompressed SEC1 form
/// (`04 || x || y`), checked with `ring` (already in the functions through
/// reqwest's TLS stack, several times faster than the pure-Rust `p256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(Vec<u8>);

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, the named curve SendGrid signs with (RFC 5480).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

impl PublicKey {
    /// An uncompressed SEC1 point (65 bytes, first `04`); whether it is on the
    /// curve is checked by each verification, which refuses a point that is not.
    pub fn from_sec1(point: &[u8]) -> Result<PublicKey, &'static str> {
        if point.len() != 65 || point[0] != 4 {
            return Err("not an uncompressed P-256 point");
        }
        Ok(PublicKey(point.to_vec()))
    }

    /// A DER SubjectPublicKeyInfo naming id-ecPublicKey on P-256.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, &'static str> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| "not a DER SubjectPublicKeyInfo")?;
        if spki.algorithm.oid != EC_PUBLIC_KEY || spki.algorithm.parameters_oid().ok() != Some(P256) {
            return Err("not a P-256 public key");
        }
        let point = spki.subject_public_key.as_bytes().ok_or("not a P-256 public key")?;
        PublicKey::from_sec1(point)
    }

    /// Whether `signature` (ASN.1 DER) signs `message` with ECDSA P-256 / SHA-256.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// Verifies a SendGrid signature over `timestamp || body` and the replay window.
pub fn verify(
    key: &PublicKey,
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
    if !is_ecdsa_der(&der) {
        return Err(SignatureError::Malformed);
    }
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    if key.verifies(&message, &der) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// Whether `der` is an ECDSA signature's DER form, `SEQUENCE { r INTEGER, s INTEGER }`.
fn is_ecdsa_der(der: &[u8]) -> bool {
    SequenceOf::<UintRef<'_>, 2>::from_der(der).is_ok_and(|pair| pair.len() == 2)
}

/// The SendGrid route, configured with its verification key.
#[derive(Debug, Clone)]
pub struct SendGrid {
    key: PublicKey,
    window_secs: i64,
}

impl SendGrid {
    /// Verifies with `key`, accepting timestamps within `window_secs` of now.
    pub fn new(key: PublicKey, window_secs: i64) -> SendGrid {
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
pub(crate) fn parse_public_key(text: &str) -> Result<PublicKey, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: Settings::variable("sendgrid", "PUBLIC_KEY"),
        reason: reason.to_string(),
    };
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let (label, der) = pem::decode_vec(text.as_bytes()).map_err(|_| invalid("not a PEM document"))?;
        if label != "PUBLIC KEY" {
            return Err(invalid("PEM is not a PUBLIC KEY"));
        }
        return PublicKey::from_spki_der(&der).map_err(|_| invalid("not a P-256 public key in PEM form"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| invalid("expected base64 (SPKI DER) or PEM"))?;
    PublicKey::from_spki_der(&der).map_err(|_| invalid("not a P-256 public key"))
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
    // A block (`type: blocked`) is a temporary refusal: it must not mark the address bounced.
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some("blocked") if kind == EventType::EmailBounced => EventType::EmailDeferred,
        _ => kind,
    };
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
