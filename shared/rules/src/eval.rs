//! Evaluation of compiled segments over a contact state, with explanations and
//! the next time an answer could change without a new event.

use chrono::DateTime;
use kairos_state::{ContactState, SignalKey};
use serde::Serialize;
use serde_json::{json, Value};

use crate::compile::CountOp;
use crate::duration::format_secs;
use crate::{Node, RuleSet};

/// Why one condition held or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The condition in words, e.g. `page.viewed where url contains "/pricing" within 24h`.
    pub condition: String,
    /// Whether it held.
    pub result: bool,
    /// The observed value (a count, a time, a trait value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
    /// The threshold it was compared against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// Sub-conditions, for `all`, `any` and `not`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explanation>,
}

impl Explanation {
    fn leaf(condition: String, result: bool, observed: Value, threshold: String) -> Explanation {
        Explanation {
            condition,
            result,
            observed: Some(observed),
            threshold: Some(threshold),
            children: Vec::new(),
        }
    }

    /// A one-line summary of the leaf conditions: `condition = observed [threshold: yes/no]`.
    /// Leaves under a `not` read `NOT ...`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        self.collect_leaves(false, &mut parts);
        parts.join("; ")
    }

    fn collect_leaves(&self, negated: bool, out: &mut Vec<String>) {
        if self.children.is_empty() {
            let mark = if self.result { "yes" } else { "no" };
            let observed = self.observed.as_ref().map_or(String::new(), |v| format!(" = {v}"));
            let threshold = self.threshold.as_deref().unwrap_or("");
            let not = if negated { "NOT " } else { "" };
            out.push(format!("{not}{}{observed} [{threshold}: {mark}]", self.condition));
        } else {
            let negated = negated != (self.condition == "not");
            self.children.iter().for_each(|c| c.collect_leaves(negated, out));
        }
    }
}

/// One segment's answer for one contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The segment id.
    pub segment: String,
    /// The rule version that decided it.
    pub rule_version: String,
    /// Whether the contact is a member.
    pub member: bool,
    /// Why.
    pub explanation: Explanation,
}

/// The answer for every segment, and when it could next change by itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// One verdict per segment, in rules-file order.
    pub verdicts: Vec<Verdict>,
    /// The earliest time (unix seconds) any verdict could change without a new
    /// event (a window edge or an absence deadline); `None` if never.
    pub next_change_at: Option<i64>,
}

impl Evaluation {
    /// The ids of the segments the contact is a member of.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|v| v.member).map(|v| v.segment.as_str())
    }
}

impl RuleSet {
    /// Evaluates every segment for a contact as of `now` (unix seconds).
    pub fn evaluate(&self, state: &ContactState, now: i64) -> Evaluation {
        let mut next_change_at = None;
        let verdicts = self
            .segments
            .iter()
            .map(|seg| {
                let (explanation, next) = self.node(&seg.rule, state, now);
                next_change_at = earliest(next_change_at, next);
                Verdict {
                    segment: seg.id.clone(),
                    rule_version: seg.version.clone(),
                    member: explanation.result,
                    explanation,
                }
            })
            .collect();
        Evaluation {
            verdicts,
            next_change_at,
        }
    }

    fn node(&self, node: &Node, state: &ContactState, now: i64) -> (Explanation, Option<i64>) {
        match node {
            Node::All(children) | Node::Any(children) => {
                let all = matches!(node, Node::All(_));
                let (children, nexts): (Vec<Explanation>, Vec<Option<i64>>) =
                    children.iter().map(|c| self.node(c, state, now)).unzip();
                let result = if all {
                    children.iter().all(|c| c.result)
                } else {
                    children.iter().any(|c| c.result)
                };
                let next = combined_next(all, result, &children, &nexts);
                let condition = if all { "all of" } else { "any of" }.to_string();
                (
                    Explanation {
                        condition,
                        result,
                        observed: None,
                        threshold: None,
                        children,
                    },
                    next,
                )
            }
            Node::Not(child) => {
                let (e, next) = self.node(child, state, now);
                (
                    Explanation {
                        condition: "not".into(),
                        result: !e.result,
                        observed: None,
                        threshold: None,
                        children: vec![e],
                    },
                    next,
                )
            }
            Node::Count { signal, window, count } => self.count(*signal, *window, count, state, now),
            Node::Last { signal, window, absent } => self.last(*signal, *window, *absent, state, now),
            Node::Trait(checks) => {
                let mut leaves: Vec<Explanation> = checks
                    .iter()
                    .map(|(name, filter)| {
                        let value = state.trait_value(name).map(|v| v.to_json());
                        let result = filter.matches(value.as_ref());
                        Explanation::leaf(
                            format!("trait {name}"),
                            result,
                            value.unwrap_or(Value::Null),
                            filter.to_string(),
                        )
                    })
                    .collect();
                if leaves.len() == 1 {
                    return (leaves.remove(0), None);
                }
                let result = leaves.iter().all(|l| l.result);
                (
                    Explanation {
                        condition: "all of".into(),
                        result,
                        observed: None,
                        threshold: None,
                        children: leaves,
                    },
                    None,
                )
            }
            Node::Consent(want) => {
                let have = state.consent().status();
                let leaf = Explanation::leaf(
                    "consent".into(),
                    have == *want,
                    json!(have.as_str()),
                    format!("= {}", want.as_str()),
                );
                (leaf, None)
            }
        }
    }

    fn count(
        &self,
        signal: SignalKey,
        window: i64,
        count: &[(CountOp, u64)],
        state: &ContactState,
        now: i64,
    ) -> (Explanation, Option<i64>) {
        let exits = state
            .signal(signal)
            .map(|s| s.exits_after(now - window, now))
            .unwrap_or_default();
        let holds = |c: u64| {
            count.iter().all(|(op, n)| match op {
                CountOp::Eq => c == *n,
                CountOp::Num(b) => b.holds(c as f64, *n as f64),
            })
        };
        let observed = exits.len() as u64;
        let result = holds(observed);
        // Without new events the count only falls, one exit at a time.
        let next = exits
            .iter()
            .enumerate()
            .find(|(i, _)| holds(observed - *i as u64 - 1) != result)
            .map(|(_, t)| *t);
        let threshold = count
            .iter()
            .map(|(op, n)| match op {
                CountOp::Eq => format!("count = {n}"),
                CountOp::Num(b) => format!("count {} {n}", b.symbol()),
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let condition = format!("{} within {}", self.describe(signal), format_secs(window));
        (Explanation::leaf(condition, result, json!(observed), threshold), next)
    }

    fn last(
        &self,
        signal: SignalKey,
        window: i64,
        absent: bool,
        state: &ContactState,
        now: i64,
    ) -> (Explanation, Option<i64>) {
        let last = state.signal(signal).and_then(|s| s.last_at());
        let recent = last.is_some_and(|t| t > now - window);
        let result = recent != absent;
        let next = last.filter(|_| recent).map(|t| t + window);
        let observed = last
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .map_or(Value::String("never".into()), |t| {
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            });
        let threshold = format!("{}within {}", if absent { "not " } else { "" }, format_secs(window));
        let condition = format!("last {}", self.describe(signal));
        (Explanation::leaf(condition, result, observed, threshold), next)
    }

    fn describe(&self, signal: SignalKey) -> String {
        self.signals.binary_search_by_key(&signal, |(k, _)| *k).map_or_else(
            |_| format!("signal {signal:08x}"),
            |pos| self.signals[pos].1.to_string(),
        )
    }
}

/// When an `all`/`any` could next change. If one child flipping flips the
/// whole (`all` that holds, `any` that does not), that is the earliest child
/// change. Otherwise every child that decides it (the false ones of an `all`,
/// the true ones of an `any`) must flip first: no earlier than the latest of
/// their changes, and never if one of them never changes.
fn combined_next(all: bool, result: bool, children: &[Explanation], nexts: &[Option<i64>]) -> Option<i64> {
    if all == result {
        return nexts.iter().copied().fold(None, earliest);
    }
    let deciding = children.iter().zip(nexts).filter(|(c, _)| c.result == result);
    deciding
        .map(|(_, n)| *n)
        .try_fold(i64::MIN, |acc, n| n.map(|n| acc.max(n)))
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
