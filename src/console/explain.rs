//! Explanations (the rules crate's JSON form) as indented lines for a page.

use serde_json::Value;

/// One line of an explanation tree.
#[derive(Debug, Clone)]
pub struct Line {
    /// Nesting depth (0: the segment's rule).
    pub depth: usize,
    /// Whether the condition held.
    pub held: bool,
    /// The condition, observed value and threshold in words.
    pub text: String,
}

/// The explanation as lines; a plain string (an override's) is one line.
pub fn lines(explanation: &Value) -> Vec<Line> {
    let mut out = Vec::new();
    walk(explanation, 0, &mut out);
    out
}

fn walk(node: &Value, depth: usize, out: &mut Vec<Line>) {
    match node {
        Value::String(text) => out.push(Line {
            depth,
            held: true,
            text: text.clone(),
        }),
        Value::Object(map) => {
            let mut text = map.get("condition").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some(observed) = map.get("observed") {
                text.push_str(&format!("; observed {}", plain(observed)));
            }
            if let Some(threshold) = map.get("threshold").and_then(Value::as_str) {
                text.push_str(&format!(" against {threshold}"));
            }
            out.push(Line {
                depth,
                held: map.get("result").and_then(Value::as_bool).unwrap_or(false),
                text,
            });
            for child in map.get("children").and_then(Value::as_array).into_iter().flatten() {
                walk(child, depth + 1, out);
            }
        }
        Value::Null => {}
        other => out.push(Line {
            depth,
            held: true,
            text: plain(other),
        }),
    }
}

/// A JSON value in words: strings bare, objects as `key value` pairs.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k} {}", plain(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The conditions of an explanation tree alone, as indented lines: the rule as a readable sentence.
pub fn conditions(explanation: &Value) -> Vec<Line> {
    let mut out = Vec::new();
    conditions_of(explanation, 0, &mut out);
    out
}

fn conditions_of(node: &Value, depth: usize, out: &mut Vec<Line>) {
    if let Some(condition) = node.get("condition").and_then(Value::as_str) {
        out.push(Line {
            depth,
            held: true,
            text: condition.to_string(),
        });
    }
    for child in node.get("children").and_then(Value::as_array).into_iter().flatten() {
        conditions_of(child, depth + 1, out);
    }
}
