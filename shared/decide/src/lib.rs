//! Send-time decisions: when an ESP or a journey tool is about to send, which
//! sequence thread a contact is in, which step is due, which content variant
//! to send, or why nothing goes out now. Pure: no I/O, the same answer given
//! (rules, contact state, earlier sends, variant counts, now, seed), so the
//! decide function, `kairos decide` and the simulation bench share it.
//!
//! Main types: [`Request`], [`Decision`] (with its [`Send`] and [`Reason`]),
//! [`Sent`] (an earlier send), [`Counts`] and the [`Posteriors`] they are read
//! from. The order of a decision, each step able to stop it with its reason:
//! 1. consent: only `subscribed` contacts get sequence sends;
//! 2. the holdout: a stable, salted share of contacts never does;
//! 3. the thread: of the sequences the contact has started (and not exited
//!    or finished) or whose entry condition holds now, the highest priority;
//! 4. the step: the next one after the last sent whose condition holds, its
//!    minimum wait since the previous send;
//! 5. rolling frequency caps (per channel and per sequence) and quiet hours
//!    in the contact's own zone: the answer names the next allowed time;
//! 6. the variant: pinned, or by Thompson sampling ([`Counts::posterior`]).
//!
//! ```
//! use kairos_decide::{Decider, History, Request, CountsTable};
//! use kairos_rules::RuleSet;
//! use kairos_state::ContactState;
//!
//! let rules = RuleSet::from_yaml(r#"
//! segments:
//!   - { id: everyone, name: Everyone, rule: { consent: subscribed } }
//! sequences:
//!   - id: welcome
//!     name: Welcome
//!     entry: { segment: everyone }
//!     steps:
//!       - id: hello
//!         content: [ { variant: a, template: tpl-a }, { variant: b, template: tpl-b } ]
//! "#).unwrap();
//! let state = ContactState::default();
//! let history = History { state: &state, sends: &[] };
//! let request = Request { contact: "ada@example.com", channel: "email", now: 1_764_237_600, key: None, seed: Some(1) };
//! let decision = Decider::new(&rules).decide(&request, &history, &CountsTable::new());
//! let send = decision.send.unwrap();
//! assert_eq!((send.sequence.as_str(), send.step.as_str()), ("welcome", "hello"));
//! assert_eq!(decision.reason.text(), "send");
//! ```

mod guards;
mod history;
mod learn;
pub mod simulation;
mod thread;

pub use guards::{cap_until, holdout_draw, in_holdout, quiet_until, zone};
pub use history::{
    attribute, counts_from_events, decision_of, outcomes, send_of_event, sends_from_events, template_of, CountsTable,
    Outcome, Posteriors, Sent, DECISION_PROPERTY, TEMPLATE_PROPERTY,
};
pub use learn::{beta, Counts};

use chrono::{DateTime, SecondsFormat, Utc};
use kairos_rules::RuleSet;
use kairos_state::{ConsentStatus, ContactState};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A question: may this contact be sent something on this channel now?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The contact key (normalized as events' keys are).
    pub contact: &'a str,
    /// The channel (`email`).
    pub channel: &'a str,
    /// The decision's time, unix seconds.
    pub now: i64,
    /// A caller-supplied idempotency key: the decision id is derived from it.
    pub key: Option<&'a str>,
    /// The random seed of the variant choice; by default derived from the
    /// decision id, so a retried decision chooses the same variant.
    pub seed: Option<u64>,
}

/// What a decision reads about the contact.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// The contact's state (as the evaluate function keeps it).
    pub state: &'a ContactState,
    /// The contact's earlier sequence sends, any order.
    pub sends: &'a [Sent],
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// The sequence id.
    pub sequence: String,
    /// The step id.
    pub step: String,
    /// The template id to send.
    pub content: String,
    /// The variant id.
    pub variant: String,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A send.
    Send,
    /// The contact has not consented (unsubscribed, bounced, complained).
    NoConsent,
    /// The contact is in the holdout group.
    Holdout,
    /// No sequence applies (none entered, or all exited or finished).
    NoSequence,
    /// The step's minimum wait since the previous send has not passed.
    Waiting(i64),
    /// A rolling frequency cap is full.
    FrequencyCap(i64),
    /// It is quiet hours in the contact's zone.
    QuietHours(i64),
}

impl Reason {
    /// The reason as the API answers it: `send`, `no consent`, `holdout`,
    /// `no sequence applies`, `waiting until T`, `frequency cap until T`,
    /// `quiet hours until T` (T in RFC 3339, UTC).
    pub fn text(self) -> String {
        match self {
            Reason::Send => "send".into(),
            Reason::NoConsent => "no consent".into(),
            Reason::Holdout => "holdout".into(),
            Reason::NoSequence => "no sequence applies".into(),
            Reason::Waiting(t) => format!("waiting until {}", rfc3339(t)),
            Reason::FrequencyCap(t) => format!("frequency cap until {}", rfc3339(t)),
            Reason::QuietHours(t) => format!("quiet hours until {}", rfc3339(t)),
        }
    }

    /// The next time a send may be allowed, for the timed reasons.
    pub fn until(self) -> Option<i64> {
        match self {
            Reason::Waiting(t) | Reason::FrequencyCap(t) | Reason::QuietHours(t) => Some(t),
            _ => None,
        }
    }
}

/// A time as RFC 3339 UTC, seconds.
pub fn rfc3339(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A decision: a send or why not, explained, under an id that records it once.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What to send, if anything.
    pub send: Option<Send>,
    /// Why.
    pub reason: Reason,
    /// The decision in words: the thread and why, the guards, the posteriors.
    pub explanation: String,
    /// Stable for the same question: the same contact, sequence, step and
    /// send count (or caller key) give the same id, so a retry records nothing twice.
    pub decision_id: String,
    /// The channel decided for.
    pub channel: String,
    /// When it was decided.
    pub at: i64,
}

impl Decision {
    /// The answer as `POST /v1/decide` and `kairos decide` print it:
    /// `{"send": {...} | null, "reason", "explanation", "decision_id"}`, and
    /// `until` (RFC 3339) when the reason names a time.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::json!({
            "send": self.send,
            "reason": self.reason.text(),
            "explanation": self.explanation,
            "decision_id": self.decision_id,
        });
        if let Some(t) = self.reason.until() {
            out["until"] = rfc3339(t).into();
        }
        out
    }

    /// The send to record, if the decision is one.
    pub fn sent(&self) -> Option<Sent> {
        let send = self.send.as_ref()?;
        Some(Sent {
            decision_id: self.decision_id.clone(),
            sequence: send.sequence.clone(),
            step: send.step.clone(),
            variant: send.variant.clone(),
            channel: self.channel.clone(),
            at: self.at,
            message_id: None,
        })
    }
}

/// Decisions over one compiled rules file.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'r> {
    /// The rules: segments, sequences and the `sending` guards.
    pub rules: &'r RuleSet,
}

impl<'r> Decider<'r> {
    /// A decider over `rules`.
    pub fn new(rules: &'r RuleSet) -> Decider<'r> {
        Decider { rules }
    }

    /// Decides for one contact (see the crate docs for the order).
    pub fn decide(&self, request: &Request, history: &History, posteriors: &dyn Posteriors) -> Decision {
        let stop = |reason: Reason, explanation: String| {
            let id = decision_id(request, &[reason_code(reason), &request.now.to_string()]);
            self.decision(request, None, reason, explanation, id)
        };
        let consent = history.state.consent();
        if consent.status() != ConsentStatus::Subscribed {
            let since = rfc3339(consent.since());
            let why = format!(
                "consent is `{}` since {since}: no marketing sends",
                consent.status().as_str()
            );
            return stop(Reason::NoConsent, why);
        }
        if let Some(h) = &self.rules.sending().holdout {
            if in_holdout(request.contact, h) {
                let draw = holdout_draw(request.contact, &h.salt);
                let share = f64::from(h.basis_points) / 100.0;
                let why = format!("in the {share}% holdout group (draw {draw} of 10000 below {}): no sequence sends, so lift can be measured", h.basis_points);
                return stop(Reason::Holdout, why);
            }
        }
        let thread = match thread::choose(self.rules, request, history) {
            Ok(thread) => thread,
            Err(why) => return stop(Reason::NoSequence, why),
        };
        let sequence = &self.rules.sequences()[thread.sequence];
        let step = &sequence.steps[thread.step];
        let nth = thread.sent_in_sequence.to_string();
        let id = decision_id(request, &[&sequence.id, &step.id, &nth]);
        let mut explanation = thread.why.clone();
        if let Some((reason, why)) = self.guards(request, history, &thread) {
            explanation.push_str("; ");
            explanation.push_str(&why);
            return self.decision(request, None, reason, explanation, id);
        }
        let counts: Vec<Counts> = step
            .content
            .iter()
            .map(|c| posteriors.counts(&sequence.id, &step.id, &c.variant))
            .collect();
        let seed = request.seed.unwrap_or_else(|| seed_of(&id));
        let mut rng = StdRng::seed_from_u64(seed);
        let choice = learn::choose(step, &counts, &self.rules.sending().learning, &mut rng);
        let content = &step.content[choice.index];
        explanation.push_str("; ");
        explanation.push_str(&choice.why);
        let send = Send {
            sequence: sequence.id.clone(),
            step: step.id.clone(),
            content: content.template.clone(),
            variant: content.variant.clone(),
        };
        self.decision(request, Some(send), Reason::Send, explanation, id)
    }

    fn decision(&self, r: &Request, send: Option<Send>, reason: Reason, explanation: String, id: String) -> Decision {
        Decision {
            send,
            reason,
            explanation,
            decision_id: id,
            channel: r.channel.to_string(),
            at: r.now,
        }
    }

    /// The minimum wait, caps and quiet hours: the first that stops a send now,
    /// with the first time all of them allow one.
    fn guards(&self, request: &Request, history: &History, thread: &thread::Thread) -> Option<(Reason, String)> {
        let sequence = &self.rules.sequences()[thread.sequence];
        let step = &sequence.steps[thread.step];
        let sending = self.rules.sending();
        let channel: Vec<i64> = history
            .sends
            .iter()
            .filter(|s| s.channel == request.channel)
            .map(|s| s.at)
            .collect();
        let own: Vec<i64> = history
            .sends
            .iter()
            .filter(|s| s.sequence == sequence.id)
            .map(|s| s.at)
            .collect();
        let wait_until = thread
            .previous_at
            .map(|t| t + step.wait_secs)
            .filter(|t| *t > request.now);
        let caps = sending
            .caps
            .iter()
            .filter(|(c, _)| c == request.channel)
            .map(|(_, cap)| (*cap, &channel, "channel"))
            .chain(sequence.caps.iter().map(|cap| (*cap, &own, "sequence")));
        let zone = sending.quiet_hours.as_ref().map(|q| (q, zone(history.state, q)));
        // The first time every guard allows a send (caps and waits only move
        // forward; quiet hours may push a time past a cap's, so repeat). Each
        // guard that holds a send back is noted once, when it first does.
        let caps: Vec<_> = caps.collect();
        let mut noted = vec![false; caps.len() + 1];
        let mut t = request.now;
        let mut first: Option<Reason> = None;
        let mut notes = Vec::new();
        for _ in 0..8 {
            let before = t;
            if let Some(w) = wait_until.filter(|w| *w > t) {
                t = w;
                first.get_or_insert(Reason::Waiting(0));
            }
            for (i, (cap, times, kind)) in caps.iter().enumerate() {
                if let Some(u) = cap_until(times, *cap, t).filter(|u| *u > t) {
                    if !std::mem::replace(&mut noted[i], true) {
                        let inside = times.iter().filter(|x| **x > t - cap.per_secs && **x <= t).count();
                        let per = kairos_rules::format_secs(cap.per_secs);
                        notes.push(format!(
                            "{kind} cap {} per {per} reached ({inside} in the window)",
                            cap.max
                        ));
                    }
                    t = u;
                    first.get_or_insert(Reason::FrequencyCap(0));
                }
            }
            if let Some((q, (tz, own_zone))) = &zone {
                if let Some(u) = quiet_until(q, *tz, t) {
                    if !std::mem::replace(&mut noted[caps.len()], true) {
                        let whose = if *own_zone {
                            "the contact's zone"
                        } else {
                            "the default zone"
                        };
                        let (from, to) = (q.from_min, q.to_min);
                        let hours = format!("{:02}:{:02}-{:02}:{:02}", from / 60, from % 60, to / 60, to % 60);
                        notes.push(format!("quiet hours {hours} in {tz} ({whose})"));
                    }
                    t = u;
                    first.get_or_insert(Reason::QuietHours(0));
                }
            }
            if t == before {
                break;
            }
        }
        let reason = match first? {
            Reason::Waiting(_) => {
                let wait = kairos_rules::format_secs(step.wait_secs);
                notes.insert(0, format!("step `{}` waits {wait} after the previous send", step.id));
                Reason::Waiting(t)
            }
            Reason::FrequencyCap(_) => Reason::FrequencyCap(t),
            _ => Reason::QuietHours(t),
        };
        notes.push(format!("next allowed {}", rfc3339(t)));
        Some((reason, notes.join("; ")))
    }
}

fn reason_code(reason: Reason) -> &'static str {
    match reason {
        Reason::NoConsent => "no-consent",
        Reason::Holdout => "holdout",
        _ => "no-sequence",
    }
}

/// `d-` and 24 hex digits of SHA-256 over the contact, the caller's key if
/// given, else `parts`.
fn decision_id(request: &Request, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(request.contact.as_bytes());
    match request.key {
        Some(key) => {
            hash.update(b"\0key\0");
            hash.update(key.as_bytes());
        }
        None => parts.iter().for_each(|p| {
            hash.update([0]);
            hash.update(p.as_bytes());
        }),
    }
    let digest = hash.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("d-{hex}")
}

fn seed_of(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
