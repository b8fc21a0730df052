//! A rules file's text as a JSON value, read strictly: a key given twice in
//! one map is an error (YAML requires unique keys; otherwise the last one
//! would silently win), as are `.inf` and `.nan` (no JSON number); an integer
//! too large for 64 bits reads as a float, so the field that cannot hold it
//! reports it where it is. Anchors, aliases and merge keys (`<<: *defaults`)
//! work as in YAML.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::fmt;

/// Reads YAML (JSON is YAML) into a JSON value; the error's path says where.
/// Other Kairos files (the write-back destinations file) are read with it too.
pub fn read(text: &str) -> Result<Value, serde_path_to_error::Error<serde_norway::Error>> {
    serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text)).map(|Strict(v)| v)
}

/// YAML's merge key.
const MERGE: &str = "<<";

/// A JSON value read with the checks above.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Value, E> {
        float(n as f64)
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value, E> {
        float(n as f64)
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        float(x)
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|Strict(v)| v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut merged = None;
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            let twice = match key == MERGE {
                true => merged.replace(value).is_some(),
                false => out.insert(key.clone(), value).is_some(),
            };
            if twice {
                return Err(de::Error::custom(format!("`{key}` is given twice")));
            }
        }
        // A merge key's maps (`<<: *defaults`, or a list of them, earlier
        // ones first) add the keys the map does not give itself.
        let maps = match merged {
            None => Vec::new(),
            Some(Value::Array(list)) => list,
            Some(one) => vec![one],
        };
        for m in maps {
            let Value::Object(m) = m else {
                return Err(de::Error::custom("`<<` merges a map or a list of maps"));
            };
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
        Ok(Value::Object(out))
    }
}

/// A float as JSON. YAML's `.inf` and `.nan` are errors: JSON has no such
/// number, and no rule needs one.
fn float<E: de::Error>(x: f64) -> Result<Value, E> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| E::custom(format!("`{x}` is not a finite number")))
}

#[cfg(test)]
mod tests {
    use super::read;
    use serde_json::json;

    #[test]
    fn a_key_given_twice_is_an_error_where_it_is() {
        let err = read("segments:\n  - id: a\n    rule: {event: {type: email.opened, within: 1d, within: 5d}}\n")
            .unwrap_err();
        assert_eq!(err.path().to_string(), "segments[0].rule.event");
        assert!(err.inner().to_string().contains("`within` is given twice"), "{err}");
    }

    #[test]
    fn merge_keys_add_what_the_map_does_not_give() {
        let text = "base: &base { type: page.viewed, within: 1d }\nmore: &more { machine: include, within: 2d }\n\
                    one: { <<: *base, within: 7d }\nmany: { <<: [*more, *base], count: 2 }\n";
        let v = read(text).unwrap();
        assert_eq!(v["one"], json!({"type": "page.viewed", "within": "7d"}));
        assert_eq!(
            v["many"],
            json!({"type": "page.viewed", "machine": "include", "within": "2d", "count": 2})
        );
        let err = read("a: { <<: 5 }\n").unwrap_err();
        assert!(err.to_string().contains("`<<` merges a map or a list of maps"), "{err}");
        let err = read("b: &b { x: 1 }\na: { <<: *b, <<: { y: 2 } }\n").unwrap_err();
        assert!(err.to_string().contains("`<<` is given twice"), "{err}");
    }

    #[test]
    fn values_read_as_json_and_huge_integers_as_floats() {
        let v = read("a: [1, -2, 2.5, true, null, x, 18446744073709551616]\nb: {c: ~}\n").unwrap();
        assert_eq!(
            v,
            json!({"a": [1, -2, 2.5, true, null, "x", 18446744073709551616.0], "b": {"c": null}})
        );
        for not_finite in [".inf", "-.inf", ".nan"] {
            let err = read(&format!("a: {{ gte: {not_finite} }}\n")).unwrap_err();
            assert_eq!(err.path().to_string(), "a.gte");
            assert!(err.to_string().contains("is not a finite number"), "{err}");
        }
    }
}
