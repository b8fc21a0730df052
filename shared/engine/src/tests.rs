use super::*;
use chrono::Duration;
use kairos_event::Change;
use kairos_state::ContactState;

const T0: &str = "2026-11-27T10:00:00Z";

fn at(minutes: i64) -> DateTime<Utc> {
    T0.parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
}

fn event(id: &str, kind: &str, minutes: i64, extra: &str) -> Event {
    let json = format!(
        r#"{{"id":"{id}","contact":"ada","type":"{kind}","at":"{}","source":"t"{extra}}}"#,
        at(minutes).to_rfc3339()
    );
    Event::from_json(json.as_bytes()).unwrap()
}

fn rules(segments: &str) -> RuleSet {
    RuleSet::from_yaml(&format!("segments:\n{segments}")).unwrap()
}

const CLICKED: &str = "  - { id: clicked, name: C, rule: { event: { type: email.clicked, within: 7d } } }\n";
const VIEWED: &str = "  - { id: viewed, name: V, rule: { event: { type: page.viewed, within: 7d } } }\n";
const QUIET: &str = "  - { id: quiet, name: Q, rule: { last: { type: email.opened, not_within: 30d } } }\n";

/// (segment, change, trigger id) of each transition.
fn changes(outcome: &Outcome) -> Vec<(&str, Change, Option<&str>)> {
    outcome
        .transitions
        .iter()
        .map(|t| (t.segment.as_str(), t.change, t.trigger.as_ref().map(|t| t.id.as_str())))
        .collect()
}

fn members(contact: &Contact) -> Vec<&str> {
    contact.state.members().iter().map(|(id, _)| id.as_str()).collect()
}

#[test]
fn a_step_applies_decides_and_records_and_a_redelivery_changes_nothing() {
    let rules = rules(&format!("{CLICKED}{VIEWED}"));
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    let click = [event("c1", "email.clicked", 0, "")];
    let out = engine.step("ada", &mut ada, &Input::events(&click, at(1)));
    assert_eq!(changes(&out), [("clicked", Change::Entered, Some("c1"))]);
    // A record's first version is the time of its first write, in milliseconds.
    let first = at(1).timestamp_millis() as u64;
    assert_eq!((out.applied, out.version, ada.version), (1, Some(first), first));
    assert_eq!(out.transitions[0].state_version, first);
    assert_eq!(ada.next_change_at, Some((at(0) + Duration::days(7)).timestamp()));
    assert_eq!(ada.expires_at, at(0).timestamp() + KEEP_AFTER_LAST_EVENT_SECS);
    assert_eq!(members(&ada), ["clicked"]);

    let before = ada.clone();
    let again = engine.step("ada", &mut ada, &Input::events(&click, at(2)));
    let duplicate = Refused {
        index: 0,
        why: Applied::Duplicate,
    };
    assert_eq!(again.refused, [duplicate]);
    assert_eq!((again.applied, again.version), (0, None));
    assert_eq!(ada, before, "a redelivery changes nothing to save");
}

#[test]
fn an_event_older_than_the_dedupe_horizon_is_refused() {
    let rules = rules(CLICKED);
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    let old = [event("c1", "email.clicked", 0, "")];
    let horizon_minutes = kairos_state::DEDUPE_HORIZON_SECS / 60;
    let out = engine.step("ada", &mut ada, &Input::events(&old, at(horizon_minutes + 60)));
    let stale = Refused {
        index: 0,
        why: Applied::Stale,
    };
    assert_eq!(out.refused, [stale]);
    assert_eq!(out.version, None, "a batch wholly refused writes nothing");
    assert!(out.transitions.is_empty());
}

#[test]
fn re_deciding_with_no_events_acts_only_when_an_answer_is_due() {
    let rules = rules(CLICKED);
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0, "")], at(0)),
    );
    let due = at(7 * 24 * 60);
    let early = engine.step("ada", &mut ada, &Input::at(due - Duration::seconds(1)));
    assert_eq!(early, Outcome::default(), "nothing is due yet");
    let swept = engine.step("ada", &mut ada, &Input::at(due));
    assert_eq!(changes(&swept), [("clicked", Change::Exited, None)]);
    assert_eq!(swept.transitions[0].at, due);
    assert_eq!(ada.next_change_at, None);
}

#[test]
fn a_rules_change_re_decides_a_stored_contact_in_full() {
    let before = rules(&format!("{CLICKED}{VIEWED}"));
    let mut ada = Contact::default();
    let events = [
        event("c1", "email.clicked", 0, ""),
        event("v1", "page.viewed", 1, r#","url":"/blog""#),
    ];
    Engine::new(&before).step("ada", &mut ada, &Input::events(&events, at(2)));
    assert_eq!(members(&ada), ["clicked", "viewed"]);

    // `clicked` now needs two clicks; `viewed` is gone; `quiet` is new.
    let twice = CLICKED.replace("within: 7d", "count: { gte: 2 }, within: 7d");
    let after = rules(&format!("{twice}{QUIET}"));
    let engine = Engine::new(&after);
    let out = engine.step("ada", &mut ada, &Input::at(at(3)));
    assert_eq!(
        changes(&out),
        [
            ("clicked", Change::Exited, None),
            ("quiet", Change::Entered, None),
            ("viewed", Change::Exited, None),
        ]
    );
    let rule_versions: Vec<&str> = out.transitions.iter().map(|t| t.rule_version.as_str()).collect();
    let segments: Vec<_> = after.segments().collect();
    assert_eq!(rule_versions, [segments[0].version, segments[1].version, "removed"]);
    assert_eq!(members(&ada), ["quiet"]);
    assert_eq!(ada.state.rules_fingerprint(), after.fingerprint());
    assert_eq!(
        engine.step("ada", &mut ada, &Input::at(at(4))),
        Outcome::default(),
        "decided once"
    );
}

#[test]
fn a_segment_removed_from_the_rules_ends_with_an_exit_even_with_an_event() {
    let before = rules(&format!("{CLICKED}{VIEWED}"));
    let mut ada = Contact::default();
    let view = [event("v1", "page.viewed", 0, r#","url":"/blog""#)];
    Engine::new(&before).step("ada", &mut ada, &Input::events(&view, at(0)));
    assert_eq!(members(&ada), ["viewed"]);
    let after = rules(CLICKED);
    let click = [event("c1", "email.clicked", 5, "")];
    let out = Engine::new(&after).step("ada", &mut ada, &Input::events(&click, at(5)));
    assert_eq!(
        changes(&out),
        [
            ("clicked", Change::Entered, Some("c1")),
            ("viewed", Change::Exited, None)
        ]
    );
    assert_eq!(out.transitions[1].summary, "the segment is no longer in the rules");
    assert_eq!(members(&ada), ["clicked"]);
}

#[test]
fn a_frozen_anonymous_record_is_merged_once_and_decides_in_full() {
    let rules = rules(&format!("{CLICKED}{VIEWED}"));
    let engine = Engine::new(&rules);
    let mut anonymous = Contact::default();
    let view = [event("v1", "page.viewed", 0, r#","url":"/blog""#)];
    engine.step("anon:x", &mut anonymous, &Input::events(&view, at(0)));
    let frozen = [Frozen {
        key: "anon:x".into(),
        into: "ada".into(),
        state: anonymous.state.clone(),
        expires_at: anonymous.expires_at,
    }];
    let mut ada = Contact::default();
    let identify = [event(
        "i1",
        "contact.identified",
        10,
        r#","properties":{"anonymous_id":"x"}"#,
    )];
    assert_eq!(identity::links("ada", &identify), ["anon:x"]);
    let input = Input {
        events: &identify,
        frozen: &frozen,
        now: at(10),
    };
    let out = engine.step("ada", &mut ada, &input);
    assert_eq!(out.merged, ["anon:x"]);
    // Entered by the merged views, not by the identify, which `viewed` does not read.
    assert_eq!(changes(&out), [("viewed", Change::Entered, None)]);
    assert_eq!(
        ada.expires_at,
        anonymous
            .expires_at
            .max(at(10).timestamp() + KEEP_AFTER_LAST_EVENT_SECS)
    );
    let again = engine.step("ada", &mut ada, &input);
    assert!(again.merged.is_empty() && again.version.is_none(), "merged once");
    // A frozen record linked elsewhere is not this contact's.
    let mut bob = Contact::default();
    let out = engine.step("bob", &mut bob, &Input { now: at(11), ..input });
    assert!(out.merged.is_empty());
    assert_eq!(bob.state.members(), ContactState::default().members());
}

#[test]
fn each_transition_is_triggered_by_the_latest_event_its_segment_reads() {
    let more = "  - { id: pro, name: P, rule: { trait: { plan: { eq: pro } } } }
  - { id: either, name: E, rule: { any: [ { segment: clicked }, { segment: pro } ] } }
  - { id: gone, name: G, rule: { consent: unsubscribed } }
";
    // Operational segments: written whatever the consent (the guard is tested in govern_tests).
    let rules = rules(&format!("{CLICKED}{more}").replace("name:", "purpose: operational, name:"));
    let engine = Engine::new(&rules);
    let events = [
        event("u1", "email.unsubscribed", 2, ""),
        event("c1", "email.clicked", 0, ""),
        event("i1", "contact.identified", 1, r#","traits":{"plan":"pro"}"#),
        event("v1", "page.viewed", 3, r#","url":"/blog""#),
    ];
    let mut ada = Contact::default();
    let out = engine.step("ada", &mut ada, &Input::events(&events, at(4)));
    assert_eq!(
        changes(&out),
        [
            ("clicked", Change::Entered, Some("c1")),
            ("pro", Change::Entered, Some("i1")),
            // Through its references it reads clicks and traits: the identify is the later.
            ("either", Change::Entered, Some("i1")),
            ("gone", Change::Entered, Some("u1")),
        ]
    );
}

#[test]
fn a_contact_woken_before_its_real_time_is_reindexed_at_the_same_version() {
    let rules = rules(CLICKED);
    let engine = Engine::new(&rules);
    let mut ada = Contact::default();
    let day = 24 * 60;
    engine.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0, "")], at(0)),
    );
    let real = (at(0) + Duration::days(7)).timestamp();
    assert_eq!((ada.next_change_at, ada.due_at), (Some(real), Some(real)));

    // Indexed earlier than its real time (as after an event that moved the
    // real time later): a sweep wakes it early, nothing is decided, and only
    // the index moves, to the real time.
    ada.due_at = Some((at(0) + Duration::days(2)).timestamp());
    let before = ada.clone();
    let woken = engine.step("ada", &mut ada, &Input::at(at(2 * day)));
    assert_eq!((woken.version, woken.reindex, woken.transitions.len()), (None, true, 0));
    assert!(woken.save());
    assert_eq!((ada.version, ada.due_at), (before.version, Some(real)));
    assert_eq!((&ada.state, ada.next_change_at), (&before.state, before.next_change_at));
    // Woken again (a second sweep message): nothing to save.
    assert!(!engine.step("ada", &mut ada, &Input::at(at(2 * day))).save());
    // An event before the indexed time keeps it (no index write)...
    ada.due_at = Some((at(0) + Duration::days(3)).timestamp());
    let click = [event("c2", "email.clicked", 2 * day + 1, "")];
    let out = engine.step("ada", &mut ada, &Input::events(&click, at(2 * day + 1)));
    assert!(out.version.is_some() && !out.reindex);
    assert_eq!(ada.due_at, Some((at(0) + Duration::days(3)).timestamp()));
    // ...and sweeps at each indexed time bring the exit a week after the
    // last click (at the window's resolution), the index emptied with it.
    let mut woken = Vec::new();
    while let Some(t) = ada.due_at {
        let now = DateTime::from_timestamp(t, 0).unwrap();
        woken.extend(engine.step("ada", &mut ada, &Input::at(now)).transitions);
        assert!(ada.due_at.is_none_or(|next| next > t), "the index moves on");
    }
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].change, Change::Exited);
    assert!(woken[0].at >= at(9 * day) && woken[0].at <= at(9 * day + 1));
    assert_eq!((ada.next_change_at, ada.due_at), (None, None));
}

#[test]
fn a_contact_carries_the_rules_version_that_decided_it_and_never_goes_back() {
    let rules = rules(CLICKED);
    let v1 = Engine {
        rules_seq: 1,
        ..Engine::new(&rules)
    };
    let mut ada = Contact::default();
    v1.step(
        "ada",
        &mut ada,
        &Input::events(&[event("c1", "email.clicked", 0, "")], at(1)),
    );
    assert_eq!(ada.rules_seq, 1);

    // The same rules republished (a rollback, say) as version 2: decided once
    // more, so the contact records it, with no transition since no answer moved.
    let v2 = Engine { rules_seq: 2, ..v1 };
    let out = v2.step("ada", &mut ada, &Input::at(at(2)));
    assert!(out.version.is_some() && out.transitions.is_empty(), "{out:?}");
    assert_eq!(ada.rules_seq, 2);
    assert_eq!(
        v2.step("ada", &mut ada, &Input::at(at(3))),
        Outcome::default(),
        "decided once"
    );

    assert!(
        v1.behind(ada.rules_seq),
        "version 1 must not step a contact decided under 2"
    );
    assert!(!v2.behind(ada.rules_seq));
    assert!(!Engine::new(&rules).behind(0), "the embedded rules are version 0");
}
