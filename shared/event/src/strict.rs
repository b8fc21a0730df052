//! Strict JSON: a key given twice in an object is an error, never silently
//! "the last one wins" (serde_json's default).
//!
//! [`parse`] reads a whole document and reports every duplicate with its path,
//! so a caller can refuse only the batch item that holds one ([`Document::item_duplicate`]);
//! [`Event`](crate::Event) reads its `properties` and `traits` the same way and
//! refuses a duplicate outright. Every ingest route, `kairos replay` and the
//! evaluate stage read events through this module.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Most duplicates recorded for one document (the first of each item is what counts).
const MAX_RECORDED: usize = 1024;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Where a key was given twice: the path of the object, then the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The steps from the document's top to the repeated key (the key last).
    pub path: Vec<Step>,
}

impl Duplicate {
    /// The path below the first `depth` steps, as text (`properties.plan`, `items[2].sku`).
    pub fn below(&self, depth: usize) -> String {
        let mut out = String::new();
        for step in self.path.iter().skip(depth) {
            match step {
                Step::Key(key) if out.is_empty() => out.push_str(key),
                Step::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The error text for this duplicate, naming the path below `depth` steps.
    pub fn message(&self, depth: usize) -> String {
        format!("duplicate key `{}`: a key may be given only once", self.below(depth))
    }
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(0))
    }
}

/// A document read by [`parse`]: its value (the first of each repeated key)
/// and every duplicate found, in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The value.
    pub value: Value,
    /// The keys given twice, with their paths.
    pub duplicates: Vec<Duplicate>,
}

impl Document {
    /// The first duplicate whose path starts with `prefix` (the steps to an item), if any.
    pub fn item_duplicate(&self, prefix: &[Step]) -> Option<&Duplicate> {
        self.duplicates.iter().find(|d| d.path.starts_with(prefix))
    }

    /// The first duplicate within the top `depth` levels (a duplicate of the
    /// envelope itself rather than of an item), if any.
    pub fn shallow_duplicate(&self, depth: usize) -> Option<&Duplicate> {
        self.duplicates.iter().find(|d| d.path.len() <= depth)
    }
}

/// Reads JSON bytes, recording every key given twice.
pub fn parse(bytes: &[u8]) -> Result<Document, serde_json::Error> {
    let mut found = Vec::new();
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = Seed {
        at: None,
        found: &mut found,
    }
    .deserialize(&mut json)?;
    json.end()?;
    Ok(Document {
        value,
        duplicates: found,
    })
}

/// `deserialize_with` for an object field: refuses any key given twice, at
/// any depth, naming it from `field` (`properties.plan`).
pub(crate) fn object<'de, D: Deserializer<'de>>(field: &'static str, d: D) -> Result<Map<String, Value>, D::Error> {
    let mut found = Vec::new();
    let root = Node {
        step: StepRef::Key(field),
        parent: None,
    };
    let value = Seed {
        at: Some(&root),
        found: &mut found,
    }
    .deserialize(d)?;
    if let Some(first) = found.first() {
        return Err(D::Error::custom(first.message(0)));
    }
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(D::Error::custom(format!(
            "invalid type: {}, expected an object",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A step of the path being read, borrowed (materialized only for a duplicate).
#[derive(Clone, Copy)]
enum StepRef<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path so far: a chain of steps up to the top.
struct Node<'a> {
    step: StepRef<'a>,
    parent: Option<&'a Node<'a>>,
}

impl Node<'_> {
    fn path(&self, key: &str) -> Vec<Step> {
        let mut steps = vec![Step::Key(key.to_string())];
        let mut at = Some(self);
        while let Some(node) = at {
            steps.push(match node.step {
                StepRef::Key(k) => Step::Key(k.to_string()),
                StepRef::Index(i) => Step::Index(i),
            });
            at = node.parent;
        }
        steps.reverse();
        steps
    }
}

/// Reads one value at `at`, recording duplicates into `found`.
struct Seed<'a, 'f> {
    at: Option<&'a Node<'a>>,
    found: &'f mut Vec<Duplicate>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let node = Node {
                step: StepRef::Index(items.len()),
                parent: self.at,
            };
            let seed = Seed {
                at: Some(&node),
                found: &mut *self.found,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let node = Node {
                step: StepRef::Key(&key),
                parent: self.at,
            };
            let seed = Seed {
                at: Some(&node),
                found: &mut *self.found,
            };
            let value = access.next_value_seed(seed)?;
            if map.contains_key(&key) {
                if self.found.len() < MAX_RECORDED {
                    let path = match self.at {
                        Some(parent) => parent.path(&key),
                        None => vec![Step::Key(key)],
                    };
                    self.found.push(Duplicate { path });
                }
            } else {
                map.insert(key, value);
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_at_any_depth_with_their_paths() {
        let doc = parse(br#"[{"email":"a@x.test","email":"b@x.test"},{"ok":1},{"p":{"q":[{"r":1,"r":2}]}}]"#).unwrap();
        let texts: Vec<String> = doc.duplicates.iter().map(|d| d.below(0)).collect();
        assert_eq!(texts, ["[0].email", "[2].p.q[0].r"]);
        assert_eq!(doc.value[0]["email"], "a@x.test", "the first value is kept");
        assert!(doc.item_duplicate(&[Step::Index(1)]).is_none());
        let item = doc.item_duplicate(&[Step::Index(0)]).unwrap();
        assert_eq!(item.message(1), "duplicate key `email`: a key may be given only once");
        assert!(doc.shallow_duplicate(1).is_none());
    }

    #[test]
    fn a_plain_document_reads_as_serde_json_does() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        let doc = parse(text).unwrap();
        assert_eq!(doc.value, serde_json::from_slice::<Value>(text).unwrap());
        assert!(doc.duplicates.is_empty());
        assert!(parse(b"{} x").is_err(), "trailing characters");
        assert!(parse(b"{\"a\":").is_err());
    }
}
