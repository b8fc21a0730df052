//! SES event records (the `Message` of an SNS notification) to canonical events:
//! one event per affected recipient.
//!
//! Two forms: event publishing (`eventType`, from a configuration set) and the
//! older identity notifications (`notificationType`: Bounce, Complaint, Delivery).

use chrono::{DateTime, Utc};
use kairos_event::{Event, EventType};
use serde_json::{json, Map, Value};

use crate::providers::shared::finish;

/// One outcome per affected recipient: the dedupe id when known, and the event or why not.
pub type Outcome = (Option<String>, Result<Event, String>);

/// The SES record's kind, from `eventType` or `notificationType`.
fn kind_name(record: &Map<String, Value>) -> Option<&str> {
    record
        .get("eventType")
        .or_else(|| record.get("notificationType"))
        .and_then(Value::as_str)
}

/// Normalizes one SES record delivered in SNS message `sns_message_id`.
/// An empty result means the record carries no contact event (SES's
/// `AmazonSnsSubscriptionSucceeded` test notification).
pub fn normalize(record: &Value, sns_message_id: &str) -> Result<Vec<Outcome>, String> {
    let record = record.as_object().ok_or("SES record is not a JSON object")?;
    let name = kind_name(record).ok_or("SES record has no string `eventType` or `notificationType`")?;
    if name == "AmazonSnsSubscriptionSucceeded" {
        return Ok(Vec::new());
    }
    let detail_key = detail_key(name).ok_or(format!("unknown SES event type `{name}`"))?;
    let detail = record.get(detail_key).and_then(Value::as_object);
    let mail = record
        .get("mail")
        .and_then(Value::as_object)
        .ok_or("SES record has no `mail` object")?;
    let kind = kind_of(name, detail)?;
    let recipients = recipients(name, detail, mail);
    if recipients.is_empty() {
        return Err(format!("SES `{name}` record names no recipient"));
    }
    let at = timestamp(detail, mail);
    let feedback = detail.and_then(|d| d.get("feedbackId")).and_then(Value::as_str);
    let outcomes = recipients.into_iter().map(|(address, entry)| {
        let address = match address {
            Ok(address) => address,
            Err(error) => return (None, Err(error)),
        };
        let id = format!("{}:{}", feedback.unwrap_or(sns_message_id), address.to_lowercase());
        let event = at.clone().and_then(|at| {
            let base = Base {
                id: id.clone(),
                kind,
                at,
                sns_message_id,
            };
            build(base, address, entry, detail_key, detail, mail)
        });
        (Some(id), event)
    });
    Ok(outcomes.collect())
}

/// What is the same for every recipient of one record.
struct Base<'a> {
    id: String,
    kind: EventType,
    at: DateTime<Utc>,
    sns_message_id: &'a str,
}

/// One recipient's canonical event.
fn build(
    base: Base<'_>,
    contact: String,
    entry: Option<&Map<String, Value>>,
    detail_key: &str,
    detail: Option<&Map<String, Value>>,
    mail: &Map<String, Value>,
) -> Result<Event, String> {
    let text = |obj: Option<&Map<String, Value>>, field: &str| {
        obj.and_then(|o| o.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut properties = Map::new();
    if let Some(detail) = detail {
        let kept = detail.iter().filter(|(k, _)| !DETAIL_CONSUMED.contains(&k.as_str()));
        properties.insert(
            detail_key.to_string(),
            Value::Object(kept.map(|(k, v)| (k.clone(), v.clone())).collect()),
        );
    }
    if let Some(entry) = entry {
        let kept = entry.iter().filter(|(k, _)| k.as_str() != "emailAddress");
        properties.insert(
            "recipient".into(),
            Value::Object(kept.map(|(k, v)| (k.clone(), v.clone())).collect()),
        );
    }
    for (field, name) in [("source", "sender"), ("tags", "tags")] {
        if let Some(value) = mail.get(field) {
            properties.insert(name.into(), value.clone());
        }
    }
    let headers = mail.get("commonHeaders").and_then(Value::as_object);
    if let Some(subject) = text(headers, "subject") {
        properties.insert("subject".into(), json!(subject));
    }
    properties.insert("sns_message_id".into(), json!(base.sns_message_id));
    if base.kind == EventType::ConsentChanged {
        properties.insert("status".into(), json!("subscribed"));
    }
    let event = Event {
        id: base.id,
        contact,
        kind: base.kind,
        name: None,
        at: base.at,
        source: "ses".into(),
        machine: false,
        url: text(detail, "link"),
        campaign: None,
        message_id: text(Some(mail), "messageId"),
        properties,
        traits: Map::new(),
    };
    finish(event)
}

/// Detail fields mapped to canonical fields or listed per recipient.
const DETAIL_CONSUMED: [&str; 6] = [
    "timestamp",
    "link",
    "bouncedRecipients",
    "complainedRecipients",
    "delayedRecipients",
    "recipients",
];

/// The record's detail object for a kind (`bounce` for `Bounce`, ...).
fn detail_key(name: &str) -> Option<&'static str> {
    Some(match name {
        "Send" => "send",
        "Delivery" => "delivery",
        "Bounce" => "bounce",
        "Complaint" => "complaint",
        "Open" => "open",
        "Click" => "click",
        "Reject" => "reject",
        "DeliveryDelay" => "deliveryDelay",
        "Subscription" => "subscription",
        "Rendering Failure" => "failure",
        _ => return None,
    })
}

/// The canonical type. Only a Permanent bounce is `email.bounced` (it marks
/// the address bounced); Transient and Undetermined bounces are `email.deferred`.
fn kind_of(name: &str, detail: Option<&Map<String, Value>>) -> Result<EventType, String> {
    let field = |f: &str| detail.and_then(|d| d.get(f));
    Ok(match name {
        "Send" => EventType::EmailSent,
        "Delivery" => EventType::EmailDelivered,
        "Bounce" => match field("bounceType").and_then(Value::as_str) {
            Some("Permanent") => EventType::EmailBounced,
            Some("Transient" | "Undetermined") => EventType::EmailDeferred,
            _ => return Err("SES bounce has no known `bounce.bounceType`".into()),
        },
        "Complaint" => EventType::EmailComplained,
        "Open" => EventType::EmailOpened,
        "Click" => EventType::EmailClicked,
        "Reject" | "Rendering Failure" => EventType::EmailDropped,
        "DeliveryDelay" => EventType::EmailDeferred,
        "Subscription" => {
            let new = field("newTopicPreferences");
            match new.and_then(|p| p.get("unsubscribeAll")).and_then(Value::as_bool) {
                Some(true) => EventType::EmailUnsubscribed,
                // A topic opted out is an unsubscribe, as SendGrid's group unsubscribe is.
                Some(false) if opted_out_anew(new, field("oldTopicPreferences")) => EventType::EmailUnsubscribed,
                Some(false) => EventType::ConsentChanged,
                None => return Err("SES subscription has no `newTopicPreferences.unsubscribeAll`".into()),
            }
        }
        other => return Err(format!("unknown SES event type `{other}`")),
    })
}

/// Whether a topic is `OptOut` in the new preferences and was not in the old
/// ones (a topic the old ones do not list was not opted out; under an old
/// `unsubscribeAll`, every topic was).
fn opted_out_anew(new: Option<&Value>, old: Option<&Value>) -> bool {
    if old.and_then(|p| p.get("unsubscribeAll")).and_then(Value::as_bool) == Some(true) {
        return false;
    }
    let topics = |prefs: Option<&Value>, status: &str| -> Vec<String> {
        let list = prefs
            .and_then(|p| p.get("topicSubscriptionStatus"))
            .and_then(Value::as_array);
        let with = list.into_iter().flatten().filter(|t| t["subscriptionStatus"] == status);
        with.filter_map(|t| t["topicName"].as_str().map(str::to_string))
            .collect()
    };
    let before = topics(old, "OptOut");
    topics(new, "OptOut").iter().any(|t| !before.contains(t))
}

/// One affected recipient's address (or why an entry has none) and its own entry, if any.
type Recipient<'a> = (Result<String, String>, Option<&'a Map<String, Value>>);

/// The affected recipients (or why one entry has no address) and, for bounces,
/// complaints and delays, each one's own entry.
fn recipients<'a>(
    name: &str,
    detail: Option<&'a Map<String, Value>>,
    mail: &'a Map<String, Value>,
) -> Vec<Recipient<'a>> {
    let listed = |obj: Option<&'a Map<String, Value>>, field: &str| {
        obj.and_then(|o| o.get(field))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
    };
    let entries = match name {
        "Bounce" => listed(detail, "bouncedRecipients"),
        "Complaint" => listed(detail, "complainedRecipients"),
        "DeliveryDelay" => listed(detail, "delayedRecipients"),
        _ => None,
    };
    if let Some(entries) = entries {
        let one = |entry: &'a Value| {
            let obj = entry.as_object();
            let text = obj.and_then(|o| o.get("emailAddress")).and_then(Value::as_str);
            let found = text
                .and_then(address)
                .ok_or("recipient entry has no `emailAddress`".to_string());
            (found, obj)
        };
        return entries.iter().map(one).collect();
    }
    let plain = (name == "Delivery").then(|| listed(detail, "recipients")).flatten();
    let one = |v: &Value| {
        (
            v.as_str()
                .and_then(address)
                .ok_or("recipient is not an address".to_string()),
            None,
        )
    };
    plain
        .or_else(|| listed(Some(mail), "destination"))
        .into_iter()
        .flatten()
        .map(one)
        .collect()
}

/// The address in `addr` or `Name <addr>`; `None` when blank.
fn address(text: &str) -> Option<String> {
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => text.get(start + 1..end)?,
        _ => text,
    };
    Some(inner.trim().to_string()).filter(|a| !a.is_empty())
}

/// The event's own time (`open.timestamp`, `bounce.timestamp`, ...), else the mail's.
fn timestamp(detail: Option<&Map<String, Value>>, mail: &Map<String, Value>) -> Result<DateTime<Utc>, String> {
    let own = detail.and_then(|d| d.get("timestamp")).and_then(Value::as_str);
    let text = own
        .or_else(|| mail.get("timestamp").and_then(Value::as_str))
        .ok_or("SES record has no event or `mail.timestamp`")?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("SES timestamp `{text}` is not ISO 8601"))
}
