//! Explanations: each condition in words, with what was observed, the
//! threshold and the result. Built only for the answers that need one.

mod observation;

pub use observation::Observation;

use kairos_state::ContactState;
use serde::Serialize;
use serde_json::Value;

use crate::compile::compiler::CountOp;
use crate::compile::matcher::Bound;
use crate::compile::{Node, RuleSet, TraitCheck};
use crate::evaluate::node::Combine;
use crate::evaluate::{Decisions, Delta, Leaf, Observed, Run};
use crate::file::duration::format_secs;
use observation::shown;

/// One segment's answer for one contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict<'r> {
    /// The segment id.
    pub segment: &'r str,
    /// The rule version that decided it.
    pub rule_version: &'r str,
    /// Whether the contact is a member.
    pub member: bool,
    /// Why.
    pub explanation: Explanation<'r>,
}

/// The answers with explanations, and when they could next change by themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation<'r> {
    /// One verdict per segment, in rules-file order.
    pub verdicts: Vec<Verdict<'r>>,
    /// The earliest time (unix seconds) any answer could change without a new
    /// event (a window edge, an absence deadline, a decay threshold); `None` if never.
    pub next_change_at: Option<i64>,
    /// Every score's value, by id, in file order.
    pub scores: Vec<(String, f64)>,
}

impl Evaluation<'_> {
    /// The ids of the segments the contact is a member of.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|v| v.member).map(|v| v.segment)
    }
}

/// Why one condition held or not. It borrows its texts from the [`RuleSet`]
/// that explained it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation<'r> {
    /// The condition in words, e.g. `page.viewed where url contains "/pricing" within 1d`
    /// (written once, when the rules compile).
    pub condition: &'r str,
    /// Whether it held.
    pub result: bool,
    /// The observed value (a count, a time, a trait value, a score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observation>,
    /// The threshold it was compared against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<&'r str>,
    /// Sub-conditions, for `all`, `any` and `not`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explanation<'r>>,
}

impl<'r> Explanation<'r> {
    fn leaf(condition: &'r str, result: bool, observed: Observation, threshold: &'r str) -> Explanation<'r> {
        Explanation {
            condition,
            result,
            observed: Some(observed),
            threshold: Some(threshold),
            children: Vec::new(),
        }
    }

    fn group(condition: &'static str, result: bool, children: Vec<Explanation<'r>>) -> Explanation<'r> {
        Explanation {
            condition,
            result,
            observed: None,
            threshold: None,
            children,
        }
    }

    /// A one-line summary of the leaf conditions: `condition = observed [threshold: yes/no]`.
    /// Leaves under a `not` read `NOT ...`.
    pub fn summary(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_leaves(false, &mut out);
        out
    }

    fn write_leaves(&self, negated: bool, out: &mut String) {
        if self.children.is_empty() {
            if !out.is_empty() {
                out.push_str("; ");
            }
            if negated {
                out.push_str("NOT ");
            }
            out.push_str(self.condition);
            if let Some(observed) = &self.observed {
                out.push_str(" = ");
                observed.write_json(out);
            }
            out.push_str(" [");
            out.push_str(self.threshold.unwrap_or(""));
            out.push_str(if self.result { ": yes]" } else { ": no]" });
        } else {
            let negated = negated != (self.condition == NOT);
            self.children.iter().for_each(|c| c.write_leaves(negated, out));
        }
    }
}

/// The precomputed texts of a rule's leaves, in walk order ([`RuleSet::leaf_texts`]).
type Texts<'a> = std::slice::Iter<'a, (Box<str>, Box<str>)>;

const ALL_OF: &str = "all of";
const ANY_OF: &str = "any of";
const NOT: &str = "not";

impl RuleSet {
    /// Evaluates every segment for a contact as of `now` (unix seconds), with
    /// explanations and score values. The evaluate function uses [`RuleSet::decide`]
    /// and explains only the memberships that changed.
    pub fn evaluate(&self, state: &ContactState, now: i64) -> Evaluation<'_> {
        let next_change_at = self.decide(state, now, None).next_change_at;
        let mut run = self.run(state, now);
        let verdicts = (0..self.segments.len()).map(|i| self.verdict(i, &mut run)).collect();
        let scores = (0..self.scores.len())
            .map(|i| (self.scores[i].id.clone(), self.score_value(i, &mut run).total))
            .collect();
        Evaluation {
            verdicts,
            next_change_at,
            scores,
        }
    }

    /// As [`RuleSet::decide`], with the verdict (and explanation) of each
    /// membership that changed, in the order of [`Decisions::changed`]: what
    /// the evaluate function needs on every event. The explanations reuse what
    /// the decision read (signals, traits, scores, referenced segments).
    pub fn decide_explained(
        &self,
        state: &ContactState,
        now: i64,
        delta: Option<&Delta>,
    ) -> (Decisions, Vec<Verdict<'_>>) {
        self.deciding(state, now, delta, |decisions, run| {
            decisions.changed.iter().map(|c| self.verdict(c.0, run)).collect()
        })
    }

    fn verdict(&self, i: usize, run: &mut Run) -> Verdict<'_> {
        let segment = &self.segments[i];
        let explanation = self.explain_node(&segment.rule, run, &mut segment.texts.iter());
        Verdict {
            segment: &segment.id,
            rule_version: &segment.version,
            member: explanation.result,
            explanation,
        }
    }

    pub(crate) fn explain_node<'r>(&self, node: &Node, run: &mut Run, texts: &mut Texts<'r>) -> Explanation<'r> {
        match node {
            Node::All(children) | Node::Any(children) => {
                let all = matches!(node, Node::All(_));
                let children: Vec<Explanation<'r>> = children
                    .nodes
                    .iter()
                    .map(|c| self.explain_node(c, run, texts))
                    .collect();
                let mut combine = Combine::new(all);
                children.iter().for_each(|c| combine.add(c.result, None));
                Explanation::group(if all { ALL_OF } else { ANY_OF }, combine.finish().result, children)
            }
            Node::Not(child) => {
                let e = self.explain_node(child, run, texts);
                Explanation::group(NOT, !e.result, vec![e])
            }
            Node::Trait(checks) => {
                let mut explain = |check| {
                    let now = run.now;
                    let value = run.trait_value(check);
                    let result = check.filter.matches_at(value, now);
                    let observed = Observation::Trait(value.cloned().unwrap_or(Value::Null));
                    let (condition, threshold) = next_text(texts);
                    Explanation::leaf(condition, result, observed, threshold)
                };
                if let [check] = &checks[..] {
                    return explain(check);
                }
                let leaves: Vec<Explanation> = checks.iter().map(explain).collect();
                let result = leaves.iter().all(|l| l.result);
                Explanation::group(ALL_OF, result, leaves)
            }
            leaf => {
                let Leaf { result, observed, .. } = self.leaf(leaf, run);
                let (condition, threshold) = next_text(texts);
                Explanation::leaf(condition, result, observation(observed, leaf), threshold)
            }
        }
    }

    /// Appends the texts of a rule's leaves (a trait check is one leaf), in the
    /// order [`RuleSet::explain_node`] walks them.
    pub(crate) fn leaf_texts(&self, node: &Node, out: &mut Vec<(Box<str>, Box<str>)>) {
        match node {
            Node::All(children) | Node::Any(children) => children.nodes.iter().for_each(|c| self.leaf_texts(c, out)),
            Node::Not(child) => self.leaf_texts(child, out),
            Node::Trait(checks) => {
                let text = |c: &TraitCheck| (format!("trait {}", c.name).into(), c.filter.to_string().into());
                out.extend(checks.iter().map(text));
            }
            leaf => {
                let (condition, threshold) = self.describe_leaf(leaf);
                out.push((condition.into(), threshold.into()));
            }
        }
    }

    /// A leaf condition in words, and its threshold.
    fn describe_leaf(&self, node: &Node) -> (String, String) {
        match node {
            Node::Count { signal, window, count } => (
                format!("{} within {}", self.describe(signal.key), format_secs(*window)),
                count_text(count),
            ),
            Node::Last { signal, window, absent } => {
                let not = if *absent { "not " } else { "" };
                (
                    format!("last {}", self.describe(signal.key)),
                    format!("{not}within {}", format_secs(*window)),
                )
            }
            Node::Sequence { steps, window } => {
                let names: Vec<String> = steps.iter().map(|s| self.describe(s.key)).collect();
                let condition = format!("sequence {} within {}", names.join(" → "), format_secs(*window));
                (condition, format!("{} of {} steps in order", steps.len(), steps.len()))
            }
            Node::Velocity {
                signal,
                window,
                baseline,
                count,
                ratio,
            } => {
                let mut threshold = count_text(count);
                if !ratio.is_empty() {
                    let before = format_secs(*baseline);
                    threshold = format!("{threshold} rate ratio {} vs the {before} before", bounds_text(ratio));
                }
                let condition = format!("velocity {} within {}", self.describe(signal.key), format_secs(*window));
                (condition, threshold.trim().to_string())
            }
            Node::Segment(i) => (format!("segment {}", self.segments[*i].id), "member".into()),
            Node::Score { score, bounds } => (format!("score {}", self.scores[*score].id), bounds_text(bounds)),
            Node::Consent(wanted) => {
                let names: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
                ("consent".into(), format!("in {}", names.join(", ")))
            }
            Node::All(_) | Node::Any(_) | Node::Not(_) | Node::Trait(_) => (String::new(), String::new()),
        }
    }

    pub(crate) fn describe(&self, signal: kairos_state::SignalKey) -> String {
        self.signals
            .binary_search_by_key(&signal, |(sig, _, _)| sig.key)
            .map_or_else(|_| format!("signal {signal:08x}"), |pos| self.signals[pos].2.clone())
    }
}

fn next_text<'r>(texts: &mut Texts<'r>) -> (&'r str, &'r str) {
    texts
        .next()
        .map(|(condition, threshold)| (&**condition, &**threshold))
        .expect("a text per leaf, written in the same walk order")
}

/// What a leaf saw, as reported: its computed numbers (a rate ratio, a score)
/// rounded as [`shown`] against the leaf's bounds.
fn observation(observed: Observed, leaf: &Node) -> Observation {
    let bounds = match leaf {
        Node::Velocity { ratio, .. } => &ratio[..],
        Node::Score { bounds, .. } => &bounds[..],
        _ => &[],
    };
    match observed {
        Observed::Count(n) => Observation::Count(n),
        Observed::Last(t) => Observation::Last(t),
        Observed::Steps(n) => Observation::Count(n as u64),
        Observed::Velocity { recent, earlier, rate } => Observation::Velocity {
            count: recent,
            baseline_count: earlier,
            ratio: shown(rate, bounds),
        },
        Observed::Score(v) => Observation::Score(shown(v, bounds)),
        Observed::Member(m) => Observation::Member(m),
        Observed::Consent(c) => Observation::Consent(c),
        Observed::Trait => Observation::Trait(Value::Null),
    }
}

/// A count comparison in words: `count >= 2 and count < 5`.
pub(crate) fn count_text(count: &[(CountOp, u64)]) -> String {
    let parts: Vec<String> = count
        .iter()
        .map(|(op, n)| match op {
            CountOp::Eq => format!("count = {n}"),
            CountOp::Num(b) => format!("count {} {n}", b.symbol()),
        })
        .collect();
    parts.join(" and ")
}

pub(crate) fn bounds_text(bounds: &[(Bound, f64)]) -> String {
    bounds
        .iter()
        .map(|(b, y)| format!("{} {y}", b.symbol()))
        .collect::<Vec<_>>()
        .join(" and ")
}
