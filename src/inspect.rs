//! A stored contact in human terms (`kairos inspect`): the record is read and
//! decoded by the store ([`ContactStore::load`]), and shown as JSON with
//! times in RFC 3339 and each signal named by what the rules count.

use chrono::{DateTime, SecondsFormat, Utc};
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, StoreError, StoredContact};
use serde_json::{json, Value};

/// The windows each signal is counted over in the output: (name, seconds).
const WINDOWS: [(&str, i64); 3] = [("last_24h", 86_400), ("last_7d", 7 * 86_400), ("last_30d", 30 * 86_400)];

/// Why a contact could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The contact key is not one ingest would accept.
    #[error("the contact {0}")]
    Key(#[from] kairos_event::KeyError),
    /// The store could not read the record.
    #[error("reading the contact: {0}")]
    Store(#[from] StoreError),
    /// No record for this contact.
    #[error("no stored contact {0:?} (keys are normalized as ingest does: trimmed, lower-case addresses)")]
    NotFound(String),
}

/// Loads `contact` (normalized as ingest does) and describes it as of `now`.
pub async fn inspect<S: ContactStore>(
    store: &S,
    rules: &RuleSet,
    contact: &str,
    now: DateTime<Utc>,
) -> Result<Value, InspectError> {
    let key = kairos_event::key::normalize_contact(contact)?;
    let record = store.load(&key).await?.ok_or(InspectError::NotFound(key.clone()))?;
    Ok(describe(&key, &record, rules, now))
}

/// A stored record as JSON: memberships, next change, consent, traits,
/// signals (named by `rules`; a key they do not read is shown by number), version.
pub fn describe(contact: &str, record: &StoredContact, rules: &RuleSet, now: DateTime<Utc>) -> Value {
    let state = &record.state;
    let now = now.timestamp();
    let memberships: Vec<Value> = state
        .members()
        .iter()
        .map(|(segment, since)| json!({"segment": segment, "since": time(*since)}))
        .collect();
    let traits: serde_json::Map<String, Value> = state
        .traits()
        .map(|(name, at, value)| (name.to_string(), json!({"value": value.to_json(), "set_at": time(at)})))
        .collect();
    let signals: Vec<Value> = state
        .signals()
        .iter()
        .map(|s| {
            let name = rules.signal_text(s.key).map_or_else(
                || format!("signal #{} (not read by these rules)", s.key),
                str::to_string,
            );
            let mut signal = json!({"signal": name, "last_at": s.last_at().map(time)});
            for (window, secs) in WINDOWS {
                signal[window] = json!(s.count_since(now - secs, now));
            }
            signal
        })
        .collect();
    let consent = state.consent();
    json!({
        "contact": contact,
        "version": record.version,
        "memberships": memberships,
        "next_change_at": record.next_change_at.map(time),
        "consent": {"status": consent.status().as_str(), "since": (consent.since() > 0).then(|| time(consent.since()))},
        "traits": traits,
        "signals": signals,
        "merged_into": record.merged_into,
        "outbox": record.outbox.len(),
        "expires_at": time(record.expires_at),
    })
}

/// Unix seconds as RFC 3339 (UTC), or null when out of range.
fn time(secs: i64) -> Value {
    DateTime::from_timestamp(secs, 0).map_or(Value::Null, |t| json!(t.to_rfc3339_opts(SecondsFormat::Secs, true)))
}
