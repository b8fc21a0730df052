//! What a leaf condition observed, as its explanation reports it. Kept typed,
//! so an explanation builds no JSON; written as JSON when serialized or shown.

use chrono::{DateTime, SecondsFormat};
use kairos_state::ConsentStatus;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// What one leaf condition observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Occurrences in a window, or a sequence's steps done in order.
    Count(u64),
    /// The latest occurrence (unix seconds), if any: RFC 3339 text, or `"never"`.
    Last(Option<i64>),
    /// A velocity: occurrences in its window (`count`), in the baseline before
    /// it (`baseline_count`), and the ratio of their rates (`"infinite"` with
    /// an empty baseline).
    Velocity {
        /// Occurrences in the window.
        count: u64,
        /// Occurrences in the baseline before it.
        baseline_count: u64,
        /// The window's rate over the baseline's.
        ratio: f64,
    },
    /// A score's value (reported to two decimals).
    Score(f64),
    /// Membership of the referenced segment.
    Member(bool),
    /// The contact's subscription status.
    Consent(ConsentStatus),
    /// A trait's value (null when unset).
    Trait(Value),
}

impl Observation {
    /// The observation as JSON, as it is serialized.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("observations serialize")
    }
}

/// A number to two decimals, or `"infinite"`.
struct Rounded(f64);

impl Rounded {
    fn value(&self) -> Option<f64> {
        self.0.is_finite().then(|| (self.0 * 100.0).round() / 100.0)
    }
}

impl Serialize for Rounded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value() {
            Some(x) => s.serialize_f64(x),
            None => s.serialize_str("infinite"),
        }
    }
}

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // As JSON writes it (`2.0`, `0.25`).
        match self.value().and_then(serde_json::Number::from_f64) {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("\"infinite\""),
        }
    }
}

fn timestamp(t: Option<i64>) -> Option<String> {
    let at = DateTime::from_timestamp(t?, 0)?;
    Some(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

impl Serialize for Observation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Observation::Count(n) => s.serialize_u64(*n),
            Observation::Last(t) => s.serialize_str(timestamp(*t).as_deref().unwrap_or("never")),
            Observation::Velocity {
                count,
                baseline_count,
                ratio,
            } => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("baseline_count", baseline_count)?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("ratio", &Rounded(*ratio))?;
                map.end()
            }
            Observation::Score(v) => Rounded(*v).serialize(s),
            Observation::Member(m) => s.serialize_bool(*m),
            Observation::Consent(c) => s.serialize_str(c.as_str()),
            Observation::Trait(v) => v.serialize(s),
        }
    }
}

/// Compact JSON, as serialized.
impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Observation::Count(n) => write!(f, "{n}"),
            Observation::Last(t) => write!(f, "\"{}\"", timestamp(*t).as_deref().unwrap_or("never")),
            Observation::Velocity {
                count,
                baseline_count,
                ratio,
            } => write!(
                f,
                "{{\"baseline_count\":{baseline_count},\"count\":{count},\"ratio\":{}}}",
                Rounded(*ratio)
            ),
            Observation::Score(v) => write!(f, "{}", Rounded(*v)),
            Observation::Member(m) => write!(f, "{m}"),
            Observation::Consent(c) => write!(f, "\"{}\"", c.as_str()),
            Observation::Trait(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Observation;
    use kairos_state::ConsentStatus;
    use serde_json::json;

    #[test]
    fn shown_as_the_json_it_serializes_to() {
        let cases = [
            (Observation::Count(3), json!(3)),
            (Observation::Last(Some(1_795_000_000)), json!("2026-11-18T11:06:40Z")),
            (Observation::Last(None), json!("never")),
            (
                Observation::Velocity {
                    count: 5,
                    baseline_count: 1,
                    ratio: 2.0 / 3.0,
                },
                json!({"baseline_count": 1, "count": 5, "ratio": 0.67}),
            ),
            (
                Observation::Velocity {
                    count: 2,
                    baseline_count: 0,
                    ratio: f64::INFINITY,
                },
                json!({"baseline_count": 0, "count": 2, "ratio": "infinite"}),
            ),
            (Observation::Score(2.0), json!(2.0)),
            (Observation::Score(0.125), json!(0.13)),
            (Observation::Member(true), json!(true)),
            (Observation::Consent(ConsentStatus::Bounced), json!("bounced")),
            (Observation::Trait(json!({"a": "b\"c"})), json!({"a": "b\"c"})),
        ];
        for (observation, expected) in cases {
            assert_eq!(observation.to_json(), expected);
            assert_eq!(observation.to_string(), expected.to_string());
        }
    }
}
