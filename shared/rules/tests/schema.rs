//! The committed JSON Schema, as an editor uses it: it accepts every rules
//! example of the guide and the demo's rules file, and flags misspelled
//! values that validation rejects.

use kairos_rules::RuleSet;
use serde_json::{json, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(format!("{ROOT}/shared/rules/rules.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// YAML as the rules reader reads it, merge keys applied.
fn yaml(text: &str) -> Value {
    let mut value: serde_norway::Value = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    value.apply_merge().unwrap();
    serde_json::to_value(value).unwrap()
}

fn one_segment(rule: Value) -> Value {
    json!({"segments": [{"id": "example", "name": "Example", "rule": rule}]})
}

/// The guide's YAML examples, as rules files: whole files as they are; a
/// condition in a segment of its own; a block of one-line conditions (each a
/// way to write it) as one file each.
fn guide_examples() -> Vec<Value> {
    let guide = std::fs::read_to_string(format!("{ROOT}/docs/rules.md")).unwrap();
    let mut out = Vec::new();
    for block in guide.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        if block.starts_with("segments:") || block.starts_with("scores:") {
            // A whole file: it compiles too.
            RuleSet::from_yaml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            out.push(yaml(block));
        } else if block.lines().all(|l| !l.starts_with(' ')) {
            out.extend(
                block
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| one_segment(yaml(l))),
            );
        } else {
            out.push(one_segment(yaml(block)));
        }
    }
    out
}

#[test]
fn the_schema_accepts_the_guide_and_demo_rules() {
    let schema = validator();
    let examples = guide_examples();
    assert!(examples.len() >= 12, "{}", examples.len());
    let demo = std::fs::read_to_string(format!("{ROOT}/rules/segments.yaml")).unwrap();
    RuleSet::from_yaml(&demo).unwrap();
    for example in examples.iter().chain([&yaml(&demo)]) {
        if let Err(e) = schema.validate(example) {
            panic!("{e} at {}\n{example:#}", e.instance_path());
        }
    }
}

#[test]
fn the_schema_flags_misspelled_values() {
    let schema = validator();
    let wrong = [
        json!({"event": {"type": "email.open", "within": "1d"}}),
        json!({"event": {"type": "email.opened", "within": "24 hours"}}),
        json!({"event": {"type": "email.opened", "within": "0d"}}),
        json!({"event": {"type": "email.opened", "within": "1d", "machine": "sometimes"}}),
        json!({"last": {"type": "email.opened", "not_within": "1 month"}}),
        json!({"consent": "subscribd"}),
        json!({"consent": []}),
        json!({"all": []}),
        json!({"segment": "Bad Id"}),
        json!({"sequence": {"steps": [{"type": "page.viewed"}], "within": "1h"}}),
    ];
    for rule in wrong {
        let file = one_segment(rule.clone());
        assert!(!schema.is_valid(&file), "accepted {rule}");
        assert!(RuleSet::from_yaml(&file.to_string()).is_err(), "{rule}");
    }
    let fine = one_segment(json!({"event": {"type": "email.opened", "within": " 30m ", "machine": null}}));
    assert!(schema.is_valid(&fine));
    assert!(RuleSet::from_yaml(&fine.to_string()).is_ok());
}
