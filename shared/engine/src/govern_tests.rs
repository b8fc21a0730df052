//! Overrides, the consent guard and paused segments in the step.

use super::*;
use chrono::Duration;
use kairos_event::{AuditKind, Change};

const T0: &str = "2026-11-27T10:00:00Z";

fn at(minutes: i64) -> DateTime<Utc> {
    T0.parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
}

fn event(id: &str, kind: &str, minutes: i64) -> Event {
    let json = format!(
        r#"{{"id":"{id}","contact":"ada","type":"{kind}","at":"{}","source":"t"}}"#,
        at(minutes).to_rfc3339()
    );
    Event::from_json(json.as_bytes()).unwrap()
}

const SEGMENTS: &str = "segments:
  - { id: clicked, name: C, rule: { event: { type: email.clicked, within: 7d } } }
  - { id: viewed, name: V, rule: { event: { type: page.viewed, within: 7d } } }
  - { id: service, name: S, purpose: operational, rule: { event: { type: email.clicked, within: 7d } } }
";

fn changes(outcome: &Outcome) -> Vec<(&str, Change)> {
    outcome
        .transitions
        .iter()
        .map(|t| (t.segment.as_str(), t.change))
        .collect()
}

fn kinds(outcome: &Outcome) -> Vec<(AuditKind, Option<&str>)> {
    outcome.audit.iter().map(|a| (a.kind, a.segment.as_deref())).collect()
}

fn pin(segment: &str, member: bool, expires_at: Option<i64>) -> Manual {
    Manual::Pin(Override {
        segment: segment.into(),
        member,
        actor: "arn:aws:iam::123456789012:user/ops".into(),
        reason: "VIP account".into(),
        at: at(0).timestamp(),
        expires_at,
    })
}

#[test]
fn a_pin_in_makes_a_member_whatever_the_rule_and_is_explained_and_audited() {
    let rules = RuleSet::from_yaml(SEGMENTS).unwrap();
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0)], at(0)),
    );
    let out = engine.manual("ada", &mut ada, &pin("viewed", true, None), at(1));
    assert_eq!(changes(&out), [("viewed", Change::Entered)]);
    let t = &out.transitions[0];
    assert_eq!(t.summary, "override by arn:aws:iam::123456789012:user/ops: VIP account");
    assert_eq!(t.members.as_deref().unwrap(), ["clicked", "service", "viewed"]);
    assert_eq!(
        kinds(&out),
        [
            (AuditKind::Override, Some("viewed")),
            (AuditKind::Transition, Some("viewed"))
        ]
    );
    assert!(out
        .audit
        .iter()
        .all(|a| a.cause == "override" && a.state_version == ada.version));
    assert_eq!(
        out.audit[1].actor.as_deref(),
        Some("arn:aws:iam::123456789012:user/ops")
    );
    // The rules' own answer is untouched; the effective membership has the pin.
    assert!(ada.state.member_since("viewed").is_none());
    assert_eq!(effective(&rules, &ada), ["clicked", "service", "viewed"]);
    // Later events leave the pinned segment as it is.
    let out = engine.step("ada", &mut ada, &Input::events(&[event("v1", "page.viewed", 2)], at(2)));
    assert!(out.transitions.is_empty(), "{:?}", out.transitions);
}

#[test]
fn a_pin_out_holds_against_the_rule_and_its_expiry_is_a_deadline_the_sweep_lifts() {
    let rules = RuleSet::from_yaml(SEGMENTS).unwrap();
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0)], at(0)),
    );
    let expires = at(60).timestamp();
    let out = engine.manual("ada", &mut ada, &pin("clicked", false, Some(expires)), at(1));
    assert_eq!(changes(&out), [("clicked", Change::Exited)]);
    // The expiry is the record's next deadline (the click's window ends in 7 days).
    assert_eq!(ada.next_change_at, Some(expires));
    let more = engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c2", "email.clicked", 5)], at(5)),
    );
    assert!(more.transitions.is_empty());
    // The sweep at the expiry lifts it: the rule decides again.
    let swept = engine.step("ada", &mut ada, &Input::at(at(60)));
    assert_eq!(changes(&swept), [("clicked", Change::Entered)]);
    assert!(swept.transitions[0]
        .summary
        .starts_with("override by arn:aws:iam::123456789012:user/ops expired; the rule decides: "));
    assert_eq!(
        kinds(&swept),
        [
            (AuditKind::Override, Some("clicked")),
            (AuditKind::Transition, Some("clicked"))
        ]
    );
    assert_eq!(swept.audit[0].cause, "sweep");
    assert!(ada.overrides.is_empty() && ada.written.is_none());
}

#[test]
fn removing_a_pin_returns_to_the_rule_and_removing_none_changes_nothing() {
    let rules = RuleSet::from_yaml(SEGMENTS).unwrap();
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0)], at(0)),
    );
    engine.manual("ada", &mut ada, &pin("viewed", true, None), at(1));
    let unpin = |segment: &str| Manual::Unpin {
        segment: segment.into(),
        actor: "admin-key:ops".into(),
    };
    let out = engine.manual("ada", &mut ada, &unpin("viewed"), at(2));
    assert_eq!(changes(&out), [("viewed", Change::Exited)]);
    assert_eq!(out.audit[0].summary, "override removed by admin-key:ops");
    let before = ada.clone();
    let none = engine.manual("ada", &mut ada, &unpin("viewed"), at(3));
    assert!(!none.save() && none.audit.is_empty());
    assert_eq!(ada, before);
}

#[test]
fn an_unsubscribe_arriving_before_an_earlier_click_keeps_the_contact_out_of_marketing_segments() {
    let rules = RuleSet::from_yaml(SEGMENTS).unwrap();
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    // The unsubscribe (dated 10) arrives first; the click (dated 5) enters `clicked` by the rule.
    let first = engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("u1", "email.unsubscribed", 10)], at(11)),
    );
    assert!(first.transitions.is_empty());
    let out = engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 5)], at(12)),
    );
    // Only the operational segment is written as a member.
    assert_eq!(changes(&out), [("service", Change::Entered)]);
    assert_eq!(out.transitions[0].members.as_deref().unwrap(), ["service"]);
    // Audited: both effective entries, and the guard holding `clicked` back.
    assert_eq!(
        kinds(&out),
        [
            (AuditKind::Transition, Some("clicked")),
            (AuditKind::Guard, Some("clicked")),
            (AuditKind::Transition, Some("service"))
        ]
    );
    assert_eq!(out.audit[0].written, Some(false));
    assert_eq!(
        out.audit[1].summary,
        "consent guard: consent is unsubscribed; written as not a member"
    );
    assert_eq!(ada.written.as_deref().unwrap(), ["service"]);
}

#[test]
fn losing_consent_writes_marketing_exits_and_resubscribing_writes_them_again() {
    let rules = RuleSet::from_yaml(SEGMENTS).unwrap();
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0)], at(0)),
    );
    let out = engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("b1", "email.bounced", 1)], at(1)),
    );
    assert_eq!(changes(&out), [("clicked", Change::Exited)]);
    let t = &out.transitions[0];
    assert_eq!(t.summary, "consent guard: consent is bounced; written as not a member");
    assert_eq!(t.trigger.as_ref().map(|t| t.id.as_str()), Some("b1"));
    assert_eq!(t.members.as_deref().unwrap(), ["service"]);
    assert_eq!(kinds(&out), [(AuditKind::Guard, Some("clicked"))]);
    assert_eq!(out.audit[0].cause, "b1");
    // Still a member by the rule.
    assert!(ada.state.member_since("clicked").is_some());
    let resubscribed = r#"{"id":"s1","contact":"ada","type":"consent.changed","at":"2026-11-27T10:02:00Z","source":"t","properties":{"status":"subscribed"}}"#;
    let resubscribed = Event::from_json(resubscribed.as_bytes()).unwrap();
    let out = engine.step("ada", &mut ada, &Input::events(&[resubscribed], at(2)));
    assert_eq!(changes(&out), [("clicked", Change::Entered)]);
    assert!(out.transitions[0].summary.starts_with("consent guard lifted"));
    assert!(ada.written.is_none());
}

#[test]
fn a_paused_segment_is_decided_and_audited_but_not_written_until_resumed_once() {
    let paused = RuleSet::from_yaml(&SEGMENTS.replace("name: V,", "name: V, paused: true,")).unwrap();
    let resumed = RuleSet::from_yaml(SEGMENTS).unwrap();
    let mut ada = Contact::default();
    let out = Engine::new(&paused).step("ada", &mut ada, &Input::events(&[event("v1", "page.viewed", 0)], at(0)));
    assert!(out.transitions.is_empty());
    assert_eq!(kinds(&out), [(AuditKind::Transition, Some("viewed"))]);
    assert_eq!(out.audit[0].written, Some(false));
    assert!(ada.state.member_since("viewed").is_some());
    // A click is written; its membership list leaves the paused segment as last written.
    let out = Engine::new(&paused).step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 1)], at(1)),
    );
    assert_eq!(
        changes(&out),
        [("clicked", Change::Entered), ("service", Change::Entered)]
    );
    assert_eq!(out.transitions[0].members.as_deref().unwrap(), ["clicked", "service"]);
    // Resumed: the current answer is written once, then nothing more.
    let out = Engine::new(&resumed).step("ada", &mut ada, &Input::at(at(2)));
    assert_eq!(changes(&out), [("viewed", Change::Entered)]);
    assert_eq!(
        out.transitions[0].summary,
        "segment resumed: its current answer written"
    );
    assert_eq!(kinds(&out)[0], (AuditKind::Publish, None));
    let again = Engine::new(&resumed).step("ada", &mut ada, &Input::at(at(3)));
    assert!(again.transitions.is_empty() && !again.save());
}
