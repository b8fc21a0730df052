/// Why a document is not a valid canonical event. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The JSON is malformed, has an unknown field, or a field of the wrong type;
    /// the message is serde's and names the field and the position.
    #[error("{0}")]
    Json(String),
    /// A required field is absent.
    #[error("missing field `{field}`")]
    Missing {
        /// The absent field.
        field: &'static str,
    },
    /// A required string field is empty.
    #[error("field `{field}` must not be empty")]
    Empty {
        /// The empty field.
        field: &'static str,
    },
    /// A field's value is not one its event type allows.
    #[error("field `{field}` must be {expected}, found {found}")]
    Invalid {
        /// The field, as a path (`properties.status`).
        field: &'static str,
        /// The values allowed.
        expected: &'static str,
        /// What the event has (JSON, or `nothing`).
        found: String,
    },
    /// A contact key (`contact`, `properties.anonymous_id`) cannot be a key;
    /// the message never repeats the key.
    #[error("field `{field}` {problem}")]
    Key {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: crate::KeyError,
    },
    /// The event is dated further ahead of the time it was received than the
    /// allowed clock skew (`KAIROS_MAX_CLOCK_SKEW_SECS`).
    #[error("field `{field}` is {seconds} s ahead of the time the event was received; at most {max} s of clock skew is allowed")]
    Ahead {
        /// The field (`at`).
        field: &'static str,
        /// How far ahead, in seconds.
        seconds: i64,
        /// The allowed skew, in seconds.
        max: i64,
    },
    /// The serialized event exceeds [`crate::MAX_EVENT_BYTES`].
    #[error("event is {bytes} bytes, over the {max}-byte limit", max = crate::MAX_EVENT_BYTES)]
    TooLarge {
        /// The event's size in bytes.
        bytes: usize,
    },
}

impl EventError {
    /// serde's message, led by the field it is about (when inside the event)
    /// and with its position in the document (when parsed from text).
    pub(crate) fn from_path(err: serde_path_to_error::Error<serde_json::Error>) -> EventError {
        let path = err.path().to_string();
        EventError::from_json(&path, err.into_inner())
    }

    /// As [`EventError::from_path`], for an error at `path` (`.`: the whole document).
    pub(crate) fn from_json(path: &str, err: serde_json::Error) -> EventError {
        let text = err.to_string();
        let (line, column) = (err.line(), err.column());
        let message = text
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&text);
        // An unknown field's message names it already, and so does a duplicate key's.
        let named = path == "." || message.contains(&format!("`{path}`")) || message.starts_with("duplicate key `");
        let mut out = match named {
            true => message.to_string(),
            false => format!("`{path}`: {message}"),
        };
        // chrono's own words ("premature end of input") do not say what it wanted.
        let data = err.classify() == serde_json::error::Category::Data;
        if path == "at" && data && !message.contains("RFC 3339") {
            out.push_str(" (expected an RFC 3339 time with an offset, e.g. 2026-11-26T10:00:00Z)");
        }
        match (line, column) {
            (0, _) => {}
            (1, column) => out.push_str(&format!(" at column {column}")),
            (line, column) => out.push_str(&format!(" at line {line} column {column}")),
        }
        EventError::Json(out)
    }
}
