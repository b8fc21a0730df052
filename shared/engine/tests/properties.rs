//! Property tests of the shipped engine step: its answers against a
//! brute-force oracle over the log of the events it accepted (within the
//! stated resolution), against a full decision, and `next_change_at` against
//! every moment an answer could change. Inputs reach what live traffic does:
//! events arriving late and out of order (some past the dedupe horizon,
//! refused as stale: only their traits and consent apply), redeliveries, bursts beyond the 64 exact occurrences a
//! signal keeps, and histories longer than the 90 days the state retains.
//! Failing seeds proptest finds are kept in `properties.proptest-regressions`.

use chrono::DateTime;
use kairos_engine::{Contact, Engine, Input};
use kairos_event::Event;
use kairos_rules::RuleSet;
use kairos_state::{ContactState, DEDUPE_HORIZON_SECS, EXACT_CAP, EXACT_HORIZON_SECS, RETENTION_SECS};
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};

const T0: i64 = 1_795_000_000;
const H: i64 = 3600;
const D: i64 = 24 * H;

const RULES: &str = r#"
scores:
  - { id: engagement, half_life: 3d, terms: [ { event: { type: email.opened }, weight: 1 }, { event: { type: email.clicked }, weight: 3 } ] }
  - { id: loyalty, half_life: 60d, terms: [ { event: { type: email.clicked }, weight: 1 } ] }
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
  - { id: month-clicks, name: MC, rule: { event: { type: email.clicked, count: { gte: 3 }, within: 30d } } }
  - { id: ever-clicked, name: EC, rule: { last: { type: email.clicked, within: 90d } } }
  - { id: loyal, name: L, rule: { score: { id: loyalty, gte: 3 } } }
"#;

fn rules() -> RuleSet {
    RuleSet::from_yaml(RULES).unwrap()
}

/// An event of kind `kind % 6` at `at` (unix seconds); `variant` picks its details.
fn event(id: String, at: i64, kind: u8, variant: u8) -> Event {
    let at = DateTime::from_timestamp(at, 0).unwrap().to_rfc3339();
    let mut v = json!({"id": id, "contact": "c", "at": at, "source": "t"});
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

// ---- The oracle -------------------------------------------------------------

/// The resolution contract (docs/rules.md, "Windows and their resolution"),
/// where the engine legitimately differs from a log of exact times: an
/// occurrence of a signal keeps its exact second while it is among the latest
/// [`EXACT_CAP`] (64) occurrences of that signal and no older than 48 hours;
/// otherwise it counts from the start of its hour. Windows compare that
/// resolved time (counted when after the window's start and not after its
/// end), sequences see only exact occurrences, recency (`last`) is exact,
/// and scores count every occurrence from its hour's start, for the 90 days
/// the state retains.
struct Signal {
    /// (time, resolved time, exact), latest first.
    occurrences: Vec<(i64, i64, bool)>,
}

impl Signal {
    fn of<'e>(log: impl Iterator<Item = &'e Event>, now: i64) -> Signal {
        let mut times: Vec<i64> = log.map(|e| e.at.timestamp()).collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let occurrences = times
            .into_iter()
            .enumerate()
            .map(|(rank, t)| {
                let exact = rank < EXACT_CAP && t >= now - EXACT_HORIZON_SECS;
                (t, if exact { t } else { t.div_euclid(H) * H }, exact)
            })
            .collect();
        Signal { occurrences }
    }

    /// Occurrences counted in the window `(now - oldest, now - newest]`.
    fn count(&self, now: i64, newest: i64, oldest: i64) -> usize {
        let window = (now - oldest + 1)..=(now - newest);
        self.occurrences.iter().filter(|o| window.contains(&o.1)).count()
    }

    /// The latest occurrence, exact.
    fn last(&self) -> Option<i64> {
        self.occurrences.first().map(|o| o.0)
    }

    /// The exact occurrence times, oldest first.
    fn exact(&self) -> Vec<i64> {
        let mut out: Vec<i64> = self.occurrences.iter().filter(|o| o.2).map(|o| o.0).collect();
        out.reverse();
        out
    }

    /// The sum of `weight` halved every `half_life` from each occurrence's hour, over retention.
    fn score(&self, now: i64, weight: f64, half_life: i64) -> f64 {
        let hours = self.occurrences.iter().map(|o| o.0.div_euclid(H) * H);
        let kept = hours.filter(|h| *h > now - RETENTION_SECS);
        kept.map(|h| weight * (-((now - h) as f64) / half_life as f64).exp2())
            .sum()
    }
}

/// The segments, decided from the log of accepted events up to `now`; traits
/// and consent from every event received, accepted or not (an event past the
/// dedupe horizon still sets its last-writer-wins registers).
fn oracle(log: &[Event], received: &[Event], now: i64) -> BTreeSet<String> {
    let seen: Vec<&Event> = log.iter().filter(|e| e.at.timestamp() <= now).collect();
    let registers: Vec<&Event> = received.iter().filter(|e| e.at.timestamp() <= now).collect();
    let is = |e: &Event, kind: &str| e.kind.as_str() == kind;
    let signal = |pred: &dyn Fn(&Event) -> bool| Signal::of(seen.iter().copied().filter(|e| pred(e)), now);
    let pricing = signal(&|e| is(e, "page.viewed") && e.url.as_deref().is_some_and(|u| u.contains("/pricing")));
    let opens = signal(&|e| is(e, "email.opened") && !e.machine);
    let clicks = signal(&|e| is(e, "email.clicked"));
    let forms = signal(&|e| is(e, "form.submitted"));
    let delivered = signal(&|e| is(e, "email.delivered"));
    let mut out = BTreeSet::new();
    let mut add = |id: &'static str, holds: bool| {
        if holds {
            out.insert(id);
        }
    };
    add("two-pricing", pricing.count(now, 0, 24 * H) >= 2);
    add("quiet", opens.last().is_none_or(|t| t <= now - 36 * H));
    let first = pricing.exact().into_iter().find(|t| *t > now - 12 * H);
    let funnel = first.is_some_and(|p| forms.exact().iter().any(|t| *t > p));
    add("funnel", funnel);
    let (recent, earlier) = (
        opens.count(now, 0, 6 * H) as f64,
        opens.count(now, 6 * H, 36 * H) as f64,
    );
    add(
        "burst",
        recent >= 2.0 && (earlier == 0.0 || (recent / 6.0) / (earlier / 30.0) >= 2.0),
    );
    let plan = registers
        .iter()
        .filter(|e| is(e, "contact.identified"))
        .max_by_key(|e| (e.at, e.traits["plan"].to_string()));
    let pro = plan.is_some_and(|e| e.traits["plan"] == "pro");
    add("pro", pro);
    let gone = registers.iter().any(|e| is(e, "email.unsubscribed"));
    add("gone", gone);
    let engagement = opens.score(now, 1.0, 3 * D) + clicks.score(now, 3.0, 3 * D);
    add("hot", engagement >= 4.0 && !gone);
    add("pro-funnel", funnel || (pro && pricing.count(now, 0, 24 * H) >= 2));
    add("clicker", clicks.count(now, 0, 72 * H) >= 2);
    add("busy", clicks.count(now, 0, 12 * H) >= 2);
    let (recent, earlier) = (
        delivered.count(now, 0, 24 * H) as f64,
        delivered.count(now, 24 * H, 72 * H) as f64,
    );
    add(
        "slowing",
        recent >= 1.0 && earlier > 0.0 && (recent / 24.0) / (earlier / 48.0) <= 1.0,
    );
    add("month-clicks", clicks.count(now, 0, 30 * D) >= 3);
    add("ever-clicked", clicks.last().is_some_and(|t| t > now - 90 * D));
    add("loyal", clicks.score(now, 1.0, 60 * D) >= 3.0);
    out.into_iter().map(str::to_string).collect()
}

// ---- Arrivals -----------------------------------------------------------------

/// One generated item: (cluster, minute in it, kind, variant, delay, copy).
/// Clusters are days 0, 1, 4, 50 and 92: windows of hours, days and months
/// meet, and the last cluster is past the first one's retention. Kind 6 is a
/// burst of 70 clicks or pricing views, beyond the exact cap.
type Raw = (u8, i64, u8, u8, u8, bool);

/// (arrival time, event), in arrival order.
fn arrivals(raw: Vec<Raw>) -> Vec<(i64, Event)> {
    const CLUSTERS: [i64; 5] = [0, 1, 4, 50, 92];
    let mut out = Vec::new();
    for (i, (cluster, minute, kind, variant, delay, copy)) in raw.into_iter().enumerate() {
        let at = T0 + CLUSTERS[cluster as usize % 5] * D + minute * 60;
        let late = |d: u8| match d % 16 {
            0..=9 => 0,
            10..=12 => i64::from(variant) * 7 * 60,
            13 | 14 => i64::from(1 + variant % 6) * D,
            _ => DEDUPE_HORIZON_SECS + D,
        };
        let events: Vec<Event> = match kind % 7 {
            6 => (0..70)
                .map(|k| {
                    event(
                        format!("e{i}-{k}"),
                        at + k * i64::from(variant % 4) * 60,
                        2 * (variant % 2),
                        0,
                    )
                })
                .collect(),
            _ => vec![event(format!("e{i}"), at, kind, variant)],
        };
        for e in events {
            let arrival = e.at.timestamp() + late(delay);
            if copy {
                out.push((arrival + late(delay / 16), e.clone()));
            }
            out.push((arrival, e));
        }
    }
    out.sort_by(|a, b| (a.0, a.1.at, &a.1.id).cmp(&(b.0, b.1.at, &b.1.id)));
    out
}

fn members(contact: &Contact) -> BTreeSet<String> {
    contact.state.members().iter().map(|(id, _)| id.clone()).collect()
}

/// The memberships of a full decision as of `now`, on the state a sweep would find.
fn full(rules: &RuleSet, state: &ContactState, now: i64) -> BTreeSet<String> {
    let mut state = state.clone();
    state.compact(now);
    rules.evaluate(&state, now).members().map(str::to_string).collect()
}

/// Checks the contact's recorded answers at `now` against a full decision and the oracle.
fn check(rules: &RuleSet, contact: &Contact, logs: Logs, now: i64, what: &str) -> Result<(), TestCaseError> {
    let (log, received) = logs;
    if contact.version == 0 {
        // Nothing applied yet (every event refused): there is no record to
        // check, and none is written.
        prop_assert!(members(contact).is_empty(), "{}: members without a record", what);
        return Ok(());
    }
    prop_assert_eq!(
        &members(contact),
        &full(rules, &contact.state, now),
        "incremental vs full, {}",
        what
    );
    prop_assert_eq!(
        &members(contact),
        &oracle(log, received, now),
        "engine vs oracle, {}",
        what
    );
    if let Some(t) = contact.next_change_at {
        prop_assert!(t > now, "{}: next change {} is not after now {}", what, t, now);
    }
    Ok(())
}

/// The events accepted (counted) so far, and every event received.
type Logs<'a> = (&'a [Event], &'a [Event]);

fn time(t: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp(t, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Each arrival is one step at its arrival time (arrivals at one time are
    /// one batch), and the sweep steps the contact at each announced
    /// `next_change_at`; after every step the recorded answers are the full
    /// decision's and the oracle's over the events the step accepted.
    #[test]
    fn the_step_matches_the_oracle_on_live_traffic(
        raw in prop::collection::vec((0u8..5, 0i64..(3 * 24 * 60), 0u8..7, any::<u8>(), any::<u8>(), any::<bool>()), 1..40),
        pauses in prop::collection::vec(0i64..(40 * H), 1..6),
    ) {
        let rules = rules();
        let engine = Engine::new(&rules);
        let arrivals = arrivals(raw);
        let mut contact = Contact::default();
        let mut log: Vec<Event> = Vec::new();
        let mut received: Vec<Event> = Vec::new();
        let mut accepted: HashSet<String> = HashSet::new();
        let sweep = |contact: &mut Contact, logs: Logs, until: i64| -> Result<(), TestCaseError> {
            while let Some(t) = contact.next_change_at.filter(|t| *t <= until) {
                engine.step("c", contact, &Input::at(time(t)));
                check(&rules, contact, logs, t, &format!("sweep at {t}"))?;
            }
            Ok(())
        };
        for batch in arrivals.chunk_by(|a, b| a.0 == b.0) {
            let now = batch[0].0;
            sweep(&mut contact, (&log, &received), now)?;
            let events: Vec<Event> = batch.iter().map(|(_, e)| e.clone()).collect();
            received.extend(events.iter().cloned());
            let outcome = engine.step("c", &mut contact, &Input::events(&events, time(now)));
            // The oracle's rule: an event counts once, unless it is older than the dedupe horizon.
            let before = log.len();
            for e in &events {
                if e.at.timestamp() >= now - DEDUPE_HORIZON_SECS && accepted.insert(e.id.clone()) {
                    log.push(e.clone());
                }
            }
            prop_assert_eq!(outcome.applied, log.len() - before, "events applied at {}", now);
            check(&rules, &contact, (&log, &received), now, &format!("{} events arriving at {now}", events.len()))?;
        }
        let mut now = arrivals.last().unwrap().0;
        for pause in pauses {
            now += pause;
            sweep(&mut contact, (&log, &received), now)?;
            check(&rules, &contact, (&log, &received), now, &format!("{pause} s later"))?;
        }
    }
}

// ---- next_change_at -------------------------------------------------------------

/// Up to 59 events over 5 days, in time order, each kind and variant drawn.
fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0i64..(5 * 24 * 60), any::<u8>(), any::<u8>()), 1..60).prop_map(|raw| {
        let mut events: Vec<Event> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (minute, kind, variant))| event(format!("e{i}"), T0 + minute * 60, kind, variant))
            .collect();
        events.sort_by_key(|e| e.at);
        events
    })
}

/// Each event stepped at its own time: the contact as the evaluate function leaves it.
fn stepped(rules: &RuleSet, log: &[Event]) -> Contact {
    let engine = Engine::new(rules);
    let mut contact = Contact::default();
    for e in log {
        engine.step("c", &mut contact, &Input::events(std::slice::from_ref(e), e.at));
    }
    contact
}

/// The windows' lengths in [`RULES`], velocity spans included.
const WINDOWS: [i64; 8] = [6 * H, 12 * H, 24 * H, 36 * H, 48 * H, 72 * H, 30 * D, 90 * D];

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Checked at every moment a window-based answer could change (with the
    /// state compacted then, as a sweep does): none changes before the
    /// `next_change_at` the step recorded, and a sweep at it finds the full
    /// decision's answers.
    #[test]
    fn no_window_answer_changes_before_next_change_at(events in events()) {
        let rules = rules();
        let engine = Engine::new(&rules);
        let mut contact = stepped(&rules, &events);
        let mut now = events.last().unwrap().at.timestamp();
        for _ in 0..12 {
            let before = members(&contact);
            let next = contact.next_change_at;
            for c in candidates(&events, now, next.unwrap_or(now + 6 * D)) {
                prop_assert_eq!(&full(&rules, &contact.state, c), &before, "changed at {} before {:?}", c, next);
            }
            let Some(next) = next else { break };
            now = next;
            engine.step("c", &mut contact, &Input::at(time(now)));
            prop_assert_eq!(&members(&contact), &full(&rules, &contact.state, now), "sweep at {}", now);
        }
    }
}

#[test]
fn no_answer_changes_before_next_change_at() {
    let rules = rules();
    let engine = Engine::new(&rules);
    let log: Vec<Event> = (0..40)
        .map(|i| {
            event(
                format!("e{i}"),
                T0 + i as i64 * 37 * 60,
                (i * 7 % 6) as u8,
                (i * 5) as u8,
            )
        })
        .collect();
    let mut contact = stepped(&rules, &log);
    let mut now = log.last().unwrap().at.timestamp();
    for _ in 0..20 {
        let Some(next) = contact.next_change_at else { break };
        let before = members(&contact);
        // Sample the span up to the announced change: nothing may differ in it.
        for k in 1..=10 {
            let t = now + (next - 1 - now) * k / 10;
            assert_eq!(
                full(&rules, &contact.state, t),
                before,
                "changed at {t} before next_change_at {next}"
            );
        }
        now = next;
        engine.step("c", &mut contact, &Input::at(time(now)));
    }
}
