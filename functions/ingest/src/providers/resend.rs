//! `POST /webhooks/resend`: Resend's webhooks, signed by Svix (Standard Webhooks).
//!
//! Headers `svix-id`, `svix-timestamp`, `svix-signature` (or the Standard Webhooks
//! names `webhook-id`, `webhook-timestamp`, `webhook-signature`). The signed content is
//! `{id}.{timestamp}.{raw body}`, HMAC-SHA256 keyed with the base64-decoded part of the
//! `whsec_...` secret, base64-encoded. The signature header is a space-separated list
//! of `v1,<signature>` entries (several while a secret is being rotated): one match is
//! enough; other versions are ignored
//! (<https://docs.svix.com/receiving/verifying-payloads/how-manual>).
//! The timestamp must be within the replay window, and the message id is a one-time
//! claim (`resend:<id>`).
//!
//! The body is one event `{type, created_at, data: {email_id, to: [...], ...}}`; each
//! recipient in `data.to` becomes one canonical event, with id `<svix-id>:<address>`.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use kairos_event::{Event, EventType};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::shared::{finish, strict_json};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{checked, Claim, NormalizeError, Parsed, Policy, Request, Verification, Verified, Webhook};

/// Header names: Svix's, then the Standard Webhooks ones.
const HEADER_SETS: [[&str; 3]; 2] = [
    ["svix-id", "svix-timestamp", "svix-signature"],
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
];

/// Why a Resend (Svix) request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The id, timestamp or signature header is absent.
    #[error("missing svix-id/svix-timestamp/svix-signature (or webhook-*) headers")]
    MissingHeader,
    /// The timestamp header is not a unix time.
    #[error("timestamp header is not an integer")]
    BadTimestamp,
    /// The timestamp is outside the replay window.
    #[error("timestamp is {0} s away from now, outside the replay window")]
    Stale(i64),
    /// No `v1,` entry matches.
    #[error("no v1 signature verifies")]
    Invalid,
}

/// The three Svix headers of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvixHeaders<'a> {
    /// The message id (the same on every retry of one message).
    pub id: &'a str,
    /// Unix seconds when this attempt was signed.
    pub timestamp: &'a str,
    /// Space-separated `v1,<base64>` entries.
    pub signature: &'a str,
}

impl<'a> SvixHeaders<'a> {
    /// Reads the `svix-*` headers, or else the `webhook-*` ones.
    pub fn from_request(req: &Request<'a>) -> Option<SvixHeaders<'a>> {
        HEADER_SETS.iter().find_map(|[id, ts, sig]| {
            Some(SvixHeaders {
                id: req.headers.get(*id)?.to_str().ok()?,
                timestamp: req.headers.get(*ts)?.to_str().ok()?,
                signature: req.headers.get(*sig)?.to_str().ok()?,
            })
        })
    }
}

/// Decodes a `whsec_<base64>` secret (the prefix is optional) into the HMAC key.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let secret = secret.trim();
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|k| !k.is_empty())
}

/// Verifies the Svix signature and the replay window; returns the signed timestamp.
pub fn verify(
    key: &[u8],
    headers: &SvixHeaders<'_>,
    body: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<i64, SignatureError> {
    let ts: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let distance = now.saturating_sub(ts);
    if distance.saturating_abs() > window_secs {
        return Err(SignatureError::Stale(distance));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::Invalid)?;
    mac.update(headers.id.as_bytes());
    mac.update(b".");
    mac.update(headers.timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if matches {
        Ok(ts)
    } else {
        Err(SignatureError::Invalid)
    }
}

/// The Resend route, configured with its signing secret.
#[derive(Clone)]
pub struct Resend {
    key: Vec<u8>,
    window_secs: i64,
}

impl std::fmt::Debug for Resend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resend")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl Resend {
    /// Verifies with the decoded signing key, accepting timestamps within `window_secs` of now.
    pub fn new(key: Vec<u8>, window_secs: i64) -> Resend {
        Resend { key, window_secs }
    }

    /// Built from `secret` (`KAIROS_RESEND_SECRET`: the endpoint's `whsec_...` signing secret).
    pub fn build(settings: &Settings) -> Result<Option<Resend>, ConfigError> {
        let Some(secret) = &settings.secret else {
            return Ok(None);
        };
        let key = decode_secret(secret).ok_or(ConfigError::Invalid {
            name: Settings::variable("resend", "SECRET"),
            reason: "expected the signing secret as shown by Resend: `whsec_` followed by base64".into(),
        })?;
        Ok(Some(Resend::new(key, settings.replay_window_secs)))
    }

    fn check(&self, req: &Request<'_>, now: i64) -> Result<Verified, SignatureError> {
        let headers = SvixHeaders::from_request(req).ok_or(SignatureError::MissingHeader)?;
        let ts = verify(&self.key, &headers, req.body, now, self.window_secs)?;
        Ok(Verified {
            claims: vec![Claim {
                covers_body: true,
                key: format!("resend:{}", headers.id),
                expires_at: ts.saturating_add(self.window_secs),
            }],
            reply: None,
        })
    }
}

impl Webhook for Resend {
    fn name(&self) -> &'static str {
        "resend"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a> {
        checked(self.check(req, now))
    }
}

/// Svix retries every non-2xx answer on a schedule over about 28 hours
/// (<https://resend.com/docs/webhooks/retries-and-replays>): a message with some
/// bad recipients gets 200 so its good ones are not resent. An unusable message
/// gets 400; its retries (with the same svix-id) are acknowledged as repeats.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses a Resend webhook body: one event, one canonical event per recipient (ids from `svix-id`).
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let message_id = SvixHeaders::from_request(req)
        .map(|h| h.id)
        .ok_or("missing svix-id header")?;
    let body = strict_json(req.body)?;
    normalize(&body, message_id)
}

/// Maps one Resend event to canonical events, one per recipient. `message_id` is the
/// `svix-id` header. Kinds that are not about a recipient's email (`contact.*`,
/// `domain.*`, `email.received`, `email.scheduled`, `email.queued`) give no events.
pub fn normalize(body: &Value, message_id: &str) -> Result<Parsed, NormalizeError> {
    let obj = body.as_object().ok_or("expected a JSON object")?;
    let kind_name = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or("missing or non-string field `type`")?;
    let mut parsed = Parsed::default();
    if is_skipped(kind_name) {
        return Ok(parsed);
    }
    let kind = kind_of(kind_name).ok_or(format!("field `type`: unknown Resend event `{kind_name}`"))?;
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .ok_or("missing or non-object field `data`")?;
    let at = obj
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or("missing or non-RFC 3339 field `created_at`")?;
    let recipients = match data.get("to") {
        Some(Value::Array(to)) => to.clone(),
        Some(Value::String(to)) => vec![Value::String(to.clone())],
        _ => return Err("missing field `data.to` (a list of recipients)".into()),
    };
    let template = Template::new(kind, at, data, message_id);
    for (index, recipient) in recipients.iter().enumerate() {
        let address = recipient.as_str().map(address_of);
        parsed.push(
            index,
            address.map(|a| format!("{message_id}:{a}")),
            template.event(address),
        );
    }
    Ok(parsed)
}

/// What every recipient's event of one Resend message shares.
struct Template<'a> {
    kind: EventType,
    at: DateTime<Utc>,
    data: &'a Map<String, Value>,
    message_id: &'a str,
}

impl<'a> Template<'a> {
    fn new(kind: EventType, at: DateTime<Utc>, data: &'a Map<String, Value>, message_id: &'a str) -> Template<'a> {
        Template {
            kind,
            at,
            data,
            message_id,
        }
    }

    fn event(&self, address: Option<&str>) -> Result<Event, String> {
        let address = address
            .filter(|a| a.contains('@'))
            .ok_or("field `data.to`: recipient is not an email address")?;
        let text = |field: &str| self.data.get(field).and_then(Value::as_str).map(str::to_string);
        let click = self.data.get("click").and_then(Value::as_object);
        let properties: Map<String, Value> = self
            .data
            .iter()
            .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let event = Event {
            id: format!("{}:{}", self.message_id, address.to_lowercase()),
            contact: address.to_string(),
            kind: self.kind,
            name: None,
            at: self.at,
            source: "resend".into(),
            machine: false,
            url: click
                .and_then(|c| c.get("link"))
                .and_then(Value::as_str)
                .map(str::to_string),
            campaign: text("broadcast_id"),
            message_id: text("email_id"),
            properties,
            traits: Map::new(),
        };
        finish(event)
    }
}

/// The address in `Name <address>` or a bare address.
fn address_of(recipient: &str) -> &str {
    let recipient = recipient.trim();
    match (recipient.rfind('<'), recipient.ends_with('>')) {
        (Some(open), true) => recipient.get(open + 1..recipient.len() - 1).unwrap_or("").trim(),
        _ => recipient,
    }
}

/// `data` fields mapped to canonical fields rather than kept as properties.
const CONSUMED: [&str; 3] = ["to", "email_id", "broadcast_id"];

fn is_skipped(kind: &str) -> bool {
    kind.starts_with("contact.")
        || kind.starts_with("domain.")
        || matches!(kind, "email.received" | "email.scheduled" | "email.queued")
}

fn kind_of(kind: &str) -> Option<EventType> {
    Some(match kind {
        "email.sent" => EventType::EmailSent,
        "email.delivered" => EventType::EmailDelivered,
        "email.delivery_delayed" => EventType::EmailDeferred,
        "email.bounced" => EventType::EmailBounced,
        "email.complained" => EventType::EmailComplained,
        "email.opened" => EventType::EmailOpened,
        "email.clicked" => EventType::EmailClicked,
        "email.failed" | "email.suppressed" => EventType::EmailDropped,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
