//! Marketer-owned segment rules: parsed from YAML or JSON, validated with
//! errors that name the segment and the field path, compiled once into an
//! immutable [`RuleSet`] and evaluated many times over a contact's state.
//!
//! Main types: [`RuleSet`] (the compiled, `Send + Sync` rules), [`Evaluation`]
//! (membership, explanations and `next_change_at`), [`RulesError`].
//! Pure: no I/O, deterministic given (state, events, now).
//!
//! ```
//! use kairos_event::Event;
//! use kairos_rules::RuleSet;
//! use kairos_state::ContactState;
//!
//! let rules = RuleSet::from_yaml(r#"
//! segments:
//!   - id: pricing-intent
//!     name: Pricing intent
//!     rule:
//!       event: { type: page.viewed, where: { url: { contains: /pricing } }, within: 24h }
//! "#).unwrap();
//! let event = Event::from_json(br#"{"id":"e1","contact":"u1","type":"page.viewed",
//!     "at":"2026-11-27T10:00:00Z","source":"web","url":"https://x.test/pricing"}"#).unwrap();
//! let now = event.at.timestamp();
//! let mut state = ContactState::default();
//! state.apply(&event, &rules.signals_for(&event), now);
//! let evaluation = rules.evaluate(&state, now);
//! assert_eq!(evaluation.members().collect::<Vec<_>>(), ["pricing-intent"]);
//! assert_eq!(evaluation.next_change_at, Some(now + 24 * 3600));
//! ```

// The phases, each reading only those before it: a rules file is read
// (`file`), compiled (`compile`), evaluated (`evaluate`) and explained
// (`explain`). This root ties them together and re-exports the public items.
mod compile;
mod error;
mod evaluate;
mod explain;
mod file;

pub use compile::sending::{
    Cap, Cond, Content, Exit, Holdout, Learning, QuietHours, Sending, Sequence, Step, DEFAULT_ATTRIBUTION_SECS,
    DEFAULT_EXPLORATION, DEFAULT_MIN_SENDS,
};
pub use compile::{RuleSet, SegmentInfo};
pub use error::{RuleIssue, RulesError};
pub use evaluate::{Decisions, Delta};
pub use explain::{Evaluation, Explanation, Observation, Verdict};
pub use file::duration::{format_secs, parse_duration};
pub use file::sending::{
    ChannelCapDef, ContentDef, ExitDef, HoldoutDef, LearningDef, QuietHoursDef, SendSequenceDef, SendingDef,
    SequenceCapDef, StepDef,
};
pub use file::yaml::read as read_yaml;
pub use file::{
    BoundsDef, Condition, ConsentDef, CountDef, EventDef, FilterDef, LastDef, MatcherDef, Purpose, RulesFile,
    ScoreBoundDef, ScoreDef, SegmentDef, SequenceDef, TermDef, VelocityDef,
};

impl RuleSet {
    /// Parses, validates and compiles a rules file (YAML; JSON is valid YAML).
    pub fn from_yaml(text: &str) -> Result<RuleSet, RulesError> {
        let mut parsed = file::parse::parse(text)?;
        let compiled = RuleSet::compile(&parsed.file);
        if parsed.issues.is_empty() {
            return compiled;
        }
        let found = compiled.err().map(|e| e.issues()).unwrap_or_default();
        let mut issues = std::mem::take(&mut parsed.issues);
        issues.extend(found.into_iter().filter(|i| !parsed.in_placeholder(i)));
        Err(RulesError::invalid(issues))
    }

    /// Validates and compiles an already-parsed rules file: the compiled form,
    /// then each segment's answer on an empty state (decided once here) and
    /// its conditions in words (written once here, read by every explanation).
    pub fn compile(file: &RulesFile) -> Result<RuleSet, RulesError> {
        let mut rules = RuleSet::build(file)?;
        let blank = rules.blank_answers();
        rules.index.set_blank(&blank);
        for i in 0..rules.segments.len() {
            let mut texts = Vec::new();
            rules.leaf_texts(&rules.segments[i].rule, &mut texts);
            rules.segments[i].texts = texts;
        }
        Ok(rules)
    }

    /// The JSON Schema of the rules file, for editors (generated from the Rust types).
    pub fn json_schema() -> serde_json::Value {
        // Draft 7: the draft editors' YAML plugins (yaml-language-server) support best.
        let generator = schemars::generate::SchemaSettings::draft07().into_generator();
        serde_json::to_value(generator.into_root_schema_for::<RulesFile>()).expect("schemas serialize")
    }
}

#[cfg(test)]
mod governance_tests;
#[cfg(test)]
mod tests;
