//! `POST /webhooks/mailgun`: Mailgun's signed webhooks (JSON, one event per request).
//!
//! The body is `{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}`.
//! The signature is HMAC-SHA256, keyed with the account's HTTP webhook signing key,
//! over `timestamp + token`; it does NOT cover `event-data`. Anyone holding a fresh
//! signature block (any other receiver of the same account's webhooks) could attach
//! any event data to it, so a second factor is required: HTTP basic auth, from
//! credentials in the webhook URL (`https://user:password@host/webhooks/mailgun`;
//! Mailgun sends them as an `Authorization: Basic` header, as django-anymail's
//! Mailgun guide relies on), checked in constant time against
//! `KAIROS_MAILGUN_BASIC_AUTH`. The check also requires the timestamp to be within
//! the replay window and returns the token as a one-time [`Claim`]: a second request
//! with the same signature block (replayed, or with swapped `event-data`) is refused.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use kairos_event::{Event, EventType};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::shared::{basic_auth_matches, finish, from_float_seconds, strict_json};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{checked, Claim, NormalizeError, Parsed, Policy, Request, Verification, Verified, Webhook};

/// Why a Mailgun request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The body has no readable `signature` block with `timestamp`, `token` and `signature`.
    #[error("body has no readable signature block")]
    Missing,
    /// The signed timestamp is not a unix time.
    #[error("signature timestamp is not an integer")]
    BadTimestamp,
    /// The signed timestamp is outside the replay window.
    #[error("signature timestamp is {0} s away from now, outside the replay window")]
    Stale(i64),
    /// The signature is not 64 hex digits.
    #[error("signature is not hex-encoded HMAC-SHA256")]
    Malformed,
    /// The signature does not verify with the configured key.
    #[error("signature does not verify")]
    Invalid,
    /// The basic-auth credentials (the second factor) are missing or wrong.
    #[error("missing or wrong basic auth (the credentials in the webhook URL)")]
    BasicAuth,
}

/// The `signature` object of a Mailgun webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SignatureBlock {
    /// Unix seconds, as text (Mailgun sends a string; a number is accepted too).
    #[serde(deserialize_with = "text_or_number")]
    pub timestamp: String,
    /// A random 50-character string, unique per request.
    pub token: String,
    /// Hex HMAC-SHA256 of `timestamp + token`.
    pub signature: String,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

/// The shortest replay window for Mailgun: it retries a refused delivery for
/// 8 hours (10 min, 10 min, 15 min, 30 min, 1 h, 2 h, 4 h), and a retry may
/// carry the first delivery's signature block, timestamp and all. A shorter
/// window would refuse every retry of a delivery first answered 503, and the
/// event would be lost. The token's claim is kept as long, so a block is still
/// accepted once.
pub const RETRY_WINDOW_SECS: i64 = 9 * 3600;

#[derive(Deserialize)]
struct Envelope {
    signature: SignatureBlock,
}

/// Verifies a signature block with `key` at `now`; on success returns the token's
/// one-time claim, which expires when the timestamp leaves the replay window.
pub fn verify(key: &[u8], block: &SignatureBlock, now: i64, window_secs: i64) -> Result<Claim, SignatureError> {
    let ts: i64 = block
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(ts) > window_secs.unsigned_abs() {
        return Err(SignatureError::Stale(now.saturating_sub(ts)));
    }
    let expected = decode_hex(block.signature.trim()).ok_or(SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::Invalid)?;
    mac.update(block.timestamp.as_bytes());
    mac.update(block.token.as_bytes());
    mac.verify_slice(&expected).map_err(|_| SignatureError::Invalid)?;
    Ok(Claim {
        covers_body: false,
        key: format!("mailgun:{}", block.token),
        expires_at: ts.saturating_add(window_secs),
    })
}

/// Decodes lowercase or uppercase hex; `None` on an odd length or a non-hex digit.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? * 16 + digit(*lo)?) as u8),
            _ => None,
        })
        .collect()
}

/// The Mailgun route, configured with the HTTP webhook signing key and the
/// basic-auth credentials of its URL.
#[derive(Clone)]
pub struct Mailgun {
    key: Vec<u8>,
    user_password: String,
    window_secs: i64,
}

impl std::fmt::Debug for Mailgun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailgun")
            .field("window_secs", &self.window_secs)
            .finish()
    }
}

impl Mailgun {
    /// Verifies basic auth `user_password` (`user:password`), then the signature
    /// with `signing_key`, accepting timestamps within `window_secs` of now.
    pub fn new(signing_key: &str, user_password: &str, window_secs: i64) -> Mailgun {
        Mailgun {
            key: signing_key.as_bytes().to_vec(),
            user_password: user_password.to_string(),
            window_secs,
        }
    }

    /// Built from `secret` (`KAIROS_MAILGUN_SECRET`: the HTTP webhook signing key)
    /// and `basic_auth` (`KAIROS_MAILGUN_BASIC_AUTH`: the `user:password` of the
    /// webhook URL), both required: the signature alone does not cover the body.
    pub fn build(settings: &Settings) -> Result<Option<Mailgun>, ConfigError> {
        let Some(secret) = &settings.secret else {
            return Ok(None);
        };
        let key = secret.trim();
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                name: Settings::variable("mailgun", "SECRET"),
                reason: "expected the HTTP webhook signing key (one word, no spaces)".into(),
            });
        }
        let auth = settings.basic_auth.as_deref().map(str::trim).unwrap_or_default();
        let usable = auth.len() >= 8
            && auth
                .split_once(':')
                .is_some_and(|(user, pass)| !user.is_empty() && !pass.is_empty());
        if !usable {
            return Err(ConfigError::Invalid {
                name: Settings::variable("mailgun", "BASIC_AUTH"),
                reason: "required with KAIROS_MAILGUN_SECRET: `user:password` (at least 8 characters), \
                         the credentials of the webhook URL https://user:password@<host>/webhooks/mailgun \
                         (Mailgun's signature does not cover the event data; see docs/providers/mailgun.md)"
                    .into(),
            });
        }
        let window = settings.replay_window_secs.max(RETRY_WINDOW_SECS);
        Ok(Some(Mailgun::new(key, auth, window)))
    }

    fn check(&self, req: &Request<'_>, now: i64) -> Result<Verified, SignatureError> {
        if !basic_auth_matches(req.header("authorization"), &self.user_password) {
            return Err(SignatureError::BasicAuth);
        }
        let envelope: Envelope = serde_json::from_slice(req.body).map_err(|_| SignatureError::Missing)?;
        let claim = verify(&self.key, &envelope.signature, now, self.window_secs)?;
        Ok(Verified {
            claims: vec![claim],
            reply: None,
        })
    }
}

impl Webhook for Mailgun {
    fn name(&self) -> &'static str {
        "mailgun"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a> {
        checked(self.check(req, now))
    }
}

/// Mailgun retries every answer but 200 and 406 for 8 hours, and stops on 406
/// ("Not Acceptable": the POST is rejected, no retry):
/// <https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-retries>.
/// A request carries one event, so an unreadable one will never become readable:
/// 406 stops the pointless retries. There is no partial case; 200 if one arises.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 406,
};

/// Parses a Mailgun webhook body: one event in `event-data`.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let body = strict_json(req.body)?;
    let data = body
        .get("event-data")
        .filter(|d| d.is_object())
        .ok_or("missing object field `event-data`")?;
    let id = data.get("id").and_then(Value::as_str).map(str::to_string);
    let mut parsed = Parsed::default();
    parsed.push(0, id, normalize(data));
    Ok(parsed)
}

/// Maps one Mailgun `event-data` object to a canonical event; the error names the field.
pub fn normalize(data: &Value) -> Result<Event, String> {
    let obj = data.as_object().ok_or("`event-data` is not an object")?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let required = |field: &str| {
        text(field)
            .filter(|s| !s.is_empty())
            .ok_or(format!("missing or non-string field `{field}`"))
    };
    let kind = kind_of(obj)?;
    let at: DateTime<Utc> = obj
        .get("timestamp")
        .and_then(Value::as_f64)
        .and_then(from_float_seconds)
        .ok_or("missing or out-of-range numeric field `timestamp`")?;
    let bot = data.pointer("/client-info/bot").and_then(Value::as_str);
    let mut properties: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // `user-variables` is `[]` when empty and an object otherwise: keep only a non-empty object.
    match obj.get("user-variables") {
        Some(Value::Object(vars)) if !vars.is_empty() => {
            properties.insert("user-variables".into(), Value::Object(vars.clone()));
        }
        _ => {}
    }
    let event = Event {
        id: required("id")?,
        contact: required("recipient")?,
        kind,
        name: None,
        at,
        source: "mailgun".into(),
        machine: bot.is_some_and(|b| !b.is_empty()),
        url: text("url"),
        campaign: data
            .pointer("/campaigns/0/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        message_id: data
            .pointer("/message/headers/message-id")
            .and_then(Value::as_str)
            .map(str::to_string),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Fields mapped to canonical fields (or normalized) rather than copied as properties.
const CONSUMED: [&str; 6] = ["id", "event", "recipient", "timestamp", "url", "user-variables"];

/// The canonical type of a Mailgun event; `failed` is split by `severity` and `reason`.
fn kind_of(obj: &Map<String, Value>) -> Result<EventType, String> {
    let event = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or("missing or non-string field `event`")?;
    Ok(match event {
        "accepted" => EventType::EmailSent,
        "rejected" => EventType::EmailDropped,
        "delivered" => EventType::EmailDelivered,
        "opened" => EventType::EmailOpened,
        "clicked" => EventType::EmailClicked,
        "unsubscribed" => EventType::EmailUnsubscribed,
        "complained" => EventType::EmailComplained,
        "failed" => {
            let reason = obj.get("reason").and_then(Value::as_str).unwrap_or_default();
            match obj.get("severity").and_then(Value::as_str) {
                Some("temporary") => EventType::EmailDeferred,
                // `suppress-bounce`, `suppress-unsubscribe`, `suppress-complaint`: never attempted.
                Some("permanent") if reason.starts_with("suppress-") => EventType::EmailDropped,
                Some("permanent") => EventType::EmailBounced,
                _ => return Err("field `severity`: expected `permanent` or `temporary` on a failed event".into()),
            }
        }
        other => return Err(format!("field `event`: unknown Mailgun event `{other}`")),
    })
}

#[cfg(test)]
mod tests;
