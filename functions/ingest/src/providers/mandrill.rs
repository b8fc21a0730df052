//! `POST /webhooks/mandrill`: Mailchimp Transactional (Mandrill) message webhooks.
//!
//! The body is `application/x-www-form-urlencoded` with one parameter,
//! `mandrill_events`: a JSON array of up to 1000 events. `X-Mandrill-Signature` is
//! base64(HMAC-SHA1(webhook key, URL + each POST parameter sorted by name as
//! `name + value`)), where the URL is the one configured in Mandrill, byte for byte
//! (<https://mandrill.zendesk.com/hc/en-us/articles/360039232513-How-to-Authenticate-Webhook-Requests>).
//! Mandrill signs no timestamp and no nonce, so there is no replay window: a replayed
//! batch yields the same event ids and is deduplicated downstream.
//!
//! Mandrill checks a new webhook URL with a `HEAD` request, which the generic route
//! answers with 200. Sync events (`type: blacklist|whitelist`, no `event`) and
//! `inbound` messages are not contact behaviour: they are skipped, neither enqueued
//! nor reported as rejected.

use base64::Engine;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use kairos_event::{Event, EventType};
use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::shared::{finish, json_items};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{checked, NormalizeError, Parsed, Policy, Request, Verification, Verified, Webhook};

const SIGNATURE_HEADER: &str = "x-mandrill-signature";
/// The form parameter that carries the JSON array of events.
pub const EVENTS_PARAM: &str = "mandrill_events";

/// Why a Mandrill request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `X-Mandrill-Signature` is absent.
    #[error("missing header X-Mandrill-Signature")]
    MissingHeader,
    /// The signature is not base64 of a 20-byte SHA-1 MAC.
    #[error("signature is not base64")]
    Malformed,
    /// The signature does not match the configured key and URL.
    #[error("signature does not verify (check KAIROS_MANDRILL_URL matches the URL configured in Mandrill exactly)")]
    Invalid,
}

/// The bytes Mandrill signs: the URL, then each parameter (sorted by name) as name + value.
pub fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut data = url.as_bytes().to_vec();
    for (name, value) in sorted {
        data.extend_from_slice(name.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

/// The decoded form parameters of a urlencoded body, in order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Verifies `X-Mandrill-Signature` (base64) for `url` and the body's form parameters.
pub fn verify(key: &[u8], url: &str, body: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(key).map_err(|_| SignatureError::Invalid)?;
    mac.update(&signed_data(url, &form_params(body)));
    mac.verify_slice(&expected).map_err(|_| SignatureError::Invalid)
}

/// The Mandrill route, configured with its webhook key and the URL Mandrill posts to.
#[derive(Clone)]
pub struct Mandrill {
    key: Vec<u8>,
    url: String,
}

impl std::fmt::Debug for Mandrill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mandrill")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Mandrill {
    /// Verifies with webhook key `key` for webhook URL `url` (exactly as configured in Mandrill).
    pub fn new(key: &str, url: &str) -> Mandrill {
        Mandrill {
            key: key.as_bytes().to_vec(),
            url: url.to_string(),
        }
    }

    /// Built from `secret` (`KAIROS_MANDRILL_SECRET`, the webhook key) and `url`
    /// (`KAIROS_MANDRILL_URL`, required with the key because Mandrill signs it).
    pub fn build(settings: &Settings) -> Result<Option<Mandrill>, ConfigError> {
        let Some(key) = settings.secret.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let url = settings.url.as_deref().map(str::trim).unwrap_or_default();
        if url.is_empty() {
            return Err(ConfigError::Invalid {
                name: Settings::variable("mandrill", "URL"),
                reason: "required when KAIROS_MANDRILL_SECRET is set: the webhook URL exactly as configured in \
                         Mandrill (it is part of the signature)"
                    .into(),
            });
        }
        Ok(Some(Mandrill::new(key, url)))
    }

    fn check(&self, req: &Request<'_>) -> Result<Verified, SignatureError> {
        let signature = req.header(SIGNATURE_HEADER).ok_or(SignatureError::MissingHeader)?;
        verify(&self.key, &self.url, req.body, signature)?;
        Ok(Verified::default())
    }
}

impl Webhook for Mandrill {
    fn name(&self) -> &'static str {
        "mandrill"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, _now: i64) -> Verification<'a> {
        checked(self.check(req))
    }
}

/// The largest Mandrill body accepted (4 MiB): Mandrill posts up to 1,000
/// events a request, form-encoded, about 2 KB each once encoded (opens and
/// clicks carry the whole message), and retries a refused batch whole.
/// Base64-encoded by API Gateway it stays under Lambda's 6 MB request limit.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Mandrill retries a batch that gets a non-2xx answer
/// (<https://mandrill.zendesk.com/hc/en-us/articles/205583277>), so a batch with
/// some bad events must get 200 or its good events would be resent. A batch with
/// nothing usable gets 400: its retries resend nothing good.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses a Mandrill webhook body: form-encoded `mandrill_events`, a JSON array.
/// A form parameter given twice refuses the body, and a key given twice refuses its event.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let params = form_params(req.body);
    let mut names = std::collections::HashSet::with_capacity(params.len());
    if let Some((name, _)) = params.iter().find(|(name, _)| !names.insert(name.as_str())) {
        return Err(format!("form parameter `{name}` is given twice: a parameter may be given only once").into());
    }
    let json = params
        .iter()
        .find(|(k, _)| k == EVENTS_PARAM)
        .map(|(_, v)| v)
        .ok_or("missing form parameter `mandrill_events`")?;
    let items = json_items(json.as_bytes(), false, "`mandrill_events` is not a JSON array")
        .map_err(|e| e.replace("body is not JSON", "`mandrill_events` is not JSON"))?;
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let item = match item {
            Ok(item) if is_skipped(&item) => continue,
            Ok(item) => item,
            Err(duplicate) => {
                parsed.push(index, None, Err(duplicate));
                continue;
            }
        };
        let id = item.get("_id").and_then(Value::as_str).map(str::to_string);
        parsed.push(index, id, normalize(&item));
    }
    Ok(parsed)
}

/// Sync events (`type`, no `event`) and inbound messages: not contact behaviour.
fn is_skipped(item: &Value) -> bool {
    match item.get("event") {
        None => item.get("type").is_some(),
        Some(event) => event.as_str() == Some("inbound"),
    }
}

/// Maps one Mandrill message event to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let obj = item.as_object().ok_or("expected an event object")?;
    let msg = obj
        .get("msg")
        .and_then(Value::as_object)
        .ok_or("missing or non-object field `msg`")?;
    let text = |map: &Map<String, Value>, field: &str| map.get(field).and_then(Value::as_str).map(str::to_string);
    let kind_name = text(obj, "event").ok_or("missing or non-string field `event`")?;
    let kind = kind_of(&kind_name).ok_or(format!("field `event`: unknown Mandrill event `{kind_name}`"))?;
    let message_id = text(obj, "_id")
        .or_else(|| text(msg, "_id"))
        .filter(|s| !s.is_empty())
        .ok_or("missing or non-string field `_id`")?;
    let ts = obj
        .get("ts")
        .and_then(Value::as_i64)
        .ok_or("missing or non-integer field `ts`")?;
    let at = DateTime::from_timestamp(ts, 0).ok_or("field `ts` is out of range")?;
    let contact = text(msg, "email")
        .filter(|s| !s.is_empty())
        .ok_or("missing or non-string field `msg.email`")?;
    let url = text(obj, "url");
    let mut properties = kept(obj, &["event", "_id", "ts", "url", "msg"]);
    for field in MSG_KEPT {
        if let Some(value) = msg.get(field) {
            properties.insert(field.to_string(), value.clone());
        }
    }
    match kind_name.as_str() {
        "hard_bounce" => properties.insert("bounce_type".into(), json!("hard")),
        "soft_bounce" => properties.insert("bounce_type".into(), json!("soft")),
        _ => None,
    };
    let event = Event {
        id: event_id(&message_id, &kind_name, ts, url.as_deref()),
        contact,
        kind,
        name: None,
        at,
        source: "mandrill".into(),
        machine: false,
        url,
        campaign: text(msg, "template"),
        message_id: Some(message_id),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// A stable per-event id: Mandrill's `_id` names the message, not the event, so the
/// id is `<_id>:<event>:<ts>`, plus a short hash of the URL for clicks (two links
/// clicked in the same second are two events).
pub fn event_id(message_id: &str, event: &str, ts: i64, url: Option<&str>) -> String {
    match url {
        Some(url) => {
            let digest = Sha256::digest(url.as_bytes());
            format!("{message_id}:{event}:{ts}:{}", hex::encode(&digest[..8]))
        }
        None => format!("{message_id}:{event}:{ts}"),
    }
}

/// The top-level fields other than `consumed`, as properties.
fn kept(obj: &Map<String, Value>, consumed: &[&str]) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, _)| !consumed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Fields of `msg` kept as properties (its `opens`/`clicks` histories are left out:
/// they repeat earlier events and grow with every one).
const MSG_KEPT: [&str; 10] = [
    "subject",
    "sender",
    "tags",
    "metadata",
    "state",
    "subaccount",
    "bounce_description",
    "bgtools_code",
    "diag",
    "smtp_events",
];

/// The canonical type. Only a hard bounce is `email.bounced` (it marks the address
/// bounced); a soft bounce is `email.deferred`, as for the other providers.
fn kind_of(event: &str) -> Option<EventType> {
    Some(match event {
        "send" => EventType::EmailSent,
        "deferral" | "soft_bounce" => EventType::EmailDeferred,
        "hard_bounce" => EventType::EmailBounced,
        "open" => EventType::EmailOpened,
        "click" => EventType::EmailClicked,
        "spam" => EventType::EmailComplained,
        "unsub" => EventType::EmailUnsubscribed,
        "reject" => EventType::EmailDropped,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
