//! Evaluation of compiled segments over a contact state, with explanations and
//! the next time an answer could change without a new event.

use chrono::DateTime;
use kairos_state::{ContactState, SignalKey};
use serde::Serialize;
use serde_json::{json, Value};

use crate::compile::CountOp;
use crate::duration::format_secs;
use crate::matcher::Bound;
use crate::{Node, RuleSet};

/// Why one condition held or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The condition in words, e.g. `page.viewed where url contains "/pricing" within 1d`.
    pub condition: String,
    /// Whether it held.
    pub result: bool,
    /// The observed value (a count, a time, a trait value, a score).
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

    fn group(condition: &str, result: bool, children: Vec<Explanation>) -> Explanation {
        Explanation {
            condition: condition.to_string(),
            result,
            observed: None,
            threshold: None,
            children,
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

/// The answers, and when they could next change by themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// One verdict per evaluated segment, in rules-file order (every segment for
    /// [`RuleSet::evaluate`]; the affected ones for [`RuleSet::evaluate_delta`]).
    pub verdicts: Vec<Verdict>,
    /// The earliest time (unix seconds) any answer could change without a new
    /// event (a window edge, an absence deadline, a decay threshold); `None` if never.
    pub next_change_at: Option<i64>,
    /// Every score's value, by id, in file order.
    pub scores: Vec<(String, f64)>,
}

impl Evaluation {
    /// The ids of the evaluated segments the contact is a member of.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|v| v.member).map(|v| v.segment.as_str())
    }
}

/// What changed since a contact's last evaluation, for [`RuleSet::evaluate_delta`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Signals that new events matched.
    pub signals: Vec<SignalKey>,
    /// A `contact.identified` event applied.
    pub traits: bool,
    /// An event that can change consent applied.
    pub consent: bool,
    /// The last evaluation's `next_change_at`; time-dependent segments are
    /// evaluated when it has passed.
    pub previous_next_change: Option<i64>,
}

impl Delta {
    /// Records an applied event and the signals it matched.
    pub fn record(&mut self, event: &kairos_event::Event, signals: &[SignalKey]) {
        use kairos_event::EventType as T;
        self.signals.extend_from_slice(signals);
        self.traits |= event.kind == T::ContactIdentified;
        self.consent |= matches!(
            event.kind,
            T::EmailBounced | T::EmailUnsubscribed | T::EmailComplained | T::ConsentChanged
        );
    }
}

/// Per-segment results during one evaluation, in segment index order.
struct Run<'a> {
    state: &'a ContactState,
    now: i64,
    members: Vec<Option<(bool, Option<i64>)>>,
    scores: Vec<f64>,
}

impl RuleSet {
    /// Evaluates every segment for a contact as of `now` (unix seconds).
    pub fn evaluate(&self, state: &ContactState, now: i64) -> Evaluation {
        self.run(state, now, |_| true, None)
    }

    /// Evaluates only the segments that `delta` or the passing of time can have
    /// changed; the others keep the membership recorded in `state`. Gives the
    /// same memberships as [`RuleSet::evaluate`], provided `state`'s memberships
    /// came from this rule set (see [`RuleSet::fingerprint`]).
    pub fn evaluate_delta(&self, state: &ContactState, now: i64, delta: &Delta) -> Evaluation {
        let due = delta.previous_next_change.is_some_and(|t| t <= now);
        let affected = |i: usize| {
            let r = &self.segments[i].reads;
            (due && r.timed)
                || (delta.traits && r.traits)
                || (delta.consent && r.consent)
                || delta.signals.iter().any(|s| r.signals.contains(s))
        };
        let carried = if due { None } else { delta.previous_next_change };
        self.run(state, now, affected, carried)
    }

    fn run(
        &self,
        state: &ContactState,
        now: i64,
        affected: impl Fn(usize) -> bool,
        carried: Option<i64>,
    ) -> Evaluation {
        let scores = self.scores.iter().map(|s| s.value(state, now)).collect();
        let mut run = Run {
            state,
            now,
            members: vec![None; self.segments.len()],
            scores,
        };
        let mut explained = vec![None; self.segments.len()];
        let mut next_change_at = carried;
        for &i in &self.order {
            if !affected(i) {
                continue;
            }
            let (explanation, next) = self.node(&self.segments[i].rule, &run);
            run.members[i] = Some((explanation.result, next));
            next_change_at = earliest(next_change_at, next);
            explained[i] = Some(explanation);
        }
        let verdicts = explained
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i, e)))
            .map(|(i, explanation)| Verdict {
                segment: self.segments[i].id.clone(),
                rule_version: self.segments[i].version.clone(),
                member: explanation.result,
                explanation,
            })
            .collect();
        let scores = self
            .scores
            .iter()
            .zip(&run.scores)
            .map(|(s, v)| (s.id.clone(), *v))
            .collect();
        Evaluation {
            verdicts,
            next_change_at,
            scores,
        }
    }

    fn node(&self, node: &Node, run: &Run) -> (Explanation, Option<i64>) {
        let (state, now) = (run.state, run.now);
        match node {
            Node::All(children) | Node::Any(children) => {
                let all = matches!(node, Node::All(_));
                let (children, nexts): (Vec<Explanation>, Vec<Option<i64>>) =
                    children.iter().map(|c| self.node(c, run)).unzip();
                let result = if all {
                    children.iter().all(|c| c.result)
                } else {
                    children.iter().any(|c| c.result)
                };
                let next = combined_next(all, result, &children, &nexts);
                (
                    Explanation::group(if all { "all of" } else { "any of" }, result, children),
                    next,
                )
            }
            Node::Not(child) => {
                let (e, next) = self.node(child, run);
                (Explanation::group("not", !e.result, vec![e]), next)
            }
            Node::Count { signal, window, count } => self.count(*signal, *window, count, state, now),
            Node::Last { signal, window, absent } => self.last(*signal, *window, *absent, state, now),
            Node::Sequence { steps, window } => self.sequence(steps, *window, state, now),
            Node::Velocity {
                signal,
                window,
                baseline,
                count,
                ratio,
            } => self.velocity(*signal, (*window, *baseline), count, ratio, state, now),
            Node::Trait(checks) => {
                let mut next = None;
                let mut leaves: Vec<Explanation> = checks
                    .iter()
                    .map(|(name, filter)| {
                        let value = state.trait_value(name).map(|v| v.to_json());
                        next = earliest(next, filter.next_change(value.as_ref(), now));
                        let result = filter.matches_at(value.as_ref(), now);
                        let observed = value.unwrap_or(Value::Null);
                        Explanation::leaf(format!("trait {name}"), result, observed, filter.to_string())
                    })
                    .collect();
                if leaves.len() == 1 {
                    return (leaves.remove(0), next);
                }
                let result = leaves.iter().all(|l| l.result);
                (Explanation::group("all of", result, leaves), next)
            }
            Node::Segment(i) => {
                let seg = &self.segments[*i];
                let (member, next) = run.members[*i].unwrap_or((state.members().contains_key(&seg.id), None));
                let leaf = Explanation::leaf(format!("segment {}", seg.id), member, json!(member), "member".into());
                (leaf, next)
            }
            Node::Score { score, bounds } => {
                let value = run.scores[*score];
                let result = bounds.iter().all(|(b, y)| b.holds(value, *y));
                let terms: Vec<SignalKey> = self.scores[*score].terms.iter().map(|(k, _)| *k).collect();
                let next = self.scores[*score].next_crossing(value, bounds, now);
                let next = earliest(next, coarsening(state, &terms, i64::MAX));
                let threshold = bounds
                    .iter()
                    .map(|(b, y)| format!("{} {y}", b.symbol()))
                    .collect::<Vec<_>>()
                    .join(" and ");
                let observed = json!((value * 100.0).round() / 100.0);
                (
                    Explanation::leaf(format!("score {}", self.scores[*score].id), result, observed, threshold),
                    next,
                )
            }
            Node::Consent(wanted) => {
                let have = state.consent().status();
                let names: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
                let threshold = format!("in {}", names.join(", "));
                (
                    Explanation::leaf(
                        "consent".into(),
                        wanted.contains(&have),
                        json!(have.as_str()),
                        threshold,
                    ),
                    None,
                )
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
        let from = now - window;
        let observed = state.signal(signal).map_or(0, |s| s.count_since(from, now));
        let result = holds(count, observed);
        // Without new events the count only falls, one exit at a time.
        let next = (1..=observed)
            .find(|gone| holds(count, observed - gone) != result)
            .and_then(|gone| state.signal(signal)?.nth_exit(from, now, gone - 1));
        let next = earliest(next, coarsening(state, &[signal], window));
        let condition = format!("{} within {}", self.describe(signal), format_secs(window));
        (
            Explanation::leaf(condition, result, json!(observed), describe_count(count)),
            next,
        )
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
        let next = last.filter(|_| recent).map(|t| t + window);
        let observed = last
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .map_or(json!("never"), |t| {
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            });
        let threshold = format!("{}within {}", if absent { "not " } else { "" }, format_secs(window));
        (
            Explanation::leaf(
                format!("last {}", self.describe(signal)),
                recent != absent,
                observed,
                threshold,
            ),
            next,
        )
    }

    /// The earliest in-order match of the steps within the window (greedy is
    /// optimal: taking each step's earliest eligible occurrence leaves the most room).
    fn sequence(&self, steps: &[SignalKey], window: i64, state: &ContactState, now: i64) -> (Explanation, Option<i64>) {
        let from = now - window;
        let mut after = from;
        let mut first = None;
        let mut matched = 0;
        for step in steps {
            let next = state
                .signal(*step)
                .and_then(|s| s.exact_times().iter().find(|t| **t > after && **t <= now));
            let Some(&t) = next else { break };
            first.get_or_insert(t);
            after = t;
            matched += 1;
        }
        let result = matched == steps.len();
        let names: Vec<String> = steps.iter().map(|s| self.describe(*s)).collect();
        let condition = format!("sequence {} within {}", names.join(" → "), format_secs(window));
        let threshold = format!("{} of {} steps in order", steps.len(), steps.len());
        let next = first.filter(|_| result).map(|t| t + window);
        (Explanation::leaf(condition, result, json!(matched), threshold), next)
    }

    fn velocity(
        &self,
        signal: SignalKey,
        (window, baseline): (i64, i64),
        count: &[(CountOp, u64)],
        ratio: &[(Bound, f64)],
        state: &ContactState,
        now: i64,
    ) -> (Explanation, Option<i64>) {
        let s = state.signal(signal);
        let recent = s.map_or(0, |s| s.count_since(now - window, now));
        let earlier = s.map_or(0, |s| s.count_since(now - window - baseline, now - window));
        let rate = match (recent, earlier) {
            (0, _) => 0.0,
            (_, 0) => f64::INFINITY,
            (r, e) => (r as f64 / window as f64) / (e as f64 / baseline as f64),
        };
        let result = holds(count, recent) && ratio.iter().all(|(b, y)| b.holds(rate, *y));
        // Conservative: the next time any counted occurrence changes window.
        let exits = s.and_then(|s| {
            let short = s.nth_exit(now - window, now, 0);
            let long = s.nth_exit(now - window - baseline, now - window, 0).map(|t| t + window);
            [short, long].into_iter().flatten().min()
        });
        let exits = earliest(exits, coarsening(state, &[signal], window + baseline));
        let mut threshold = describe_count(count);
        if !ratio.is_empty() {
            let r = ratio
                .iter()
                .map(|(b, y)| format!("{} {y}", b.symbol()))
                .collect::<Vec<_>>()
                .join(" and ");
            threshold = format!("{threshold} rate ratio {r} vs the {} before", format_secs(baseline));
        }
        let observed = if ratio.is_empty() {
            json!(recent)
        } else {
            json!({"count": recent, "baseline_count": earlier, "ratio": if rate.is_finite() { json!((rate * 100.0).round() / 100.0) } else { json!("infinite") }})
        };
        let condition = format!("velocity {} within {}", self.describe(signal), format_secs(window));
        (
            Explanation::leaf(condition, result, observed, threshold.trim().to_string()),
            exits,
        )
    }

    pub(crate) fn describe(&self, signal: SignalKey) -> String {
        self.signals.binary_search_by_key(&signal, |(k, _)| *k).map_or_else(
            |_| format!("signal {signal:08x}"),
            |pos| self.signals[pos].1.to_string(),
        )
    }
}

/// For answers that read past the exact horizon (`span` longer than it): the
/// next time one of the signals' exact occurrences moves into an hourly bucket,
/// which can shift a window's old edge or a decayed weight.
fn coarsening(state: &ContactState, signals: &[SignalKey], span: i64) -> Option<i64> {
    if span <= kairos_state::EXACT_HORIZON_SECS {
        return None;
    }
    signals.iter().filter_map(|k| state.signal(*k)?.next_compaction()).min()
}

fn holds(count: &[(CountOp, u64)], c: u64) -> bool {
    count.iter().all(|(op, n)| match op {
        CountOp::Eq => c == *n,
        CountOp::Num(b) => b.holds(c as f64, *n as f64),
    })
}

fn describe_count(count: &[(CountOp, u64)]) -> String {
    let parts: Vec<String> = count
        .iter()
        .map(|(op, n)| match op {
            CountOp::Eq => format!("count = {n}"),
            CountOp::Num(b) => format!("count {} {n}", b.symbol()),
        })
        .collect();
    parts.join(" and ")
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

pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
