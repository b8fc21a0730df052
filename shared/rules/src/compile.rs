//! Validation and compilation of a parsed rules file, collecting every problem.

use kairos_event::EventType;
use kairos_state::{ConsentStatus, SignalKey, RETENTION_SECS};
use regex::Regex;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

use crate::duration::{format_secs, parse_duration};
use crate::file::{Condition, CountDef, FilterDef, MatcherDef, RulesFile, SegmentDef};
use crate::matcher::{signal_key, Bound, Filter, Machine, Matcher};
use crate::{Node, RuleIssue, Segment};

/// Count comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountOp {
    Eq,
    Num(Bound),
}

pub(crate) struct Compiler {
    pub issues: Vec<RuleIssue>,
    pub signals: BTreeMap<SignalKey, (MatcherDef, Matcher)>,
    segment: Option<String>,
}

impl Compiler {
    pub fn new() -> Compiler {
        Compiler {
            issues: Vec::new(),
            signals: BTreeMap::new(),
            segment: None,
        }
    }

    fn issue(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(RuleIssue {
            segment: self.segment.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn file(&mut self, file: &RulesFile) -> Vec<Segment> {
        if file.segments.is_empty() {
            self.issue("segments", "expected at least one segment");
        }
        let mut ids = BTreeSet::new();
        let mut out = Vec::new();
        for (i, def) in file.segments.iter().enumerate() {
            let path = format!("segments[{i}]");
            self.segment = Some(def.id.clone());
            if !valid_id(&def.id) {
                self.issue(
                    &format!("{path}.id"),
                    "expected 1-64 characters of a-z, 0-9, `_` or `-`",
                );
            }
            if !ids.insert(def.id.clone()) {
                self.issue(&format!("{path}.id"), format!("duplicate segment id `{}`", def.id));
            }
            if def.name.trim().is_empty() {
                self.issue(&format!("{path}.name"), "expected a non-empty name");
            }
            let rule = self.condition(&def.rule, &format!("{path}.rule"));
            out.push(Segment {
                id: def.id.clone(),
                name: def.name.clone(),
                description: def.description.clone(),
                version: rule_version(def),
                rule,
            });
        }
        self.segment = None;
        out
    }

    fn condition(&mut self, cond: &Condition, path: &str) -> Node {
        match cond {
            Condition::All(children) | Condition::Any(children) => {
                let key = if matches!(cond, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                if children.is_empty() {
                    self.issue(&format!("{path}.{key}"), "expected at least one condition");
                }
                let nodes = children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, &format!("{path}.{key}[{i}]")))
                    .collect();
                if key == "all" {
                    Node::All(nodes)
                } else {
                    Node::Any(nodes)
                }
            }
            Condition::Not(child) => Node::Not(Box::new(self.condition(child, &format!("{path}.not")))),
            Condition::Event(def) => {
                let path = format!("{path}.event");
                let matcher = MatcherDef {
                    kind: def.kind.clone(),
                    name: def.name.clone(),
                    filters: def.filters.clone(),
                    machine: def.machine.clone(),
                };
                let signal = self.matcher(&matcher, &path);
                let window = self.window(&def.within, &format!("{path}.within"));
                let count = self.count(def.count.as_ref(), &format!("{path}.count"));
                Node::Count { signal, window, count }
            }
            Condition::Last(def) => {
                let path = format!("{path}.last");
                let matcher = MatcherDef {
                    kind: def.kind.clone(),
                    name: def.name.clone(),
                    filters: def.filters.clone(),
                    machine: def.machine.clone(),
                };
                let signal = self.matcher(&matcher, &path);
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
            Condition::Trait(map) => {
                if map.is_empty() {
                    self.issue(&format!("{path}.trait"), "expected at least one trait name");
                }
                let checks = map
                    .iter()
                    .map(|(name, f)| (name.clone(), self.filter(f, &format!("{path}.trait.{name}"))))
                    .collect();
                Node::Trait(checks)
            }
            Condition::Consent(status) => Node::Consent(self.consent(status, &format!("{path}.consent"))),
        }
    }

    fn matcher(&mut self, def: &MatcherDef, path: &str) -> SignalKey {
        let kind = def.kind.parse::<EventType>().unwrap_or_else(|e| {
            self.issue(&format!("{path}.type"), e.to_string());
            EventType::Track
        });
        if kind == EventType::Track && def.name.is_none() && def.kind == "track" {
            self.issue(&format!("{path}.name"), "expected the event name for a `track` event");
        }
        let machine = match def.machine.as_deref() {
            None | Some("exclude") => Machine::Exclude,
            Some("include") => Machine::Include,
            Some("only") => Machine::Only,
            Some(other) => {
                self.issue(
                    &format!("{path}.machine"),
                    format!("expected `exclude`, `include` or `only`, found `{other}`"),
                );
                Machine::Exclude
            }
        };
        let filters = def
            .filters
            .iter()
            .map(|(field, f)| (field.clone(), self.filter(f, &format!("{path}.where.{field}"))))
            .collect();
        let key = signal_key(def);
        let matcher = Matcher {
            kind,
            name: def.name.clone(),
            machine,
            filters,
        };
        match self.signals.get(&key) {
            Some((existing, _)) if existing != def => self.issue(
                path,
                "signal hash collision with another matcher; change this matcher slightly",
            ),
            _ => {
                self.signals.insert(key, (def.clone(), matcher));
            }
        }
        key
    }

    fn filter(&mut self, def: &FilterDef, path: &str) -> Filter {
        let regex = def.regex.as_ref().and_then(|r| match Regex::new(r) {
            Ok(re) => Some(re),
            Err(e) => {
                self.issue(&format!("{path}.regex"), format!("invalid regular expression: {e}"));
                None
            }
        });
        let bounds: Vec<(Bound, f64)> = [
            (Bound::Gt, def.gt),
            (Bound::Gte, def.gte),
            (Bound::Lt, def.lt),
            (Bound::Lte, def.lte),
        ]
        .into_iter()
        .filter_map(|(b, v)| v.map(|v| (b, v)))
        .collect();
        let filter = Filter {
            eq: def.eq.clone(),
            ne: def.ne.clone(),
            one_of: def.one_of.clone(),
            contains: def.contains.clone(),
            starts_with: def.starts_with.clone(),
            regex,
            bounds,
            exists: def.exists,
        };
        if *def == FilterDef::default() {
            self.issue(
                path,
                "expected at least one operator: eq, ne, in, contains, starts_with, regex, gt, gte, lt, lte, exists",
            );
        }
        filter
    }

    fn window(&mut self, text: &str, path: &str) -> i64 {
        match parse_duration(text) {
            Ok(secs) if secs > RETENTION_SECS => {
                self.issue(
                    path,
                    format!(
                        "window `{text}` is longer than the state retains ({})",
                        format_secs(RETENTION_SECS)
                    ),
                );
                RETENTION_SECS
            }
            Ok(secs) => secs,
            Err(e) => {
                self.issue(path, e);
                1
            }
        }
    }

    fn count(&mut self, def: Option<&CountDef>, path: &str) -> Vec<(CountOp, u64)> {
        let Some(def) = def else {
            return vec![(CountOp::Num(Bound::Gte), 1)];
        };
        let ops: Vec<(CountOp, u64)> = [
            (CountOp::Eq, def.eq),
            (CountOp::Num(Bound::Gte), def.gte),
            (CountOp::Num(Bound::Gt), def.gt),
            (CountOp::Num(Bound::Lte), def.lte),
            (CountOp::Num(Bound::Lt), def.lt),
        ]
        .into_iter()
        .filter_map(|(op, v)| v.map(|v| (op, v)))
        .collect();
        if ops.is_empty() {
            self.issue(path, "expected at least one of eq, gte, gt, lte, lt");
        }
        ops
    }

    fn consent(&mut self, text: &str, path: &str) -> ConsentStatus {
        match text {
            "subscribed" => ConsentStatus::Subscribed,
            "unsubscribed" => ConsentStatus::Unsubscribed,
            "bounced" => ConsentStatus::Bounced,
            "complained" => ConsentStatus::Complained,
            other => {
                self.issue(
                    path,
                    format!("expected subscribed, unsubscribed, bounced or complained, found `{other}`"),
                );
                ConsentStatus::Subscribed
            }
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The rule version: the first 8 hex digits of the SHA-256 of the segment's canonical JSON.
fn rule_version(def: &SegmentDef) -> String {
    let canonical = serde_json::to_vec(def).expect("segment definitions serialize");
    let digest = Sha256::digest(&canonical);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}
