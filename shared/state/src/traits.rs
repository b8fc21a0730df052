use kairos_event::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ContactState, MAX_TRAITS, MAX_TRAIT_NAME_BYTES, MAX_TRAIT_VALUE_BYTES};

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

impl TraitValue {
    /// The bytes its text takes (a string, or an array or object as JSON).
    fn text_len(&self) -> usize {
        match self {
            TraitValue::Text(s) | TraitValue::Json(s) => s.len(),
            _ => 0,
        }
    }
}

/// Whether a trait can be stored: its name and value within
/// [`MAX_TRAIT_NAME_BYTES`] and [`MAX_TRAIT_VALUE_BYTES`].
fn storable(name: &str, value: &TraitValue) -> bool {
    name.len() <= MAX_TRAIT_NAME_BYTES && value.text_len() <= MAX_TRAIT_VALUE_BYTES
}

/// The names of the traits of `event` that are too long to be stored.
pub fn refused_traits(event: &Event) -> impl Iterator<Item = &str> {
    let traits = event.traits.iter();
    traits
        .filter(|(name, value)| !storable(name, &TraitValue::from_json(value)))
        .map(|(name, _)| name.as_str())
}

impl ContactState {
    pub(crate) fn set_traits(&mut self, event: &Event, at: i64) -> bool {
        let mut changed = false;
        for (name, value) in &event.traits {
            changed |= self.set_trait(name, at, TraitValue::from_json(value));
        }
        changed
    }

    /// Sets a trait unless a later value (or, at the same time, a larger one)
    /// is set, or it is too long to store; returns whether it did. Past
    /// [`MAX_TRAITS`], the least recently set trait (the smallest name among
    /// equals) is dropped, which may be this one: the kept set is the same in
    /// any order of arrival.
    pub(crate) fn set_trait(&mut self, name: &str, at: i64, value: TraitValue) -> bool {
        if !storable(name, &value) {
            return false;
        }
        let newer = match self.traits.get(name) {
            None => true,
            Some((old_at, old)) => (at, &value) > (*old_at, old),
        };
        if !newer {
            return false;
        }
        self.traits.insert(name.to_string(), (at, value));
        if self.traits.len() > MAX_TRAITS {
            return self.drop_oldest_traits(1) != Some(name.to_string());
        }
        true
    }

    /// Drops the `n` least recently set traits; returns the name of the last dropped.
    pub(crate) fn drop_oldest_traits(&mut self, n: usize) -> Option<String> {
        let mut by_age: Vec<(i64, String)> = self.traits.iter().map(|(name, (at, _))| (*at, name.clone())).collect();
        by_age.sort_unstable();
        let mut last = None;
        for (_, name) in by_age.into_iter().take(n) {
            self.traits.remove(&name);
            last = Some(name);
        }
        last
    }
}
