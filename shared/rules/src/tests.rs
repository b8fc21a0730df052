use super::*;
use crate::compile::Node;
use chrono::DateTime;
use kairos_event::{Event, EventType};
use kairos_state::{ContactState, EXACT_CAP, RETENTION_SECS};
use serde_json::json;

const T0: i64 = 1_795_000_000;
const H: i64 = 3600;

fn rules(body: &str) -> RuleSet {
    RuleSet::from_yaml(&format!("segments:\n  - id: s\n    name: S\n    rule:\n{body}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The problems a rules file is rejected for, as `kairos rules validate` lists them.
fn issues(text: &str) -> Vec<String> {
    let err = RuleSet::from_yaml(text).unwrap_err();
    err.issues().iter().map(|i| i.to_string()).collect()
}

/// Checks the problems one by one against the starts of the expected ones.
fn assert_issues_start_with(got: &[String], expect: &[&str]) {
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expect) {
        assert!(g.starts_with(e), "{g}\n  does not start with\n{e}");
    }
}

fn ev(id: &str, kind: &str, at: i64, extra: serde_json::Value) -> Event {
    let mut v = json!({"id": id, "contact": "c", "type": kind, "source": "t",
        "at": DateTime::from_timestamp(at, 0).unwrap().to_rfc3339()});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    Event::from_value(v).unwrap()
}

/// Applies the events as the live pipeline would: in time order, each as of its
/// own time, then brings the state forward to `now`.
fn state_of(rules: &RuleSet, events: &[Event], now: i64) -> ContactState {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.at);
    let mut state = ContactState::default();
    for e in &sorted {
        state.apply(e, &rules.signals_for(e), e.at.timestamp());
    }
    state.compact(now);
    state
}

fn member(rules: &RuleSet, events: &[Event], now: i64) -> bool {
    rules.evaluate(&state_of(rules, events, now), now).verdicts[0].member
}

#[test]
fn counts_filtered_events_in_a_window() {
    let r = rules(
        "      event: { type: page.viewed, where: { url: { contains: /pricing } }, count: { gte: 2 }, within: 24h }",
    );
    let p1 = ev("1", "page.viewed", T0, json!({"url": "https://x.test/pricing"}));
    let p2 = ev("2", "page.viewed", T0 + H, json!({"url": "https://x.test/pricing?a=1"}));
    let other = ev("3", "page.viewed", T0 + H, json!({"url": "https://x.test/blog"}));
    assert!(!member(&r, &[p1.clone(), other.clone()], T0 + 2 * H));
    assert!(member(&r, &[p1.clone(), p2.clone()], T0 + 2 * H));
    // The first view leaves the window 24h after it happened.
    assert!(!member(&r, &[p1.clone(), p2.clone()], T0 + 24 * H));
    let e = r.evaluate(&state_of(&r, &[p1, p2], T0 + 2 * H), T0 + 2 * H);
    assert_eq!(e.next_change_at, Some(T0 + 24 * H));
    assert_eq!(e.verdicts[0].explanation.observed, Some(Observation::Count(2)));
    assert_eq!(e.verdicts[0].explanation.threshold, Some("count >= 2"));
}

#[test]
fn machine_opens_are_excluded_by_default() {
    let human = rules("      event: { type: email.opened, within: 2d }");
    let only = rules("      event: { type: email.opened, machine: only, within: 2d }");
    let mpp = ev("1", "email.opened", T0, json!({"machine": true}));
    assert!(!member(&human, std::slice::from_ref(&mpp), T0 + 1));
    assert!(member(&only, &[mpp], T0 + 1));
}

#[test]
fn absence_holds_for_contacts_who_never_did_it() {
    let r = rules("      last: { type: email.opened, not_within: 30d }");
    assert!(member(&r, &[], T0));
    let open = ev("1", "email.opened", T0, json!({}));
    assert!(!member(&r, std::slice::from_ref(&open), T0 + 86_400));
    let e = r.evaluate(&state_of(&r, std::slice::from_ref(&open), T0 + 86_400), T0 + 86_400);
    assert_eq!(e.next_change_at, Some(T0 + 30 * 86_400));
    assert!(member(&r, &[open], T0 + 30 * 86_400));
}

#[test]
fn traits_consent_and_boolean_logic() {
    let r = rules(
        "      all:\n        - trait: { job_title: { regex: '(?i)\\bvp\\b|director' }, company_size: { gte: 200 } }\n        - not: { consent: unsubscribed }\n        - any:\n            - event: { type: track, name: Demo Booked, within: 7d }\n            - event: { type: form.submitted, where: { form: { in: [demo, trial] } }, within: 7d }",
    );
    let who = ev(
        "1",
        "contact.identified",
        T0,
        json!({"traits": {"job_title": "VP Marketing", "company_size": 500}}),
    );
    let form = ev("2", "form.submitted", T0 + H, json!({"properties": {"form": "trial"}}));
    let unsub = ev("3", "email.unsubscribed", T0 + 2 * H, json!({}));
    assert!(member(&r, &[who.clone(), form.clone()], T0 + 3 * H));
    assert!(!member(&r, std::slice::from_ref(&who), T0 + 3 * H));
    assert!(!member(&r, &[who, form, unsub], T0 + 3 * H));
}

#[test]
fn numbers_sent_as_text_compare_as_numbers_and_lists_contain_items() {
    let r = rules(
        "      all:\n        - trait: { company_size: { gte: 50 }, seats: { in: [5, 10] }, tags: { contains: vip } }\n        - event: { type: form.submitted, where: { budget: { gt: 1000 }, zip: { eq: '02134' } }, within: 1d }",
    );
    let traits = |size: serde_json::Value, tags: serde_json::Value| {
        let traits = json!({"company_size": size, "seats": "5", "tags": tags});
        ev("1", "contact.identified", T0, json!({ "traits": traits }))
    };
    let form = |budget: serde_json::Value, zip: serde_json::Value| {
        ev(
            "2",
            "form.submitted",
            T0,
            json!({"properties": {"budget": budget, "zip": zip}}),
        )
    };
    let vip = json!(["beta", "vip"]);
    // (company size, tags, budget, zip, member)
    let cases = [
        (json!("120"), vip.clone(), json!(" 2500 "), "02134", true),
        (json!(120), vip.clone(), json!(2500.5), "02134", true),
        // Too small, not a list member, not a number, or a text that is not the same text.
        (json!("12"), vip.clone(), json!("2500"), "02134", false),
        (json!("120"), json!(["vipx"]), json!("2500"), "02134", false),
        (json!("lots"), vip.clone(), json!("2500"), "02134", false),
        (json!("120"), vip, json!("2500"), "2134", false),
    ];
    for (size, tags, budget, zip, expected) in cases {
        let events = [traits(size.clone(), tags), form(budget.clone(), json!(zip))];
        assert_eq!(member(&r, &events, T0 + 60), expected, "{size} {budget} {zip}");
    }
}

#[test]
fn filters_compare_numbers_sent_as_text_as_numbers() {
    let old = T0 - 2 * 86_400;
    let cases = [
        ("{ ne: 5 }", json!("5"), false),
        ("{ ne: 5 }", json!("6"), true),
        ("{ lt: 10 }", json!("9.5"), true),
        ("{ lte: 10 }", json!(" 10 "), true),
        ("{ lt: 10 }", json!("ten"), false),
        ("{ eq: '120' }", json!(120), true),
        ("{ eq: '120' }", json!("120.0"), false),
        ("{ in: [a, 7] }", json!("7"), true),
        ("{ contains: vip }", json!(["vip"]), true),
        ("{ contains: vip }", json!([1, "vipx"]), false),
        ("{ older_than: 1d }", json!(old.to_string()), true),
        ("{ older_than: 3d }", json!(old.to_string()), false),
    ];
    for (filter, value, expected) in cases {
        let r = rules(&format!("      trait: {{ x: {filter} }}"));
        let who = ev("1", "contact.identified", T0, json!({ "traits": { "x": value } }));
        assert_eq!(member(&r, &[who], T0 + 60), expected, "{filter} against {value}");
    }
    // A list property in an event's `where`.
    let r = rules("      event: { type: form.submitted, where: { tags: { contains: vip } }, within: 1d }");
    let form = |tags| ev("2", "form.submitted", T0, json!({ "properties": { "tags": tags } }));
    assert!(member(&r, &[form(json!(["beta", "vip"]))], T0 + 60));
    assert!(!member(&r, &[form(json!(["beta"]))], T0 + 60));
}

#[test]
fn merge_keys_compile_as_the_same_segment_written_out() {
    let merged = "segments:\n  - id: a\n    name: A\n    rule: { event: &v { type: page.viewed, within: 1d } }\n  - id: b\n    name: B\n    rule: { event: { <<: *v, count: { gte: 2 }, within: 7d } }\n";
    let written = "segments:\n  - id: a\n    name: A\n    rule: { event: { type: page.viewed, within: 1d } }\n  - id: b\n    name: B\n    rule: { event: { type: page.viewed, count: { gte: 2 }, within: 7d } }\n";
    let versions = |text| {
        let r = RuleSet::from_yaml(text).unwrap();
        r.segments().map(|s| s.version.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(versions(merged), versions(written));
}

#[test]
fn explanation_names_observed_values() {
    let r = rules("      trait: { plan: { eq: pro } }");
    let who = ev("1", "contact.identified", T0, json!({"traits": {"plan": "free"}}));
    let e = r.evaluate(&state_of(&r, &[who], T0), T0);
    assert_eq!(
        e.verdicts[0].explanation.summary(),
        r#"trait plan = "free" [= "pro": no]"#
    );
}

#[test]
fn same_matcher_shares_one_signal() {
    let r = rules("      any:\n        - event: { type: email.clicked, within: 1d }\n        - last: { type: email.clicked, not_within: 30d }");
    let click = ev("1", "email.clicked", T0, json!({}));
    assert_eq!(r.signals_for(&click).len(), 1);
    assert!(r.signals_for(&ev("2", "email.opened", T0, json!({}))).is_empty());
    let _ = EventType::EmailClicked;
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let text = r#"
segments:
  - id: a
    name: A
    rule:
      all:
        - event: { type: page.seen, within: 24h }
        - event: { type: page.viewed, within: 24 hours }
        - event: { type: page.viewed, within: 120d }
        - event: { type: page.viewed, where: { url: { regex: "([" } }, within: 1h }
  - id: a
    name: Dup
    rule: { consent: maybe }
"#;
    let got = issues(text);
    // In file order.
    let expect = [
        "segment `a`: segments[0].rule.all[0].event.type: unknown event type `page.seen`",
        "segment `a`: segments[0].rule.all[1].event.within: expected a duration like",
        "segment `a`: segments[0].rule.all[2].event.within: window `120d` is longer than the state retains (90d)",
        "segment `a`: segments[0].rule.all[3].event.where.url.regex: invalid regular expression `([`: unclosed character class",
        "segment `a`: segments[1].id: duplicate segment id `a`",
        "segment `a`: segments[1].rule.consent: expected subscribed, unsubscribed, bounced or complained, found `maybe`",
    ];
    assert_issues_start_with(&got, &expect);
}

#[test]
fn structural_errors_are_reported_with_every_other_problem() {
    let text = r#"
scores:
  - { id: broken, half_life: 1d, terms: [ { event: { type: email.opened }, weight: heavy } ] }
segments:
  - { id: a, name: A, rule: { event: { type: email.read, within: 1d } } }
  - { id: b, name: B, rule: { event: { type: email.opened, within: 24 hours } } }
  - { id: c, name: C, rule: { event: { type: page.viewed, whithin: 1d } } }
  - { id: d, name: D, rule: { evnt: { type: page.viewed } } }
  - { id: e, name: E, rule: { all: [ { segment: c }, { score: { id: broken, gte: 1 } } ] } }
  - { name: F, rule: { consent: subscribed } }
"#;
    let got = issues(text);
    let expect = [
        "scores[0].terms[0].weight: invalid type: string \"heavy\"",
        "segment `a`: segments[0].rule.event.type: unknown event type `email.read`",
        "segment `b`: segments[1].rule.event.within: expected a duration like",
        "segment `c`: segments[2].rule.event.whithin: unknown field `whithin`",
        "segment `d`: segments[3].rule: unknown variant `evnt`",
        "segments[5]: missing field `id`",
    ];
    assert_issues_start_with(&got, &expect);
    // A segment that does not read still has its id checked, and lends no
    // id to references when it has none.
    let stand_ins = r#"
segments:
  - { id: a, name: A, rule: { consent: subscribed } }
  - { id: a, name: B, rule: { evnt: {} } }
  - 5
  - { id: c, name: C, rule: { segment: "" } }
"#;
    let got = issues(stand_ins);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[1].ends_with("segments[1].id: duplicate segment id `a`"), "{got:#?}");
    assert!(
        got[3].ends_with("segments[3].rule.segment: unknown segment ``"),
        "{got:#?}"
    );
    // A score's problem comes before the segments', however it was found.
    let late_score = "scores:\n  - { id: s, half_life: 1x, terms: [ { event: { type: email.opened }, weight: 1 } ] }\nsegments:\n  - { id: a, name: A, rule: { evnt: {} } }\n";
    assert_issues_start_with(
        &issues(late_score),
        &[
            "scores[0].half_life: expected a duration",
            "segment `a`: segments[0].rule: unknown variant",
        ],
    );
    // What is not a rules file at all is one problem.
    let err = RuleSet::from_yaml("segments: { a: 1 }\n").unwrap_err();
    assert!(matches!(err, RulesError::Syntax(_)), "{err}");
    // So is a key given twice: which one was meant is unknown.
    let twice = "segments:\n  - { id: a, name: A, rule: { event: { type: email.opened, within: 1d, within: 5d } } }\n";
    assert_eq!(
        RuleSet::from_yaml(twice).unwrap_err().to_string(),
        "segments[0].rule.event: `within` is given twice at line 2 column 38"
    );
    // A count beyond 64 bits is that segment's problem, not the file's.
    let huge = "segments:\n  - { id: a, name: A, rule: { event: { type: email.opened, within: 1d, count: { gte: 99999999999999999999 } } } }\n  - { id: b, name: B, rule: { consent: maybe } }\n";
    assert_issues_start_with(
        &issues(huge),
        &[
            "segment `a`: segments[0].rule.event.count.gte: invalid type: floating point",
            "segment `b`: segments[1].rule.consent: expected subscribed",
        ],
    );
}

#[test]
fn rule_version_changes_with_the_definition_only() {
    let a = rules("      event: { type: page.viewed, within: 1h }");
    let b = rules("      event: { type: page.viewed, within: 2h }");
    let a2 = rules("      event: { type: page.viewed, within: 1h }");
    let v = |r: &RuleSet| r.segments().next().unwrap().version.to_string();
    assert_ne!(v(&a), v(&b));
    assert_eq!(v(&a), v(&a2));
    assert_eq!(v(&a).len(), 8);
}

#[test]
fn next_change_ignores_conditions_that_cannot_flip_the_answer() {
    // `all` is false because of a trait that never changes by itself: no deadline.
    let r =
        rules("      all:\n        - trait: { plan: { eq: pro } }\n        - event: { type: page.viewed, within: 1h }");
    let view = ev("1", "page.viewed", T0, json!({}));
    assert_eq!(
        r.evaluate(&state_of(&r, std::slice::from_ref(&view), T0), T0)
            .next_change_at,
        None
    );
    // `any` holds through two recent events: it can only end when both have aged out.
    let r = rules("      any:\n        - event: { type: page.viewed, within: 1h }\n        - event: { type: email.clicked, within: 3h }");
    let click = ev("2", "email.clicked", T0, json!({}));
    let e = r.evaluate(&state_of(&r, &[view, click], T0), T0);
    assert_eq!(e.next_change_at, Some(T0 + 3 * H));
}

fn page(id: &str, at: i64, path: &str) -> Event {
    ev(id, "page.viewed", at, json!({"url": format!("https://x.test{path}")}))
}

#[test]
fn sequence_needs_the_steps_in_order_within_the_window() {
    let r = rules(
        "      sequence:\n        steps:\n          - { type: page.viewed, where: { url: { contains: /pricing } } }\n          - { type: page.viewed, where: { url: { contains: /compare } } }\n          - { type: page.viewed, where: { url: { contains: /signup } } }\n        within: 24h",
    );
    let (p, c, s) = (
        page("1", T0, "/pricing"),
        page("2", T0 + H, "/compare"),
        page("3", T0 + 2 * H, "/signup"),
    );
    let blog = page("4", T0 + 90 * 60, "/blog");
    assert!(
        member(&r, &[s.clone(), blog, c.clone(), p.clone()], T0 + 3 * H),
        "arrival order does not matter"
    );
    let out_of_order = page("5", T0 + 2 * H, "/pricing");
    assert!(!member(&r, &[c.clone(), out_of_order, s.clone()], T0 + 3 * H));
    let e = r.evaluate(
        &state_of(&r, &[p.clone(), c.clone(), s.clone()], T0 + 3 * H),
        T0 + 3 * H,
    );
    assert_eq!(e.next_change_at, Some(T0 + 24 * H), "the first step leaves the window");
    assert!(!member(&r, &[p, c, s], T0 + 24 * H));
    let err = RuleSet::from_yaml("segments:\n  - id: a\n    name: A\n    rule: { sequence: { steps: [{type: page.viewed}, {type: ad.clicked}], within: 3d } }\n");
    assert!(err.unwrap_err().to_string().contains("a sequence window is at most 2d"));
}

#[test]
fn velocity_compares_with_the_baseline_rate() {
    let r = rules(
        "      velocity: { type: email.opened, within: 2d, count: { gte: 5 }, baseline: 14d, ratio: { gte: 3 } }",
    );
    let opens = |n: i64, start: i64, step: i64| -> Vec<Event> {
        (0..n)
            .map(|i| ev(&format!("o{start}-{i}"), "email.opened", start + i * step, json!({})))
            .collect()
    };
    let now = T0 + 20 * 86_400;
    // Five opens in the last two days, one in the two weeks before: 5/2d vs 1/14d = 35x.
    let mut hot = opens(5, now - 40 * H, 6 * H);
    hot.extend(opens(1, now - 10 * 86_400, H));
    assert!(member(&r, &hot, now));
    // Five in two days but a steady habit before (14 in 14 days): 2.5/d vs 1/d = 2.5x.
    let mut steady = opens(5, now - 40 * H, 6 * H);
    steady.extend(opens(14, now - 16 * 86_400 + H, 86_400));
    assert!(!member(&r, &steady, now));
    let e = r.evaluate(&state_of(&r, &hot, now), now);
    assert_eq!(
        e.verdicts[0].explanation.observed.as_ref().unwrap().to_json()["baseline_count"],
        1
    );
    // A ratio of 2/3 against `gte: 0.667` is not shown as 0.67, which would pass.
    let close = rules("      velocity: { type: email.opened, within: 2d, baseline: 14d, ratio: { gte: 0.667 } }");
    let mut third = opens(2, now - 40 * H, 6 * H);
    third.extend(opens(21, now - 16 * 86_400 + H, 15 * H));
    let e = close.evaluate(&state_of(&close, &third, now), now);
    assert_eq!(
        e.verdicts[0].explanation.summary(),
        r#"velocity email.opened within 2d = {"baseline_count":21,"count":2,"ratio":0.6667} [rate ratio >= 0.667 vs the 2w before: no]"#
    );
}

#[test]
fn segments_can_reference_segments_but_not_in_a_cycle() {
    let text = "segments:\n  - id: vip\n    name: VIP\n    rule: { all: [ { segment: engaged }, { trait: { plan: { eq: pro } } } ] }\n  - id: engaged\n    name: Engaged\n    rule: { event: { type: email.clicked, within: 7d } }\n";
    let r = RuleSet::from_yaml(text).unwrap();
    let who = ev("1", "contact.identified", T0, json!({"traits": {"plan": "pro"}}));
    let click = ev("2", "email.clicked", T0, json!({}));
    let e = r.evaluate(&state_of(&r, &[who, click], T0 + 1), T0 + 1);
    assert_eq!(e.members().collect::<Vec<_>>(), ["vip", "engaged"]);
    // The click is in its hourly bucket before it reaches the 7-day window's
    // old edge: it leaves 7 days after its hour's start.
    assert_eq!(e.next_change_at, Some(T0.div_euclid(H) * H + 7 * 86_400));
    let cycle = "segments:\n  - id: a\n    name: A\n    rule: { segment: b }\n  - id: b\n    name: B\n    rule: { not: { segment: a } }\n";
    let err = RuleSet::from_yaml(cycle).unwrap_err().to_string();
    assert!(err.contains("segment references form a cycle: a → b → a"), "{err}");
    // Every cycle is reported, and a duplicated id does not hide one.
    let cycles = r#"
segments:
  - { id: a, name: A, rule: { segment: b } }
  - { id: b, name: B, rule: { segment: a } }
  - { id: c, name: C, rule: { not: { segment: c } } }
  - { id: x, name: X, rule: { any: [ { segment: y }, { consent: subscribed } ] } }
  - { id: y, name: Y, rule: { segment: x } }
  - { id: b, name: B2, rule: { consent: subscribed } }
"#;
    assert_eq!(
        issues(cycles),
        [
            "segment `a`: segments[0].rule: segment references form a cycle: a → b → a",
            "segment `c`: segments[2].rule: segment references form a cycle: c → c",
            "segment `x`: segments[3].rule: segment references form a cycle: x → y → x",
            "segment `b`: segments[5].id: duplicate segment id `b`",
        ]
    );
    let unknown = "segments:\n  - id: a\n    name: A\n    rule: { segment: nope }\n";
    assert!(RuleSet::from_yaml(unknown)
        .unwrap_err()
        .to_string()
        .contains("segments[0].rule.segment: unknown segment `nope`"));
}

#[test]
fn scores_decay_and_say_when_they_cross() {
    let text = "scores:\n  - id: engagement\n    half_life: 1d\n    terms:\n      - { event: { type: email.opened }, weight: 1 }\n      - { event: { type: email.clicked }, weight: 4 }\nsegments:\n  - id: hot\n    name: Hot\n    rule: { score: { id: engagement, gte: 4 } }\n";
    let r = RuleSet::from_yaml(text).unwrap();
    let hour = T0.div_euclid(H) * H;
    let events = [
        ev("1", "email.clicked", hour, json!({})),
        ev("2", "email.opened", hour, json!({})),
        ev("3", "email.opened", hour, json!({})),
    ];
    let e = r.evaluate(&state_of(&r, &events, hour), hour);
    assert_eq!(e.scores, [("engagement".to_string(), 6.0)]);
    assert!(e.verdicts[0].member);
    // 6 * 2^(-t/1d) = 4  <=>  t = log2(1.5) days = 50540.6 s.
    assert_eq!(e.next_change_at, Some(hour + 50_540));
    assert!(member(&r, &events, hour + 50_540));
    assert!(!member(&r, &events, hour + 50_541));
    // Occurrences count from their hour's start: 400 s into it, 400 s of decay.
    let late: Vec<Event> = events
        .iter()
        .map(|e| Event {
            at: e.at + chrono::Duration::seconds(400),
            ..e.clone()
        })
        .collect();
    let value = r.evaluate(&state_of(&r, &late, hour + 400), hour + 400).scores[0].1;
    assert_eq!(value, 6.0 * (-400.0f64 / 86_400.0).exp2());
}

#[test]
fn trait_timestamps_compare_with_now() {
    let r = rules("      trait: { trial_ends_at: { within_next: 7d } }");
    let ends = T0 + 10 * 86_400;
    let who = ev(
        "1",
        "contact.identified",
        T0,
        json!({"traits": {"trial_ends_at": DateTime::from_timestamp(ends, 0).unwrap().to_rfc3339()}}),
    );
    let e = r.evaluate(&state_of(&r, std::slice::from_ref(&who), T0), T0);
    assert!(!e.verdicts[0].member);
    assert_eq!(e.next_change_at, Some(ends - 7 * 86_400 + 1));
    assert!(member(&r, std::slice::from_ref(&who), ends - 86_400));
    assert!(!member(&r, std::slice::from_ref(&who), ends + 1));
    let err = RuleSet::from_yaml("segments:\n  - id: a\n    name: A\n    rule: { event: { type: form.submitted, where: { at: { older_than: 1d } }, within: 1d } }\n");
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("relative-time operators apply to traits only"));
}

#[test]
fn consent_accepts_a_list() {
    let r = rules("      consent: [unsubscribed, complained]");
    assert!(!member(&r, &[], T0));
    assert!(member(&r, &[ev("1", "email.complained", T0, json!({}))], T0));
}

#[test]
fn the_committed_json_schema_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules.schema.json");
    let generated = serde_json::to_string_pretty(&RuleSet::json_schema()).unwrap() + "\n";
    if std::env::var_os("KAIROS_UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "shared/rules/rules.schema.json is stale: run `KAIROS_UPDATE_SCHEMA=1 cargo test -p kairos-rules schema`"
    );
}

#[test]
fn exits_until_flip_equals_counting_down_one_exit_at_a_time() {
    use crate::compile::compiler::CountOp;
    use crate::compile::matcher::Bound;
    use crate::evaluate::node::{exits_until_flip, holds};
    let ops = [
        CountOp::Eq,
        CountOp::Num(Bound::Gt),
        CountOp::Num(Bound::Gte),
        CountOp::Num(Bound::Lt),
        CountOp::Num(Bound::Lte),
    ];
    let mut checked = 0;
    for a in 0..ops.len() {
        for b in 0..=ops.len() {
            for n in 0..5u64 {
                for m in 0..5u64 {
                    let mut count = vec![(ops[a], n)];
                    if b < ops.len() {
                        count.push((ops[b], m));
                    }
                    for observed in 0..8u64 {
                        let result = holds(&count, observed);
                        let slow = (1..=observed).find(|gone| holds(&count, observed - gone) != result);
                        assert_eq!(exits_until_flip(&count, observed), slow, "{count:?} at {observed}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 6 * 25 * 8);
}

/// Applies an event as the evaluate function does; returns what it changed.
fn applied(rules: &RuleSet, state: &mut ContactState, e: &Event) -> Delta {
    applied_at(rules, state, e, e.at.timestamp())
}

/// As [`applied`], applied as of `now`.
fn applied_at(rules: &RuleSet, state: &mut ContactState, e: &Event, now: i64) -> Delta {
    let signals = rules.signals_for(e);
    state.apply(e, &signals, now);
    let mut delta = Delta::default();
    delta.record(e, &signals);
    delta
}

/// Checks that the memberships recorded in the state are a full decision's.
fn assert_recorded_as_full(rules: &RuleSet, state: &ContactState, now: i64) {
    let full = rules.decide(state, now, None).members;
    let mut expected: Vec<&str> = full.iter().filter(|m| m.1).map(|m| rules.segment_id(m.0)).collect();
    expected.sort_unstable();
    let recorded: Vec<&str> = state.members().iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(recorded, expected);
}

/// Applies an event, decides on its delta (or in full), records the decision
/// and checks the recorded memberships against a full decision.
fn decided_step(rules: &RuleSet, state: &mut ContactState, e: &Event, full: bool) -> Decisions {
    let now = e.at.timestamp();
    let delta = applied(rules, state, e);
    let decisions = rules.decide(state, now, (!full).then_some(&delta));
    record(rules, state, &decisions, now);
    assert_recorded_as_full(rules, state, now);
    decisions
}

/// Records a decision in the state, as the evaluate function does.
fn record(rules: &RuleSet, state: &mut ContactState, decisions: &Decisions, now: i64) {
    for &(i, member) in &decisions.changed {
        state.set_membership(rules.segment_id(i), member, now);
    }
    state.set_rules_fingerprint(rules.fingerprint());
    state.record_decision(decisions.deadlines.clone(), decisions.holds.clone());
}

#[test]
fn a_delta_skips_segments_the_occurrence_cannot_change() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: opened, name: O, rule: { event: { type: email.opened, within: 7d } } }
  - { id: quiet, name: Q, rule: { not: { event: { type: email.opened, within: 7d } } } }
  - { id: once, name: One, rule: { event: { type: email.opened, within: 7d, count: { eq: 1 } } } }
"#,
    )
    .unwrap();
    let mut state = ContactState::default();
    let step = |state: &mut ContactState, e: &Event, full: bool| {
        let now = e.at.timestamp();
        let delta = applied(&rules, state, e);
        let decisions = rules.decide(state, now, (!full).then_some(&delta));
        record(&rules, state, &decisions, now);
        decisions
    };
    let first = step(&mut state, &ev("e1", "email.opened", T0, json!({})), true);
    assert_eq!(first.members, [(0, true), (1, false), (2, true)]);
    // `quiet` was recorded as out before: it did not change, so it is not listed.
    assert_eq!(first.changed, [(0, true), (2, true)]);
    // Another open keeps `opened` in and `quiet` out; only `once` can change.
    let second = step(&mut state, &ev("e2", "email.opened", T0 + H, json!({})), false);
    assert_eq!(second.members, [(2, false)]);
    assert_eq!(second.changed, [(2, false)]);
    // Their deadlines carry over, never later than a full decision's.
    let full = rules.decide(&state, T0 + H, None);
    assert!(second.next_change_at <= full.next_change_at);
    assert_eq!(
        full.members.iter().filter(|m| m.1).count(),
        state.members().len(),
        "the kept memberships are the full decision's"
    );
}

#[test]
fn segments_referencing_later_ones_read_this_decision_or_the_kept_answer() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: hot, name: H, rule: { any: [ { segment: twice }, { trait: { plan: { eq: pro } } } ] } }
  - { id: warm, name: W, rule: { all: [ { segment: hot }, { consent: subscribed } ] } }
  - { id: twice, name: T, rule: { event: { type: email.opened, within: 7d, count: { gte: 2 } } } }
"#,
    )
    .unwrap();
    let mut state = ContactState::default();
    let mut step = |e: Event, full: bool| {
        let now = e.at.timestamp();
        let delta = applied(&rules, &mut state, &e);
        let (decisions, verdicts) = rules.decide_explained(&state, now, (!full).then_some(&delta));
        // Explained in the decision's run, as a full evaluation explains them.
        let evaluation = rules.evaluate(&state, now);
        let expected: Vec<_> = decisions
            .changed
            .iter()
            .map(|c| evaluation.verdicts[c.0].clone())
            .collect();
        assert_eq!(verdicts, expected);
        record(&rules, &mut state, &decisions, now);
        assert_recorded_as_full(&rules, &state, now);
        decisions.changed
    };
    let subscribe = json!({"properties": {"status": "subscribed"}});
    assert_eq!(step(ev("c", "consent.changed", T0, subscribe), true), []);
    assert_eq!(step(ev("o1", "email.opened", T0 + H, json!({})), false), []);
    // The second open puts `twice` in, and with it `hot` (index 0, decided
    // after `twice` is decided for it) and `warm`.
    let second = step(ev("o2", "email.opened", T0 + 2 * H, json!({})), false);
    assert_eq!(second, [(0, true), (1, true), (2, true)]);
    // A trait change decides `hot` and `warm` again, reading `twice` as kept.
    let traits = json!({"traits": {"plan": "free"}});
    assert_eq!(step(ev("i", "contact.identified", T0 + 3 * H, traits), false), []);
}

#[test]
fn a_score_changes_when_its_occurrences_leave_retention() {
    let rules = RuleSet::from_yaml(
        r#"
scores:
  - { id: e, half_life: 1d, terms: [ { event: { type: email.clicked }, weight: -2 } ] }
segments:
  - { id: s, name: S, rule: { any: [ { score: { id: e, lt: 0 } }, { trait: { plan: { eq: pro } } } ] } }
"#,
    )
    .unwrap();
    let mut state = ContactState::default();
    let delta = applied(&rules, &mut state, &ev("c1", "email.clicked", T0, json!({})));
    let decisions = rules.decide(&state, T0, Some(&delta));
    assert_eq!(decisions.changed, [(0, true)]);
    // The click's remnant, 2^-90 of its weight, leaves when its hour's bucket
    // leaves retention: no earlier can the score reach 0.
    let leaves = T0 - T0.rem_euclid(H) + RETENTION_SECS;
    let next = decisions
        .next_change_at
        .expect("the score returns to 0 when the click leaves");
    assert!((leaves..=leaves + H).contains(&next), "{next} vs {leaves}");
    record(&rules, &mut state, &decisions, T0);
    // An event that reaches nothing the segment kept decides it, its deadline passed.
    let later = T0 + 91 * 86_400;
    let free = json!({"traits": {"plan": "free"}});
    let decisions = decided_step(&rules, &mut state, &ev("i1", "contact.identified", later, free), false);
    assert_eq!(decisions.changed, [(0, false)]);
}

#[test]
fn a_held_segment_is_decided_again_only_when_an_event_reaches_what_held_it() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: pro-reader, name: P, rule: { all: [ { event: { type: email.opened, within: 7d } }, { trait: { plan: { eq: pro } } } ] } }
  - { id: clicker, name: C, rule: { all: [ { event: { type: email.clicked, within: 30d, count: { gte: 2 } } }, { event: { type: email.opened, within: 7d } } ] } }
"#,
    )
    .unwrap();
    let mut state = ContactState::default();
    // The segments the delta decided; the memberships always equal a full decision's.
    let mut step = |e: Event, full: bool| decided_step(&rules, &mut state, &e, full).members;
    let free = json!({"traits": {"plan": "free"}});
    assert_eq!(
        step(ev("i1", "contact.identified", T0, free), true),
        [(0, false), (1, false)]
    );
    // The plan holds `pro-reader` out and the missing clicks hold `clicker`
    // out: an open reaches neither, though both read opens.
    assert_eq!(step(ev("o1", "email.opened", T0 + H, json!({})), false), []);
    // A new plan reaches what held `pro-reader`.
    let pro = json!({"traits": {"plan": "pro"}});
    assert_eq!(
        step(ev("i2", "contact.identified", T0 + 2 * H, pro), false),
        [(0, true)]
    );
    // Clicks reach what held `clicker`: one is not enough, two are.
    assert_eq!(
        step(ev("c1", "email.clicked", T0 + 3 * H, json!({})), false),
        [(1, false)]
    );
    assert_eq!(
        step(ev("c2", "email.clicked", T0 + 4 * H, json!({})), false),
        [(1, true)]
    );
}

/// A state whose page views reached the exact cap, and its `now`: the oldest
/// view at half past an hour, 4 h 50 min before now, a click ten minutes
/// later, the other views after it, up to `now`.
fn at_the_cap(rules: &RuleSet) -> (ContactState, i64) {
    let first = T0 - T0.rem_euclid(H) + H / 2;
    let now = first + 5 * H - 600;
    let mut state = ContactState::default();
    let mut events = vec![ev("c", "email.clicked", first + 600, json!({}))];
    let step = (now - first - 1200) / (EXACT_CAP as i64 - 2);
    for k in 0..EXACT_CAP as i64 {
        let at = if k == 0 { first } else { first + 1200 + (k - 1) * step };
        events.push(ev(
            &format!("v{k}"),
            "page.viewed",
            at,
            json!({"url": "https://x.test/"}),
        ));
    }
    for e in &events {
        state.apply(e, &rules.signals_for(e), now);
    }
    let decisions = rules.decide(&state, now, None);
    for &(i, member) in &decisions.members {
        state.set_membership(rules.segment_id(i), member, now);
    }
    state.set_rules_fingerprint(rules.fingerprint());
    state.record_decision(decisions.deadlines, decisions.holds);
    (state, now)
}

#[test]
fn past_the_exact_cap_a_new_occurrence_decides_sequences_and_keeps_counts() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: browsing, name: B, rule: { event: { type: page.viewed, count: { gte: 10 }, within: 5h } } }
  - { id: view-click, name: VC, rule: { sequence: { steps: [ { type: page.viewed }, { type: email.clicked } ], within: 5h } } }
"#,
    )
    .unwrap();
    let (mut state, now) = at_the_cap(&rules);
    assert_eq!(state.members().len(), 2);
    // One more view moves the oldest into its hourly bucket: the click no
    // longer follows a view, but the count only grows.
    let delta = applied(
        &rules,
        &mut state,
        &ev("new", "page.viewed", now, json!({"url": "https://x.test/"})),
    );
    let decisions = rules.decide(&state, now, Some(&delta));
    assert_eq!(decisions.members, [(1, false)]);
    assert_eq!(rules.decide(&state, now, None).members, [(0, true), (1, false)]);
}

#[test]
fn past_the_exact_cap_a_future_dated_occurrence_decides_counts() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: all-views, name: A, rule: { event: { type: page.viewed, count: { gte: 64 }, within: 5h } } }
"#,
    )
    .unwrap();
    let (mut state, now) = at_the_cap(&rules);
    assert_eq!(state.members().len(), 1);
    // Dated ahead (a skewed clock, within the allowed skew): not counted yet, and the
    // oldest view's move into its bucket (whose hour starts before the window) drops the count.
    let skew = kairos_event::DEFAULT_MAX_CLOCK_SKEW_SECS;
    let ahead = ev("ahead", "page.viewed", now + skew, json!({"url": "https://x.test/"}));
    let delta = applied_at(&rules, &mut state, &ahead, now);
    let decisions = rules.decide(&state, now, Some(&delta));
    assert_eq!(decisions.members, [(0, false)]);
}

#[test]
fn a_blank_state_decides_only_what_its_first_events_can_affect() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: quiet, name: Q, rule: { last: { type: email.opened, not_within: 30d } } }
  - { id: pricing, name: P, rule: { event: { type: page.viewed, within: 1d } } }
  - { id: opened, name: O, rule: { event: { type: email.opened, within: 7d } } }
  - { id: pro, name: Pro, rule: { trait: { plan: { eq: pro } } } }
"#,
    )
    .unwrap();
    let view = ev("e1", "page.viewed", T0, json!({"url": "https://x.test/"}));
    let mut state = ContactState::default();
    let mut delta = applied(&rules, &mut state, &view);
    delta.blank = true;
    let decisions = rules.decide(&state, T0, Some(&delta));
    // `pricing` decided; `quiet` is a member of an empty state, so it enters
    // undecided; `opened` and `pro` are out on an empty state and stay out.
    assert_eq!(decisions.members, [(0, true), (1, true)]);
    assert_eq!(decisions.changed, decisions.members);
    assert_eq!(decisions.deadlines, [(1, T0 + 86_400)]);
    let full = rules.decide(&state, T0, None);
    assert_eq!(full.members, [(0, true), (1, true), (2, false), (3, false)]);
    assert_eq!(full.next_change_at, decisions.next_change_at);
}

#[test]
fn recorded_memberships_are_matched_to_segments_by_full_id() {
    let ids = [
        "engaged-openers-2",
        "engaged",
        "engaged-openers-10",
        "engaged-openers-1",
        "b",
        "engaged-openers",
    ];
    let segments: String = ids
        .iter()
        .map(|id| format!("  - {{ id: {id}, name: N, rule: {{ consent: subscribed }} }}\n"))
        .collect();
    let rules = RuleSet::from_yaml(&format!("segments:\n{segments}")).unwrap();
    let mut state = ContactState::default();
    for id in ["engaged-openers-1", "engaged", "engaged-openers", "zz-removed"] {
        state.set_membership(id, true, T0);
    }
    let recorded = rules.recorded_members(&state);
    assert_eq!(recorded.iter().collect::<Vec<_>>(), [1, 3, 5]);
}

#[test]
fn polarity_follows_negation_counts_and_scores() {
    use crate::compile::polarity::{of_rule, Polarity};
    let rules = RuleSet::from_yaml(
        r#"
scores:
  - { id: s, half_life: 1d, terms: [ { event: { type: email.opened }, weight: 1 }, { event: { type: email.clicked }, weight: -1 } ] }
segments:
  - { id: a, name: A, rule: { all: [ { event: { type: email.opened, within: 1d, count: { gte: 2 } } }, { not: { last: { type: email.clicked, within: 1d } } } ] } }
  - { id: b, name: B, rule: { event: { type: email.opened, within: 1d, count: { lte: 2 } } } }
  - { id: c, name: C, rule: { any: [ { segment: a }, { event: { type: email.opened, within: 2d } } ] } }
  - { id: d, name: D, rule: { any: [ { segment: a }, { segment: b } ] } }
  - { id: e, name: E, rule: { score: { id: s, gte: 1 } } }
  - { id: f, name: F, rule: { velocity: { type: email.opened, within: 1d, count: { lte: 2 } } } }
  - { id: g, name: G, rule: { velocity: { type: email.opened, within: 1d, baseline: 1w, ratio: { gte: 2 } } } }
"#,
    )
    .unwrap();
    let opened = rules.signals_for(&ev("o", "email.opened", T0, json!({})))[0];
    let clicked = rules.signals_for(&ev("c", "email.clicked", T0, json!({})))[0];
    let mut done = vec![Default::default(); rules.segments.len()];
    // File order is a dependency order here.
    for i in 0..rules.segments.len() {
        done[i] = of_rule(&rules.segments[i].rule, &done, &rules.scores);
    }
    let of = |i: usize, k| done[i].get(&k).copied();
    assert_eq!(
        (of(0, opened), of(0, clicked)),
        (Some(Polarity::Rises), Some(Polarity::Falls))
    );
    assert_eq!(of(1, opened), Some(Polarity::Falls));
    assert_eq!(
        (of(2, opened), of(2, clicked)),
        (Some(Polarity::Rises), Some(Polarity::Falls))
    );
    assert_eq!(of(3, opened), Some(Polarity::Either));
    assert_eq!(
        (of(4, opened), of(4, clicked)),
        (Some(Polarity::Rises), Some(Polarity::Falls))
    );
    // A velocity with only an absolute threshold is a count; with a ratio, either way.
    assert_eq!(
        (of(5, opened), of(6, opened)),
        (Some(Polarity::Falls), Some(Polarity::Either))
    );
}

#[test]
fn the_same_trait_check_is_decided_once_and_only_for_itself() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: pro, name: P, rule: { trait: { plan: { eq: pro } } } }
  - { id: free, name: F, rule: { trait: { plan: { eq: free } } } }
  - { id: pro-again, name: P2, rule: { all: [ { consent: subscribed }, { trait: { plan: { eq: pro } } } ] } }
  - { id: not-pro, name: NP, rule: { not: { trait: { plan: { eq: pro } } } } }
"#,
    )
    .unwrap();
    let memo = |i: usize| match &rules.segments[i].rule {
        Node::Trait(checks) => checks[0].memo,
        Node::All(group) => match &group.nodes[1] {
            Node::Trait(checks) => checks[0].memo,
            _ => unreachable!("the second child is the trait check"),
        },
        _ => unreachable!("a trait check"),
    };
    assert_eq!(memo(0), memo(2));
    assert_ne!(memo(0), memo(1));
    let who = ev("1", "contact.identified", T0, json!({"traits": {"plan": "pro"}}));
    let subscribe = ev(
        "2",
        "consent.changed",
        T0,
        json!({"properties": {"status": "subscribed"}}),
    );
    let state = state_of(&rules, &[who, subscribe], T0);
    let e = rules.evaluate(&state, T0);
    assert_eq!(e.members().collect::<Vec<_>>(), ["pro", "pro-again"]);
}

#[test]
fn an_occurrence_dated_after_now_is_a_deadline_for_what_counts_it() {
    let rules = RuleSet::from_yaml(
        r#"
scores:
  - { id: views, half_life: 1d, terms: [ { event: { type: page.viewed }, weight: 1 } ] }
segments:
  - { id: viewed, name: V, rule: { event: { type: page.viewed, within: 1h } } }
  - { id: view-click, name: VC, rule: { sequence: { steps: [ { type: page.viewed }, { type: email.clicked } ], within: 1h } } }
  - { id: scored, name: S, rule: { score: { id: views, gte: 0.5 } } }
  - { id: rising, name: R, rule: { velocity: { type: page.viewed, within: 1h, baseline: 3h, ratio: { gte: 1 } } } }
"#,
    )
    .unwrap();
    let mut state = ContactState::default();
    // Dated a minute ahead of the clock that applies them (a skewed provider clock).
    for e in [
        ev("v", "page.viewed", T0 + 60, json!({"url": "https://x.test/"})),
        ev("c", "email.clicked", T0 + 120, json!({})),
    ] {
        state.apply(&e, &rules.signals_for(&e), T0);
    }
    let decisions = rules.decide(&state, T0, None);
    assert!(decisions.members.iter().all(|(_, member)| !member));
    // Each answer can change once the view is counted.
    let at: Vec<(u32, i64)> = decisions
        .deadlines
        .iter()
        .copied()
        .filter(|(_, t)| *t == T0 + 60)
        .collect();
    assert_eq!(at, [(0, T0 + 60), (1, T0 + 60), (2, T0 + 60), (3, T0 + 60)]);
    let later = rules.evaluate(&state, T0 + 120);
    assert_eq!(
        later.members().collect::<Vec<_>>(),
        ["viewed", "view-click", "scored", "rising"]
    );
}

#[test]
fn a_count_velocity_with_a_baseline_reports_the_baseline() {
    let rules = RuleSet::from_yaml(
        r#"
segments:
  - { id: v, name: V, rule: { velocity: { type: page.viewed, within: 1h, baseline: 3h, ratio: {}, count: { gte: 1 } } } }
"#,
    )
    .unwrap();
    let url = json!({"url": "https://x.test/"});
    let views = [
        ev("a", "page.viewed", T0 - 2 * H, url.clone()),
        ev("b", "page.viewed", T0 - 600, url),
    ];
    let e = rules.evaluate(&state_of(&rules, &views, T0), T0);
    let observed = Observation::Velocity {
        count: 1,
        baseline_count: 1,
        ratio: 3.0,
    };
    assert_eq!(e.verdicts[0].explanation.observed, Some(observed));
    // Without a count, an empty ratio compares nothing; a score needs a comparison too.
    let nothing = "segments:\n  - { id: v, name: V, rule: { velocity: { type: page.viewed, within: 1h, baseline: 3h, ratio: {} } } }\n";
    let err = RuleSet::from_yaml(nothing).unwrap_err().to_string();
    assert!(
        err.contains("segments[0].rule.velocity.ratio: expected a comparison"),
        "{err}"
    );
    let score = "scores: [ { id: s, half_life: 1d, terms: [ { event: { type: email.opened }, weight: 1 } ] } ]\nsegments:\n  - { id: v, name: V, rule: { score: { id: s } } }\n";
    let err = RuleSet::from_yaml(score).unwrap_err().to_string();
    assert!(
        err.contains("segments[0].rule.score: expected at least one of gt, gte, lt, lte"),
        "{err}"
    );
}

#[test]
fn a_score_keeps_its_sign_as_it_decays() {
    // Terms that cancel, summed in different orders: whatever rounding leaves
    // of them must not change sign as the hours pass with no event.
    let rules = RuleSet::from_yaml(
        r#"
scores:
  - id: net
    half_life: 7d
    terms:
      - { event: { type: email.opened, machine: include }, weight: 1 }
      - { event: { type: email.clicked }, weight: 1 }
      - { event: { type: page.viewed }, weight: -1 }
segments:
  - { id: negative, name: N, rule: { score: { id: net, lt: 0 } } }
"#,
    )
    .unwrap();
    let mut flips = 0;
    for seed in 0..40 {
        let hours = [seed % 7, 7 + seed % 5, 13 + seed % 11].map(|h| T0 - T0.rem_euclid(H) + h * H);
        let events = [
            ev("o1", "email.opened", hours[1], json!({})),
            ev("o2", "email.opened", hours[2], json!({})),
            ev("c1", "email.clicked", hours[0], json!({})),
            ev("p1", "page.viewed", hours[0], json!({"url": "/"})),
            ev("p2", "page.viewed", hours[1], json!({"url": "/"})),
            ev("p3", "page.viewed", hours[2], json!({"url": "/"})),
        ];
        let start = hours[2] + 60;
        let state = state_of(&rules, &events, start);
        let first = rules.evaluate(&state, start);
        assert_eq!(first.next_change_at.map(|t| t > start + 80 * 86_400), Some(true));
        for k in 1..(80 * 24) {
            let now = start + k * H;
            let e = rules.evaluate(&state, now);
            flips += usize::from(e.verdicts[0].member != first.verdicts[0].member);
            assert_eq!(
                e.scores[0].1.is_sign_negative(),
                first.scores[0].1.is_sign_negative(),
                "seed {seed}, hour {k}"
            );
        }
    }
    assert_eq!(flips, 0);
    // A score decayed past what a float holds keeps its sign, and reads as
    // negative, as `lt: 0` sees it (not as 0.0).
    let fast = RuleSet::from_yaml(
        "scores: [ { id: s, half_life: 1h, terms: [ { event: { type: email.bounced }, weight: -1 } ] } ]\n\
         segments: [ { id: negative, name: N, rule: { score: { id: s, lt: 0 } } } ]\n",
    )
    .unwrap();
    let events = [ev("b1", "email.bounced", T0, json!({}))];
    let late = T0 + 60 * 86_400;
    let e = fast.evaluate(&state_of(&fast, &events, late), late);
    assert!(e.verdicts[0].member);
    assert_eq!(
        e.verdicts[0].explanation.observed.as_ref().unwrap().to_string(),
        "-5e-324"
    );
    // What is left of the bounce is too small for a float, yet its leaving
    // makes the score 0: that is its next change.
    let expiry = T0 - T0.rem_euclid(H) + RETENTION_SECS;
    assert_eq!(e.next_change_at, Some(expiry));
    let gone = fast.evaluate(&state_of(&fast, &events, expiry), expiry);
    assert!(!gone.verdicts[0].member);
}

#[test]
fn a_score_keeps_its_sign_as_its_occurrences_move_into_buckets() {
    // Opens and clicks cancel hour by hour. The clicks move into hourly
    // buckets before the opens do; the score must not notice.
    let rules = RuleSet::from_yaml(
        r#"
scores:
  - { id: s, half_life: 3d, terms: [ { event: { type: email.opened }, weight: 1 }, { event: { type: email.clicked }, weight: -1 } ] }
segments:
  - { id: positive, name: P, rule: { score: { id: s, gt: 0 } } }
  - { id: negative, name: N, rule: { score: { id: s, lt: 0 } } }
  - { id: viewer, name: V, rule: { event: { type: page.viewed, within: 1d } } }
"#,
    )
    .unwrap();
    let hour = T0 - T0.rem_euclid(H);
    for k in 2..47 {
        for j in 1..k {
            let mut state = ContactState::default();
            for (n, h) in [hour - k * H, hour - j * H, hour].into_iter().enumerate() {
                decided_step(
                    &rules,
                    &mut state,
                    &ev(&format!("c{n}"), "email.clicked", h + 600, json!({})),
                    n == 0,
                );
                decided_step(
                    &rules,
                    &mut state,
                    &ev(&format!("o{n}"), "email.opened", h + 3000, json!({})),
                    false,
                );
            }
            // Once the first click is in its bucket and the first open is not yet.
            let view = ev("v", "page.viewed", hour - k * H + 600 + 48 * H + 1, json!({"url": "/"}));
            decided_step(&rules, &mut state, &view, false);
        }
    }
}

#[test]
fn a_rules_file_holds_at_most_max_segments() {
    let segment = |i: usize| format!("  - {{ id: s{i}, name: S, rule: {{ consent: subscribed }} }}\n");
    let file = |n: usize| format!("segments:\n{}", (0..n).map(segment).collect::<String>());
    assert!(RuleSet::from_yaml(&file(kairos_state::MAX_SEGMENTS)).is_ok());
    let got = issues(&file(kairos_state::MAX_SEGMENTS + 1));
    assert_issues_start_with(&got, &["segments: expected at most 256 segments"]);
}

#[test]
fn the_schema_caps_segments_as_the_compiler_does() {
    let schema = RuleSet::json_schema();
    let max = &schema["properties"]["segments"]["maxItems"];
    assert_eq!(max.as_u64(), Some(kairos_state::MAX_SEGMENTS as u64), "{schema}");
}
