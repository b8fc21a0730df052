use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A contact trait's value, in a form the compact state encoding can hold.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub enum TraitValue {
    /// JSON null: the trait was cleared.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// An array or object, kept as its JSON text.
    Json(String),
}

impl TraitValue {
    /// Converts a JSON value.
    pub fn from_json(value: &Value) -> TraitValue {
        match value {
            Value::Null => TraitValue::Null,
            Value::Bool(b) => TraitValue::Bool(*b),
            Value::Number(n) => TraitValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => TraitValue::Text(s.clone()),
            other => TraitValue::Json(other.to_string()),
        }
    }

    /// Converts back to JSON (for explanations).
    pub fn to_json(&self) -> Value {
        match self {
            TraitValue::Null => Value::Null,
            TraitValue::Bool(b) => Value::Bool(*b),
            TraitValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(*n as i64),
            TraitValue::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            TraitValue::Text(s) => Value::String(s.clone()),
            TraitValue::Json(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        }
    }
}
