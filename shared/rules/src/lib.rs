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

mod compile;
mod duration;
mod error;
mod eval;
mod explain;
mod file;
mod graph;
mod group;
mod hold;
mod ids;
mod leaves;
mod matcher;
mod observation;
mod parse;
mod polarity;
mod schema;
mod score;
mod segset;
mod trigger;
mod yaml;

pub use duration::{format_secs, parse_duration};
pub use error::{RuleIssue, RulesError};
pub use eval::{Decisions, Delta, Evaluation, Verdict};
pub use explain::Explanation;
pub use file::{
    BoundsDef, Condition, ConsentDef, CountDef, EventDef, FilterDef, LastDef, MatcherDef, RulesFile, ScoreBoundDef,
    ScoreDef, SegmentDef, SequenceDef, TermDef, VelocityDef,
};
pub use observation::Observation;
pub use yaml::read as read_yaml;

use compile::{Compiler, CountOp};
use graph::Reads;
use group::Group;
use kairos_event::Event;
use kairos_state::{ConsentStatus, SignalKey};
use matcher::{Bound, Filter, Matcher};
use score::Score;
use sha2::{Digest, Sha256};
use trigger::{Bits, Index};

/// What a decision records in the state beside the memberships (deadlines, and
/// holds by rank in cheapest-first order: `hold.rs`, `group.rs`), and how
/// filters match (numbers sent as text, list items: `matcher.rs`). Part of the
/// fingerprint: change it when either changes, so that states recorded before
/// are decided in full once. (Events already applied keep the signals they
/// matched then; trait checks read the stored values, so they decide anew.)
const DECISIONS: &str = "deadlines, holds/1; filters/2";

/// A compiled rules file: immutable, cheap to share across threads.
#[derive(Debug, Clone)]
pub struct RuleSet {
    segments: Vec<Segment>,
    scores: Vec<Score>,
    /// Per segment that others reference, its slot in an evaluation's table of
    /// referenced answers (`u32::MAX` for the others); and how many there are.
    ref_slots: Vec<u32>,
    refs: usize,
    /// Segment ids to indexes.
    by_id: ids::Ids,
    /// Which segments each signal, trait or consent change can affect, and
    /// the segments' answers on an empty state.
    index: Index,
    /// Every signal the segments and scores read, sorted by key, with its
    /// description (written once here, read by every explanation).
    signals: Vec<(Sig, Matcher, String)>,
    /// How many trait names the segments read ([`TraitCheck::slot`]).
    traits: usize,
    /// How many distinct trait checks they make ([`TraitCheck::memo`]).
    checks: usize,
    fingerprint: u32,
}

/// A compiled segment.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub id: Box<str>,
    pub name: String,
    pub description: String,
    pub version: Box<str>,
    pub rule: Node,
    /// What its answer depends on, transitively.
    pub reads: Reads,
    /// Each leaf condition in words with its threshold, in the order an
    /// explanation walks the rule (written once, at compile time).
    pub texts: Vec<(Box<str>, Box<str>)>,
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Group),
    Any(Group),
    Not(Box<Node>),
    Count {
        signal: Sig,
        window: i64,
        count: Vec<(CountOp, u64)>,
    },
    Last {
        signal: Sig,
        window: i64,
        absent: bool,
    },
    Sequence {
        steps: Vec<Sig>,
        window: i64,
    },
    Velocity {
        signal: Sig,
        window: i64,
        baseline: i64,
        count: Vec<(CountOp, u64)>,
        ratio: Vec<(Bound, f64)>,
    },
    Trait(Vec<TraitCheck>),
    Segment(usize),
    Score {
        score: usize,
        bounds: Vec<(Bound, f64)>,
    },
    Consent(Vec<ConsentStatus>),
}

/// A signal a condition reads: its key, and its slot in an evaluation's table
/// of the contact's signals (so a leaf finds its occurrences without a search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sig {
    pub key: SignalKey,
    pub slot: u32,
}

/// One trait comparison: the trait, its slot in an evaluation's table of the
/// contact's trait values (each read once per evaluation), the comparison.
#[derive(Debug, Clone)]
pub(crate) struct TraitCheck {
    pub name: String,
    pub slot: u32,
    /// Its slot in an evaluation's table of trait-check answers: the same
    /// check in several segments is decided once per evaluation.
    pub memo: u32,
    pub filter: Filter,
}

/// Public facts about one compiled segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo<'a> {
    /// The segment id.
    pub id: &'a str,
    /// The human name.
    pub name: &'a str,
    /// The description.
    pub description: &'a str,
    /// The rule version (content hash).
    pub version: &'a str,
}

impl RuleSet {
    /// Parses, validates and compiles a rules file (YAML; JSON is valid YAML).
    pub fn from_yaml(text: &str) -> Result<RuleSet, RulesError> {
        let mut parsed = parse::parse(text)?;
        let compiled = RuleSet::compile(&parsed.file);
        if parsed.issues.is_empty() {
            return compiled;
        }
        let found = compiled.err().map(|e| e.issues()).unwrap_or_default();
        let mut issues = std::mem::take(&mut parsed.issues);
        issues.extend(found.into_iter().filter(|i| !parsed.in_placeholder(i)));
        Err(RulesError::invalid(issues))
    }

    /// Validates and compiles an already-parsed rules file.
    pub fn compile(file: &RulesFile) -> Result<RuleSet, RulesError> {
        let mut compiler = Compiler::new();
        let mut compiled = compiler.file(file);
        if !compiler.issues.is_empty() {
            return Err(RulesError::invalid(compiler.issues));
        }
        let bits = Bits::new(compiler.signals.keys().copied().collect());
        let triggers = graph::close(&mut compiled.segments, &compiled.scores, &compiled.order, &bits);
        let held = hold::reaches(&compiled.segments, &compiled.scores, &bits);
        let signals = compiler
            .signals
            .into_iter()
            .map(|(key, (_, m, slot))| {
                let text = m.to_string();
                (Sig { key, slot }, m, text)
            })
            .collect();
        let fingerprint = u32::from_str_radix(&content_hash(&(DECISIONS, file)), 16).unwrap_or(0);
        let by_id = ids::Ids::new(compiled.segments.iter().map(|s| &*s.id));
        let referenced: std::collections::BTreeSet<usize> = compiled
            .segments
            .iter()
            .flat_map(|s| s.reads.segments.iter().copied())
            .collect();
        let mut ref_slots = vec![u32::MAX; compiled.segments.len()];
        referenced
            .iter()
            .enumerate()
            .for_each(|(slot, &i)| ref_slots[i] = slot as u32);
        let mut rules = RuleSet {
            segments: compiled.segments,
            scores: compiled.scores,
            ref_slots,
            refs: referenced.len(),
            by_id,
            index: Index::new(&triggers, held, bits),
            signals,
            traits: compiler.traits.len(),
            checks: compiler.checks.len(),
            fingerprint,
        };
        let blank = rules.blank_answers();
        rules.index.set_blank(&blank);
        for i in 0..rules.segments.len() {
            let mut texts = Vec::new();
            rules.leaf_texts(&rules.segments[i].rule, &mut texts);
            rules.segments[i].texts = texts;
        }
        Ok(rules)
    }

    /// The signals an event matches: pass these to `ContactState::apply`.
    pub fn signals_for(&self, event: &Event) -> Vec<SignalKey> {
        self.signals
            .iter()
            .filter(|(_, m, _)| m.matches(event))
            .map(|(sig, _, _)| sig.key)
            .collect()
    }

    /// A hash of the whole rules file (and of what decisions record): memberships
    /// recorded under another fingerprint need a full [`RuleSet::decide`].
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// The JSON Schema of the rules file, for editors (generated from the Rust types).
    pub fn json_schema() -> serde_json::Value {
        // Draft 7: the draft editors' YAML plugins (yaml-language-server) support best.
        let generator = schemars::generate::SchemaSettings::draft07().into_generator();
        serde_json::to_value(generator.into_root_schema_for::<RulesFile>()).expect("schemas serialize")
    }

    /// The compiled segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = SegmentInfo<'_>> {
        self.segments.iter().map(|s| SegmentInfo {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            version: &s.version,
        })
    }
}

/// The first 8 hex digits of the SHA-256 of a value's canonical JSON.
pub(crate) fn content_hash<T: serde::Serialize>(value: &T) -> String {
    let canonical = serde_json::to_vec(value).expect("rule definitions serialize");
    let digest = Sha256::digest(&canonical);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
