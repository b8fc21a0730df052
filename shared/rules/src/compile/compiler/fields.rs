//! The compiler's field readers: event matchers, value filters, bounds,
//! counts, durations and consent statuses, each reporting its problems at its
//! path.

use kairos_event::EventType;
use kairos_state::{ConsentStatus, RETENTION_SECS};
use regex::Regex;

use super::{Compiler, CountOp};
use crate::compile::matcher::{signal_key, Age, Bound, Filter, Matcher};
use crate::compile::Sig;
use crate::file::duration::{format_secs, parse_duration};
use crate::file::{BoundsDef, CountDef, FilterDef, Machine, MatcherDef};

impl Compiler {
    pub(crate) fn matcher(&mut self, def: &MatcherDef, path: &str) -> Sig {
        let kind = def.kind.parse::<EventType>().unwrap_or_else(|e| {
            self.issue(&format!("{path}.type"), e.to_string());
            EventType::Track
        });
        if kind == EventType::Track && def.name.is_none() && def.kind == "track" {
            self.issue(&format!("{path}.name"), "expected the event name for a `track` event");
        }
        let machine = match def.machine.as_deref() {
            None => Machine::Exclude,
            Some(name) => Machine::from_name(name).unwrap_or_else(|| {
                let message = format!("expected `exclude`, `include` or `only`, found `{name}`");
                self.issue(&format!("{path}.machine"), message);
                Machine::Exclude
            }),
        };
        let filters = def
            .filters
            .iter()
            .map(|(field, f)| (field.clone(), self.filter(f, &format!("{path}.where.{field}"), false)))
            .collect();
        let key = signal_key(def);
        let matcher = Matcher {
            kind,
            name: def.name.clone(),
            machine,
            filters,
        };
        let next = self.signals.len() as u32;
        let slot = match self.signals.get(&key) {
            Some((existing, _, slot)) => {
                let (collision, slot) = (existing != def, *slot);
                if collision {
                    self.issue(
                        path,
                        "signal hash collision with another matcher; change this matcher slightly",
                    );
                }
                slot
            }
            None => {
                self.signals.insert(key, (def.clone(), matcher, next));
                next
            }
        };
        self.reads.signals.insert(key);
        Sig { key, slot }
    }

    pub(super) fn filter(&mut self, def: &FilterDef, path: &str, traits: bool) -> Filter {
        let regex = def.regex.as_ref().and_then(|r| match Regex::new(r) {
            Ok(re) => Some(re),
            Err(e) => {
                // The last line of a syntax error says what is wrong; the others draw it.
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string();
                self.issue(
                    &format!("{path}.regex"),
                    format!("invalid regular expression `{r}`: {why}"),
                );
                None
            }
        });
        let bounds = self.bounds(
            &BoundsDef {
                gt: def.gt,
                gte: def.gte,
                lt: def.lt,
                lte: def.lte,
            },
            path,
        );
        let mut ages = Vec::new();
        for (age, field, text) in [
            (Age::OlderThan, "older_than", &def.older_than),
            (Age::NewerThan, "newer_than", &def.newer_than),
            (Age::WithinNext, "within_next", &def.within_next),
        ] {
            let Some(text) = text else { continue };
            if !traits {
                self.issue(
                    &format!("{path}.{field}"),
                    "relative-time operators apply to traits only",
                );
            }
            ages.push((age, self.duration(text, &format!("{path}.{field}"))));
        }
        if *def == FilterDef::default() {
            self.issue(path, "expected at least one operator: eq, ne, in, contains, starts_with, regex, gt, gte, lt, lte, exists, older_than, newer_than, within_next");
        }
        Filter {
            eq: def.eq.clone(),
            ne: def.ne.clone(),
            one_of: def.one_of.clone(),
            contains: def.contains.clone(),
            starts_with: def.starts_with.clone(),
            regex,
            bounds,
            exists: def.exists,
            ages,
        }
    }

    pub(super) fn bounds(&mut self, def: &BoundsDef, path: &str) -> Vec<(Bound, f64)> {
        let given = [
            (Bound::Gt, def.gt, "gt"),
            (Bound::Gte, def.gte, "gte"),
            (Bound::Lt, def.lt, "lt"),
            (Bound::Lte, def.lte, "lte"),
        ];
        let mut out = Vec::new();
        for (bound, value, field) in given {
            match value {
                Some(v) if !v.is_finite() => self.issue(&format!("{path}.{field}"), "expected a finite number"),
                Some(v) => out.push((bound, v)),
                None => {}
            }
        }
        out
    }

    /// [`Self::bounds`] where a comparison is required: without one, the
    /// condition would hold for any value.
    pub(super) fn some_bounds(&mut self, def: &BoundsDef, path: &str) -> Vec<(Bound, f64)> {
        if *def == BoundsDef::default() {
            self.issue(path, "expected at least one of gt, gte, lt, lte");
        }
        self.bounds(def, path)
    }

    pub(crate) fn duration(&mut self, text: &str, path: &str) -> i64 {
        parse_duration(text).unwrap_or_else(|e| {
            self.issue(path, e);
            1
        })
    }

    pub(super) fn window(&mut self, text: &str, path: &str) -> i64 {
        let secs = self.duration(text, path);
        if secs > RETENTION_SECS {
            let limit = format_secs(RETENTION_SECS);
            self.issue(
                path,
                format!("window `{text}` is longer than the state retains ({limit})"),
            );
            return RETENTION_SECS;
        }
        secs
    }

    pub(super) fn count(&mut self, def: Option<&CountDef>, path: &str) -> Vec<(CountOp, u64)> {
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

    pub(super) fn consent(&mut self, text: &str, path: &str) -> ConsentStatus {
        ConsentStatus::from_name(text).unwrap_or_else(|| {
            let message = format!("expected subscribed, unsubscribed, bounced or complained, found `{text}`");
            self.issue(path, message);
            ConsentStatus::Subscribed
        })
    }
}
