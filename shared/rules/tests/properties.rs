//! Property tests: the engine against a brute-force evaluator over the raw event
//! log (within the stated resolution), and incremental evaluation against full
//! evaluation. Failing seeds proptest finds are kept in `properties.proptest-regressions`.

use chrono::DateTime;
use kairos_event::Event;
use kairos_rules::{Delta, RuleSet};
use kairos_state::ContactState;
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;

const T0: i64 = 1_795_000_000;
const H: i64 = 3600;

const RULES: &str = r#"
scores:
  - { id: engagement, half_life: 3d, terms: [ { event: { type: email.opened }, weight: 1 }, { event: { type: email.clicked }, weight: 3 } ] }
segments:
  - { id: two-pricing, name: P, rule: { event: { type: page.viewed, where: { url: { contains: /pricing } }, count: { gte: 2 }, within: 24h } } }
  - { id: quiet, name: Q, rule: { last: { type: email.opened, not_within: 36h } } }
  - { id: funnel, name: F, rule: { sequence: { steps: [ { type: page.viewed, where: { url: { contains: /pricing } } }, { type: form.submitted } ], within: 12h } } }
  - { id: burst, name: B, rule: { velocity: { type: email.opened, within: 6h, count: { gte: 2 }, baseline: 30h, ratio: { gte: 2 } } } }
  - { id: pro, name: Pro, rule: { trait: { plan: { eq: pro } } } }
  - { id: gone, name: G, rule: { consent: [unsubscribed, complained] } }
  - { id: hot, name: Hot, rule: { all: [ { score: { id: engagement, gte: 4 } }, { not: { segment: gone } } ] } }
  - { id: pro-funnel, name: PF, rule: { any: [ { segment: funnel }, { all: [ { segment: pro }, { segment: two-pricing } ] } ] } }
  - { id: clicker, name: C, rule: { event: { type: email.clicked, count: { gte: 2 }, within: 3d } } }
  - { id: busy, name: Bu, rule: { velocity: { type: email.clicked, within: 12h, count: { gte: 2 } } } }
  - { id: slowing, name: S, rule: { velocity: { type: email.delivered, within: 1d, count: { gte: 1 }, baseline: 2d, ratio: { lte: 1 } } } }
"#;

/// One generated event: (minutes after T0, kind index, variant).
type Raw = (i64, u8, u8);

fn event(i: usize, (minute, kind, variant): Raw) -> Event {
    let at = DateTime::from_timestamp(T0 + minute * 60, 0).unwrap().to_rfc3339();
    let mut v = json!({"id": format!("e{i}"), "contact": "c", "at": at, "source": "t"});
    let (kind, extra) = match kind % 6 {
        0 => (
            "page.viewed",
            json!({"url": if variant % 2 == 0 { "https://x.test/pricing" } else { "https://x.test/blog" }}),
        ),
        1 => ("email.opened", json!({"machine": variant % 4 == 0})),
        2 => ("email.clicked", json!({})),
        3 => ("form.submitted", json!({})),
        4 => (
            "contact.identified",
            json!({"traits": {"plan": if variant % 2 == 0 { "pro" } else { "free" }}}),
        ),
        _ => (
            if variant % 3 == 0 {
                "email.unsubscribed"
            } else {
                "email.delivered"
            },
            json!({}),
        ),
    };
    v["type"] = json!(kind);
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    Event::from_value(v).unwrap()
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0i64..(5 * 24 * 60), any::<u8>(), any::<u8>()), 1..60).prop_map(|raw| {
        let mut events: Vec<Event> = raw.into_iter().enumerate().map(|(i, r)| event(i, r)).collect();
        events.sort_by_key(|e| e.at);
        events
    })
}

fn members(rules: &RuleSet, state: &ContactState, now: i64) -> BTreeSet<String> {
    rules.evaluate(state, now).members().map(str::to_string).collect()
}

/// The brute-force answers, straight from the raw log of events up to `now`.
fn brute_force(log: &[Event], now: i64) -> BTreeSet<String> {
    let seen: Vec<&Event> = log.iter().filter(|e| e.at.timestamp() <= now).collect();
    let is = |e: &&Event, kind: &str| e.kind.as_str() == kind;
    let pricing = |e: &&Event| is(e, "page.viewed") && e.url.as_deref().is_some_and(|u| u.contains("/pricing"));
    let human_open = |e: &&Event| is(e, "email.opened") && !e.machine;
    let in_window = |e: &&Event, w: i64| e.at.timestamp() > now - w;
    let mut out = BTreeSet::new();
    if seen.iter().filter(|e| pricing(e) && in_window(e, 24 * H)).count() >= 2 {
        out.insert("two-pricing");
    }
    if !seen.iter().any(|e| human_open(e) && in_window(e, 36 * H)) {
        out.insert("quiet");
    }
    let first_pricing = seen
        .iter()
        .filter(|e| pricing(e) && in_window(e, 12 * H))
        .map(|e| e.at)
        .min();
    if first_pricing.is_some_and(|t| seen.iter().any(|e| is(e, "form.submitted") && e.at > t)) {
        out.insert("funnel");
    }
    let recent = seen.iter().filter(|e| human_open(e) && in_window(e, 6 * H)).count() as f64;
    let earlier = seen
        .iter()
        .filter(|e| human_open(e) && in_window(e, 36 * H) && !in_window(e, 6 * H))
        .count() as f64;
    if recent >= 2.0 && (earlier == 0.0 || (recent / 6.0) / (earlier / 30.0) >= 2.0) {
        out.insert("burst");
    }
    let latest_plan = seen
        .iter()
        .filter(|e| is(e, "contact.identified"))
        .max_by_key(|e| (e.at, e.traits["plan"].to_string()));
    if latest_plan.is_some_and(|e| e.traits["plan"] == "pro") {
        out.insert("pro");
    }
    let consent = seen.iter().filter(|e| is(e, "email.unsubscribed")).count();
    if consent > 0 {
        out.insert("gone");
    }
    let score: f64 = seen
        .iter()
        .map(|e| {
            let w = if human_open(e) {
                1.0
            } else if is(e, "email.clicked") {
                3.0
            } else {
                0.0
            };
            // The stated resolution: a score counts each occurrence from its hour's start.
            let t = e.at.timestamp().div_euclid(H) * H;
            w * (-((now - t) as f64) / (3.0 * 86_400.0)).exp2()
        })
        .sum();
    if score >= 4.0 && consent == 0 {
        out.insert("hot");
    }
    if out.contains("funnel") || (out.contains("pro") && out.contains("two-pricing")) {
        out.insert("pro-funnel");
    }
    // The stated resolution: past 48 hours, an occurrence counts from its hour's start.
    let resolved = |e: &&Event| {
        let t = e.at.timestamp();
        if t < now - 48 * H {
            t.div_euclid(H) * H
        } else {
            t
        }
    };
    let between = |e: &&Event, newest: i64, oldest: i64| {
        (now - oldest..=now - newest).contains(&resolved(e)) && resolved(e) != now - oldest
    };
    if seen
        .iter()
        .filter(|e| is(e, "email.clicked") && between(e, 0, 72 * H))
        .count()
        >= 2
    {
        out.insert("clicker");
    }
    if seen
        .iter()
        .filter(|e| is(e, "email.clicked") && in_window(e, 12 * H))
        .count()
        >= 2
    {
        out.insert("busy");
    }
    let delivered = |e: &&Event| is(e, "email.delivered");
    let recent = seen.iter().filter(|e| delivered(e) && between(e, 0, 24 * H)).count() as f64;
    let earlier = seen
        .iter()
        .filter(|e| delivered(e) && between(e, 24 * H, 72 * H))
        .count() as f64;
    if recent >= 1.0 && earlier > 0.0 && (recent / 24.0) / (earlier / 48.0) <= 1.0 {
        out.insert("slowing");
    }
    out.into_iter().map(str::to_string).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_raw_log(events in events(), later in 0i64..(40 * H)) {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let mut state = ContactState::default();
        for (i, e) in events.iter().enumerate() {
            state.apply(e, &rules.signals_for(e), e.at.timestamp());
            let now = e.at.timestamp();
            prop_assert_eq!(members(&rules, &state, now), brute_force(&events[..=i], now), "after {} at {}", e.id, now);
        }
        let end = events.last().unwrap().at.timestamp() + later;
        state.compact(end);
        prop_assert_eq!(members(&rules, &state, end), brute_force(&events, end));
    }

    #[test]
    fn incremental_evaluation_equals_full_evaluation(events in events(), pauses in prop::collection::vec(0i64..(30 * H), 1..6)) {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let mut state = ContactState::default();
        let mut current: BTreeSet<String> = BTreeSet::new();
        // As the evaluate function does: a full decision while the state's
        // memberships were not decided by these rules, incremental after, keeping
        // the memberships and per-segment deadlines in the state.
        let step = |state: &mut ContactState, mut delta: Delta, now: i64, current: &mut BTreeSet<String>| {
            delta.blank = state.rules_fingerprint() == 0;
            let full = state.rules_fingerprint() != rules.fingerprint() && !delta.blank;
            let decisions = rules.decide(state, now, (!full).then_some(&delta));
            for &(i, member) in &decisions.members {
                let id = rules.segment_id(i);
                state.set_membership(id, member, now);
                if member { current.insert(id.to_string()); } else { current.remove(id); }
            }
            state.set_rules_fingerprint(rules.fingerprint());
            state.record_decision(decisions.deadlines, decisions.holds);
            decisions.next_change_at
        };
        let mut next_change = None;
        for e in &events {
            let now = e.at.timestamp();
            let signals = rules.signals_for(e);
            state.apply(e, &signals, now);
            let mut delta = Delta::default();
            delta.record(e, &signals);
            next_change = step(&mut state, delta, now, &mut current);
            prop_assert_eq!(&current, &members(&rules, &state, now));
            if let Some(t) = next_change { prop_assert!(t > now, "next change {t} is not after now {now}"); }
        }
        // Time passes with no events: sweeps at the announced times and at arbitrary ones.
        let mut now = events.last().unwrap().at.timestamp();
        for pause in pauses {
            now = next_change.filter(|t| *t <= now + pause).unwrap_or(now + pause);
            state.compact(now);
            next_change = step(&mut state, Delta::default(), now, &mut current);
            prop_assert_eq!(&current, &members(&rules, &state, now), "sweep at {}", now);
        }
    }
}

/// The windows' lengths in [`RULES`], velocity spans included.
const WINDOWS: [i64; 6] = [6 * H, 12 * H, 24 * H, 36 * H, 48 * H, 72 * H];

/// Every time a window-based answer can change at: an occurrence leaving a
/// window (at its second, or at its hour's start once bucketed) or turning hourly.
fn candidates(log: &[Event], after: i64, before: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for t in log.iter().map(|e| e.at.timestamp()) {
        out.push(t + 48 * H + 1);
        for w in WINDOWS {
            out.extend([t + w, t.div_euclid(H) * H + w]);
        }
    }
    out.retain(|c| (after + 1..before).contains(c));
    out.sort_unstable();
    out.dedup();
    out
}

fn decided(rules: &RuleSet, state: &ContactState, now: i64) -> (BTreeSet<usize>, Option<i64>) {
    let d = rules.decide(state, now, None);
    (
        d.members.iter().filter(|m| m.1).map(|m| m.0).collect(),
        d.next_change_at,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Checked at every moment a window-based answer could change (with the
    /// state compacted then, as a sweep does): none changes before `next_change_at`.
    #[test]
    fn no_window_answer_changes_before_next_change_at(events in events()) {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let mut state = ContactState::default();
        for e in &events {
            state.apply(e, &rules.signals_for(e), e.at.timestamp());
        }
        let mut now = events.last().unwrap().at.timestamp();
        for _ in 0..12 {
            let (before, next) = decided(&rules, &state, now);
            for c in candidates(&events, now, next.unwrap_or(now + 6 * 86_400)) {
                let mut later = state.clone();
                later.compact(c);
                prop_assert_eq!(&decided(&rules, &later, c).0, &before, "changed at {} before {:?}", c, next);
            }
            let Some(next) = next else { break };
            now = next;
            state.compact(now);
        }
    }
}

#[test]
fn no_answer_changes_before_next_change_at() {
    let rules = RuleSet::from_yaml(RULES).unwrap();
    let log: Vec<Event> = (0..40)
        .map(|i| event(i, (i as i64 * 37, (i * 7 % 6) as u8, (i * 5) as u8)))
        .collect();
    let mut state = ContactState::default();
    for e in &log {
        state.apply(e, &rules.signals_for(e), e.at.timestamp());
    }
    let mut now = log.last().unwrap().at.timestamp();
    for _ in 0..20 {
        let evaluation = rules.evaluate(&state, now);
        let Some(next) = evaluation.next_change_at else { break };
        let before = members(&rules, &state, now);
        // Sample the span up to the announced change: nothing may differ in it.
        for k in 1..=10 {
            let t = now + (next - 1 - now) * k / 10;
            assert_eq!(
                members(&rules, &state, t),
                before,
                "changed at {t} before next_change_at {next}"
            );
        }
        now = next;
    }
}
