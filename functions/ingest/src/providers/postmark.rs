//! `POST /webhooks/postmark`: Postmark's outbound webhooks (one JSON event per request).
//!
//! Postmark does not sign its webhooks. It offers HTTP basic auth (credentials in
//! the webhook URL, `https://user:password@host/...`) and custom HTTP headers, so
//! a request is accepted when either `Authorization: Basic` carries the configured
//! `user:password` or the `X-Kairos-Webhook-Secret` header carries the configured
//! secret; both compared in constant time. Events are dispatched by `RecordType`.

use chrono::{DateTime, Utc};
use kairos_event::{Event, EventType};
use serde_json::{json, Map, Value};

use super::shared::{basic_auth_matches, credential, derived_id, finish, from_rfc3339, secret_matches, strict_json};
use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{ready, NormalizeError, Parsed, Policy, Request, Unauthorized, Verification, Verified, Webhook};

/// The custom header Postmark can be told to send with the secret.
pub const SECRET_HEADER: &str = "x-kairos-webhook-secret";

/// The Postmark route, configured with its shared secret.
#[derive(Clone)]
pub struct Postmark {
    secret: String,
}

impl std::fmt::Debug for Postmark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Postmark { secret: <redacted> }")
    }
}

impl Postmark {
    /// Accepts basic auth `secret` (when it is `user:password`) or the secret header.
    pub fn new(secret: &str) -> Postmark {
        Postmark {
            secret: secret.to_string(),
        }
    }

    /// Built from `secret` (`KAIROS_POSTMARK_SECRET`: `user:password` for basic auth,
    /// also accepted whole in the `X-Kairos-Webhook-Secret` header).
    pub fn build(settings: &Settings) -> Result<Option<Postmark>, ConfigError> {
        let expected = "expected `user:password` or a secret of at least 8 characters";
        Ok(credential(settings, "postmark", expected)?.map(Postmark::new))
    }

    /// True when the request carries the configured credential.
    pub fn authorized(&self, req: &Request<'_>) -> bool {
        let basic = basic_auth_matches(req.header("authorization"), &self.secret);
        let header = req
            .header(SECRET_HEADER)
            .is_some_and(|h| secret_matches(h.trim().as_bytes(), &self.secret));
        basic | header
    }
}

impl Webhook for Postmark {
    fn name(&self) -> &'static str {
        "postmark"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, _now: i64) -> Verification<'a> {
        ready(match self.authorized(req) {
            true => Ok(Verified::default()),
            false => Err(Unauthorized(
                "missing or wrong basic auth / X-Kairos-Webhook-Secret".into(),
            )),
        })
    }
}

/// Postmark retries every answer but 200 (10 times over about 10.5 hours) and
/// stops at once on 403 Forbidden:
/// <https://postmarkapp.com/support/article/understanding-inbound-webhook-retries-in-postmark>
/// (the article describes inbound webhooks; the outbound ones are documented to
/// retry the same way). One event per request: an unreadable one never becomes
/// readable, so 403 stops the retries. There is no partial case; 200 if one arises.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 403,
};

/// Parses a Postmark webhook body: one record, dispatched by `RecordType`.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let item = strict_json(req.body)?;
    if !item.is_object() {
        return Err("expected one Postmark event object".into());
    }
    let mut parsed = Parsed::default();
    let result = normalize(&item);
    let id = result.as_ref().ok().map(|e| e.id.clone());
    parsed.push(0, id, result);
    Ok(parsed)
}

/// Maps one Postmark webhook object to a canonical event; the error names the field.
pub fn normalize(item: &Value) -> Result<Event, String> {
    let obj = item.as_object().ok_or("expected an event object")?;
    let text = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let record = text("RecordType").ok_or("missing or non-string field `RecordType`")?;
    let (kind, status, time_field) = classify(&record, obj)?;
    let time = text(time_field).ok_or(format!("missing or non-string field `{time_field}`"))?;
    let at: DateTime<Utc> = from_rfc3339(&time).ok_or(format!("field `{time_field}` is not an ISO 8601 time"))?;
    // Bounces and spam complaints name the address `Email`; the other records `Recipient`.
    let contact = text("Recipient")
        .or_else(|| text("Email"))
        .filter(|s| !s.is_empty())
        .ok_or("missing field `Recipient` (or `Email`)")?;
    let message_id = text("MessageID");
    let url = text("OriginalLink");
    let id = match obj.get("ID").and_then(Value::as_i64) {
        Some(n) => format!("postmark:{record}:{n}"),
        None => derived_id(
            "postmark",
            &[
                &record,
                message_id.as_deref().unwrap_or_default(),
                &contact,
                &time,
                url.as_deref().unwrap_or_default(),
            ],
        ),
    };
    let mut properties: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !CONSUMED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(status) = status {
        properties.insert("status".into(), json!(status));
    }
    let event = Event {
        id,
        contact,
        kind,
        name: None,
        at,
        source: "postmark".into(),
        // Postmark flags no machine opens (Apple MPP opens look like any other).
        machine: false,
        url,
        campaign: None,
        message_id,
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Fields mapped to canonical fields rather than kept as properties.
const CONSUMED: [&str; 10] = [
    "RecordType",
    "Recipient",
    "Email",
    "MessageID",
    "OriginalLink",
    "ReceivedAt",
    "DeliveredAt",
    "BouncedAt",
    "ChangedAt",
    "ID",
];

type Classified = (EventType, Option<&'static str>, &'static str);

/// The canonical type, the consent status (for `consent.changed`) and the time field of a record.
fn classify(record: &str, obj: &Map<String, Value>) -> Result<Classified, String> {
    Ok(match record {
        "Delivery" => (EventType::EmailDelivered, None, "DeliveredAt"),
        "Bounce" => (bounce_kind(obj)?, None, "BouncedAt"),
        "SpamComplaint" => (EventType::EmailComplained, None, "BouncedAt"),
        "Open" => (EventType::EmailOpened, None, "ReceivedAt"),
        "Click" => (EventType::EmailClicked, None, "ReceivedAt"),
        "SubscriptionChange" => {
            let (kind, status) = subscription_change(obj)?;
            (kind, status, "ChangedAt")
        }
        other => return Err(format!("field `RecordType`: unknown Postmark record type `{other}`")),
    })
}

/// A bounce by its `Type`: hard and address failures bounce; soft and transient
/// ones (Postmark keeps the address active) are deferred; other types follow `Inactive`.
fn bounce_kind(obj: &Map<String, Value>) -> Result<EventType, String> {
    let kind = obj
        .get("Type")
        .and_then(Value::as_str)
        .ok_or("missing or non-string field `Type` on a Bounce")?;
    Ok(match kind {
        "HardBounce" | "BadEmailAddress" => EventType::EmailBounced,
        "SoftBounce" | "Transient" | "DnsError" | "AutoResponder" => EventType::EmailDeferred,
        "SpamComplaint" | "SpamNotification" => EventType::EmailComplained,
        "Unsubscribe" => EventType::EmailUnsubscribed,
        "ManuallyDeactivated" | "TemplateRenderingFailed" | "SMTPApiError" => EventType::EmailDropped,
        // Blocked, DMARCPolicy, VirusNotification, Unknown, ...: did Postmark deactivate the address?
        _ => match obj.get("Inactive").and_then(Value::as_bool) {
            Some(true) => EventType::EmailBounced,
            _ => EventType::EmailDeferred,
        },
    })
}

/// A subscription change: suppression by the recipient is an unsubscribe; a
/// suppression for a bounce or complaint, or its removal, is a consent change.
fn subscription_change(obj: &Map<String, Value>) -> Result<(EventType, Option<&'static str>), String> {
    let suppress = obj
        .get("SuppressSending")
        .and_then(Value::as_bool)
        .ok_or("missing or non-boolean field `SuppressSending`")?;
    let reason = obj.get("SuppressionReason").and_then(Value::as_str);
    Ok(match (suppress, reason) {
        (false, _) => (EventType::ConsentChanged, Some("subscribed")),
        (true, Some("HardBounce")) => (EventType::ConsentChanged, Some("bounced")),
        (true, Some("SpamComplaint")) => (EventType::ConsentChanged, Some("complained")),
        (true, _) => (EventType::EmailUnsubscribed, None),
    })
}

#[cfg(test)]
mod tests;
