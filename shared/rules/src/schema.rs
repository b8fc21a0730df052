//! Refinements of the rules file's JSON Schema, so that an editor flags much
//! of what validation rejects and offers the values it accepts.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// A window or half-life: a positive integer and a unit (`30m`, `24h`, `14d`).
pub(crate) const DURATION: &str = r"^\s*0*[1-9][0-9]*[smhdw]\s*$";

/// A segment or score id.
pub(crate) const ID: &str = "^[a-z0-9_-]{1,64}$";

/// The canonical event types, by name.
pub(crate) struct EventTypeName;

impl JsonSchema for EventTypeName {
    fn schema_name() -> Cow<'static, str> {
        "EventType".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = kairos_event::EventType::ALL.iter().map(|t| t.as_str()).collect();
        json_schema!({
            "description": "A canonical event type.",
            "type": "string",
            "enum": names,
        })
    }
}

/// A subscription status.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only
pub(crate) enum ConsentName {
    /// Can be emailed.
    Subscribed,
    /// Opted out.
    Unsubscribed,
    /// The address bounced.
    Bounced,
    /// Marked an email as spam.
    Complained,
}

/// How machine-generated opens count.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only
pub(crate) enum MachineName {
    /// Not counted (the default).
    Exclude,
    /// Counted with the others.
    Include,
    /// Only they count.
    Only,
}
