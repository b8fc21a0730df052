//! Validation and compilation of a parsed rules file, collecting every problem.

use kairos_state::{SignalKey, EXACT_HORIZON_SECS, RETENTION_SECS};
use std::collections::BTreeMap;

use crate::compile::graph::{order_segments, Reads};
use crate::compile::group::Group;
use crate::compile::matcher::{Bound, Matcher};
use crate::compile::score::Score;
use crate::compile::{content_hash, Node, Segment, Sig, TraitCheck};
use crate::error::RuleIssue;
use crate::file::duration::format_secs;
use crate::file::{BoundsDef, Condition, ConsentDef, MatcherDef, RulesFile, ScoreDef, SequenceDef, VelocityDef};

mod fields;

/// Count comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountOp {
    Eq,
    Num(Bound),
}

/// The comparisons as the interval of counts that pass them, `(lo, hi)`
/// inclusive (empty when `lo > hi`): each comparison is one bound.
pub(crate) fn interval(count: &[(CountOp, u64)]) -> (u64, u64) {
    count.iter().fold((0, u64::MAX), |(lo, hi), (op, n)| match op {
        CountOp::Eq => (lo.max(*n), hi.min(*n)),
        CountOp::Num(Bound::Gt) => (lo.max(n.saturating_add(1)), hi),
        CountOp::Num(Bound::Gte) => (lo.max(*n), hi),
        CountOp::Num(Bound::Lt) => match n.checked_sub(1) {
            Some(below) => (lo, hi.min(below)),
            None => (1, 0),
        },
        CountOp::Num(Bound::Lte) => (lo, hi.min(*n)),
    })
}

pub(crate) struct Compiler {
    pub issues: Vec<RuleIssue>,
    /// Each signal: its definition, matcher and slot (in order of first use).
    pub signals: BTreeMap<SignalKey, (MatcherDef, Matcher, u32)>,
    /// Each trait name read, and its slot (in order of first use).
    pub traits: BTreeMap<String, u32>,
    /// Each distinct trait check (name, canonical filter), and its memo slot.
    pub checks: BTreeMap<(String, String), u32>,
    segment: Option<String>,
    pub(crate) segment_ids: BTreeMap<String, usize>,
    score_ids: BTreeMap<String, usize>,
    /// What the condition being compiled reads.
    reads: Reads,
}

/// The compiled file.
pub(crate) struct Compiled {
    pub segments: Vec<Segment>,
    pub scores: Vec<Score>,
    pub order: Vec<usize>,
    pub sending: crate::compile::sending::Sending,
    pub sequences: Vec<crate::compile::sending::Sequence>,
}

impl Compiler {
    pub fn new() -> Compiler {
        Compiler {
            issues: Vec::new(),
            signals: BTreeMap::new(),
            traits: BTreeMap::new(),
            checks: BTreeMap::new(),
            segment: None,
            segment_ids: BTreeMap::new(),
            score_ids: BTreeMap::new(),
            reads: Reads::default(),
        }
    }

    pub(crate) fn issue(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(RuleIssue {
            segment: self.segment.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn file(&mut self, file: &RulesFile) -> Compiled {
        if file.segments.is_empty() {
            self.issue("segments", "expected at least one segment");
        }
        if file.segments.len() > kairos_state::MAX_SEGMENTS {
            let (found, max) = (file.segments.len(), kairos_state::MAX_SEGMENTS);
            let message =
                format!("expected at most {max} segments (each contact's record holds them all), found {found}");
            self.issue("segments", message);
        }
        let scores = file
            .scores
            .iter()
            .enumerate()
            .map(|(i, s)| self.score(s, &format!("scores[{i}]")))
            .collect();
        for (i, def) in file.segments.iter().enumerate() {
            self.segment = Some(def.id.clone());
            let path = format!("segments[{i}].id");
            if !valid_id(&def.id) {
                self.issue(&path, "expected 1-64 characters of a-z, 0-9, `_` or `-`");
            }
            // References to a duplicated id name the first.
            if self.segment_ids.contains_key(&def.id) {
                self.issue(&path, format!("duplicate segment id `{}`", def.id));
            } else {
                self.segment_ids.insert(def.id.clone(), i);
            }
        }
        let mut segments = Vec::new();
        for (i, def) in file.segments.iter().enumerate() {
            let path = format!("segments[{i}]");
            self.segment = Some(def.id.clone());
            if def.name.trim().is_empty() {
                self.issue(&format!("{path}.name"), "expected a non-empty name");
            }
            self.reads = Reads::default();
            let rule = self.condition(&def.rule, &format!("{path}.rule"));
            let reads = std::mem::take(&mut self.reads);
            segments.push(Segment {
                id: def.id.as_str().into(),
                name: def.name.clone(),
                description: def.description.clone(),
                version: rule_version(def).into(),
                purpose: def.purpose,
                paused: def.paused,
                rule,
                reads,
                texts: Vec::new(),
            });
        }
        self.segment = None;
        let (order, cycles) = order_segments(&segments);
        for cycle in cycles {
            let path = cycle.iter().map(|i| &*segments[*i].id).collect::<Vec<_>>().join(" → ");
            self.segment = Some(segments[cycle[0]].id.to_string());
            self.issue(
                &format!("segments[{}].rule", cycle[0]),
                format!("segment references form a cycle: {path}"),
            );
        }
        self.segment = None;
        let sending = self.sending(file.sending.as_ref());
        let sequences = self.sequences(&file.sequences);
        self.reads = Reads::default();
        Compiled {
            segments,
            scores,
            order,
            sending,
            sequences,
        }
    }

    fn score(&mut self, def: &ScoreDef, path: &str) -> Score {
        if !valid_id(&def.id) {
            self.issue(
                &format!("{path}.id"),
                "expected 1-64 characters of a-z, 0-9, `_` or `-`",
            );
        }
        if self.score_ids.insert(def.id.clone(), self.score_ids.len()).is_some() {
            self.issue(&format!("{path}.id"), format!("duplicate score id `{}`", def.id));
        }
        if def.terms.is_empty() {
            self.issue(&format!("{path}.terms"), "expected at least one term");
        }
        let half_life = self.window(&def.half_life, &format!("{path}.half_life"));
        let terms = def
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let p = format!("{path}.terms[{i}]");
                if !t.weight.is_finite() {
                    self.issue(&format!("{p}.weight"), "expected a finite number");
                }
                (self.matcher(&t.event, &format!("{p}.event")), t.weight)
            })
            .collect();
        Score::new(def.id.clone(), half_life, terms)
    }

    pub(crate) fn condition(&mut self, cond: &Condition, path: &str) -> Node {
        match cond {
            Condition::All(children) | Condition::Any(children) => {
                let all = matches!(cond, Condition::All(_));
                let key = if all { "all" } else { "any" };
                if children.is_empty() {
                    self.issue(&format!("{path}.{key}"), "expected at least one condition");
                }
                let nodes = children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, &format!("{path}.{key}[{i}]")))
                    .collect();
                if all {
                    Node::All(Group::new(nodes))
                } else {
                    Node::Any(Group::new(nodes))
                }
            }
            Condition::Not(child) => Node::Not(Box::new(self.condition(child, &format!("{path}.not")))),
            Condition::Event(def) => {
                let path = format!("{path}.event");
                let signal = self.matcher(&def.matcher(), &path);
                let window = self.window(&def.within, &format!("{path}.within"));
                let count = self.count(def.count.as_ref(), &format!("{path}.count"));
                Node::Count { signal, window, count }
            }
            Condition::Last(def) => {
                let path = format!("{path}.last");
                let signal = self.matcher(&def.matcher(), &path);
                let (text, absent, field) = match (&def.within, &def.not_within) {
                    (Some(w), None) => (w.as_str(), false, "within"),
                    (None, Some(w)) => (w.as_str(), true, "not_within"),
                    _ => {
                        self.issue(&path, "expected exactly one of `within` or `not_within`");
                        ("1s", false, "within")
                    }
                };
                let window = self.window(text, &format!("{path}.{field}"));
                Node::Last { signal, window, absent }
            }
            Condition::Sequence(def) => self.sequence(def, &format!("{path}.sequence")),
            Condition::Velocity(def) => self.velocity(def, &format!("{path}.velocity")),
            Condition::Trait(map) => {
                if map.is_empty() {
                    self.issue(&format!("{path}.trait"), "expected at least one trait name");
                }
                self.reads.traits = true;
                let checks = map
                    .iter()
                    .map(|(name, f)| {
                        let next = self.traits.len() as u32;
                        let slot = *self.traits.entry(name.clone()).or_insert(next);
                        let filter = self.filter(f, &format!("{path}.trait.{name}"), true);
                        let canonical = serde_json::to_string(f).expect("filter definitions serialize");
                        let next = self.checks.len() as u32;
                        let memo = *self.checks.entry((name.clone(), canonical)).or_insert(next);
                        TraitCheck {
                            name: name.clone(),
                            slot,
                            memo,
                            filter,
                        }
                    })
                    .collect();
                Node::Trait(checks)
            }
            Condition::Segment(id) => match self.segment_ids.get(id) {
                Some(i) => {
                    self.reads.segments.insert(*i);
                    Node::Segment(*i)
                }
                None => {
                    self.issue(&format!("{path}.segment"), format!("unknown segment `{id}`"));
                    Node::All(Group::new(Vec::new()))
                }
            },
            Condition::Score(def) => {
                let path = format!("{path}.score");
                let bounds = self.some_bounds(&def.bounds(), &path);
                match self.score_ids.get(&def.id) {
                    Some(i) => {
                        self.reads.scores.insert(*i);
                        Node::Score { score: *i, bounds }
                    }
                    None => {
                        self.issue(&format!("{path}.id"), format!("unknown score `{}`", def.id));
                        Node::All(Group::new(Vec::new()))
                    }
                }
            }
            Condition::Consent(def) => {
                self.reads.consent = true;
                let path = format!("{path}.consent");
                let texts = match def {
                    ConsentDef::One(s) => vec![s.clone()],
                    ConsentDef::AnyOf(list) => list.clone(),
                };
                if texts.is_empty() {
                    self.issue(&path, "expected at least one status");
                }
                Node::Consent(texts.iter().map(|t| self.consent(t, &path)).collect())
            }
        }
    }

    fn sequence(&mut self, def: &SequenceDef, path: &str) -> Node {
        if def.steps.len() < 2 {
            self.issue(&format!("{path}.steps"), "expected at least two steps");
        }
        let steps = def
            .steps
            .iter()
            .enumerate()
            .map(|(i, m)| self.matcher(m, &format!("{path}.steps[{i}]")))
            .collect::<Vec<Sig>>();
        self.reads.sequenced.extend(steps.iter().map(|s| s.key));
        let field = format!("{path}.within");
        let window = self.window(&def.within, &field);
        if window > EXACT_HORIZON_SECS {
            let limit = format_secs(EXACT_HORIZON_SECS);
            self.issue(
                &field,
                format!("a sequence window is at most {limit}: event order is kept for {limit}"),
            );
        }
        Node::Sequence { steps, window }
    }

    fn velocity(&mut self, def: &VelocityDef, path: &str) -> Node {
        let signal = self.matcher(&def.matcher(), path);
        let window = self.window(&def.within, &format!("{path}.within"));
        let count = match &def.count {
            Some(c) => self.count(Some(c), &format!("{path}.count")),
            None => Vec::new(),
        };
        let baseline = def
            .baseline
            .as_ref()
            .map(|b| self.window(b, &format!("{path}.baseline")));
        let ratio = def
            .ratio
            .as_ref()
            .map(|r| self.bounds(r, &format!("{path}.ratio")))
            .unwrap_or_default();
        match (&def.baseline, &def.ratio) {
            (Some(_), None) => self.issue(&format!("{path}.ratio"), "a `baseline` needs a `ratio`"),
            (None, Some(_)) => self.issue(&format!("{path}.baseline"), "a `ratio` needs a `baseline` window"),
            (None, None) if def.count.is_none() => self.issue(path, "expected `count`, or `baseline` with `ratio`"),
            // An empty ratio only reports the baseline: something must be compared.
            (Some(_), Some(r)) if def.count.is_none() && *r == BoundsDef::default() => self.issue(
                &format!("{path}.ratio"),
                "expected a comparison (gt, gte, lt, lte), or a `count`",
            ),
            _ => {}
        }
        if let Some(b) = baseline {
            if window + b > RETENTION_SECS {
                let limit = format_secs(RETENTION_SECS);
                self.issue(
                    &format!("{path}.baseline"),
                    format!("within + baseline is longer than the state retains ({limit})"),
                );
            }
        }
        Node::Velocity {
            signal,
            window,
            baseline: baseline.unwrap_or(0),
            count,
            ratio,
        }
    }
}

pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A segment's rule version: the content hash of its definition, pausing
/// aside (a paused segment's rule is the same rule).
fn rule_version(def: &crate::file::SegmentDef) -> String {
    match def.paused {
        false => content_hash(def),
        true => content_hash(&crate::file::SegmentDef {
            paused: false,
            ..def.clone()
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex::Regex;

    proptest! {
        /// The schema's id pattern accepts exactly the valid ids.
        #[test]
        fn the_id_pattern_is_the_check(text in "[a-zA-Z0-9_. -]{0,3}|[a-z0-9_-]{60,70}") {
            let pattern = Regex::new(crate::file::schema::ID).unwrap();
            prop_assert_eq!(pattern.is_match(&text), super::valid_id(&text), "{:?}", text);
        }
    }
}
