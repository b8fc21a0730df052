//! The decide bench (`make bench`): the learning's goals against uniform
//! random and the oracle over 50,000 simulated sends (goal: within 10% of the
//! oracle), and the in-process latency of one decision on the demo rules
//! (p50/p99; goal: p99 under 1 ms, I/O excluded). Prints figures, asserts nothing.

use std::time::Instant;

use chrono::DateTime;
use kairos_decide::{simulation, Counts, CountsTable, Decider, History, Request, Sent};
use kairos_engine::{Contact, Engine, Input};
use kairos_event::Event;
use kairos_rules::RuleSet;

const SENDS: usize = 50_000;

fn main() {
    println!("== learning: {SENDS} sends, exploration 5%, 100 sends per variant before exploiting");
    for rates in [
        &[0.04, 0.05, 0.07][..],
        &[0.10, 0.12][..],
        &[0.02, 0.021, 0.03, 0.025][..],
    ] {
        let out = simulation::run(rates, SENDS, 0.05, 100, 42);
        let pct = |g: u64| 100.0 * g as f64 / out.oracle as f64;
        // Expected goals (the chosen variants' true rates), free of the draws' noise.
        let expected: f64 = out.chosen.iter().zip(rates).map(|(n, r)| *n as f64 * r).sum();
        let best = rates.iter().copied().fold(0.0, f64::max) * SENDS as f64;
        println!(
            "rates {rates:?}: oracle {} goals; thompson {} ({:.1}% of oracle; expected {:.0} = {:.1}% of the oracle's {:.0}); uniform {} ({:.1}%); thompson's sends per variant {:?}",
            out.oracle,
            out.thompson,
            pct(out.thompson),
            expected,
            100.0 * expected / best,
            best,
            out.uniform,
            pct(out.uniform),
            out.chosen
        );
    }
    latency();
}

fn latency() {
    let rules = RuleSet::from_yaml(include_str!("../../../rules/segments.yaml")).expect("demo rules");
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().to_utc();
    let line = |id: &str, kind: &str, when: &str, extra: &str| {
        let json =
            format!(r#"{{"id":"{id}","contact":"eve@x.test","type":"{kind}","at":"{when}","source":"bench"{extra}}}"#);
        Event::from_json(json.as_bytes()).unwrap()
    };
    let mut events = vec![
        line(
            "i",
            "contact.identified",
            "2026-11-24T14:00:00Z",
            r#","traits":{"timezone":"America/New_York"}"#,
        ),
        line(
            "f",
            "form.submitted",
            "2026-11-24T14:00:05Z",
            r#","properties":{"form":"signup"}"#,
        ),
    ];
    for i in 0..20 {
        events.push(line(
            &format!("o{i}"),
            "email.opened",
            &format!("2026-11-25T1{}:0{}:00Z", i % 10, i % 6),
            "",
        ));
    }
    events.push(line(
        "p",
        "page.viewed",
        "2026-11-25T15:10:00Z",
        r#","url":"https://k.test/pricing""#,
    ));
    events.push(line(
        "c",
        "page.viewed",
        "2026-11-25T15:12:00Z",
        r#","url":"https://k.test/compare""#,
    ));
    let now = at("2026-11-25T15:15:00Z");
    let mut contact = Contact::default();
    Engine::new(&rules).step("eve@x.test", &mut contact, &Input::events(&events, now));
    let sends = vec![Sent {
        decision_id: "d-1".into(),
        sequence: "onboarding".into(),
        step: "welcome".into(),
        variant: "short".into(),
        channel: "email".into(),
        at: at("2026-11-24T14:01:00Z").timestamp(),
        message_id: None,
    }];
    let mut counts = CountsTable::new();
    for (v, n) in [("table", 900), ("story", 1100)] {
        let key = ("pricing-intent".to_string(), "comparison".to_string(), v.to_string());
        counts.insert(key, Counts { sends: n, goals: n / 9 });
    }
    let decider = Decider::new(&rules);
    let history = History {
        state: &contact.state,
        sends: &sends,
    };
    let mut times = Vec::with_capacity(100_000);
    for i in 0..100_000u64 {
        let request = Request {
            contact: "eve@x.test",
            channel: "email",
            now: now.timestamp() + i as i64 % 60,
            key: None,
            seed: None,
        };
        let start = Instant::now();
        let decision = std::hint::black_box(decider.decide(&request, &history, &counts));
        times.push(start.elapsed());
        assert!(decision.send.is_some());
    }
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "== decide latency (demo rules, 3 sequences, a contact with 24 events and 1 send; in process, no I/O): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} decisions",
        pick(0.5).as_secs_f64() * 1e6,
        pick(0.99).as_secs_f64() * 1e6,
        times[times.len() - 1].as_secs_f64() * 1e6,
        times.len()
    );
}
