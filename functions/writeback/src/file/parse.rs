//! Reading a destinations file: `${VARIABLE}` references replaced, the YAML
//! read strictly (the rules file's reader), each destination read by its kind
//! and checked, every problem kept with its path.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

use super::{DestinationDef, DestinationsFile, Segments, Spec};

/// A destination name or segment id.
pub(crate) const NAME: &str = "^[a-z0-9_-]{1,64}$";
/// An SSM parameter name: absolute, so a secret pasted in its place is refused.
pub(crate) const PARAMETER: &str = r"^/[A-Za-z0-9_.\-/]{1,2047}$";
/// An http(s) URL.
pub(crate) const URL: &str = r"^https?://[^\s/]+[^\s]*$";

/// One problem, located by its path (`destinations[1].mapping.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `destinations[0].segments[2]`, or `line 4` before parsing.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a destinations file is unusable: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} in destinations file:\n{}", count(.0.len()), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct FileError(pub Vec<Problem>);

fn count(n: usize) -> String {
    format!("{n} problem{}", if n == 1 { "" } else { "s" })
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Replaces `${NAME}` with the variable's value and `${NAME:-default}` with
/// the value or the default; `$$` is a `$`. Comment lines (starting with
/// `#`) are left as they are. Every unset variable without a default is a
/// problem naming its line.
pub fn interpolate(text: &str, var: impl Fn(&str) -> Option<String>) -> Result<String, FileError> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$$") {
                out.push('$');
                rest = after;
            } else if let Some((inner, after)) = tail.strip_prefix("${").and_then(|t| t.split_once('}')) {
                let (name, default) = match inner.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (inner, None),
                };
                match var(name).filter(|v| !v.is_empty()).or(default.map(str::to_string)) {
                    Some(value) => out.push_str(&value),
                    None => problems.push(problem(
                        format!("line {}", n + 1),
                        format!(
                            "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
                        ),
                    )),
                }
                rest = after;
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(FileError(problems)),
    }
}

/// Reads a destinations file (YAML or JSON, variables already replaced).
/// With `segments` (the ids of a rules file), unknown segment ids are problems.
pub fn parse(text: &str, segments: Option<&[&str]>) -> Result<DestinationsFile, FileError> {
    let value = kairos_rules::read_yaml(text).map_err(|e| {
        let at = e.path().to_string();
        let message = e.into_inner().to_string();
        let message = message
            .strip_prefix(&format!("{at}: "))
            .map(str::to_string)
            .unwrap_or(message);
        FileError(vec![problem(if at == "." { "(file)".into() } else { at }, message)])
    })?;
    let items = match value {
        Value::Object(mut top) => {
            let extra: Vec<String> = top.keys().filter(|k| *k != "destinations").cloned().collect();
            if let Some(key) = extra.first() {
                return Err(FileError(vec![problem(
                    key.clone(),
                    "unknown field, expected `destinations`",
                )]));
            }
            match top.remove("destinations") {
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(FileError(vec![problem(
                        "destinations",
                        "expected a list of destinations",
                    )]))
                }
                None => return Err(FileError(vec![problem("(file)", "missing field `destinations`")])),
            }
        }
        _ => return Err(FileError(vec![problem("(file)", "expected a map with `destinations`")])),
    };
    let mut problems = Vec::new();
    if items.is_empty() {
        problems.push(problem("destinations", "expected at least one destination"));
    }
    let mut destinations = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(def) = read_item(item, &format!("destinations[{i}]"), &mut problems) {
            destinations.push(def);
        }
    }
    for (i, def) in destinations.iter().enumerate() {
        super::parse_checks::check(def, i, &destinations, segments, &mut problems);
    }
    match problems.is_empty() {
        true => Ok(DestinationsFile { destinations }),
        false => Err(FileError(problems)),
    }
}

/// Reads one destination by its `kind`; a problem is recorded if it does not read.
fn read_item(item: Value, path: &str, problems: &mut Vec<Problem>) -> Option<DestinationDef> {
    let Value::Object(mut map) = item else {
        problems.push(problem(
            path,
            "expected a destination (a map with name, kind, segments, credentials, mapping)",
        ));
        return None;
    };
    let kind = map.remove("kind");
    let value = Value::Object(map);
    let def = match kind.as_ref().and_then(Value::as_str) {
        Some("webhook") => spec(value, path, problems).map(DestinationDef::Webhook),
        Some("hubspot") => spec(value, path, problems).map(DestinationDef::Hubspot),
        Some("salesforce") => spec(value, path, problems).map(DestinationDef::Salesforce),
        Some("pipedrive") => spec(value, path, problems).map(DestinationDef::Pipedrive),
        _ => {
            let found = kind.map_or("nothing".into(), |k| k.to_string());
            problems.push(problem(
                format!("{path}.kind"),
                format!("expected one of webhook, hubspot, salesforce, pipedrive; found {found}"),
            ));
            None
        }
    };
    def
}

fn spec<C: DeserializeOwned, M: DeserializeOwned>(
    value: Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Spec<C, M>> {
    match serde_path_to_error::deserialize(value) {
        Ok(spec) => Some(spec),
        Err(e) => {
            let at = match e.path().to_string() {
                inner if inner == "." => path.to_string(),
                inner => format!("{path}.{inner}"),
            };
            problems.push(problem(at, e.into_inner().to_string()));
            None
        }
    }
}

impl<'de> Deserialize<'de> for Segments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Segments, D::Error> {
        let expected = "expected `all` or a list of segment ids";
        match Value::deserialize(d)? {
            Value::String(s) if s == "all" => Ok(Segments::All),
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(id) => Ok(id),
                    other => Err(serde::de::Error::custom(format!("{expected}, found {other}"))),
                })
                .collect::<Result<_, _>>()
                .map(Segments::Only),
            other => Err(serde::de::Error::custom(format!("{expected}, found {other}"))),
        }
    }
}

impl JsonSchema for Segments {
    fn schema_name() -> Cow<'static, str> {
        "Segments".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`all`, or the ids of the segments this destination receives.",
            "oneOf": [
                { "const": "all" },
                { "type": "array", "minItems": 1, "uniqueItems": true, "items": { "type": "string", "pattern": NAME } }
            ]
        })
    }
}

/// The JSON Schema of destinations files, for editors and for the committed
/// `destinations.schema.json`.
pub(crate) fn json_schema() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<DestinationsFile>();
    schema.insert("title".into(), "Kairos destinations file".into());
    schema.to_value()
}
