//! Refinements of the rules file's JSON Schema, so that an editor flags much
//! of what validation rejects and offers the values it accepts.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// A window or half-life: a positive integer and a unit (`30m`, `24h`, `14d`).
/// Spaces around it are ASCII only, as [`crate::duration::parse_duration`] trims.
pub(crate) const DURATION: &str = r"^[ \t\n\f\r]*0*[1-9][0-9]*[smhdw][ \t\n\f\r]*$";

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

#[cfg(test)]
mod tests {
    use super::{DURATION, ID};
    use proptest::prelude::*;
    use regex::Regex;

    proptest! {
        /// The schema's duration pattern accepts exactly what the rules accept.
        #[test]
        fn the_duration_pattern_is_the_parser(text in "[ \t\r\n\u{85}\u{a0}0-9smhdwx.+-]{0,7}") {
            let pattern = Regex::new(DURATION).unwrap();
            prop_assert_eq!(pattern.is_match(&text), crate::duration::parse_duration(&text).is_ok(), "{:?}", text);
        }

        /// The schema's id pattern accepts exactly the valid ids.
        #[test]
        fn the_id_pattern_is_the_check(text in "[a-zA-Z0-9_. -]{0,3}|[a-z0-9_-]{60,70}") {
            let pattern = Regex::new(ID).unwrap();
            prop_assert_eq!(pattern.is_match(&text), crate::compile::valid_id(&text), "{:?}", text);
        }
    }
}
