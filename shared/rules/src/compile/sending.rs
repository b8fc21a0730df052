//! The compiled `sequences` and `sending` sections: conditions compiled as
//! segment rules are (reading the same contact state), durations in seconds,
//! the default time zone parsed. What a decision does with them lives in the
//! `kairos-decide` crate; this module only validates and holds them.

use chrono_tz::Tz;
use kairos_event::Event;
use kairos_state::ContactState;

use crate::compile::compiler::{valid_id, Compiler};
use crate::compile::matcher::Matcher;
use crate::compile::{Node, RuleSet, Sig};
use crate::file::sending::{ExitDef, SendSequenceDef, SendingDef, StepDef};
use crate::file::{Condition, MatcherDef};

/// A compiled condition of a sequence (entry, step or exit) and its text.
#[derive(Debug, Clone)]
pub struct Cond {
    node: Node,
    /// The condition as written (compact JSON), for explanations.
    pub text: String,
}

/// A compiled send-time sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Its id.
    pub id: String,
    /// Its human name.
    pub name: String,
    /// Higher wins when a contact is in several (ties: file order).
    pub priority: i32,
    /// The channel its sends count against.
    pub channel: String,
    /// Who may start it.
    pub entry: Cond,
    /// Its own rolling caps.
    pub caps: Vec<Cap>,
    /// What ends it.
    pub exits: Vec<Exit>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// A compiled step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id within the sequence.
    pub id: String,
    /// The least time since the sequence's previous send (seconds; 0 for none).
    pub wait_secs: i64,
    /// Sent only if this holds.
    pub when: Option<Cond>,
    /// Its variants, in file order.
    pub content: Vec<Content>,
    /// `variant: fixed`: the first variant always, no learning.
    pub fixed: bool,
}

/// One content variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The variant id.
    pub variant: String,
    /// The ESP's template id.
    pub template: String,
}

/// A rolling cap: at most `max` sends in any `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// The most sends in a window.
    pub max: u32,
    /// The window (seconds).
    pub per_secs: i64,
}

/// A compiled exit.
#[derive(Debug, Clone)]
pub struct Exit {
    kind: ExitKind,
    /// The exit in words (`goal track "Demo Booked"`).
    pub text: String,
}

#[derive(Debug, Clone)]
enum ExitKind {
    /// A goal event after the sequence's first send.
    Goal(Sig),
    /// Membership of a segment lost after the first send (the node is `not segment`).
    Left(Node),
    /// A condition.
    When(Node),
}

/// The guards and the learning's controls, with their defaults filled in.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Per channel: (channel, cap).
    pub caps: Vec<(String, Cap)>,
    /// Quiet hours, if configured.
    pub quiet_hours: Option<QuietHours>,
    /// The holdout, if configured.
    pub holdout: Option<Holdout>,
    /// Thompson sampling's controls.
    pub learning: Learning,
}

/// Quiet hours: local minutes after midnight `[from, to)`, wrapping past midnight when `to < from`.
#[derive(Debug, Clone)]
pub struct QuietHours {
    /// Start, minutes after local midnight.
    pub from_min: u32,
    /// End, minutes after local midnight.
    pub to_min: u32,
    /// The trait holding the contact's IANA zone.
    pub zone_trait: String,
    /// The zone of contacts without a valid one.
    pub default_zone: Tz,
}

/// The holdout group: `basis_points` / 10,000 of contacts, drawn by a salted hash.
#[derive(Debug, Clone)]
pub struct Holdout {
    /// Hundredths of a percent held out.
    pub basis_points: u32,
    /// Hashed with the contact key.
    pub salt: String,
}

/// Thompson sampling's controls.
#[derive(Debug, Clone)]
pub struct Learning {
    /// Chance of a uniformly random variant.
    pub exploration: f64,
    /// Sends every variant needs before the posteriors decide.
    pub min_sends: u64,
    /// How long after a send a goal counts for it (seconds).
    pub attribution_secs: i64,
    goal: Matcher,
    /// The goal in words.
    pub goal_text: String,
}

/// Default exploration floor.
pub const DEFAULT_EXPLORATION: f64 = 0.05;
/// Default sends per variant before exploiting.
pub const DEFAULT_MIN_SENDS: u64 = 100;
/// Default attribution window (seconds: 7 days).
pub const DEFAULT_ATTRIBUTION_SECS: i64 = 7 * 86_400;

impl RuleSet {
    /// The send-time sequences, in file order.
    pub fn sequences(&self) -> &[Sequence] {
        &self.sequences
    }

    /// The guards and learning controls of sequence sends.
    pub fn sending(&self) -> &Sending {
        &self.sending
    }

    /// Whether a sequence condition holds for `state` at `now` (segment
    /// references are decided afresh, as of `now`).
    pub fn holds(&self, cond: &Cond, state: &ContactState, now: i64) -> bool {
        let mut run = self.run(state, now);
        self.decide_node(&cond.node, &mut run).result
    }

    /// Whether `exit` has happened for a contact whose sequence began at `since`.
    pub fn exited(&self, exit: &Exit, state: &ContactState, since: i64, now: i64) -> bool {
        match &exit.kind {
            ExitKind::Goal(sig) => state
                .signal(sig.key)
                .and_then(|s| s.last_at())
                .is_some_and(|t| t >= since && t <= now),
            ExitKind::Left(node) | ExitKind::When(node) => {
                let mut run = self.run(state, now);
                self.decide_node(node, &mut run).result
            }
        }
    }

    /// Whether `event` is a learning goal (`sending.learning.goal`).
    pub fn is_goal(&self, event: &Event) -> bool {
        self.sending.learning.goal.matches(event)
    }

    /// The (sequence, step, variant) indexes of the content with this template id.
    pub fn content_of_template(&self, template: &str) -> Option<(usize, usize, usize)> {
        self.sequences.iter().enumerate().find_map(|(q, seq)| {
            seq.steps.iter().enumerate().find_map(|(s, step)| {
                let v = step.content.iter().position(|c| c.template == template)?;
                Some((q, s, v))
            })
        })
    }
}

/// `21:30` → minutes after midnight.
fn clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let ok = h.len() == 2 && m.len() == 2;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (ok && h < 24 && m < 60).then_some(h * 60 + m)
}

fn text_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("definitions serialize")
}

impl Compiler {
    /// The `sending` section, with defaults.
    pub(crate) fn sending(&mut self, def: Option<&SendingDef>) -> Sending {
        let def = def.cloned().unwrap_or_default();
        let caps = def
            .caps
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let path = format!("sending.caps[{i}]");
                if !valid_id(&c.channel) {
                    self.issue(&format!("{path}.channel"), "expected a channel id such as `email`");
                }
                (c.channel.clone(), self.cap(c.max, &c.per, &path))
            })
            .collect();
        let quiet_hours = def.quiet_hours.as_ref().map(|q| {
            let path = "sending.quiet_hours";
            let mut at = |text: &str, field: &str| {
                clock(text).unwrap_or_else(|| {
                    let message = format!("expected a local time `HH:MM` (24-hour), found `{text}`");
                    self.issue(&format!("{path}.{field}"), message);
                    0
                })
            };
            let (from_min, to_min) = (at(&q.from, "from"), at(&q.to, "to"));
            if from_min == to_min && clock(&q.from).is_some() {
                self.issue(&format!("{path}.to"), "expected `to` to differ from `from`");
            }
            let default_zone = q.default_zone.parse::<Tz>().unwrap_or_else(|_| {
                let message = format!(
                    "expected an IANA time zone such as `Europe/London`, found `{}`",
                    q.default_zone
                );
                self.issue(&format!("{path}.default_zone"), message);
                Tz::UTC
            });
            QuietHours {
                from_min,
                to_min,
                zone_trait: q.zone_trait.clone(),
                default_zone,
            }
        });
        let holdout = def.holdout.as_ref().map(|h| {
            if !(h.percent.is_finite() && (0.0..=100.0).contains(&h.percent)) {
                self.issue("sending.holdout.percent", "expected a percentage from 0 to 100");
            }
            if h.salt.trim().is_empty() {
                self.issue("sending.holdout.salt", "expected a non-empty salt");
            }
            Holdout {
                basis_points: (h.percent.clamp(0.0, 100.0) * 100.0).round() as u32,
                salt: h.salt.clone(),
            }
        });
        let learning = def.learning.clone().unwrap_or(crate::file::sending::LearningDef {
            exploration: None,
            min_sends: None,
            attribution: None,
            goal: None,
        });
        let exploration = learning.exploration.unwrap_or(DEFAULT_EXPLORATION);
        if !(exploration.is_finite() && (0.0..=1.0).contains(&exploration)) {
            self.issue("sending.learning.exploration", "expected a probability from 0 to 1");
        }
        let attribution_secs = match &learning.attribution {
            Some(text) => self.duration(text, "sending.learning.attribution"),
            None => DEFAULT_ATTRIBUTION_SECS,
        };
        let goal_def = learning.goal.clone().unwrap_or(MatcherDef {
            kind: "email.clicked".into(),
            ..MatcherDef::default()
        });
        let goal = self.matcher(&goal_def, "sending.learning.goal");
        let goal = self.signals[&goal.key].1.clone();
        Sending {
            caps,
            quiet_hours,
            holdout,
            learning: Learning {
                exploration: exploration.clamp(0.0, 1.0),
                min_sends: learning.min_sends.unwrap_or(DEFAULT_MIN_SENDS),
                attribution_secs,
                goal,
                goal_text: text_of(&goal_def),
            },
        }
    }

    fn cap(&mut self, max: u32, per: &str, path: &str) -> Cap {
        if max == 0 {
            self.issue(&format!("{path}.max"), "expected at least 1 send");
        }
        let per_secs = self.duration(per, &format!("{path}.per"));
        Cap { max, per_secs }
    }

    /// The `sequences` section; `templates` collects every template id to find duplicates.
    pub(crate) fn sequences(&mut self, defs: &[SendSequenceDef]) -> Vec<Sequence> {
        let mut ids = std::collections::BTreeSet::new();
        let mut templates = std::collections::BTreeMap::new();
        defs.iter()
            .enumerate()
            .map(|(i, def)| {
                let path = format!("sequences[{i}]");
                if !valid_id(&def.id) {
                    self.issue(
                        &format!("{path}.id"),
                        "expected 1-64 characters of a-z, 0-9, `_` or `-`",
                    );
                }
                if !ids.insert(def.id.clone()) {
                    self.issue(&format!("{path}.id"), format!("duplicate sequence id `{}`", def.id));
                }
                self.send_sequence(def, &path, &mut templates)
            })
            .collect()
    }

    fn send_sequence(
        &mut self,
        def: &SendSequenceDef,
        path: &str,
        templates: &mut std::collections::BTreeMap<String, String>,
    ) -> Sequence {
        if def.name.trim().is_empty() {
            self.issue(&format!("{path}.name"), "expected a non-empty name");
        }
        if !valid_id(&def.channel) {
            self.issue(&format!("{path}.channel"), "expected a channel id such as `email`");
        }
        if def.steps.is_empty() {
            self.issue(&format!("{path}.steps"), "expected at least one step");
        }
        let entry = self.cond(&def.entry, &format!("{path}.entry"));
        let caps = def
            .caps
            .iter()
            .enumerate()
            .map(|(i, c)| self.cap(c.max, &c.per, &format!("{path}.caps[{i}]")))
            .collect();
        let exits = def
            .exits
            .iter()
            .enumerate()
            .map(|(i, e)| self.exit(e, &format!("{path}.exits[{i}]")))
            .collect();
        let mut step_ids = std::collections::BTreeSet::new();
        let steps = def
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let path = format!("{path}.steps[{i}]");
                if !step_ids.insert(s.id.clone()) {
                    self.issue(&format!("{path}.id"), format!("duplicate step id `{}`", s.id));
                }
                let where_ = format!("sequence `{}` step `{}`", def.id, s.id);
                self.step(s, &path, &where_, templates)
            })
            .collect();
        Sequence {
            id: def.id.clone(),
            name: def.name.clone(),
            priority: def.priority,
            channel: def.channel.clone(),
            entry,
            caps,
            exits,
            steps,
        }
    }

    fn step(
        &mut self,
        def: &StepDef,
        path: &str,
        where_: &str,
        templates: &mut std::collections::BTreeMap<String, String>,
    ) -> Step {
        if !valid_id(&def.id) {
            self.issue(
                &format!("{path}.id"),
                "expected 1-64 characters of a-z, 0-9, `_` or `-`",
            );
        }
        let wait_secs = match &def.wait {
            Some(text) => self.duration(text, &format!("{path}.wait")),
            None => 0,
        };
        let when = def.when.as_ref().map(|c| self.cond(c, &format!("{path}.when")));
        if def.content.is_empty() {
            self.issue(&format!("{path}.content"), "expected at least one content variant");
        }
        let mut variants = std::collections::BTreeSet::new();
        for (i, c) in def.content.iter().enumerate() {
            let at = format!("{path}.content[{i}]");
            if !valid_id(&c.variant) {
                self.issue(
                    &format!("{at}.variant"),
                    "expected 1-64 characters of a-z, 0-9, `_` or `-`",
                );
            }
            if !variants.insert(c.variant.clone()) {
                self.issue(&format!("{at}.variant"), format!("duplicate variant `{}`", c.variant));
            }
            if c.template.trim().is_empty() {
                self.issue(&format!("{at}.template"), "expected the ESP's template id");
            } else if let Some(other) = templates.insert(c.template.clone(), where_.to_string()) {
                let message = format!(
                    "template `{}` is already used by {other}: each template id names one variant",
                    c.template
                );
                self.issue(&format!("{at}.template"), message);
            }
        }
        let fixed = match def.variant.as_deref() {
            None | Some("learn") => false,
            Some("fixed") => true,
            Some(other) => {
                self.issue(
                    &format!("{path}.variant"),
                    format!("expected `learn` or `fixed`, found `{other}`"),
                );
                false
            }
        };
        Step {
            id: def.id.clone(),
            wait_secs,
            when,
            content: def
                .content
                .iter()
                .map(|c| Content {
                    variant: c.variant.clone(),
                    template: c.template.clone(),
                })
                .collect(),
            fixed,
        }
    }

    fn exit(&mut self, def: &ExitDef, path: &str) -> Exit {
        match def {
            ExitDef::Goal(m) => Exit {
                kind: ExitKind::Goal(self.matcher(m, &format!("{path}.goal"))),
                text: format!("goal {}", text_of(m)),
            },
            ExitDef::SegmentExit(id) => {
                let node = match self.segment_ids.get(id) {
                    Some(&i) => Node::Not(Box::new(Node::Segment(i))),
                    None => {
                        self.issue(&format!("{path}.segment_exit"), format!("unknown segment `{id}`"));
                        Node::Any(crate::compile::group::Group::new(Vec::new()))
                    }
                };
                Exit {
                    kind: ExitKind::Left(node),
                    text: format!("left segment `{id}`"),
                }
            }
            ExitDef::When(c) => Exit {
                kind: ExitKind::When(self.cond(c, &format!("{path}.when")).node),
                text: format!("when {}", text_of(c)),
            },
        }
    }

    fn cond(&mut self, def: &Condition, path: &str) -> Cond {
        let node = self.condition(def, path);
        Cond {
            node,
            text: text_of(def),
        }
    }
}

#[cfg(test)]
#[path = "sending_tests.rs"]
mod tests;
