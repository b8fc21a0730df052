//! `POST /v1/events`: canonical events from users' own sources, with an API key.

use aws_lambda_events::http::HeaderMap;
use kairos_event::Event;
use serde_json::{json, Value};

use crate::providers::shared::key_matches;
use crate::response::{json_response, unauthorized, Reply};
use crate::webhook::{Parsed, Policy, Rejected};
use crate::IngestConfig;

/// Our own API: clients do not retry a 400, so a partial batch says so.
pub(crate) const POLICY: Policy = Policy {
    accepted: 202,
    partial: 400,
    malformed: 400,
};

/// Most events accepted in one request.
pub(crate) const MAX_BATCH: usize = 500;

pub(crate) fn parse(headers: &HeaderMap, body: &[u8], config: &IngestConfig) -> Result<Parsed, Reply> {
    if config.api_keys.is_empty() {
        return Err(json_response(
            404,
            json!({"error": "/v1/events is not configured (no API keys)"}),
        ));
    }
    let presented = headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
    if !key_matches(presented, &config.api_keys) {
        tracing::warn!("rejected /v1/events request: missing or unknown x-api-key");
        return Err(unauthorized());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| json_response(400, json!({"error": format!("body is not JSON: {e}")})))?;
    let items = match value {
        Value::Object(mut map) if map.contains_key("batch") => match (map.remove("batch"), map.is_empty()) {
            (Some(Value::Array(items)), true) => items,
            (Some(Value::Array(_)), false) => {
                return Err(json_response(
                    400,
                    json!({"error": "a batch request has only the `batch` field"}),
                ))
            }
            _ => {
                return Err(json_response(
                    400,
                    json!({"error": "`batch` must be an array of events"}),
                ))
            }
        },
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(json_response(
                400,
                json!({"error": "expected an event object or {\"batch\": [...]}"}),
            ))
        }
    };
    if items.len() > MAX_BATCH {
        return Err(json_response(
            413,
            json!({"error": format!("batch has {} events, over the limit of {MAX_BATCH}", items.len())}),
        ));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str).map(str::to_string);
        let size = item.to_string().len();
        let result = if size > kairos_event::MAX_EVENT_BYTES {
            Err(kairos_event::EventError::TooLarge { bytes: size })
        } else {
            Event::from_value(item)
        };
        match result {
            Ok(event) => events.push(event),
            Err(err) => rejected.push(Rejected {
                index,
                id,
                error: err.to_string(),
            }),
        }
    }
    Ok(Parsed { events, rejected })
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
