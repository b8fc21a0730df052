//! The compiled form of a rules file, and how it is built: validation with
//! every problem collected ([`compiler`]), matchers and filters
//! ([`matcher`]), what each segment reads and the order segments are decided in
//! ([`graph`]), which way a signal can move an answer ([`polarity`]), the
//! conditions that can hold an answer ([`hold`]), and the index of what can
//! change each segment ([`index`]).
//!
//! Main type: [`RuleSet`], with its [`Segment`]s and their conditions ([`Node`]).
//! This phase reads the file phase (`crate::file`) and nothing after it.

pub(crate) mod compiler;
pub(crate) mod graph;
pub(crate) mod group;
pub(crate) mod hold;
pub(crate) mod ids;
pub(crate) mod index;
pub(crate) mod matcher;
pub(crate) mod polarity;
pub(crate) mod score;
pub(crate) mod segset;
pub(crate) mod sending;

use kairos_event::Event;
use kairos_state::{ConsentStatus, SignalKey};
use sha2::{Digest, Sha256};

use crate::error::{RuleIssue, RulesError};
use crate::file::RulesFile;
use compiler::{Compiler, CountOp};
use graph::Reads;
use group::Group;
use index::{Bits, Index};
use matcher::{Bound, Filter, Matcher};
use score::Score;

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
    pub(crate) segments: Vec<Segment>,
    pub(crate) scores: Vec<Score>,
    /// Per segment that others reference, its slot in an evaluation's table of
    /// referenced answers (`u32::MAX` for the others); and how many there are.
    pub(crate) ref_slots: Vec<u32>,
    pub(crate) refs: usize,
    /// Segment ids to indexes.
    pub(crate) by_id: ids::Ids,
    /// Which segments each signal, trait or consent change can affect, and
    /// the segments' answers on an empty state.
    pub(crate) index: Index,
    /// Every signal the segments and scores read, sorted by key, with its
    /// description (written once here, read by every explanation).
    pub(crate) signals: Vec<(Sig, Matcher, String)>,
    /// How many trait names the segments read ([`TraitCheck::slot`]).
    pub(crate) traits: usize,
    /// How many distinct trait checks they make ([`TraitCheck::memo`]).
    pub(crate) checks: usize,
    pub(crate) fingerprint: u32,
    /// The send-time sequences and their guards.
    pub(crate) sequences: Vec<sending::Sequence>,
    pub(crate) sending: sending::Sending,
}

/// A compiled segment.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub id: Box<str>,
    pub name: String,
    pub description: String,
    pub version: Box<str>,
    pub purpose: crate::file::Purpose,
    pub paused: bool,
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
    /// What the segment is for (the consent guard applies to marketing).
    pub purpose: crate::file::Purpose,
    /// Paused: decided and audited, nothing written back.
    pub paused: bool,
}

impl RuleSet {
    /// Validates and compiles a parsed rules file, up to what needs deciding
    /// (the answers on an empty state) and explaining (the condition texts):
    /// the crate root finishes it ([`RuleSet::compile`]).
    pub(crate) fn build(file: &RulesFile) -> Result<RuleSet, RulesError> {
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
        Ok(RuleSet {
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
            sequences: compiled.sequences,
            sending: compiled.sending,
        })
    }

    /// The signals an event matches: pass these to `ContactState::apply`.
    pub fn signals_for(&self, event: &Event) -> Vec<SignalKey> {
        self.signals
            .iter()
            .filter(|(_, m, _)| m.matches(event))
            .map(|(sig, _, _)| sig.key)
            .collect()
    }

    /// What signal `key` counts, in words (`email.opened where url ...`), if
    /// these rules read it: for showing a stored state to a person.
    pub fn signal_text(&self, key: SignalKey) -> Option<&str> {
        self.signals
            .iter()
            .find(|(sig, _, _)| sig.key == key)
            .map(|(_, _, text)| text.as_str())
    }

    /// A hash of the whole rules file (and of what decisions record): memberships
    /// recorded under another fingerprint need a full [`RuleSet::decide`].
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// The id of segment `i`.
    pub fn segment_id(&self, i: usize) -> &str {
        &self.segments[i].id
    }

    /// The compiled segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = SegmentInfo<'_>> {
        self.segments.iter().map(|s| SegmentInfo {
            id: &s.id,
            name: &s.name,
            description: &s.description,
            version: &s.version,
            purpose: s.purpose,
            paused: s.paused,
        })
    }

    /// Whether the consent guard applies to segment `i`: it is a marketing segment.
    pub fn is_marketing(&self, i: usize) -> bool {
        self.segments[i].purpose.is_marketing()
    }

    /// Whether segment `i` is paused: nothing is written back for it.
    pub fn is_paused(&self, i: usize) -> bool {
        self.segments[i].paused
    }

    /// The index of the segment with this id, if the rules have it.
    pub fn segment_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id, |i| &*self.segments[i].id)
    }

    /// Advice about a valid rules file, each naming its segment: a marketing
    /// segment whose rule reads no consent condition (the consent guard
    /// keeps it from being written for contacts without consent, but the
    /// segment still counts them as members).
    pub fn warnings(&self) -> Vec<RuleIssue> {
        let reads_consent = |i: usize| {
            let reads = &self.segments[i].reads;
            reads.consent || reads.segments.iter().any(|&j| self.segments[j].reads.consent)
        };
        (0..self.segments.len())
            .filter(|&i| self.is_marketing(i) && !reads_consent(i))
            .map(|i| RuleIssue {
                segment: Some(self.segments[i].id.to_string()),
                path: format!("segments[{i}].rule"),
                message: "a marketing segment with no consent condition: it counts contacts without consent as \
                          members (the consent guard still never writes them to a destination); add \
                          `consent: subscribed`, or set `purpose: operational`"
                    .to_string(),
            })
            .collect()
    }
}

/// The first 8 hex digits of the SHA-256 of a value's canonical JSON.
pub(crate) fn content_hash<T: serde::Serialize>(value: &T) -> String {
    let canonical = serde_json::to_vec(value).expect("rule definitions serialize");
    let digest = Sha256::digest(&canonical);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}
