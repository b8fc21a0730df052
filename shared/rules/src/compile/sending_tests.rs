use crate::RuleSet;

const HEAD: &str = "segments:\n  - { id: s, name: S, rule: { consent: subscribed } }\n";

fn problems(tail: &str) -> Vec<String> {
    match RuleSet::from_yaml(&format!("{HEAD}{tail}")) {
        Ok(_) => Vec::new(),
        Err(e) => e.issues().into_iter().map(|i| i.to_string()).collect(),
    }
}

#[test]
fn a_valid_sequence_compiles_with_defaults() {
    let rules = RuleSet::from_yaml(&format!(
        "{HEAD}sequences:\n  - id: q\n    name: Q\n    entry: {{ segment: s }}\n    steps:\n      - {{ id: one, content: [ {{ variant: a, template: t-a }} ] }}\n"
    ))
    .unwrap();
    let seq = &rules.sequences()[0];
    assert_eq!(
        (seq.channel.as_str(), seq.priority, seq.steps[0].wait_secs),
        ("email", 0, 0)
    );
    assert_eq!(rules.sending().learning.min_sends, crate::DEFAULT_MIN_SENDS);
    assert_eq!(rules.content_of_template("t-a"), Some((0, 0, 0)));
    assert_eq!(seq.entry.text, r#"{"segment":"s"}"#);
}

#[test]
fn every_problem_is_named_with_its_path() {
    let found = problems(
        r#"sending:
  caps: [ { max: 0, per: 7x } ]
  quiet_hours: { from: "25:00", to: "08:00", default_zone: Mars/Olympus }
  holdout: { percent: 120, salt: "" }
  learning: { exploration: 2 }
sequences:
  - id: Bad Id
    name: ""
    entry: { segment: nope }
    exits: [ { segment_exit: gone } ]
    steps:
      - id: one
        wait: soon
        variant: random
        content: [ { variant: a, template: t1 }, { variant: a, template: t1 } ]
  - id: other
    name: Other
    entry: { consent: subscribed }
    steps: [ { id: x, content: [ { variant: a, template: t1 } ] } ]
"#,
    );
    let expect = [
        "sending.caps[0].max: expected at least 1 send",
        "sending.caps[0].per: expected a duration",
        "sending.quiet_hours.from: expected a local time `HH:MM` (24-hour), found `25:00`",
        "sending.quiet_hours.default_zone: expected an IANA time zone",
        "sending.holdout.percent: expected a percentage from 0 to 100",
        "sending.holdout.salt: expected a non-empty salt",
        "sending.learning.exploration: expected a probability from 0 to 1",
        "sequences[0].id: expected 1-64 characters",
        "sequences[0].name: expected a non-empty name",
        "sequences[0].entry.segment: unknown segment `nope`",
        "sequences[0].exits[0].segment_exit: unknown segment `gone`",
        "sequences[0].steps[0].wait: expected a duration",
        "sequences[0].steps[0].content[1].variant: duplicate variant `a`",
        "sequences[0].steps[0].content[1].template: template `t1` is already used",
        "sequences[0].steps[0].variant: expected `learn` or `fixed`, found `random`",
        "sequences[1].steps[0].content[0].template: template `t1` is already used by sequence `Bad Id` step `one`",
    ];
    for e in expect {
        assert!(found.iter().any(|f| f.starts_with(e)), "missing {e:?} in {found:#?}");
    }
}

#[test]
fn a_structural_problem_in_a_sequence_is_located() {
    let found = problems("sequences:\n  - { id: q, name: Q, entry: { consent: subscribed }, steps: [ { id: a, content: [], colour: red } ] }\n");
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("sequences[0].steps[0]") && f.contains("colour")),
        "{found:#?}"
    );
}

#[test]
fn the_demo_rules_have_the_three_example_sequences() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/segments.yaml")).unwrap();
    let rules = RuleSet::from_yaml(&text).unwrap();
    let ids: Vec<&str> = rules.sequences().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["pricing-intent", "onboarding", "re-engagement"]);
}
