//! `POST /v1/events`: canonical events from users' own sources, with an API key.

use aws_lambda_events::http::HeaderMap;
use kairos_event::strict::{self, Step};
use kairos_event::Event;
use serde_json::Value;

use crate::providers::shared::key_matches;
use crate::webhook::{NormalizeError, Parsed, Policy};
use crate::IngestConfig;

/// Our own API: clients do not retry a 400, so a partial batch says so.
pub(crate) const POLICY: Policy = Policy {
    accepted: 202,
    partial: 400,
    malformed: 400,
};

/// Most events accepted in one request.
pub(crate) const MAX_BATCH: usize = 500;

/// Authorizes and parses a `/v1/events` body: one event, or `{"batch": [...]}`.
/// The body is read strictly: a key given twice refuses its event (or, in the
/// batch envelope itself, the body).
pub(crate) fn parse(headers: &HeaderMap, body: &[u8], config: &IngestConfig) -> Result<Parsed, NormalizeError> {
    if config.api_keys.is_empty() {
        return Err(NormalizeError::NotConfigured(
            "/v1/events is not configured (no API keys)".into(),
        ));
    }
    let presented = headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
    if !key_matches(presented, &config.api_keys) {
        return Err(NormalizeError::Unauthorized("missing or unknown x-api-key".into()));
    }
    let mut doc = strict::parse(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let (items, prefix) = match std::mem::take(&mut doc.value) {
        Value::Object(mut map) if map.contains_key("batch") => {
            if let Some(dup) = doc.shallow_duplicate(1) {
                return Err(dup.message(0).into());
            }
            match (map.remove("batch"), map.is_empty()) {
                (Some(Value::Array(items)), true) => (items, Some("batch")),
                (Some(Value::Array(_)), false) => return Err("a batch request has only the `batch` field".into()),
                _ => return Err("`batch` must be an array of events".into()),
            }
        }
        single @ Value::Object(_) => (vec![single], None),
        _ => return Err("expected an event object or {\"batch\": [...]}".into()),
    };
    if items.len() > MAX_BATCH {
        return Err(NormalizeError::TooLarge(format!(
            "batch has {} events, over the limit of {MAX_BATCH}",
            items.len()
        )));
    }
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str).map(str::to_string);
        let duplicate = match prefix {
            Some(key) => doc
                .item_duplicate(&[Step::Key(key.into()), Step::Index(index)])
                .map(|d| d.message(2)),
            None => doc.duplicates.first().map(|d| d.message(0)),
        };
        let size = item.to_string().len();
        let result = match duplicate {
            Some(duplicate) => Err(duplicate),
            None if size > kairos_event::MAX_EVENT_BYTES => {
                Err(kairos_event::EventError::TooLarge { bytes: size }.to_string())
            }
            None => Event::from_value(item).map_err(|e| e.to_string()),
        };
        parsed.push(index, id, result);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::providers::shared::key_matches;

    #[test]
    fn key_must_match_one_configured_key_exactly() {
        let keys = vec!["alpha".to_string(), "bravo".to_string()];
        assert!(key_matches(b"bravo", &keys));
        assert!(!key_matches(b"brav", &keys));
        assert!(!key_matches(b"", &keys));
        assert!(!key_matches(b"alpha", &[]));
    }
}
