use chrono::DateTime;
use kairos_engine::{Contact, Engine, Input};
use kairos_event::Event;
use kairos_rules::RuleSet;

use crate::*;

const RULES: &str = r#"
segments:
  - id: signed-up
    name: Signed up
    rule: { event: { type: form.submitted, where: { form: { eq: signup } }, within: 30d } }
  - id: comparing
    name: Comparing
    rule: { event: { type: page.viewed, where: { url: { contains: /compare } }, within: 7d } }
sending:
  caps: [ { channel: email, max: 2, per: 1d } ]
  quiet_hours: { from: "21:00", to: "08:00", default_zone: Europe/London }
  learning: { min_sends: 10, exploration: 0.0 }
sequences:
  - id: pricing
    name: Pricing
    priority: 20
    entry: { segment: comparing }
    exits: [ { goal: { type: track, name: Demo Booked } } ]
    steps:
      - id: compare
        content: [ { variant: a, template: p-a }, { variant: b, template: p-b } ]
      - id: pinned
        wait: 1d
        variant: fixed
        content: [ { variant: direct, template: p-direct }, { variant: soft, template: p-soft } ]
  - id: onboarding
    name: Onboarding
    priority: 10
    entry: { segment: signed-up }
    steps:
      - id: welcome
        content: [ { variant: a, template: o-a } ]
      - id: tips
        wait: 2d
        content: [ { variant: a, template: o-tips } ]
"#;

fn rules() -> RuleSet {
    RuleSet::from_yaml(RULES).unwrap()
}

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

fn event(id: &str, kind: &str, when: &str, extra: &str) -> Event {
    let json =
        format!(r#"{{"id":"{id}","contact":"ada@x.test","type":"{kind}","at":"{when}","source":"test"{extra}}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

fn state(rules: &RuleSet, events: &[Event], now: i64) -> Contact {
    let mut contact = Contact::default();
    let now = DateTime::from_timestamp(now, 0).unwrap();
    Engine::new(rules).step("ada@x.test", &mut contact, &Input::events(events, now));
    contact
}

fn decide(rules: &RuleSet, events: &[Event], sends: &[Sent], now: &str) -> Decision {
    let now = at(now);
    let contact = state(rules, events, now);
    let history = History {
        state: &contact.state,
        sends,
    };
    let request = Request {
        contact: "ada@x.test",
        channel: "email",
        now,
        key: None,
        seed: Some(3),
    };
    Decider::new(rules).decide(&request, &history, &CountsTable::new())
}

fn sent(decision: &Decision) -> Sent {
    decision.sent().expect("a send")
}

#[test]
fn a_signup_starts_onboarding_and_a_comparison_click_switches_the_thread() {
    let rules = rules();
    let signup = event(
        "f1",
        "form.submitted",
        "2026-11-24T10:00:00Z",
        r#","properties":{"form":"signup"}"#,
    );
    let first = decide(&rules, std::slice::from_ref(&signup), &[], "2026-11-24T10:01:00Z");
    assert_eq!(
        first.send.as_ref().unwrap().sequence,
        "onboarding",
        "{}",
        first.explanation
    );
    let sends = vec![sent(&first)];
    // Waiting for the second onboarding step.
    let waiting = decide(&rules, std::slice::from_ref(&signup), &sends, "2026-11-25T10:00:00Z");
    assert_eq!(
        waiting.reason,
        Reason::Waiting(at("2026-11-26T10:01:00Z")),
        "{}",
        waiting.explanation
    );
    // A comparison-page view: the pricing thread outranks onboarding at the next decision.
    let compare = event(
        "w1",
        "page.viewed",
        "2026-11-25T11:00:00Z",
        r#","url":"https://x.test/compare""#,
    );
    let switched = decide(&rules, &[signup, compare], &sends, "2026-11-25T11:00:05Z");
    let send = switched.send.as_ref().expect(&switched.explanation);
    assert_eq!((send.sequence.as_str(), send.step.as_str()), ("pricing", "compare"));
    assert!(
        switched.explanation.contains("`onboarding` (priority 10) outranked"),
        "{}",
        switched.explanation
    );
}

#[test]
fn consent_comes_first() {
    let rules = rules();
    let signup = event(
        "f1",
        "form.submitted",
        "2026-11-24T10:00:00Z",
        r#","properties":{"form":"signup"}"#,
    );
    let unsub = event("u1", "email.unsubscribed", "2026-11-24T10:30:00Z", "");
    let d = decide(&rules, &[signup, unsub], &[], "2026-11-24T11:00:00Z");
    assert_eq!((d.send.is_none(), d.reason), (true, Reason::NoConsent));
    assert_eq!(d.to_json()["reason"], "no consent");
}

#[test]
fn nothing_applies_without_an_entry() {
    let d = decide(&rules(), &[], &[], "2026-11-24T11:00:00Z");
    assert_eq!(d.reason, Reason::NoSequence);
    assert_eq!(d.to_json()["send"], serde_json::Value::Null);
}

#[test]
fn quiet_hours_defer_to_the_contact_s_morning() {
    let rules = rules();
    let signup = event(
        "f1",
        "form.submitted",
        "2026-11-24T22:00:00Z",
        r#","properties":{"form":"signup"}"#,
    );
    let tz = event(
        "i1",
        "contact.identified",
        "2026-11-24T22:00:00Z",
        r#","traits":{"timezone":"America/New_York"}"#,
    );
    // 22:30 London is 17:30 in New York: allowed.
    let d = decide(&rules, &[signup.clone(), tz], &[], "2026-11-24T22:30:00Z");
    assert_eq!(d.reason, Reason::Send, "{}", d.explanation);
    // Without the trait, London's quiet hours: until 08:00 London.
    let d = decide(&rules, &[signup], &[], "2026-11-24T22:30:00Z");
    assert_eq!(
        d.reason,
        Reason::QuietHours(at("2026-11-25T08:00:00Z")),
        "{}",
        d.explanation
    );
    assert!(
        d.explanation.contains("Europe/London (the default zone)"),
        "{}",
        d.explanation
    );
}

#[test]
fn a_goal_exits_the_sequence() {
    let rules = rules();
    let compare = event(
        "w1",
        "page.viewed",
        "2026-11-25T11:00:00Z",
        r#","url":"https://x.test/compare""#,
    );
    let first = decide(&rules, std::slice::from_ref(&compare), &[], "2026-11-25T11:00:05Z");
    let booked = event("t1", "track", "2026-11-25T12:00:00Z", r#","name":"Demo Booked""#);
    let after = decide(&rules, &[compare, booked], &[sent(&first)], "2026-11-27T12:00:00Z");
    assert_eq!(after.reason, Reason::NoSequence, "{}", after.explanation);
    assert!(
        after.explanation.contains("`pricing` exited (goal"),
        "{}",
        after.explanation
    );
}

#[test]
fn a_pinned_step_always_sends_its_first_variant() {
    let rules = rules();
    let compare = event(
        "w1",
        "page.viewed",
        "2026-11-25T11:00:00Z",
        r#","url":"https://x.test/compare""#,
    );
    let first = decide(&rules, std::slice::from_ref(&compare), &[], "2026-11-25T11:00:05Z");
    let second = decide(&rules, &[compare], &[sent(&first)], "2026-11-26T12:00:00Z");
    let send = second.send.as_ref().expect(&second.explanation);
    assert_eq!((send.step.as_str(), send.variant.as_str()), ("pinned", "direct"));
    assert!(second.explanation.contains("learning off"), "{}", second.explanation);
}

#[test]
fn the_same_question_gets_the_same_decision_id() {
    let rules = rules();
    let compare = event(
        "w1",
        "page.viewed",
        "2026-11-25T11:00:00Z",
        r#","url":"https://x.test/compare""#,
    );
    let a = decide(&rules, std::slice::from_ref(&compare), &[], "2026-11-25T11:00:05Z");
    let b = decide(&rules, &[compare], &[], "2026-11-25T11:03:00Z");
    assert_eq!(a.decision_id, b.decision_id);
    assert_eq!(a.send, b.send);
}

#[test]
fn learning_converges_to_the_best_variant_in_the_simulation() {
    let rates = [0.04, 0.05, 0.08];
    let out = crate::simulation::run(&rates, 20_000, 0.05, 100, 11);
    let late: u64 = out.chosen_late.iter().sum();
    assert!(out.chosen_late[2] as f64 > 0.85 * late as f64, "{out:?}");
    assert!(out.thompson as f64 >= 0.9 * out.oracle as f64, "{out:?}");
    assert!(out.thompson > out.uniform, "{out:?}");
}

#[test]
fn the_holdout_keeps_the_same_contacts_across_reruns_and_rules_edits() {
    let with = |extra: &str| {
        let text = format!("{RULES}{extra}").replace("sending:\n", "sending:\n  holdout: { percent: 10, salt: q4 }\n");
        RuleSet::from_yaml(&text).unwrap()
    };
    let (before, edited) = (
        with(""),
        with("      - id: extra\n        content: [ { variant: a, template: o-extra } ]\n"),
    );
    assert_ne!(before.fingerprint(), edited.fingerprint(), "the edit changes the rules");
    let signup = event(
        "f1",
        "form.submitted",
        "2026-11-24T10:00:00Z",
        r#","properties":{"form":"signup"}"#,
    );
    let held = |rules: &RuleSet| -> Vec<bool> {
        let contact = state(rules, std::slice::from_ref(&signup), at("2026-11-24T10:01:00Z"));
        (0..400)
            .map(|i| {
                let key = format!("c{i}@x.test");
                let request = Request {
                    contact: &key,
                    channel: "email",
                    now: at("2026-11-24T10:01:00Z"),
                    key: None,
                    seed: Some(1),
                };
                let history = History {
                    state: &contact.state,
                    sends: &[],
                };
                Decider::new(rules)
                    .decide(&request, &history, &CountsTable::new())
                    .reason
                    == Reason::Holdout
            })
            .collect()
    };
    let first = held(&before);
    assert_eq!(first, held(&before), "a rerun holds out the same contacts");
    assert_eq!(
        first,
        held(&edited),
        "an edit that keeps the salt holds out the same contacts"
    );
    let share = first.iter().filter(|h| **h).count();
    assert!((20..=60).contains(&share), "{share} of 400 at 10%");
}

#[test]
fn a_goal_is_attributed_by_decision_id_then_message_id_then_template_then_recency() {
    let rules = rules();
    let send = |id: &str, template_step: (&str, &str), at_: &str, message: Option<&str>| Sent {
        decision_id: id.into(),
        sequence: "pricing".into(),
        step: template_step.0.into(),
        variant: template_step.1.into(),
        channel: "email".into(),
        at: at(at_),
        message_id: message.map(str::to_string),
    };
    let sends = [
        send("d1", ("compare", "a"), "2026-11-24T10:00:00Z", Some("m-1")),
        send("d2", ("compare", "b"), "2026-11-25T10:00:00Z", None),
        send("d3", ("pinned", "direct"), "2026-11-26T10:00:00Z", None),
    ];
    let click = |extra: &str| event("c", "email.clicked", "2026-11-26T12:00:00Z", extra);
    let id = |e: &Event| attribute(&rules, e, &sends).map(|s| s.decision_id.clone());
    assert_eq!(id(&click(r#","properties":{"decision_id":"d2"}"#)), Some("d2".into()));
    assert_eq!(id(&click(r#","message_id":"m-1""#)), Some("d1".into()));
    assert_eq!(id(&click(r#","properties":{"template_id":"p-b"}"#)), Some("d2".into()));
    assert_eq!(id(&click("")), Some("d3".into()));
    // Outside the attribution window (7 days by default): nothing.
    let late = event("c", "email.clicked", "2026-12-20T12:00:00Z", r#","message_id":"m-1""#);
    assert_eq!(id(&late), None);
}

#[test]
fn a_wait_that_ends_at_night_is_pushed_to_the_morning_and_says_both() {
    let rules = rules();
    let signup = event(
        "f1",
        "form.submitted",
        "2026-11-24T21:30:00Z",
        r#","properties":{"form":"signup"}"#,
    );
    // The welcome went out at 21:45 London on the 24th; `tips` waits 2 days after it:
    // until 21:45 on the 26th, inside quiet hours.
    let first = Sent {
        decision_id: "d1".into(),
        sequence: "onboarding".into(),
        step: "welcome".into(),
        variant: "a".into(),
        channel: "email".into(),
        at: at("2026-11-24T21:45:00Z"),
        message_id: None,
    };
    let d = decide(
        &rules,
        std::slice::from_ref(&signup),
        std::slice::from_ref(&first),
        "2026-11-26T20:00:00Z",
    );
    // The wait ends at 21:45, inside quiet hours: the first allowed time is 08:00 the next morning.
    assert_eq!(
        d.reason,
        Reason::Waiting(at("2026-11-27T08:00:00Z")),
        "{}",
        d.explanation
    );
    assert!(
        d.explanation.contains("waits 2d after the previous send"),
        "{}",
        d.explanation
    );
    assert!(
        d.explanation.contains("quiet hours 21:00-08:00 in Europe/London"),
        "{}",
        d.explanation
    );
}
