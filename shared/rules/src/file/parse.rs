//! Reading a rules file. Each score and segment is read on its own, so that a
//! structural problem in one (an unknown field, a value of the wrong type) is
//! reported with every other problem in the file, located by its segment.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{RuleIssue, RulesError};
use crate::file::RulesFile;

/// A rules file as read: what did not read stands in as a placeholder.
pub(crate) struct Parsed {
    pub file: RulesFile,
    /// The structural problems, in file order.
    pub issues: Vec<RuleIssue>,
    /// The placeholders: their path (`segments[3]`), and whether their id is
    /// the file's. What validation finds in them is not in the file, except
    /// about an id taken from it (a duplicate, a malformed one).
    pub placeholders: Vec<(String, bool)>,
}

impl Parsed {
    /// Whether an issue is about a placeholder rather than the file.
    pub fn in_placeholder(&self, issue: &RuleIssue) -> bool {
        self.placeholders
            .iter()
            .any(|(p, file_id)| match issue.path.strip_prefix(p.as_str()) {
                Some(".id") => !file_id,
                Some(rest) => rest.is_empty() || rest.starts_with('.'),
                None => false,
            })
    }

    /// Reads one item at `path`; if it does not read, records why and returns
    /// `stand_in` of its id (so that references to it still resolve).
    fn item<T: DeserializeOwned>(&mut self, item: Value, path: &str, segment: bool, stand_in: fn(Value) -> Value) -> T {
        let id = item.get("id").filter(|id| id.is_string()).cloned();
        let error = match serde_path_to_error::deserialize(item) {
            Ok(read) => return read,
            Err(e) => e,
        };
        let at = match error.path().to_string() {
            inner if inner == "." => path.to_string(),
            inner => format!("{path}.{inner}"),
        };
        self.issues.push(RuleIssue {
            segment: id
                .as_ref()
                .and_then(Value::as_str)
                .filter(|_| segment)
                .map(str::to_string),
            path: at,
            message: error.into_inner().to_string(),
        });
        self.placeholders.push((path.to_string(), id.is_some()));
        // Without an id of its own, one no reference can name: not a valid id.
        let id = id.unwrap_or_else(|| json!(format!("({path})")));
        serde_json::from_value(stand_in(id)).expect("placeholders read")
    }
}

/// The file's top level, its items still unread.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rules file: `segments`, and optional `scores`, `sending` and `sequences`"
)]
struct Items {
    #[serde(default)]
    scores: Vec<Value>,
    segments: Vec<Value>,
    #[serde(default)]
    sending: Option<Value>,
    #[serde(default)]
    sequences: Vec<Value>,
}

/// Reads a rules file (YAML; JSON is valid YAML). Fails only when the text is
/// not YAML or its top level is not a rules file.
pub(crate) fn parse(text: &str) -> Result<Parsed, RulesError> {
    let syntax = |path: String, message: String| {
        RulesError::Syntax(RuleIssue {
            segment: None,
            path,
            message,
        })
    };
    // Through a JSON value, so YAML and JSON files read exactly alike.
    let value = crate::file::yaml::read(text).map_err(|e| {
        let at = e.path().to_string();
        // The YAML reader's message starts with the path, when it has one.
        let message = e.into_inner().to_string();
        match message.strip_prefix(&format!("{at}: ")) {
            Some(rest) => syntax(at, rest.to_string()),
            None => syntax("(file)".into(), message),
        }
    })?;
    let items: Items = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        syntax(path, e.into_inner().to_string())
    })?;
    let mut parsed = Parsed {
        file: RulesFile {
            scores: Vec::new(),
            segments: Vec::new(),
            sending: None,
            sequences: Vec::new(),
        },
        issues: Vec::new(),
        placeholders: Vec::new(),
    };
    for (i, item) in items.scores.into_iter().enumerate() {
        let stand_in = |id| json!({"id": id, "half_life": "1d", "terms": []});
        let score = parsed.item(item, &format!("scores[{i}]"), false, stand_in);
        parsed.file.scores.push(score);
    }
    for (i, item) in items.segments.into_iter().enumerate() {
        let stand_in = |id| json!({"id": id, "name": "-", "rule": {"consent": "subscribed"}});
        let segment = parsed.item(item, &format!("segments[{i}]"), true, stand_in);
        parsed.file.segments.push(segment);
    }
    if let Some(sending) = items.sending {
        let stand_in = |_| json!({});
        parsed.file.sending = Some(parsed.item(sending, "sending", false, stand_in));
    }
    for (i, item) in items.sequences.into_iter().enumerate() {
        let stand_in = |id| {
            let step = json!({"id": "-", "content": [{"variant": "-", "template": "-"}]});
            json!({"id": id, "name": "-", "entry": {"consent": "subscribed"}, "steps": [step]})
        };
        let sequence = parsed.item(item, &format!("sequences[{i}]"), false, stand_in);
        parsed.file.sequences.push(sequence);
    }
    Ok(parsed)
}
