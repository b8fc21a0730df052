//! Compiled event matchers and value filters.

use kairos_event::{Event, EventType};
use kairos_state::SignalKey;
use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::file::{Machine, MatcherDef};

/// Which events a signal counts: type, name, machine policy and filters.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    pub kind: EventType,
    pub name: Option<String>,
    pub machine: Machine,
    pub filters: Vec<(String, Filter)>,
}

impl Matcher {
    pub fn matches(&self, event: &Event) -> bool {
        event.kind == self.kind
            && (self.name.is_none() || self.name == event.name)
            && match self.machine {
                Machine::Exclude => !event.machine,
                Machine::Include => true,
                Machine::Only => event.machine,
            }
            && self
                .filters
                .iter()
                .all(|(field, f)| f.matches(field_value(event, field).as_ref()))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        for (i, (field, filter)) in self.filters.iter().enumerate() {
            let sep = if i == 0 { " where" } else { " and" };
            write!(f, "{sep} {field} {filter}")?;
        }
        match self.machine {
            Machine::Exclude => Ok(()),
            Machine::Include => f.write_str(" (machine included)"),
            Machine::Only => f.write_str(" (machine only)"),
        }
    }
}

/// The signal key of a matcher definition: a stable hash of its canonical JSON,
/// so the same matcher shares history across rule versions.
pub(crate) fn signal_key(def: &MatcherDef) -> SignalKey {
    let canonical = serde_json::to_vec(def).expect("matcher definitions serialize");
    let digest = Sha256::digest(&canonical);
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn field_value(event: &Event, field: &str) -> Option<Value> {
    let text = |s: &Option<String>| s.as_ref().map(|s| Value::String(s.clone()));
    match field {
        "url" => text(&event.url),
        "campaign" => text(&event.campaign),
        "message_id" => text(&event.message_id),
        "source" => Some(Value::String(event.source.clone())),
        "name" => text(&event.name),
        path => lookup(&event.properties, path),
    }
}

fn lookup(props: &serde_json::Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = props.get(path) {
        return Some(v.clone());
    }
    let mut parts = path.split('.');
    let mut current = props.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current.clone())
}

/// Compiled comparisons on one value; all must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub eq: Option<Value>,
    pub ne: Option<Value>,
    pub one_of: Option<Vec<Value>>,
    pub contains: Option<String>,
    pub starts_with: Option<String>,
    pub regex: Option<Regex>,
    pub bounds: Vec<(Bound, f64)>,
    pub exists: Option<bool>,
    /// Relative-time comparisons of a timestamp value (traits only).
    pub ages: Vec<(Age, i64)>,
}

/// A comparison of a timestamp with now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Age {
    /// At least this long ago.
    OlderThan,
    /// Less than this long ago, not in the future.
    NewerThan,
    /// From now to less than this long ahead.
    WithinNext,
}

impl Age {
    fn holds(self, t: i64, d: i64, now: i64) -> bool {
        match self {
            Age::OlderThan => t <= now - d,
            Age::NewerThan => t > now - d && t <= now,
            Age::WithinNext => t >= now && t < now + d,
        }
    }

    /// The first time after `now` at which `holds` changes, if it ever does.
    fn next_change(self, t: i64, d: i64, now: i64) -> Option<i64> {
        let candidates = match self {
            Age::OlderThan => [Some(t + d), None],
            Age::NewerThan => [Some(t), Some(t + d)],
            Age::WithinNext => [Some(t - d + 1), Some(t + 1)],
        };
        candidates.into_iter().flatten().filter(|c| *c > now).min()
    }

    fn word(self) -> &'static str {
        match self {
            Age::OlderThan => "older than",
            Age::NewerThan => "newer than",
            Age::WithinNext => "within the next",
        }
    }
}

/// A timestamp value: RFC 3339 text, or unix seconds (a number, or text that is one).
fn timestamp(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp())
            .or_else(|_| s.trim().parse())
            .ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Bound {
    pub fn holds(self, x: f64, y: f64) -> bool {
        match self {
            Bound::Gt => x > y,
            Bound::Gte => x >= y,
            Bound::Lt => x < y,
            Bound::Lte => x <= y,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Bound::Gt => ">",
            Bound::Gte => ">=",
            Bound::Lt => "<",
            Bound::Lte => "<=",
        }
    }
}

impl Filter {
    /// Whether the value passes, relative-time comparisons taken at `now`.
    pub fn matches_at(&self, value: Option<&Value>, now: i64) -> bool {
        if self.ages.is_empty() {
            return self.matches(value);
        }
        let t = value.and_then(timestamp);
        self.matches(value) && t.is_some_and(|t| self.ages.iter().all(|(a, d)| a.holds(t, *d, now)))
    }

    /// When the relative-time comparisons could next change their answer.
    pub fn next_change(&self, value: Option<&Value>, now: i64) -> Option<i64> {
        let t = value.and_then(timestamp)?;
        self.ages.iter().filter_map(|(a, d)| a.next_change(t, *d, now)).min()
    }

    /// Whether the value passes the time-independent comparisons.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        if let Some(want) = self.exists {
            if want != value.is_some() {
                return false;
            }
        }
        if let Some(ne) = &self.ne {
            if value.is_some_and(|v| same(v, ne)) {
                return false;
            }
        }
        let needs_value = self.eq.is_some()
            || self.one_of.is_some()
            || self.contains.is_some()
            || self.starts_with.is_some()
            || self.regex.is_some()
            || !self.bounds.is_empty();
        let Some(value) = value else {
            return !needs_value;
        };
        let text = value.as_str();
        let number = number(value);
        self.eq.as_ref().is_none_or(|eq| same(value, eq))
            && self
                .one_of
                .as_ref()
                .is_none_or(|list| list.iter().any(|x| same(value, x)))
            && self
                .contains
                .as_ref()
                .is_none_or(|s| text.map_or_else(|| has_item(value, s), |t| t.contains(s.as_str())))
            && self
                .starts_with
                .as_ref()
                .is_none_or(|s| text.is_some_and(|t| t.starts_with(s.as_str())))
            && self.regex.as_ref().is_none_or(|r| text.is_some_and(|t| r.is_match(t)))
            && self.bounds.iter().all(|(b, y)| number.is_some_and(|x| b.holds(x, *y)))
    }
}

/// Equality that compares numbers numerically (`1` equals `1.0`), also a
/// number against text that is one (`"120"` equals `120`); two texts compare
/// as text (`"007"` is not `"7"`).
fn same(a: &Value, b: &Value) -> bool {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return x == y;
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A value as a number: a JSON number, or text that is one (`"120"`,
/// `" 2.5 "`), as CRMs and analytics tools often send numeric properties.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            // Most texts are words: they are not parsed.
            let numeric = s
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(&b));
            numeric
                .then(|| s.parse::<f64>().ok())
                .flatten()
                .filter(|x| x.is_finite())
        }
        _ => None,
    }
}

/// Whether a list value has `item` among its texts (`tags: [vip, beta]`
/// contains `vip`).
fn has_item(value: &Value, item: &str) -> bool {
    value
        .as_array()
        .is_some_and(|list| list.iter().any(|x| x.as_str() == Some(item)))
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = self.exists {
            parts.push(if v { "exists" } else { "is absent" }.to_string());
        }
        if let Some(v) = &self.eq {
            parts.push(format!("= {v}"));
        }
        if let Some(v) = &self.ne {
            parts.push(format!("!= {v}"));
        }
        if let Some(v) = &self.one_of {
            parts.push(format!("in {}", Value::Array(v.clone())));
        }
        if let Some(v) = &self.contains {
            parts.push(format!("contains \"{v}\""));
        }
        if let Some(v) = &self.starts_with {
            parts.push(format!("starts with \"{v}\""));
        }
        if let Some(v) = &self.regex {
            parts.push(format!("matches /{}/", v.as_str()));
        }
        for (b, y) in &self.bounds {
            parts.push(format!("{} {y}", b.symbol()));
        }
        for (a, d) in &self.ages {
            parts.push(format!("{} {}", a.word(), crate::file::duration::format_secs(*d)));
        }
        f.write_str(&parts.join(" and "))
    }
}
