//! Segment purpose, the kill switch, and the consent-condition warning.

use crate::{Purpose, RuleSet};

const TWO: &str = "segments:
  - id: news
    name: Newsletter
    rule: { event: { type: email.opened, within: 7d } }
  - id: suppress
    name: Suppression
    purpose: operational
    paused: true
    rule: { consent: [unsubscribed, bounced] }
  - id: consented
    name: Consented openers
    rule: { all: [ { segment: news }, { consent: subscribed } ] }
";

#[test]
fn purpose_defaults_to_marketing_and_paused_to_false() {
    let rules = RuleSet::from_yaml(TWO).unwrap();
    let got: Vec<(&str, Purpose, bool)> = rules.segments().map(|s| (s.id, s.purpose, s.paused)).collect();
    assert_eq!(
        got,
        [
            ("news", Purpose::Marketing, false),
            ("suppress", Purpose::Operational, true),
            ("consented", Purpose::Marketing, false)
        ]
    );
    assert!(rules.is_marketing(0) && !rules.is_marketing(1));
    assert!(rules.is_paused(1) && !rules.is_paused(0));
    assert_eq!(rules.segment_index("consented"), Some(2));
    assert_eq!(rules.segment_index("nope"), None);
}

#[test]
fn an_unknown_purpose_or_a_non_boolean_paused_is_refused_naming_the_field() {
    let bad = TWO.replace("purpose: operational", "purpose: sales");
    let err = RuleSet::from_yaml(&bad).unwrap_err().to_string();
    assert!(err.contains("segments[1].purpose"), "{err}");
    assert!(err.contains("marketing") && err.contains("operational"), "{err}");
    let bad = TWO.replace("paused: true", "paused: sometimes");
    let err = RuleSet::from_yaml(&bad).unwrap_err().to_string();
    assert!(err.contains("segments[1].paused"), "{err}");
}

#[test]
fn pausing_keeps_the_rule_version_but_changes_the_fingerprint() {
    let paused = RuleSet::from_yaml(TWO).unwrap();
    let resumed = RuleSet::from_yaml(&TWO.replace("    paused: true\n", "")).unwrap();
    let version = |r: &RuleSet| r.segments().nth(1).unwrap().version.to_string();
    assert_eq!(version(&paused), version(&resumed));
    // A changed fingerprint decides every contact in full: resuming writes the current answers.
    assert_ne!(paused.fingerprint(), resumed.fingerprint());
}

#[test]
fn defaults_left_out_keep_existing_versions_and_fingerprints() {
    let implicit = RuleSet::from_yaml(TWO).unwrap();
    let explicit = RuleSet::from_yaml(&TWO.replace(
        "    name: Newsletter\n",
        "    name: Newsletter\n    purpose: marketing\n    paused: false\n",
    ))
    .unwrap();
    assert_eq!(implicit.fingerprint(), explicit.fingerprint());
    let first = |r: &RuleSet| r.segments().next().unwrap().version.to_string();
    assert_eq!(first(&implicit), first(&explicit));
}

#[test]
fn warns_about_marketing_segments_without_a_consent_condition() {
    let rules = RuleSet::from_yaml(TWO).unwrap();
    let warnings = rules.warnings();
    // `news` reads no consent; `suppress` is operational; `consented` reads it.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].segment.as_deref(), Some("news"));
    assert!(warnings[0].message.contains("consent: subscribed"));
}
