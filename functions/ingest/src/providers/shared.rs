//! Helpers shared by providers that authenticate with a static credential
//! (basic auth, a bearer token, a secret header) and by providers whose events
//! carry no id of their own; every provider ends with [`finish`] (validation and
//! the per-event size limit).
//!
//! Credentials are compared over SHA-256 digests with `subtle`, so neither the
//! content nor the length of the configured secret leaks through timing.

use base64::Engine;
use chrono::{DateTime, Utc};
use kairos_event::strict::{self, Step};
use kairos_event::{Event, MAX_EVENT_BYTES};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Settings;
use crate::config::ConfigError;

/// True when `presented` equals `expected`, compared in constant time over digests.
pub fn secret_matches(presented: &[u8], expected: &str) -> bool {
    Sha256::digest(presented)
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// True when `presented` equals one of `keys`; every key is compared, each in
/// constant time, so which one matched does not leak either.
pub fn key_matches(presented: &[u8], keys: &[String]) -> bool {
    keys.iter()
        .fold(false, |found, key| found | secret_matches(presented, key))
}

/// The decoded `user:password` bytes of an `Authorization: Basic` header.
/// The scheme name is case-insensitive.
pub fn basic_credentials(header: Option<&str>) -> Option<Vec<u8>> {
    let encoded = header.and_then(|h| strip_scheme(h, "basic"))?;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok()
}

/// True when an `Authorization: Basic <base64(user:password)>` header carries
/// exactly `user_password` (`"user:password"`).
pub fn basic_auth_matches(header: Option<&str>, user_password: &str) -> bool {
    basic_credentials(header).is_some_and(|decoded| secret_matches(&decoded, user_password))
}

/// A static credential from `settings.secret`, trimmed: `None` when unset (the
/// route is not served), an error naming `KAIROS_<PROVIDER>_SECRET` and `expected`
/// (never the value) when shorter than 8 characters.
pub fn credential<'a>(settings: &'a Settings, provider: &str, expected: &str) -> Result<Option<&'a str>, ConfigError> {
    let Some(secret) = settings.secret.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if secret.len() < 8 {
        return Err(invalid_credential(provider, expected));
    }
    Ok(Some(secret))
}

/// The error for an unusable `KAIROS_<PROVIDER>_SECRET`.
pub fn invalid_credential(provider: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        name: Settings::variable(provider, "SECRET"),
        reason: expected.to_string(),
    }
}

/// True when an `Authorization: Bearer <token>` header carries exactly `token`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    match header.and_then(|h| strip_scheme(h, "bearer")) {
        Some(presented) => secret_matches(presented.as_bytes(), token),
        None => false,
    }
}

/// The credential after `<scheme> ` in an Authorization header, trimmed.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = header.trim().split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// A stable dedupe id for an event the provider gives no id to:
/// `<provider>:` followed by the hex SHA-256 of the parts (each length-prefixed,
/// so `["ab","c"]` and `["a","bc"]` differ). The same event redelivered gives the same id.
pub fn derived_id(provider: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{provider}:{}", hex::encode(hasher.finalize()))
}

/// A JSON body read strictly: a key given twice anywhere refuses it, by name.
pub fn strict_json(body: &[u8]) -> Result<Value, String> {
    let doc = strict::parse(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match doc.duplicates.first() {
        Some(duplicate) => Err(duplicate.message(0)),
        None => Ok(doc.value),
    }
}

/// The items of a JSON body: an array, or with `single` also one object (a batch
/// of one); `expected` is the error for any other JSON value. Read strictly: an
/// item that gives a key twice is an `Err` naming the key, alone.
pub fn json_items(body: &[u8], single: bool, expected: &str) -> Result<Vec<Result<Value, String>>, String> {
    let mut doc = strict::parse(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match std::mem::take(&mut doc.value) {
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match doc.item_duplicate(&[Step::Index(i)]) {
                Some(duplicate) => Err(duplicate.message(1)),
                None => Ok(item),
            })
            .collect()),
        item @ Value::Object(_) if single => Ok(vec![match doc.duplicates.first() {
            Some(duplicate) => Err(duplicate.message(0)),
            None => Ok(item),
        }]),
        _ => Err(expected.to_string()),
    }
}

/// Validates a normalized event and checks it fits one queue message.
pub fn finish(event: Event) -> Result<Event, String> {
    let event = event.validated().map_err(|e| e.to_string())?;
    let bytes = event.to_json().len();
    if bytes > MAX_EVENT_BYTES {
        return Err(format!("event is {bytes} bytes, over the {MAX_EVENT_BYTES}-byte limit"));
    }
    Ok(event)
}

/// A UTC time from unix seconds with a fraction (Mailgun's `timestamp`), if finite and in range.
pub fn from_float_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || !(0.0..=1e11).contains(&seconds) {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
}

/// A UTC time from an RFC 3339 text with any offset (Postmark's `ReceivedAt`).
pub fn from_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
