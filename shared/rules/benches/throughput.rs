//! Throughput of Kairos's rule evaluation on a seeded synthetic workload, against
//! a JSON Logic engine (datalogic-rs) evaluating the same segments over
//! precomputed features. Every event goes through the engine step
//! (`kairos_engine`), as the evaluate function runs it: apply, decide, and
//! the transitions with their explanations.
//!
//! Run: `cargo bench -p kairos-rules --bench throughput`
//! Size: `KAIROS_BENCH_CONTACTS` (default 100000); `KAIROS_BENCH_SAMPLE` caps the
//! evaluation points sampled for the evaluate-only comparison (default 20000);
//! `KAIROS_BENCH_BUDGET_SECS` (default 90, 0 for none) bounds the timed
//! pass through the engine step: contacts past it are applied untimed, for state sizes only.
//! `KAIROS_BENCH_DUMP=DIR` writes the generated rules (YAML and JSON Logic) there.
//! `KAIROS_BENCH_UPKEEP_CONTACTS` (default 20000) bounds the contacts of the
//! due index's upkeep count (untimed; `throughput/upkeep.rs`).
//!
//! Single thread throughout: the figures are per core. The global allocator is
//! mimalloc, as in the evaluate function.

#[path = "throughput/features.rs"]
mod features;
#[path = "throughput/segments.rs"]
mod segments;
#[path = "throughput/upkeep.rs"]
mod upkeep;
#[path = "throughput/workload.rs"]
mod workload;

use datalogic_rs::{Engine as JsonLogic, Logic, ParsedData};
use kairos_engine::{Contact, Engine, Input};
use kairos_rules::RuleSet;
use kairos_state::{Applied, ContactState};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;

/// The evaluate function's allocator, so the step is measured as deployed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

use features::Tracker;
use segments::{seg_id, Kinds, Plan, SEGMENTS};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn percentile(sorted: &[usize], p: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Rounds of the evaluate-only comparison (the median round of each is reported).
const ROUNDS: usize = 5;

/// What the timed pass through the engine step counts.
#[derive(Default)]
struct Counts {
    /// Events not applied (duplicates, too old).
    not_applied: usize,
    /// Segments decided.
    evaluated: usize,
    /// Memberships changed, each explained.
    explained: usize,
    /// Memberships held after each event, summed.
    members: usize,
}

/// One event through the engine step, as the evaluate function runs it:
/// apply, decide what the event (or time) can have changed, and turn the
/// memberships that changed into explained transitions.
#[inline(never)]
fn step(engine: &Engine, contact: &mut Contact, event: &kairos_event::Event, counts: &mut Counts) {
    let outcome = engine.step(
        &event.contact,
        contact,
        &Input::events(std::slice::from_ref(event), event.at),
    );
    counts.not_applied += outcome.refused.len();
    counts.evaluated += outcome.decided;
    counts.explained += outcome.transitions.len();
    black_box(&outcome.transitions);
    counts.members += contact.state.members().len();
}

/// One sampled evaluation point.
struct Point {
    state: ContactState,
    now: i64,
    /// Kairos's membership, one bit per segment.
    kairos: [u64; SEGMENTS.div_ceil(64)],
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument would be meaningless here.
    let contacts_n = env_usize("KAIROS_BENCH_CONTACTS", 100_000).max(1);
    let sample_cap = env_usize("KAIROS_BENCH_SAMPLE", 20_000).max(1);
    let budget = match env_usize("KAIROS_BENCH_BUDGET_SECS", 90) {
        0 => None,
        secs => Some(Duration::from_secs(secs as u64)),
    };
    let started = Instant::now();

    // ---- Workload and rules (untimed) --------------------------------------------
    let mut rng = StdRng::seed_from_u64(42);
    let contacts = workload::generate(&mut rng, contacts_n);
    let events: usize = contacts.iter().map(|c| c.events.len()).sum();
    let kinds = Kinds::probe();
    // The segments have their own seed, so they do not depend on the contact count.
    let plan = Plan::generate(&mut StdRng::seed_from_u64(43), kinds);
    let yaml = plan.yaml();
    let rules = match RuleSet::from_yaml(&yaml) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{yaml}");
            panic!("the generated rules do not compile: {e}");
        }
    };
    assert_eq!(rules.segments().count(), SEGMENTS);
    if let Ok(dir) = std::env::var("KAIROS_BENCH_DUMP") {
        let dir = std::path::Path::new(&dir);
        let logic: Vec<serde_json::Value> = plan.segments.iter().map(|c| plan.json_logic(c)).collect();
        std::fs::write(dir.join("segments.yaml"), &yaml).expect("write segments.yaml");
        let text = serde_json::to_string_pretty(&logic).expect("serializes");
        std::fs::write(dir.join("segments.jsonlogic.json"), text).expect("write segments.jsonlogic.json");
    }
    eprintln!(
        "generated {events} events for {contacts_n} contacts and {SEGMENTS} segments in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // ---- Timed section 1: the engine step, every event ---------------------------
    // Contacts are independent and generated i.i.d., so when the time budget runs
    // out the remaining contacts are only applied (untimed), for their state sizes.
    let mut sizes = Vec::with_capacity(contacts.len());
    let mut elapsed = Duration::ZERO;
    let (mut timed_contacts, mut timed_events) = (0usize, 0usize);
    let mut counts = Counts::default();
    // Contacts whose incrementally kept memberships differ from a full decision.
    let mut delta_mismatches = 0usize;
    let engine = Engine::new(&rules);
    for contact in &contacts {
        let mut record = Contact::default();
        if budget.is_none_or(|b| elapsed < b) {
            let t0 = Instant::now();
            for event in &contact.events {
                step(&engine, &mut record, event, &mut counts);
            }
            elapsed += t0.elapsed();
            let last = contact.events.last().map_or(0, |e| e.at.timestamp());
            let state = &record.state;
            let decided = rules.decide(state, last, None).members;
            let mut full: Vec<&str> = decided.iter().filter(|m| m.1).map(|m| rules.segment_id(m.0)).collect();
            full.sort_unstable();
            delta_mismatches += usize::from(!full.into_iter().eq(state.members().iter().map(|(id, _)| id.as_str())));
            timed_contacts += 1;
            timed_events += contact.events.len();
        } else {
            for event in &contact.events {
                let now = event.at.timestamp();
                let applied = record.state.apply(event, &rules.signals_for(event), now);
                counts.not_applied += usize::from(applied != Applied::Applied);
            }
        }
        sizes.push(record.state.to_bytes().len());
    }
    let apply_eval_rate = per_sec(timed_events, elapsed);
    eprintln!(
        "segments decided per event (the rest unaffected by it): {:.1} of {SEGMENTS}; memberships changed (explained): {:.2}",
        counts.evaluated as f64 / timed_events.max(1) as f64,
        counts.explained as f64 / timed_events.max(1) as f64
    );
    eprintln!(
        "kairos engine step: {timed_events} events of {timed_contacts} contacts in {:.1}s",
        elapsed.as_secs_f64()
    );
    sizes.sort_unstable();

    // ---- Due index upkeep (untimed): write units per event, with and without the rule
    let upkeep_n = env_usize("KAIROS_BENCH_UPKEEP_CONTACTS", 20_000).min(contacts.len());
    let (upkeep_events, cheap, plain) = upkeep::simulate(&engine, &contacts[..upkeep_n]);
    // The same events under the example rules file (6 segments and a score).
    let example = RuleSet::from_yaml(include_str!("../../../rules/segments.yaml")).expect("the example rules compile");
    let (_, example_cheap, example_plain) = upkeep::simulate(&Engine::new(&example), &contacts[..upkeep_n]);
    let per_event = |units: u64| units as f64 / upkeep_events.max(1) as f64;

    // ---- Sample: states, Kairos answers and peer features (untimed) ---------------
    // Every k-th contact, all its evaluation points, up to about `sample_cap` points.
    let stride = events.div_ceil(sample_cap).max(1);
    let mut points: Vec<Point> = Vec::new();
    let mut parsed: Vec<ParsedData> = Vec::new();
    let mut feature_bytes = 0usize;
    for contact in contacts.iter().step_by(stride) {
        let mut state = ContactState::default();
        let mut tracker = Tracker::new(&plan);
        for event in &contact.events {
            let now = event.at.timestamp();
            state.apply(event, &rules.signals_for(event), now);
            tracker.observe(event);
            let evaluation = rules.evaluate(&state, now);
            let mut bits = [0u64; SEGMENTS.div_ceil(64)];
            for (i, v) in evaluation.verdicts.iter().enumerate() {
                if v.member {
                    bits[i / 64] |= 1 << (i % 64);
                }
            }
            let text = tracker.features(now);
            feature_bytes += text.len();
            parsed.push(ParsedData::from_json(&text).expect("features are JSON"));
            points.push(Point {
                state: state.clone(),
                now,
                kairos: bits,
            });
        }
    }
    let sampled = points.len();
    eprintln!(
        "sampled {sampled} evaluation points (every {stride}th contact), {} bytes of features each on average",
        feature_bytes / sampled.max(1)
    );

    // ---- Timed: Kairos evaluate only and datalogic-rs, on the sampled points -------
    // Alternated over ROUNDS rounds, each engine's median round reported, so a
    // noisy neighbour on a shared machine skews neither side.
    let peer = JsonLogic::new();
    let logic: Vec<Logic> = plan
        .segments
        .iter()
        .map(|c| {
            let rule = plan.json_logic(c).to_string();
            peer.compile(rule.as_str())
                .unwrap_or_else(|e| panic!("JSON Logic does not compile: {e}\n{rule}"))
        })
        .collect();
    let mut session = peer.session();
    let (mut kairos_rounds, mut peer_rounds) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        for p in &points {
            black_box(rules.decide(black_box(&p.state), p.now, None));
        }
        kairos_rounds.push(t0.elapsed());
        let t0 = Instant::now();
        for data in &parsed {
            for rule in &logic {
                let result = session.eval_borrowed(rule, data).expect("evaluates");
                black_box(peer.truthy(result));
            }
            session.reset();
        }
        peer_rounds.push(t0.elapsed());
    }
    let median = |rounds: &mut Vec<Duration>| {
        rounds.sort_unstable();
        rounds[rounds.len() / 2]
    };
    let kairos_eval_rate = per_sec(sampled, median(&mut kairos_rounds));
    let peer_eval_rate = per_sec(sampled, median(&mut peer_rounds));

    // ---- Agreement (untimed) -------------------------------------------------------
    let mut agree = 0usize;
    let mut points_agree = 0usize;
    let mut kairos_members = 0usize;
    let mut per_segment = vec![0usize; SEGMENTS];
    let mut segment_members = vec![0usize; SEGMENTS];
    let mut first_disagreement: Vec<Option<usize>> = vec![None; SEGMENTS];
    for (pi, (p, data)) in points.iter().zip(&parsed).enumerate() {
        let mut all = true;
        for (i, rule) in logic.iter().enumerate() {
            let peer = {
                let result = session.eval_borrowed(rule, data).expect("evaluates");
                peer.truthy(result)
            };
            let kairos = p.kairos[i / 64] >> (i % 64) & 1 == 1;
            kairos_members += usize::from(kairos);
            segment_members[i] += usize::from(kairos);
            if peer == kairos {
                agree += 1;
            } else {
                all = false;
                per_segment[i] += 1;
                first_disagreement[i].get_or_insert(pi);
            }
        }
        points_agree += usize::from(all);
        session.reset();
    }
    let pairs = sampled * SEGMENTS;

    // ---- Report --------------------------------------------------------------------
    let line = "-".repeat(64);
    println!();
    println!("Kairos rules throughput (single thread, release), seed 42");
    println!("{line}");
    println!("{:<44}{:>20}", "contacts", contacts_n);
    println!("{:<44}{:>20}", "events (90 days)", events);
    println!("{:<44}{:>20}", "segments", SEGMENTS);
    println!("{:<44}{:>20}", "signals (distinct matchers)", plan.signals.len());
    println!(
        "{:<44}{:>20}",
        "Kairos engine step (apply+decide), events/s",
        human(apply_eval_rate)
    );
    println!(
        "{:<44}{:>20}",
        "  (timed contacts / events / memberships)",
        format!("{timed_contacts} / {timed_events} / {}", counts.members)
    );
    println!(
        "{:<44}{:>20}",
        "  (contacts where delta != full decision)", delta_mismatches
    );
    println!("{:<44}{:>20}", "sampled evaluation points", sampled);
    println!(
        "{:<44}{:>20}",
        "due index upkeep: contacts / events",
        format!("{upkeep_n} / {upkeep_events}")
    );
    let ways = [
        ("bench rules, with the cheap-upkeep rule", cheap),
        ("bench rules, without (index = next change)", plain),
        ("example rules, with the cheap-upkeep rule", example_cheap),
        ("example rules, without", example_plain),
    ];
    for (name, u) in ways {
        println!("{:<44}{:>20}", format!("  {name}"), "");
        println!("{:<44}{:>20.3}", "    index write units / event", per_event(u.index));
        println!(
            "{:<44}{:>20.3}",
            "    table write units / event (sweeps incl.)",
            per_event(u.table)
        );
        println!(
            "{:<44}{:>20}",
            "    sweep visits / of them reindex-only",
            format!("{} / {}", u.sweeps, u.reindexes)
        );
    }
    println!(
        "{:<44}{:>20}",
        "Kairos evaluate only, evaluations/s (median)",
        human(kairos_eval_rate)
    );
    println!(
        "{:<44}{:>20}",
        "datalogic-rs 5.4.0, evaluations/s (median)",
        human(peer_eval_rate)
    );
    println!(
        "{:<44}{:>19.2}x",
        "ratio Kairos / datalogic-rs (evaluate)",
        kairos_eval_rate / peer_eval_rate
    );
    println!(
        "{:<44}{:>20}",
        "  (one evaluation = 200 segments)",
        format!(
            "{:.0} / {:.0} ns/segment",
            1e9 / kairos_eval_rate / 200.0,
            1e9 / peer_eval_rate / 200.0
        )
    );
    println!(
        "{:<44}{:>20}",
        "state bytes per contact median / p99 / max",
        format!(
            "{} / {} / {}",
            percentile(&sizes, 0.5),
            percentile(&sizes, 0.99),
            sizes.last().copied().unwrap_or(0)
        )
    );
    println!(
        "{:<44}{:>20}",
        "agreement (point x segment)",
        format!("{:.4}% of {pairs}", 100.0 * agree as f64 / pairs.max(1) as f64)
    );
    println!(
        "{:<44}{:>20}",
        "agreement (points, all 200 segments)",
        format!("{:.4}%", 100.0 * points_agree as f64 / sampled.max(1) as f64)
    );
    println!("{:<44}{:>20}", "  (memberships in the sample)", kairos_members);
    let never = segment_members.iter().filter(|n| **n == 0).count();
    let always = segment_members.iter().filter(|n| **n == sampled).count();
    println!(
        "{:<44}{:>20}",
        "  (segments never / always member there)",
        format!("{never} / {always}")
    );
    println!("{line}");
    let used: Vec<String> = plan.kind_counts().iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("condition kinds used: {}", used.join(", "));
    println!(
        "condition kinds accepted by kairos-rules and generated: {}",
        kinds.names().join(", ")
    );
    let missing = kinds.missing();
    if !missing.is_empty() {
        println!(
            "note: not accepted by this build of kairos-rules, so not generated: {}",
            missing.join(", ")
        );
    }
    println!(
        "note: sequence (q*) and score (s_*) features are precomputed booleans/numbers; \
         `segment` is the referenced rule inlined; trait regexes are `(?i)a|b` alternations, \
         written as `in` over `lower`"
    );
    if counts.not_applied > 0 {
        println!(
            "warning: {} events were not applied (duplicate or stale)",
            counts.not_applied
        );
    }
    for (i, n) in per_segment.iter().enumerate().filter(|(_, n)| **n > 0) {
        let p = &points[first_disagreement[i].expect("recorded")];
        let verdict = rules.evaluate(&p.state, p.now).verdicts.swap_remove(i);
        println!(
            "disagreement: {} at {n} points; first at now={} kairos={}: {}",
            seg_id(i),
            p.now,
            verdict.member,
            verdict.explanation.summary()
        );
    }
    eprintln!("total run {:.1}s", started.elapsed().as_secs_f64());
}
