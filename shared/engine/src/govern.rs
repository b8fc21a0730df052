//! Governance inside the step: human overrides, the consent guard, paused
//! segments, and the audit entries of what a step changed.
//!
//! Three memberships are kept apart:
//! - the rules' answers, recorded in the state (`ContactState::members`), which
//!   the rules' delta planning reads: overrides never touch them;
//! - the *effective* membership: the rules' answers with the overrides in
//!   force applied (a pin in is a member, a pin out never is). Its changes
//!   are the audited transitions;
//! - the *written* membership: what destinations are told. A paused segment
//!   keeps what was last written; a marketing segment is written as a member
//!   only while the contact's consent is `subscribed` (the consent guard).
//!   Its changes are the transitions sent to write-back, each carrying the
//!   whole written set.

use chrono::{DateTime, Utc};
use kairos_event::{AuditEntry, AuditKind, Change, Transition};
use kairos_rules::RuleSet;
use kairos_state::{ConsentStatus, Override};
use serde_json::json;

use crate::Contact;

/// The most overrides one contact holds (one per segment at most).
pub const MAX_OVERRIDES: usize = kairos_state::MAX_SEGMENTS;
/// The longest override reason (bytes).
pub const MAX_REASON_BYTES: usize = 500;
/// The longest actor name (bytes): an IAM principal ARN or an admin key name.
pub const MAX_ACTOR_BYTES: usize = 512;

/// A human's change to a contact's overrides, made by a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    /// Pin (replacing any override of the same segment).
    Pin(Override),
    /// Remove the override of `segment`, by `actor`.
    Unpin {
        /// The segment id.
        segment: String,
        /// Who removed it.
        actor: String,
    },
}

/// What a step reads before it changes the contact.
pub(crate) struct Before {
    effective: Vec<String>,
    written: Vec<String>,
    consent: ConsentStatus,
    overrides: Vec<Override>,
    fingerprint: u32,
}

impl Before {
    pub(crate) fn of(rules: &RuleSet, contact: &Contact) -> Before {
        Before {
            effective: effective(rules, contact),
            written: written_of(contact),
            consent: contact.state.consent().status(),
            overrides: contact.overrides.clone(),
            fingerprint: contact.state.rules_fingerprint(),
        }
    }
}

/// The recorded rule answers as sorted ids.
fn rule_members(contact: &Contact) -> Vec<String> {
    contact.state.members().iter().map(|(id, _)| id.clone()).collect()
}

/// What destinations were last told (sorted ids).
pub(crate) fn written_of(contact: &Contact) -> Vec<String> {
    contact.written.clone().unwrap_or_else(|| rule_members(contact))
}

/// The effective membership: the rule answers with the overrides of segments
/// in the rules applied (sorted ids).
pub fn effective(rules: &RuleSet, contact: &Contact) -> Vec<String> {
    let mut out = rule_members(contact);
    for o in contact
        .overrides
        .iter()
        .filter(|o| rules.segment_index(&o.segment).is_some())
    {
        match (out.binary_search(&o.segment), o.member) {
            (Err(pos), true) => out.insert(pos, o.segment.clone()),
            (Ok(pos), false) => drop(out.remove(pos)),
            _ => {}
        }
    }
    out
}

/// Applies a manual change to the overrides; returns the override it removed or replaced.
pub(crate) fn apply_manual(contact: &mut Contact, manual: &Manual) -> Option<Override> {
    let segment = match manual {
        Manual::Pin(o) => &o.segment,
        Manual::Unpin { segment, .. } => segment,
    };
    let old = contact.overrides.iter().position(|o| &o.segment == segment);
    let old = old.map(|pos| contact.overrides.remove(pos));
    if let Manual::Pin(o) = manual {
        let pos = contact.overrides.partition_point(|x| x.segment < o.segment);
        contact.overrides.insert(pos, o.clone());
    }
    old
}

/// Removes the overrides lapsed at `now`; returns them.
pub(crate) fn lift_expired(contact: &mut Contact, now: i64) -> Vec<Override> {
    let (lapsed, kept) = std::mem::take(&mut contact.overrides)
        .into_iter()
        .partition(|o| o.expires_at.is_some_and(|t| t <= now));
    contact.overrides = kept;
    lapsed
}

/// The earliest override expiry, if any.
pub(crate) fn next_expiry(contact: &Contact) -> Option<i64> {
    contact.overrides.iter().filter_map(|o| o.expires_at).min()
}

/// What a step did besides the rules: the manual change, the lapsed overrides,
/// whether the rules changed, and the cause of what changed with no trigger.
pub(crate) struct Step<'a> {
    pub manual: Option<&'a Manual>,
    pub lapsed: &'a [Override],
    pub rules_changed: bool,
    pub now: DateTime<Utc>,
    /// The latest applied event that can change consent, if any.
    pub consent_event: Option<kairos_event::Trigger>,
}

/// Turns the rules' transitions into the audited effective transitions and
/// the written ones; records the written set on the contact. Returns (the
/// transitions for write-back, the audit entries).
pub(crate) fn settle(
    rules: &RuleSet,
    key: &str,
    contact: &mut Contact,
    before: &Before,
    ruled: Vec<Transition>,
    step: &Step<'_>,
) -> (Vec<Transition>, Vec<AuditEntry>) {
    let version = contact.version;
    let fingerprint = format!("{:08x}", rules.fingerprint());
    let consent = contact.state.consent().status();
    let after = effective(rules, contact);
    let written = written_set(rules, before, &after, consent);
    let mut audit = Vec::new();
    let cause_of = |t: &Transition| match (&t.trigger, step.manual) {
        (Some(trigger), _) => trigger.id.clone(),
        (None, Some(_)) => "override".into(),
        (None, None) if step.rules_changed => "publish".into(),
        (None, None) => "sweep".into(),
    };
    if step.rules_changed && before.fingerprint != rules.fingerprint() {
        let summary = format!("rules {:08x} → {fingerprint} decided the contact", before.fingerprint);
        let mut entry = AuditEntry::new(AuditKind::Publish, step.now, version, summary, "publish");
        entry.rules_fingerprint = Some(fingerprint.clone());
        audit.push(entry);
    }
    audit.extend(override_entries(before, step, version));
    // The effective transitions, in rules order then removed segments.
    let mut effective_changes: Vec<Transition> = Vec::new();
    for id in ordered(rules, &before.effective, &after) {
        let entered = contains(&after, &id);
        if entered == contains(&before.effective, &id) {
            continue;
        }
        let change = if entered { Change::Entered } else { Change::Exited };
        let t = match ruled.iter().find(|t| t.segment == id && t.change == change) {
            Some(t) => t.clone(),
            None => by_override(rules, key, contact, before, &id, change, step),
        };
        effective_changes.push(t);
    }
    let mut out = Vec::new();
    for id in ordered(rules, &before.written, &written) {
        let entered = contains(&written, &id);
        if entered == contains(&before.written, &id) {
            continue;
        }
        let change = if entered { Change::Entered } else { Change::Exited };
        match effective_changes.iter().find(|t| t.segment == id && t.change == change) {
            Some(t) => out.push(t.clone()),
            None => {
                let t = guarded(rules, key, contact, before, &id, change, step);
                let mut entry = entry_of(&t, AuditKind::Guard, &fingerprint, cause_of(&t));
                entry.written = Some(true);
                audit.push(entry);
                out.push(t);
            }
        }
    }
    for t in &effective_changes {
        let told = out.iter().any(|w| w.segment == t.segment && w.change == t.change);
        let mut entry = entry_of(t, AuditKind::Transition, &fingerprint, cause_of(t));
        entry.written = Some(told);
        entry.actor = contact
            .overrides
            .iter()
            .chain(&before.overrides)
            .find(|o| o.segment == t.segment && t.explanation.get("override").is_some())
            .map(|o| o.actor.clone());
        audit.push(entry);
        let held = !told && t.change == Change::Entered && guard_holds(rules, &t.segment, consent);
        if held {
            let summary = format!(
                "consent guard: consent is {}; written as not a member",
                consent.as_str()
            );
            let mut entry = entry_of(t, AuditKind::Guard, &fingerprint, cause_of(t));
            entry.summary = summary;
            entry.change = Some(Change::Exited);
            entry.written = Some(false);
            audit.push(entry);
        }
    }
    for t in &mut out {
        t.members = Some(written.clone());
    }
    contact.written = (written != rule_members(contact)).then_some(written);
    (out, audit)
}

/// The written membership after a step: a paused segment keeps what was
/// last written; the others are the effective answer, guarded by consent for
/// marketing segments. Segments no longer in the rules are not written.
fn written_set(rules: &RuleSet, before: &Before, after: &[String], consent: ConsentStatus) -> Vec<String> {
    let mut out: Vec<String> = rules
        .segments()
        .enumerate()
        .filter(|(i, s)| match rules.is_paused(*i) {
            true => contains(&before.written, s.id),
            false => contains(after, s.id) && !guard_holds(rules, s.id, consent),
        })
        .map(|(_, s)| s.id.to_string())
        .collect();
    out.sort();
    out
}

/// Whether the consent guard keeps `segment` from being written as a member.
fn guard_holds(rules: &RuleSet, segment: &str, consent: ConsentStatus) -> bool {
    consent != ConsentStatus::Subscribed && rules.segment_index(segment).is_some_and(|i| rules.is_marketing(i))
}

fn contains(sorted: &[String], id: &str) -> bool {
    sorted.binary_search_by(|s| s.as_str().cmp(id)).is_ok()
}

/// The ids of two memberships, rules segments in file order first, then the others sorted.
fn ordered(rules: &RuleSet, a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = rules
        .segments()
        .filter(|s| contains(a, s.id) || contains(b, s.id))
        .map(|s| s.id.to_string())
        .collect();
    let mut rest: Vec<String> = a
        .iter()
        .chain(b)
        .filter(|id| rules.segment_index(id).is_none())
        .cloned()
        .collect();
    rest.sort();
    rest.dedup();
    out.extend(rest);
    out
}

pub(crate) fn bare(
    rules: &RuleSet,
    key: &str,
    contact: &Contact,
    id: &str,
    change: Change,
    now: DateTime<Utc>,
) -> Transition {
    let rule_version = rules
        .segments()
        .find(|s| s.id == id)
        .map_or_else(|| "removed".to_string(), |s| s.version.to_string());
    Transition {
        contact: key.to_string(),
        segment: id.to_string(),
        change,
        rule_version,
        state_version: contact.version,
        at: now,
        trigger: None,
        summary: String::new(),
        explanation: json!(null),
        members: None,
    }
}

/// An effective change no rule transition explains: an override set, removed or lapsed.
fn by_override(
    rules: &RuleSet,
    key: &str,
    contact: &Contact,
    before: &Before,
    id: &str,
    change: Change,
    step: &Step<'_>,
) -> Transition {
    let mut t = bare(rules, key, contact, id, change, step.now);
    if let Some(o) = contact.overrides.iter().find(|o| o.segment == id) {
        t.summary = o.summary();
        t.explanation = json!({"override": o, "result": o.member});
        return t;
    }
    let old = before.overrides.iter().find(|o| o.segment == id);
    let how = match step.lapsed.iter().any(|o| o.segment == id) {
        true => "expired",
        false => "removed",
    };
    let evaluation = rules.evaluate(&contact.state, step.now.timestamp());
    let verdict = evaluation.verdicts.iter().find(|v| v.segment == id);
    let rule = verdict.map(|v| v.explanation.summary()).unwrap_or_default();
    let who = old.map_or_else(String::new, |o| format!(" by {}", o.actor));
    t.summary = format!("override{who} {how}; the rule decides: {rule}");
    t.explanation = json!({"override_lifted": old, "rule": verdict.map(|v| json!(v.explanation))});
    t
}

/// A written change no effective transition explains: the consent guard
/// acting or lifting, or a paused segment resumed.
fn guarded(
    rules: &RuleSet,
    key: &str,
    contact: &Contact,
    before: &Before,
    id: &str,
    change: Change,
    step: &Step<'_>,
) -> Transition {
    let mut t = bare(rules, key, contact, id, change, step.now);
    let consent = contact.state.consent().status();
    let guard = rules.segment_index(id).is_some_and(|i| rules.is_marketing(i)) && before.consent != consent;
    t.summary = match (guard, change) {
        (true, Change::Exited) => format!(
            "consent guard: consent is {}; written as not a member",
            consent.as_str()
        ),
        (true, Change::Entered) => "consent guard lifted: consent is subscribed again; written as a member".into(),
        (false, _) => "segment resumed: its current answer written".into(),
    };
    t.explanation = json!({"guard": guard, "consent": consent.as_str(), "result": change == Change::Entered});
    if guard {
        t.trigger = step.consent_event.clone();
    }
    t
}

/// The audit entry of exit `t` from a segment a record leaves without a
/// step (an erasure, a freeze into a contact), caused by `cause`, by `actor`
/// if a person did it (`written`: destinations were told of the
/// membership). Its kind is `transition`, so the save counts the segment's
/// members down (`kairos_store::counters`).
pub(crate) fn left_entry(
    rules: &RuleSet,
    t: &Transition,
    cause: &str,
    actor: Option<&str>,
    written: bool,
) -> AuditEntry {
    let fingerprint = format!("{:08x}", rules.fingerprint());
    let mut entry = entry_of(t, AuditKind::Transition, &fingerprint, cause.to_string());
    entry.written = Some(written);
    entry.actor = actor.map(str::to_string);
    entry
}

fn entry_of(t: &Transition, kind: AuditKind, fingerprint: &str, cause: String) -> AuditEntry {
    let mut entry = AuditEntry::new(kind, t.at, t.state_version, t.summary.clone(), &cause);
    entry.segment = Some(t.segment.clone());
    entry.change = Some(t.change);
    entry.rule_version = Some(t.rule_version.clone());
    entry.rules_fingerprint = Some(fingerprint.to_string());
    entry.explanation = Some(t.explanation.clone());
    entry
}

/// The audit entries of the overrides a step set, removed or saw lapse.
fn override_entries(before: &Before, step: &Step<'_>, version: u64) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    let mut push = |summary: String, cause: &str, segment: &str, actor: &str, explanation| {
        let mut entry = AuditEntry::new(AuditKind::Override, step.now, version, summary, cause);
        entry.segment = Some(segment.to_string());
        entry.actor = Some(actor.to_string());
        entry.explanation = Some(explanation);
        out.push(entry);
    };
    match step.manual {
        Some(Manual::Pin(o)) => {
            let how = if o.member { "pinned in" } else { "pinned out" };
            let until = o
                .expires_at
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map_or_else(String::new, |t| format!(" until {}", t.to_rfc3339()));
            let summary = format!("{how}{until}: {}", o.summary());
            push(summary, "override", &o.segment, &o.actor, json!(o));
        }
        Some(Manual::Unpin { segment, actor }) => {
            let old = before.overrides.iter().find(|o| &o.segment == segment);
            let summary = format!("override removed by {actor}");
            push(summary, "override", segment, actor, json!({"removed": old}));
        }
        None => {}
    }
    for o in step.lapsed {
        let summary = format!("override by {} expired", o.actor);
        push(summary, "sweep", &o.segment, &o.actor, json!({"expired": o}));
    }
    out
}
