//! 200 generated segments, written both as a Kairos rules file (YAML text) and as
//! JSON Logic rules over a flat object of precomputed features.
//!
//! Feature names (one flat object per contact and evaluation time):
//! - `c{s}_{w}`: occurrences of signal `s` in the window of `w` seconds ending now;
//! - `p{s}_{w}_{b}`: occurrences in the `b` seconds before that window (velocity baselines);
//! - `a{s}`: seconds since the last occurrence of `s`, or null if none;
//! - `t_{name}`: the trait's current value, or null;
//! - `consent`: the subscription status;
//! - `q{i}`: whether sequence `i` is complete (precomputed boolean);
//! - `s_{id}`: the decayed score (precomputed number).

use kairos_event::{Event, EventType};
use kairos_rules::{format_secs, RuleSet};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeSet;

use super::workload::{COMPANY_SIZES, STAGES};

pub const SEGMENTS: usize = 200;
const H: i64 = 3600;
const D: i64 = 86_400;

/// How machine-generated opens count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Machine {
    Exclude,
    Include,
    Only,
}

/// A `where` filter on an event field or property.
#[derive(Clone, PartialEq, Debug)]
pub enum Where {
    Contains(&'static str),
    StartsWith(&'static str),
    Eq(String),
    In(Vec<String>),
}

/// An event matcher (a Kairos signal).
#[derive(Clone, PartialEq, Debug)]
pub struct Matcher {
    pub kind: EventType,
    pub filters: Vec<(&'static str, Where)>,
    pub machine: Machine,
}

impl Matcher {
    fn new(kind: EventType) -> Matcher {
        Matcher {
            kind,
            filters: Vec::new(),
            machine: Machine::Exclude,
        }
    }

    fn filter(mut self, field: &'static str, w: Where) -> Matcher {
        self.filters.push((field, w));
        self
    }

    fn machine(mut self, m: Machine) -> Matcher {
        self.machine = m;
        self
    }

    /// The matcher's fields as YAML flow-mapping entries (JSON is valid YAML).
    fn fields(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), json!(self.kind.as_str()));
        if !self.filters.is_empty() {
            let mut w = serde_json::Map::new();
            for (field, f) in &self.filters {
                let v = match f {
                    Where::Contains(s) => json!({ "contains": s }),
                    Where::StartsWith(s) => json!({ "starts_with": s }),
                    Where::Eq(s) => json!({ "eq": s }),
                    Where::In(list) => json!({ "in": list }),
                };
                w.insert(field.to_string(), v);
            }
            m.insert("where".into(), Value::Object(w));
        }
        match self.machine {
            Machine::Exclude => {}
            Machine::Include => {
                m.insert("machine".into(), json!("include"));
            }
            Machine::Only => {
                m.insert("machine".into(), json!("only"));
            }
        }
        m
    }

    /// Whether the event matches: written here from the language's definition,
    /// independently of Kairos's own matcher.
    pub fn matches(&self, e: &Event) -> bool {
        if e.kind != self.kind {
            return false;
        }
        let machine_ok = match self.machine {
            Machine::Exclude => !e.machine,
            Machine::Include => true,
            Machine::Only => e.machine,
        };
        machine_ok
            && self.filters.iter().all(|(field, w)| {
                let value: Option<&str> = match *field {
                    "url" => e.url.as_deref(),
                    "campaign" => e.campaign.as_deref(),
                    other => e.properties.get(other).and_then(|v| v.as_str()),
                };
                let Some(value) = value else { return false };
                match w {
                    Where::Contains(s) => value.contains(s),
                    Where::StartsWith(s) => value.starts_with(s),
                    Where::Eq(s) => value == s,
                    Where::In(list) => list.iter().any(|s| s == value),
                }
            })
    }
}

/// A comparison.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    fn key(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Gt => "gt",
            Cmp::Gte => "gte",
            Cmp::Lt => "lt",
            Cmp::Lte => "lte",
        }
    }

    fn jl(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }

    fn holds(self, x: f64, y: f64) -> bool {
        match self {
            Cmp::Eq => x == y,
            Cmp::Gt => x > y,
            Cmp::Gte => x >= y,
            Cmp::Lt => x < y,
            Cmp::Lte => x <= y,
        }
    }
}

/// One operator of a trait filter.
#[derive(Clone, Debug)]
pub enum TraitOp {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Contains(&'static str),
    StartsWith(&'static str),
    /// `(?i)a|b|c` with literal lowercase alternatives.
    Regex(Vec<&'static str>),
    Num(Cmp, f64),
    Exists(bool),
}

/// A condition.
#[derive(Clone, Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Event {
        sig: usize,
        within: i64,
        count: Vec<(Cmp, u64)>,
    },
    Last {
        sig: usize,
        window: i64,
        absent: bool,
    },
    Trait(Vec<(&'static str, Vec<TraitOp>)>),
    Consent(Vec<&'static str>),
    Sequence(usize),
    Velocity {
        sig: usize,
        within: i64,
        count: Vec<(Cmp, u64)>,
        baseline: Option<(i64, Vec<(Cmp, f64)>)>,
    },
    Segment(usize),
    Score {
        score: usize,
        bounds: Vec<(Cmp, f64)>,
    },
}

/// A sequence condition's definition.
pub struct SequenceSpec {
    pub steps: Vec<usize>,
    pub within: i64,
}

/// A score's definition.
pub struct ScoreSpec {
    pub id: &'static str,
    pub half_life: i64,
    pub terms: Vec<(usize, f64)>,
}

/// The condition kinds this build of Kairos accepts beyond the base language.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kinds {
    pub sequence: bool,
    pub velocity: bool,
    pub velocity_ratio: bool,
    pub segment: bool,
    pub score: bool,
    pub consent_list: bool,
}

impl Kinds {
    /// Asks the rules compiler which of the newer kinds parse.
    pub fn probe() -> Kinds {
        let ok = |rule: &str, scores: &str| {
            let yaml = format!(
                "{scores}segments:\n  - id: a\n    name: A\n    rule: {{ event: {{ type: email.opened, within: 1d }} }}\n  - id: b\n    name: B\n    rule: {rule}\n"
            );
            RuleSet::from_yaml(&yaml).is_ok()
        };
        Kinds {
            sequence: ok(
                "{ sequence: { steps: [ { type: page.viewed }, { type: form.submitted } ], within: 24h } }",
                "",
            ),
            velocity: ok("{ velocity: { type: email.opened, within: 2d, count: { gte: 5 } } }", ""),
            velocity_ratio: ok(
                "{ velocity: { type: email.opened, within: 2d, baseline: 14d, ratio: { gte: 3 } } }",
                "",
            ),
            segment: ok("{ segment: a }", ""),
            score: ok(
                "{ score: { id: engagement, gte: 20 } }",
                "scores:\n  - id: engagement\n    half_life: 7d\n    terms:\n      - { event: { type: email.opened }, weight: 1 }\n",
            ),
            consent_list: ok("{ consent: [ subscribed, bounced ] }", ""),
        }
    }

    fn newer(&self) -> [(bool, &'static str); 6] {
        [
            (self.sequence, "sequence"),
            (self.velocity, "velocity(count)"),
            (self.velocity_ratio, "velocity(ratio)"),
            (self.segment, "segment"),
            (self.score, "score"),
            (self.consent_list, "consent(list)"),
        ]
    }

    /// The kinds generated.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["all", "any", "not", "event", "last", "trait", "consent"];
        v.extend(self.newer().iter().filter(|(on, _)| *on).map(|(_, n)| *n));
        v
    }

    /// The newer kinds that do not parse yet.
    pub fn missing(&self) -> Vec<&'static str> {
        self.newer().iter().filter(|(on, _)| !*on).map(|(_, n)| *n).collect()
    }
}

/// The generated segments and everything needed to evaluate them both ways.
pub struct Plan {
    pub signals: Vec<Matcher>,
    pub sequences: Vec<SequenceSpec>,
    pub scores: Vec<ScoreSpec>,
    pub segments: Vec<Cond>,
    /// (signal, window) pairs read as counts.
    pub counts: BTreeSet<(usize, i64)>,
    /// (signal, window, baseline) triples read as baseline counts.
    pub baselines: BTreeSet<(usize, i64, i64)>,
    /// Signals read for recency.
    pub lasts: BTreeSet<usize>,
    pub traits: BTreeSet<&'static str>,
}

const WINDOWS: [i64; 11] = [
    30 * 60,
    H,
    6 * H,
    24 * H,
    2 * D,
    3 * D,
    7 * D,
    14 * D,
    30 * D,
    60 * D,
    90 * D,
];

fn signal_pool() -> Vec<Matcher> {
    use EventType::*;
    let url = |s| Where::Contains(s);
    vec![
        Matcher::new(EmailOpened),                                                // 0 human opens
        Matcher::new(EmailOpened).machine(Machine::Include),                      // 1 all opens
        Matcher::new(EmailOpened).machine(Machine::Only),                         // 2 privacy-proxy opens
        Matcher::new(EmailClicked),                                               // 3
        Matcher::new(EmailDelivered),                                             // 4
        Matcher::new(EmailClicked).filter("campaign", Where::Eq("cmp-3".into())), // 5
        Matcher::new(EmailUnsubscribed),                                          // 6
        Matcher::new(PageViewed).filter("url", url("/pricing")),                  // 7
        Matcher::new(PageViewed).filter("url", url("/compare")),                  // 8
        Matcher::new(PageViewed).filter("url", url("/signup")),                   // 9
        Matcher::new(PageViewed).filter("url", Where::StartsWith("https://x.test/blog/")), // 10
        Matcher::new(PageViewed),                                                 // 11
        Matcher::new(AdClicked),                                                  // 12
        Matcher::new(AdClicked).filter("campaign", Where::In(vec!["ad-0".into(), "ad-1".into()])), // 13
        Matcher::new(ChatMessage),                                                // 14
        Matcher::new(FormSubmitted),                                              // 15
        Matcher::new(FormSubmitted).filter("form", Where::In(vec!["demo".into(), "trial".into()])), // 16
        Matcher::new(FormSubmitted).filter("form", Where::Eq("newsletter".into())), // 17
        Matcher::new(EmailOpened).filter(
            "campaign",
            Where::In(vec!["cmp-0".into(), "cmp-1".into(), "cmp-2".into()]),
        ), // 18
    ]
}

/// Signals weighted for conditions (common behaviours more often).
const SIGNAL_WEIGHTS: [u32; 19] = [10, 5, 4, 8, 5, 2, 2, 9, 5, 3, 5, 6, 3, 2, 3, 3, 3, 2, 3];

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

fn pick_signal(rng: &mut StdRng) -> usize {
    let total: u32 = SIGNAL_WEIGHTS.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, w) in SIGNAL_WEIGHTS.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    0
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Event,
    Last,
    Trait,
    Consent,
    Not,
    Any,
    Sequence,
    Velocity,
    VelocityRatio,
    Segment,
    Score,
}

struct Gen<'a> {
    rng: &'a mut StdRng,
    kinds: Kinds,
    sequences: Vec<SequenceSpec>,
    made: usize,
}

impl Gen<'_> {
    fn count(&mut self) -> Vec<(Cmp, u64)> {
        match self.rng.gen_range(0..10) {
            0..=4 => vec![(Cmp::Gte, self.rng.gen_range(1..=3))],
            5 => vec![(Cmp::Gte, self.rng.gen_range(3..=8))],
            6 => vec![(Cmp::Eq, self.rng.gen_range(0..=2))],
            7 => vec![(Cmp::Lte, self.rng.gen_range(0..=2))],
            8 => vec![
                (Cmp::Gt, self.rng.gen_range(0..=2)),
                (Cmp::Lt, self.rng.gen_range(5..=20)),
            ],
            _ => vec![(Cmp::Lt, self.rng.gen_range(1..=4))],
        }
    }

    fn trait_cond(&mut self) -> Cond {
        let mut checks = Vec::new();
        let n = if self.rng.gen_bool(0.3) { 2 } else { 1 };
        let mut names: Vec<&'static str> = vec!["company_size", "job_title", "lifecycle_stage"];
        for _ in 0..n {
            let name = names.remove(self.rng.gen_range(0..names.len()));
            let ops = match name {
                "company_size" => match self.rng.gen_range(0..5) {
                    0 => vec![TraitOp::Num(Cmp::Gte, pick(self.rng, &[10.0, 50.0, 100.0, 250.0]))],
                    1 => vec![TraitOp::Num(Cmp::Lt, pick(self.rng, &[25.0, 100.0, 500.0]))],
                    2 => vec![TraitOp::Num(Cmp::Gt, 10.0), TraitOp::Num(Cmp::Lte, 1000.0)],
                    3 => vec![TraitOp::Eq(json!(
                        COMPANY_SIZES[self.rng.gen_range(0..COMPANY_SIZES.len())]
                    ))],
                    _ => vec![TraitOp::In(vec![json!(250), json!(500), json!(1000)])],
                },
                "job_title" => match self.rng.gen_range(0..4) {
                    0 => vec![TraitOp::Regex(vec!["vp", "director"])],
                    1 => vec![TraitOp::Regex(vec!["head of", "chief", "ceo"])],
                    2 => vec![TraitOp::Contains(pick(self.rng, &["Marketing", "Engineer", "Sales"]))],
                    _ => vec![TraitOp::StartsWith(pick(self.rng, &["VP", "Director", "Head"]))],
                },
                _ => match self.rng.gen_range(0..5) {
                    0 => vec![TraitOp::In(vec![json!("mql"), json!("sql")])],
                    1 => vec![TraitOp::Eq(json!(pick(self.rng, &STAGES)))],
                    2 => vec![TraitOp::Ne(json!("customer"))],
                    3 => vec![TraitOp::Exists(true)],
                    _ => vec![TraitOp::Exists(false)],
                },
            };
            checks.push((name, ops));
        }
        Cond::Trait(checks)
    }

    fn sequence(&mut self) -> Cond {
        let steps = match self.rng.gen_range(0..5) {
            0 => vec![7, 8],
            1 => vec![7, 8, 9],
            2 => vec![3, 7],
            3 => vec![12, 11],
            _ => vec![10, 7],
        };
        let within = pick(self.rng, &[30 * 60, H, 6 * H, 24 * H, 48 * H]);
        self.sequences.push(SequenceSpec { steps, within });
        Cond::Sequence(self.sequences.len() - 1)
    }

    fn atom(&mut self, kind: Kind) -> Cond {
        match kind {
            Kind::Event => Cond::Event {
                sig: pick_signal(self.rng),
                within: pick(self.rng, &WINDOWS),
                count: self.count(),
            },
            Kind::Last => Cond::Last {
                sig: pick_signal(self.rng),
                window: pick(self.rng, &WINDOWS),
                absent: self.rng.gen_bool(0.4),
            },
            Kind::Trait => self.trait_cond(),
            Kind::Consent => {
                if self.kinds.consent_list && self.rng.gen_bool(0.3) {
                    Cond::Consent(vec!["unsubscribed", "bounced", "complained"])
                } else {
                    Cond::Consent(vec![if self.rng.gen_bool(0.85) {
                        "subscribed"
                    } else {
                        "unsubscribed"
                    }])
                }
            }
            Kind::Not => {
                let inner = pick(self.rng, &[Kind::Event, Kind::Last, Kind::Trait]);
                Cond::Not(Box::new(self.atom(inner)))
            }
            Kind::Any => {
                let a = self.random_kind();
                let b = self.random_kind();
                Cond::Any(vec![self.atom(a), self.atom(b)])
            }
            Kind::Sequence => self.sequence(),
            Kind::Velocity => Cond::Velocity {
                sig: pick(self.rng, &[0, 1, 7, 11, 3]),
                within: pick(self.rng, &[6 * H, D, 2 * D, 3 * D]),
                count: vec![(Cmp::Gte, self.rng.gen_range(3..=8))],
                baseline: None,
            },
            Kind::VelocityRatio => Cond::Velocity {
                sig: pick(self.rng, &[0, 1, 7, 11, 3, 4]),
                within: pick(self.rng, &[D, 2 * D, 3 * D]),
                count: if self.rng.gen_bool(0.3) {
                    vec![(Cmp::Gte, 2)]
                } else {
                    Vec::new()
                },
                baseline: Some((
                    pick(self.rng, &[7 * D, 14 * D, 28 * D]),
                    if self.rng.gen_bool(0.8) {
                        vec![(Cmp::Gte, pick(self.rng, &[2.0, 3.0, 5.0]))]
                    } else {
                        vec![(Cmp::Gt, 1.5), (Cmp::Lt, 10.0)]
                    },
                )),
            },
            Kind::Segment => Cond::Segment(self.rng.gen_range(0..self.made.max(1))),
            Kind::Score => {
                let score = self.rng.gen_range(0..2);
                let bounds = match (score, self.rng.gen_range(0..3)) {
                    (0, 0) => vec![(Cmp::Gte, pick(self.rng, &[2.0, 5.0, 10.0, 20.0]))],
                    (0, 1) => vec![(Cmp::Lt, 1.0)],
                    (0, _) => vec![(Cmp::Gt, 3.0), (Cmp::Lte, 40.0)],
                    (_, 0) => vec![(Cmp::Gte, pick(self.rng, &[5.0, 10.0, 25.0]))],
                    (_, 1) => vec![(Cmp::Lt, 2.0)],
                    _ => vec![(Cmp::Gt, 0.5)],
                };
                Cond::Score { score, bounds }
            }
        }
    }

    fn available(&self) -> Vec<Kind> {
        let mut v = vec![
            Kind::Event,
            Kind::Last,
            Kind::Trait,
            Kind::Consent,
            Kind::Not,
            Kind::Any,
        ];
        let k = self.kinds;
        for (on, kind) in [
            (k.sequence, Kind::Sequence),
            (k.velocity, Kind::Velocity),
            (k.velocity_ratio, Kind::VelocityRatio),
            (k.segment && self.made > 0, Kind::Segment),
            (k.score, Kind::Score),
        ] {
            if on {
                v.push(kind);
            }
        }
        v
    }

    fn random_kind(&mut self) -> Kind {
        let v = self.available();
        // Leaves more often than nesting.
        let k = pick(self.rng, &v);
        if matches!(k, Kind::Any) && self.rng.gen_bool(0.5) {
            Kind::Event
        } else {
            k
        }
    }

    fn segment(&mut self, i: usize) -> Cond {
        let kinds = self.available();
        let primary = kinds[i % kinds.len()];
        let first = self.atom(primary);
        let cond = match self.rng.gen_range(0..10) {
            0 | 1 => first,
            2..=4 => {
                let k = self.random_kind();
                Cond::All(vec![first, self.atom(k)])
            }
            5 => {
                let k = self.random_kind();
                Cond::Any(vec![first, self.atom(k)])
            }
            6 | 7 => {
                let (a, b, c) = (self.random_kind(), self.random_kind(), self.random_kind());
                Cond::All(vec![
                    first,
                    Cond::Any(vec![self.atom(a), self.atom(b)]),
                    Cond::Not(Box::new(self.atom(c))),
                ])
            }
            8 => Cond::All(vec![first, self.atom(Kind::Trait), self.atom(Kind::Consent)]),
            _ => {
                let k = self.random_kind();
                Cond::All(vec![Cond::Not(Box::new(first)), self.atom(k)])
            }
        };
        self.made += 1;
        cond
    }
}

fn scores() -> Vec<ScoreSpec> {
    vec![
        ScoreSpec {
            id: "engagement",
            half_life: 7 * D,
            terms: vec![(0, 1.0), (3, 3.0), (11, 0.5)],
        },
        ScoreSpec {
            id: "intent",
            half_life: 3 * D,
            terms: vec![(7, 5.0), (8, 3.0), (16, 20.0), (14, 2.0), (6, -10.0)],
        },
    ]
}

impl Plan {
    pub fn generate(rng: &mut StdRng, kinds: Kinds) -> Plan {
        let mut gen = Gen {
            rng,
            kinds,
            sequences: Vec::new(),
            made: 0,
        };
        let segments: Vec<Cond> = (0..SEGMENTS).map(|i| gen.segment(i)).collect();
        let sequences = gen.sequences;
        let mut plan = Plan {
            signals: signal_pool(),
            sequences,
            scores: if kinds.score { scores() } else { Vec::new() },
            segments,
            counts: BTreeSet::new(),
            baselines: BTreeSet::new(),
            lasts: BTreeSet::new(),
            traits: BTreeSet::new(),
        };
        for c in plan.segments.clone() {
            plan.collect(&c);
        }
        plan
    }

    fn collect(&mut self, c: &Cond) {
        match c {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| self.collect(c)),
            Cond::Not(c) => self.collect(c),
            Cond::Event { sig, within, .. } => {
                self.counts.insert((*sig, *within));
            }
            Cond::Velocity {
                sig, within, baseline, ..
            } => {
                self.counts.insert((*sig, *within));
                if let Some((b, _)) = baseline {
                    self.baselines.insert((*sig, *within, *b));
                }
            }
            Cond::Last { sig, .. } => {
                self.lasts.insert(*sig);
            }
            Cond::Trait(checks) => {
                for (name, _) in checks {
                    self.traits.insert(name);
                }
            }
            Cond::Consent(_) | Cond::Sequence(_) | Cond::Segment(_) | Cond::Score { .. } => {}
        }
    }

    /// The Kairos rules file.
    pub fn yaml(&self) -> String {
        let mut out = String::new();
        if !self.scores.is_empty() {
            out.push_str("scores:\n");
            for s in &self.scores {
                out.push_str(&format!(
                    "  - id: {}\n    half_life: {}\n    terms:\n",
                    s.id,
                    format_secs(s.half_life)
                ));
                for (sig, w) in &s.terms {
                    let t = json!({ "event": Value::Object(self.signals[*sig].fields()), "weight": w });
                    out.push_str(&format!("      - {}\n", flow(&t)));
                }
            }
        }
        out.push_str("segments:\n");
        for (i, c) in self.segments.iter().enumerate() {
            out.push_str(&format!(
                "  - id: {}\n    name: Generated segment {}\n    rule:\n",
                seg_id(i),
                i + 1
            ));
            for line in self.yaml_lines(c) {
                out.push_str(&format!("      {line}\n"));
            }
        }
        out
    }

    /// A condition as YAML lines (block style for `all`/`any`/`not`, flow mappings for leaves).
    fn yaml_lines(&self, c: &Cond) -> Vec<String> {
        match c {
            Cond::All(cs) | Cond::Any(cs) => {
                let key = if matches!(c, Cond::All(_)) { "all" } else { "any" };
                let mut lines = vec![format!("{key}:")];
                for c in cs {
                    for (j, l) in self.yaml_lines(c).into_iter().enumerate() {
                        lines.push(format!("{}{l}", if j == 0 { "  - " } else { "    " }));
                    }
                }
                lines
            }
            Cond::Not(inner) => {
                let mut lines = vec!["not:".to_string()];
                lines.extend(self.yaml_lines(inner).into_iter().map(|l| format!("  {l}")));
                lines
            }
            leaf => vec![self.leaf_yaml(leaf)],
        }
    }

    /// A leaf condition as `key: { flow mapping }`.
    fn leaf_yaml(&self, c: &Cond) -> String {
        let counts = |count: &[(Cmp, u64)]| {
            let m: serde_json::Map<String, Value> =
                count.iter().map(|(op, n)| (op.key().to_string(), json!(n))).collect();
            Value::Object(m)
        };
        let bounds = |b: &[(Cmp, f64)]| {
            let m: serde_json::Map<String, Value> = b.iter().map(|(op, n)| (op.key().to_string(), json!(n))).collect();
            m
        };
        let (key, value) = match c {
            Cond::Event { sig, within, count } => {
                let mut m = self.signals[*sig].fields();
                m.insert("count".into(), counts(count));
                m.insert("within".into(), json!(format_secs(*within)));
                ("event", Value::Object(m))
            }
            Cond::Last { sig, window, absent } => {
                let mut m = self.signals[*sig].fields();
                m.insert(
                    (if *absent { "not_within" } else { "within" }).into(),
                    json!(format_secs(*window)),
                );
                ("last", Value::Object(m))
            }
            Cond::Trait(checks) => {
                let mut m = serde_json::Map::new();
                for (name, ops) in checks {
                    let mut f = serde_json::Map::new();
                    for op in ops {
                        let (k, v) = match op {
                            TraitOp::Eq(v) => ("eq", v.clone()),
                            TraitOp::Ne(v) => ("ne", v.clone()),
                            TraitOp::In(v) => ("in", json!(v)),
                            TraitOp::Contains(s) => ("contains", json!(s)),
                            TraitOp::StartsWith(s) => ("starts_with", json!(s)),
                            TraitOp::Regex(alts) => ("regex", json!(format!("(?i){}", alts.join("|")))),
                            TraitOp::Num(cmp, n) => (cmp.key(), json!(n)),
                            TraitOp::Exists(b) => ("exists", json!(b)),
                        };
                        f.insert(k.into(), v);
                    }
                    m.insert(name.to_string(), Value::Object(f));
                }
                ("trait", Value::Object(m))
            }
            Cond::Consent(list) if list.len() == 1 => ("consent", json!(list[0])),
            Cond::Consent(list) => ("consent", json!(list)),
            Cond::Sequence(i) => {
                let s = &self.sequences[*i];
                let steps: Vec<Value> = s
                    .steps
                    .iter()
                    .map(|sig| Value::Object(self.signals[*sig].fields()))
                    .collect();
                ("sequence", json!({ "steps": steps, "within": format_secs(s.within) }))
            }
            Cond::Velocity {
                sig,
                within,
                count,
                baseline,
            } => {
                let mut m = self.signals[*sig].fields();
                m.insert("within".into(), json!(format_secs(*within)));
                if !count.is_empty() {
                    m.insert("count".into(), counts(count));
                }
                if let Some((b, ratio)) = baseline {
                    m.insert("baseline".into(), json!(format_secs(*b)));
                    m.insert("ratio".into(), Value::Object(bounds(ratio)));
                }
                ("velocity", Value::Object(m))
            }
            Cond::Segment(i) => ("segment", json!(seg_id(*i))),
            Cond::Score { score, bounds: b } => {
                let mut m = bounds(b);
                m.insert("id".into(), json!(self.scores[*score].id));
                ("score", Value::Object(m))
            }
            Cond::All(_) | Cond::Any(_) | Cond::Not(_) => unreachable!("not a leaf"),
        };
        format!("{key}: {}", flow(&value))
    }

    /// The segment as a JSON Logic rule over the feature object.
    pub fn json_logic(&self, c: &Cond) -> Value {
        let var = |name: String| json!({ "var": name });
        let not_null = |v: &Value| json!({ "!==": [v, null] });
        match c {
            Cond::All(cs) => json!({ "and": cs.iter().map(|c| self.json_logic(c)).collect::<Vec<_>>() }),
            Cond::Any(cs) => json!({ "or": cs.iter().map(|c| self.json_logic(c)).collect::<Vec<_>>() }),
            Cond::Not(c) => json!({ "!": [self.json_logic(c)] }),
            Cond::Event { sig, within, count } => count_logic(&var(format!("c{sig}_{within}")), count),
            Cond::Last { sig, window, absent } => {
                let a = var(format!("a{sig}"));
                if *absent {
                    json!({ "or": [{ "===": [a, null] }, { ">=": [a, window] }] })
                } else {
                    json!({ "and": [not_null(&a), { "<": [a, window] }] })
                }
            }
            Cond::Trait(checks) => {
                let mut parts = Vec::new();
                for (name, ops) in checks {
                    let v = var(format!("t_{name}"));
                    for op in ops {
                        parts.push(match op {
                            TraitOp::Eq(x) => json!({ "and": [not_null(&v), { "==": [v, x] }] }),
                            TraitOp::Ne(x) => json!({ "or": [{ "===": [v, null] }, { "!=": [v, x] }] }),
                            TraitOp::In(xs) => json!({ "in": [v, xs] }),
                            TraitOp::Contains(s) => json!({ "and": [not_null(&v), { "in": [s, v] }] }),
                            TraitOp::StartsWith(s) => json!({ "and": [not_null(&v), { "starts_with": [v, s] }] }),
                            TraitOp::Regex(alts) => {
                                let lower = json!({ "lower": [v] });
                                let any: Vec<Value> = alts.iter().map(|a| json!({ "in": [a, lower] })).collect();
                                json!({ "and": [not_null(&v), { "or": any }] })
                            }
                            TraitOp::Num(cmp, n) => json!({ "and": [not_null(&v), { cmp.jl(): [v, n] }] }),
                            TraitOp::Exists(true) => not_null(&v),
                            TraitOp::Exists(false) => json!({ "===": [v, null] }),
                        });
                    }
                }
                json!({ "and": parts })
            }
            Cond::Consent(list) if list.len() == 1 => json!({ "==": [var("consent".into()), list[0]] }),
            Cond::Consent(list) => json!({ "in": [var("consent".into()), list] }),
            Cond::Sequence(i) => json!({ "===": [var(format!("q{i}")), true] }),
            Cond::Velocity {
                sig,
                within,
                count,
                baseline,
            } => {
                let r = var(format!("c{sig}_{within}"));
                let mut parts = Vec::new();
                if !count.is_empty() {
                    parts.push(count_logic(&r, count));
                }
                if let Some((b, ratio)) = baseline {
                    let e = var(format!("p{sig}_{within}_{b}"));
                    // Rate ratio (r / within) / (e / baseline): 0 with no recent events,
                    // infinite with recent events and an empty baseline.
                    let at = |x: f64| json!(ratio.iter().all(|(cmp, y)| cmp.holds(x, *y)));
                    let rate = json!({ "/": [{ "/": [r, within] }, { "/": [e, b] }] });
                    let finite: Vec<Value> = ratio.iter().map(|(cmp, y)| json!({ cmp.jl(): [rate, y] })).collect();
                    parts.push(json!({ "if": [
                        { "==": [r, 0] }, at(0.0),
                        { "==": [e, 0] }, at(f64::INFINITY),
                        { "and": finite }
                    ] }));
                }
                json!({ "and": parts })
            }
            // Membership of another segment in the same evaluation: its rule, inlined.
            Cond::Segment(i) => self.json_logic(&self.segments[*i]),
            Cond::Score { score, bounds } => {
                let s = var(format!("s_{}", self.scores[*score].id));
                let parts: Vec<Value> = bounds.iter().map(|(cmp, y)| json!({ cmp.jl(): [s, y] })).collect();
                json!({ "and": parts })
            }
        }
    }

    /// Which kinds the segments use, with counts of leaf conditions.
    pub fn kind_counts(&self) -> Vec<(&'static str, usize)> {
        fn walk(c: &Cond, out: &mut std::collections::BTreeMap<&'static str, usize>) {
            let name = match c {
                Cond::All(_) => "all",
                Cond::Any(_) => "any",
                Cond::Not(_) => "not",
                Cond::Event { .. } => "event",
                Cond::Last { .. } => "last",
                Cond::Trait(_) => "trait",
                Cond::Consent(l) if l.len() > 1 => "consent(list)",
                Cond::Consent(_) => "consent",
                Cond::Sequence(_) => "sequence",
                Cond::Velocity { baseline: None, .. } => "velocity(count)",
                Cond::Velocity { .. } => "velocity(ratio)",
                Cond::Segment(_) => "segment",
                Cond::Score { .. } => "score",
            };
            *out.entry(name).or_default() += 1;
            match c {
                Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| walk(c, out)),
                Cond::Not(c) => walk(c, out),
                _ => {}
            }
        }
        let mut out = std::collections::BTreeMap::new();
        self.segments.iter().for_each(|c| walk(c, &mut out));
        out.into_iter().collect()
    }
}

/// Keys in the order the rules guide writes them; others after, alphabetically.
const KEY_ORDER: [&str; 13] = [
    "id",
    "type",
    "name",
    "where",
    "machine",
    "steps",
    "count",
    "within",
    "not_within",
    "baseline",
    "ratio",
    "event",
    "weight",
];

/// A JSON value as a YAML flow node, quoting only where YAML needs it.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| (KEY_ORDER.iter().position(|o| o == k).unwrap_or(usize::MAX), k.as_str()));
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}: {}", scalar(k), flow(&m[k.as_str()])))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::String(s) => scalar(s),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(['-', ' '])
        && !s.ends_with(' ')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./- ".contains(c))
        && s.parse::<f64>().is_err()
        && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"].contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn count_logic(v: &Value, count: &[(Cmp, u64)]) -> Value {
    let parts: Vec<Value> = count.iter().map(|(cmp, n)| json!({ cmp.jl(): [v, n] })).collect();
    if parts.len() == 1 {
        parts.into_iter().next().expect("one part")
    } else {
        json!({ "and": parts })
    }
}

pub fn seg_id(i: usize) -> String {
    format!("seg-{:03}", i + 1)
}
