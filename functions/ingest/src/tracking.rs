//! Segment-spec tracking calls, as analytics.js (analytics-next), analytics-node
//! and Segment's HTTP Tracking API send them, normalized to canonical events.
//!
//! # Routes (POST only; 404 while `KAIROS_WRITE_KEYS` is empty)
//! - `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/alias`, `/v1/group`: one call
//!   each (the route decides the call type; a `type` in the body is ignored);
//! - `/v1/batch`: `{"batch": [call, ...], "context"?, "integrations"?, "sentAt"?}`, each call
//!   with its `type`. The top-level `context` is merged into each call's own context (the
//!   call's values win, objects merged key by key); `integrations` is not used.
//! - analytics.js's short paths: `/v1/t`, `/v1/p`, `/v1/s`, `/v1/i`, `/v1/a`, `/v1/g` (its
//!   segmentio plugin posts to `<apiHost>/<first letter of the call type>`) and `/v1/b`
//!   (its batching delivery strategy).
//!
//! # Write key
//! HTTP basic auth with the write key as the user name and an empty password (analytics-node;
//! a missing colon is tolerated), or a top-level `"writeKey"` in the JSON body (analytics.js,
//! which posts `text/plain` to avoid a CORS preflight; the content type is not checked). Either
//! one matching a key of `KAIROS_WRITE_KEYS` authorizes the request; the comparison is
//! constant-time over SHA-256 digests. Otherwise a generic 401 (the log says which way failed,
//! never the key). An OAuth bearer token is not verified: the write key is what counts.
//!
//! # Mapping to the canonical event
//! - `id` = `messageId` (required: every Segment library sets one; it is the dedupe key);
//! - `contact` = `userId`, else `anon:<anonymousId>`; neither → the call is rejected. A
//!   `userId` may not itself start with `anon:`. Numbers are accepted as ids (as text).
//! - `at` = the call's `timestamp` (else `originalTimestamp`), corrected for the client's
//!   clock skew as Segment documents it: `timestamp = receivedAt - (sentAt - originalTimestamp)`
//!   (<https://segment.com/docs/connections/spec/common/#timestamps>), where `receivedAt` is
//!   when ingest received the request and `sentAt` the call's (else the batch's) `sentAt`.
//!   Without `sentAt` the time is taken as sent; without either time field it is the receive
//!   time. Each is RFC 3339 with any offset (stored in UTC); a present but unreadable one
//!   rejects the call, naming the field. A body's own `receivedAt` is ignored: the receive
//!   time is ingest's. The route then refuses a call dated (after correction) more than
//!   `KAIROS_MAX_CLOCK_SKEW_SECS` after it was received, naming `at`.
//! - `source` = `segment`;
//! - `track` → `type` from [`NAMED_EVENTS`] when `event` is one of those names (compared
//!   case-insensitively), else `track`; `name` = `event` either way;
//! - `page` and `screen` → `page.viewed`, `name` = the page or screen name, `category` into
//!   `properties.category`, and `properties.screen = true` for screens;
//! - `identify` → `contact.identified` with `traits`;
//! - `alias` (`previousId`, `userId`) → `contact.identified` for `userId`, no traits, with
//!   `properties.anonymous_id` = `previousId` (the same identity link as below);
//! - `group` → rejected as an unsupported call type (its traits describe an account, not the contact);
//! - `url` (track, page, screen) = `properties.url`, else `context.page.url`;
//! - `campaign` = `properties.campaign` (text), else `context.campaign.name` (the utm campaign);
//!   the other `context.campaign` values become `properties.utm_<key>` unless already set;
//! - `properties` = the call's remaining `properties`.
//!
//! # Identity link (contract with the evaluate stage)
//! Whenever a call carries both `userId` and `anonymousId`, the canonical event (whose contact
//! is the `userId`) has `properties.anonymous_id` = the `anonymousId` as a string; `alias` sets
//! it to `previousId`. The evaluate stage links the contact `anon:<anonymous_id>` to the event's
//! contact from that field.
//!
//! # Limits and statuses
//! 32 KB per call (a single-call body, or each call of a batch together with the batch's
//! `context` it inherits) and 500 KB and 2,500 calls per batch, as Segment's HTTP API
//! documents; a larger body gets 413, a larger call in a batch
//! is rejected alone. Statuses: 202 all accepted; 400 when some or all calls were rejected
//! (the valid ones are enqueued anyway; the body lists each rejected call's index, messageId
//! and error) or the body is not JSON. analytics-node 3.1.0 never retries a 400 (and drops
//! other 4xx except 408/410/429/460; `publisher.ts` `send`), and analytics.js retries only
//! 5xx and 429 (`batched-dispatcher.ts`) or failed fetches, so a 400 neither drops nor resends
//! good events; it shows the caller what was refused. 503 (retried, deduped by `messageId`)
//! only when enqueueing fails.

use aws_lambda_events::http::HeaderMap;
use chrono::{DateTime, Utc};
use kairos_event::strict::{self, Document, Step};
use kairos_event::{Event, EventType, ANONYMOUS_PREFIX};
use serde_json::{Map, Value};

use crate::providers::shared::{basic_credentials, key_matches};
use crate::webhook::{NormalizeError, Parsed, Policy};

/// Partial batches and unreadable bodies both get 400: neither library retries it.
pub(crate) const POLICY: Policy = Policy {
    accepted: 202,
    partial: 400,
    malformed: 400,
};

/// Largest accepted call (a single-call body, or one call of a batch), in bytes.
pub const MAX_CALL_BYTES: usize = 32 * 1024;
/// Largest accepted batch body, in bytes.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Most calls accepted in one batch.
pub const MAX_BATCH_CALLS: usize = 2500;
/// Longest accepted `messageId`, `userId`, `anonymousId` or `previousId`, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The canonical `source` of every event from these routes.
pub const SOURCE: &str = "segment";

/// `track` event names (compared case-insensitively, outer blanks ignored) that become a
/// canonical type other than `track`. The chat names are Segment's Live Chat spec (the
/// contact's own messages: a conversation starts with the customer's first message);
/// Segment's spec has no ad-click or form events, so those names are Kairos's own.
pub const NAMED_EVENTS: [(&str, EventType); 6] = [
    ("Ad Clicked", EventType::AdClicked),
    ("Live Chat Conversation Started", EventType::ChatMessage),
    ("Live Chat Message Sent", EventType::ChatMessage),
    ("Chat Message Sent", EventType::ChatMessage),
    ("Form Submitted", EventType::FormSubmitted),
    ("Form Completed", EventType::FormSubmitted),
];

/// The Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A named user action.
    Track,
    /// A website page view.
    Page,
    /// A mobile app screen view.
    Screen,
    /// Traits about the user.
    Identify,
    /// One identity is another (`previousId` → `userId`).
    Alias,
    /// The user belongs to an account (not supported).
    Group,
}

impl Call {
    /// The call type named by a batch item's `type`.
    pub fn from_name(name: &str) -> Option<Call> {
        Some(match name {
            "track" => Call::Track,
            "page" => Call::Page,
            "screen" => Call::Screen,
            "identify" => Call::Identify,
            "alias" => Call::Alias,
            "group" => Call::Group,
            _ => return None,
        })
    }
}

/// What a tracking path carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// One call of this type.
    One(Call),
    /// `{"batch": [...]}`.
    Batch,
}

/// The tracking route for a path, if it is one.
pub(crate) fn route(path: &str) -> Option<Route> {
    Some(match path.strip_prefix("/v1/")? {
        "track" | "t" => Route::One(Call::Track),
        "page" | "p" => Route::One(Call::Page),
        "screen" | "s" => Route::One(Call::Screen),
        "identify" | "i" => Route::One(Call::Identify),
        "alias" | "a" => Route::One(Call::Alias),
        "group" | "g" => Route::One(Call::Group),
        "batch" | "b" => Route::Batch,
        _ => return None,
    })
}

/// What a batch gives each of its calls: its context, its `sentAt`, and the receipt time.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The batch's top-level `context`, merged under each call's own.
    pub context: Option<&'a Map<String, Value>>,
    /// The batch's top-level `sentAt`.
    pub sent_at: Option<&'a Value>,
    /// When ingest received the request (Segment's `receivedAt`): the time of a
    /// call that carries none, and the reference of the clock-skew correction.
    pub now: DateTime<Utc>,
}

/// Authorizes and parses one request on a tracking route received at `now`.
pub(crate) fn parse(
    route: Route,
    headers: &HeaderMap,
    body: &[u8],
    write_keys: &[String],
    now: DateTime<Utc>,
) -> Result<Parsed, NormalizeError> {
    let limit = match route {
        Route::One(_) => MAX_CALL_BYTES,
        Route::Batch => MAX_BATCH_BYTES,
    };
    if body.len() > limit {
        return Err(NormalizeError::TooLarge(format!(
            "request body is {} bytes, over the {limit}-byte limit",
            body.len()
        )));
    }
    let doc = strict::parse(body);
    authorized(headers, doc.as_ref().ok().map(|d| &d.value), write_keys)?;
    let mut doc = doc.map_err(|e| format!("body is not JSON: {e}"))?;
    let mut map = match std::mem::take(&mut doc.value) {
        Value::Object(map) => map,
        _ => return Err("expected a JSON object".into()),
    };
    map.remove("writeKey");
    match route {
        Route::One(call) => {
            let envelope = Envelope {
                context: None,
                sent_at: None,
                now,
            };
            let mut parsed = Parsed::default();
            let id = message_id_of(&map);
            let result = match doc.duplicates.first() {
                Some(duplicate) => Err(duplicate.message(0)),
                None => normalize(Some(call), map, &envelope),
            };
            parsed.push(0, id, result);
            Ok(parsed)
        }
        Route::Batch => batch(map, &doc, now),
    }
}

/// Normalizes each call of a batch body; a key given twice refuses its call,
/// or the body when it is in the batch's own fields.
fn batch(mut map: Map<String, Value>, doc: &Document, now: DateTime<Utc>) -> Result<Parsed, NormalizeError> {
    let in_call = |path: &[Step]| matches!(path, [Step::Key(k), Step::Index(_), ..] if k == "batch");
    if let Some(duplicate) = doc.duplicates.iter().find(|d| !in_call(&d.path)) {
        return Err(duplicate.message(0).into());
    }
    let items = match map.remove("batch") {
        Some(Value::Array(items)) => items,
        _ => return Err("`batch` must be an array of calls".into()),
    };
    if items.len() > MAX_BATCH_CALLS {
        return Err(NormalizeError::TooLarge(format!(
            "batch has {} calls, over the limit of {MAX_BATCH_CALLS}",
            items.len()
        )));
    }
    let envelope = Envelope {
        context: map.get("context").and_then(Value::as_object),
        sent_at: map.get("sentAt"),
        now,
    };
    // Every call inherits the batch's context, so it counts towards each call's size
    // (else one large batch context would be copied into each of 2,500 calls).
    let inherited = envelope
        .context
        .map_or(0, |c| serde_json::to_vec(c).map_or(0, |b| b.len()));
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let result = match item {
            Value::Object(call) => {
                let id = message_id_of(&call);
                let size = serde_json::to_vec(&call).map_or(0, |b| b.len()) + inherited;
                let duplicate = doc.item_duplicate(&[Step::Key("batch".into()), Step::Index(index)]);
                let result = match duplicate {
                    Some(duplicate) => Err(duplicate.message(2)),
                    None if size > MAX_CALL_BYTES => {
                        Err(format!("call is {size} bytes, over the {MAX_CALL_BYTES}-byte limit"))
                    }
                    None => normalize(None, call, &envelope),
                };
                (id, result)
            }
            _ => (None, Err("each batch item must be a JSON object (a call)".into())),
        };
        parsed.push(index, result.0, result.1);
    }
    Ok(parsed)
}

/// Ok if the basic-auth user name or the body's `writeKey` is a configured write key;
/// else why not (for the logs; never the key).
fn authorized(headers: &HeaderMap, body: Option<&Value>, keys: &[String]) -> Result<(), NormalizeError> {
    if basic_user(headers).is_some_and(|user| key_matches(&user, keys)) {
        return Ok(());
    }
    let in_body = body.and_then(|b| b.get("writeKey")).and_then(Value::as_str);
    if in_body.is_some_and(|key| key_matches(key.as_bytes(), keys)) {
        return Ok(());
    }
    let how = match (basic_user(headers).is_some(), in_body.is_some()) {
        (false, false) => "no write key (neither basic auth nor a body writeKey)",
        _ => "unknown write key",
    };
    Err(NormalizeError::Unauthorized(how.into()))
}

/// The user name of an `Authorization: Basic` header (the bytes before the first colon).
fn basic_user(headers: &HeaderMap) -> Option<Vec<u8>> {
    let mut decoded = basic_credentials(headers.get("authorization")?.to_str().ok())?;
    let end = decoded.iter().position(|&b| b == b':').unwrap_or(decoded.len());
    decoded.truncate(end);
    Some(decoded)
}

/// A call's `messageId`, to name it in a rejection (if short enough to echo).
fn message_id_of(call: &Map<String, Value>) -> Option<String> {
    call.get("messageId")
        .and_then(Value::as_str)
        .filter(|id| id.len() <= MAX_ID_BYTES)
        .map(str::to_string)
}

/// Maps one Segment call to a canonical event. `call` is the route's call type (single-call
/// routes); `None` takes it from the call's `type` (batch items).
pub fn normalize(call: Option<Call>, mut item: Map<String, Value>, envelope: &Envelope<'_>) -> Result<Event, String> {
    let call = match call {
        Some(call) => call,
        None => call_type(&item)?,
    };
    if call == Call::Group {
        return Err("unsupported call type `group`: Kairos accepts track, page, screen, identify and alias".into());
    }
    let id = id_field(&item, "messageId")?
        .ok_or("`messageId` is required (it deduplicates retries; every Segment library sets one)")?;
    let at = event_time(&item, envelope)?;
    let (contact, link) = match call {
        Call::Alias => alias_identity(&item)?,
        _ => identity(&item)?,
    };
    let own_context = match item.remove("context") {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let context = Context {
        own: own_context.as_ref(),
        batch: envelope.context,
    };
    let mut properties = take_object(&mut item, "properties")?;
    let traits = match call {
        Call::Identify => take_object(&mut item, "traits")?,
        _ => Map::new(),
    };
    let (kind, name) = kind_and_name(call, &item)?;
    let url = match call {
        Call::Track | Call::Page | Call::Screen => take_text(&mut properties, "url").or_else(|| page_url(context)),
        _ => None,
    };
    let campaign = take_text(&mut properties, "campaign").or_else(|| utm_campaign(context));
    add_utm(&mut properties, context);
    if let Some(category) = item.get("category").filter(|c| c.is_string()) {
        properties.entry("category").or_insert_with(|| category.clone());
    }
    if call == Call::Screen {
        properties.insert("screen".into(), Value::Bool(true));
    }
    if let Some(anonymous_id) = link {
        properties.insert("anonymous_id".into(), Value::String(anonymous_id));
    }
    let event = Event {
        id,
        contact,
        kind,
        name,
        at,
        source: SOURCE.into(),
        machine: false,
        url,
        campaign,
        message_id: None,
        properties,
        traits,
    }
    .validated()
    .map_err(|e| e.to_string())?;
    let size = event.to_json().len();
    if size > kairos_event::MAX_EVENT_BYTES {
        return Err(format!("the normalized event is {size} bytes, over the event limit"));
    }
    Ok(event)
}

/// A batch item's call type, from its `type`.
fn call_type(item: &Map<String, Value>) -> Result<Call, String> {
    match item.get("type") {
        Some(Value::String(name)) => Call::from_name(name).ok_or_else(|| {
            let shown: String = name.chars().take(40).collect();
            format!("unknown call type `{shown}`, expected track, page, screen, identify or alias")
        }),
        Some(_) => Err("`type` must be a string".into()),
        None => Err("`type` is required on each batch call".into()),
    }
}

/// The canonical type and name: track names per [`NAMED_EVENTS`], page and screen names.
fn kind_and_name(call: Call, item: &Map<String, Value>) -> Result<(EventType, Option<String>), String> {
    let text = |field: &str| item.get(field).and_then(Value::as_str).map(str::to_string);
    Ok(match call {
        Call::Track => {
            let event = text("event")
                .filter(|e| !e.trim().is_empty())
                .ok_or("`event` (the track event's name) is required")?;
            let named = NAMED_EVENTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(event.trim()));
            (named.map_or(EventType::Track, |(_, kind)| *kind), Some(event))
        }
        Call::Page | Call::Screen => (EventType::PageViewed, text("name").filter(|n| !n.trim().is_empty())),
        Call::Identify | Call::Alias | Call::Group => (EventType::ContactIdentified, None),
    })
}

/// Contact key and identity link: `userId` (linked to `anonymousId` when both are set),
/// else `anon:<anonymousId>`.
fn identity(item: &Map<String, Value>) -> Result<(String, Option<String>), String> {
    let user = id_field(item, "userId")?;
    let anonymous = id_field(item, "anonymousId")?;
    match (user, anonymous) {
        (Some(user), anonymous) => Ok((checked_user(user)?, anonymous)),
        (None, Some(anonymous)) => Ok((format!("{ANONYMOUS_PREFIX}{anonymous}"), None)),
        (None, None) => Err("neither `userId` nor `anonymousId` is set: a call needs one of them".into()),
    }
}

/// An alias: contact `userId`, linked to `previousId`.
fn alias_identity(item: &Map<String, Value>) -> Result<(String, Option<String>), String> {
    let user = id_field(item, "userId")?.ok_or("`userId` is required on an alias call")?;
    let previous = id_field(item, "previousId")?.ok_or("`previousId` is required on an alias call")?;
    Ok((checked_user(user)?, Some(previous)))
}

fn checked_user(user: String) -> Result<String, String> {
    if user.starts_with(ANONYMOUS_PREFIX) {
        return Err("`userId` may not start with `anon:` (reserved for anonymous contacts)".into());
    }
    Ok(user)
}

/// An identifier field: text (trimmed) or a number; absent, null or blank is `None`.
fn id_field(item: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    let text = match item.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("`{field}` must be a string")),
    };
    if text.len() > MAX_ID_BYTES {
        return Err(format!(
            "`{field}` is {} bytes, over the {MAX_ID_BYTES}-byte limit",
            text.len()
        ));
    }
    Ok(Some(text).filter(|t| !t.is_empty()))
}

/// When the call happened: its `timestamp` (else `originalTimestamp`) corrected by
/// `receivedAt - sentAt` (see the module docs); the receive time when it has none.
fn event_time(item: &Map<String, Value>, envelope: &Envelope<'_>) -> Result<DateTime<Utc>, String> {
    let time = |field: &str, value: Option<&Value>| present(value).map(|v| rfc3339(field, v)).transpose();
    let original = match time("timestamp", item.get("timestamp"))? {
        Some(t) => Some(("timestamp", t)),
        None => time("originalTimestamp", item.get("originalTimestamp"))?.map(|t| ("originalTimestamp", t)),
    };
    let sent = match time("sentAt", item.get("sentAt"))? {
        Some(t) => Some(t),
        None => time("the batch's sentAt", envelope.sent_at)?,
    };
    match (original, sent) {
        (None, _) => Ok(envelope.now),
        (Some((_, original)), None) => Ok(original),
        (Some((field, original)), Some(sent)) => original
            .checked_add_signed(envelope.now - sent)
            .ok_or_else(|| format!("`{field}` corrected by `sentAt` to the receive time is out of range")),
    }
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn rfc3339(field: &str, value: &Value) -> Result<DateTime<Utc>, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("`{field}` must be an RFC 3339 date-time string"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            let shown: String = text.chars().take(40).collect();
            format!("`{field}` `{shown}` is not an RFC 3339 date-time: {e}")
        })
}

mod context;

use context::{add_utm, page_url, take_object, take_text, utm_campaign, Context};

#[cfg(test)]
mod tests;
