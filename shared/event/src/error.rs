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
    /// The serialized event exceeds [`crate::MAX_EVENT_BYTES`].
    #[error("event is {bytes} bytes, over the {max}-byte limit", max = crate::MAX_EVENT_BYTES)]
    TooLarge {
        /// The event's size in bytes.
        bytes: usize,
    },
}

impl EventError {
    pub(crate) fn from_json(err: serde_json::Error) -> EventError {
        EventError::Json(err.to_string())
    }
}
