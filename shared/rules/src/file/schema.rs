//! Refinements of the rules file's JSON Schema, so that an editor flags much
//! of what validation rejects and offers the values it accepts.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// A window or half-life: a positive integer and a unit (`30m`, `24h`, `14d`).
/// Spaces around it are ASCII only, as [`crate::file::duration::parse_duration`] trims.
pub(crate) const DURATION: &str = r"^[ \t\n\f\r]*0*[1-9][0-9]*[smhdw][ \t\n\f\r]*$";

/// A segment or score id.
pub(crate) const ID: &str = "^[a-z0-9_-]{1,64}$";

/// A text that is one of `names`: each list is the one the validator reads
/// the names with.
fn names<'a>(description: &str, names: impl Iterator<Item = &'a str>) -> Schema {
    let names: Vec<&str> = names.collect();
    json_schema!({ "description": description, "type": "string", "enum": names })
}

/// The canonical event types, by name.
pub(crate) struct EventTypeName;

impl JsonSchema for EventTypeName {
    fn schema_name() -> Cow<'static, str> {
        "EventType".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all = kairos_event::EventType::ALL.iter().map(|t| t.as_str());
        names("A canonical event type.", all)
    }
}

/// The subscription statuses, by name.
pub(crate) struct ConsentName;

impl JsonSchema for ConsentName {
    fn schema_name() -> Cow<'static, str> {
        "ConsentName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all = kairos_state::ConsentStatus::ALL.iter().map(|s| s.as_str());
        names("A subscription status.", all)
    }
}

/// The policies for machine-generated opens, by name.
pub(crate) struct MachineName;

impl JsonSchema for MachineName {
    fn schema_name() -> Cow<'static, str> {
        "MachineName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all = crate::file::Machine::NAMES.iter().map(|(n, _)| *n);
        names("How machine-generated opens count (`exclude` is the default).", all)
    }
}

/// How a step's variant is chosen, by name.
pub(crate) struct VariantChoiceName;

impl JsonSchema for VariantChoiceName {
    fn schema_name() -> Cow<'static, str> {
        "VariantChoice".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all = ["learn", "fixed"].into_iter();
        names(
            "`learn` (Thompson sampling, the default) or `fixed` (the first variant, always).",
            all,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::DURATION;
    use proptest::prelude::*;
    use regex::Regex;

    proptest! {
        /// The schema's duration pattern accepts exactly what the rules accept.
        #[test]
        fn the_duration_pattern_is_the_parser(text in "[ \t\r\n\u{85}\u{a0}0-9smhdwx.+-]{0,7}") {
            let pattern = Regex::new(DURATION).unwrap();
            prop_assert_eq!(pattern.is_match(&text), crate::file::duration::parse_duration(&text).is_ok(), "{:?}", text);
        }
    }
}
