//! A synthetic population for the learning: one sequence step with variants
//! of known goal rates, decided send after send through [`Decider`] as the
//! API decides (counts updated after each send, as the reconciled counters
//! are), against choosing uniformly at random and against the oracle that
//! always sends the best variant. Used by the simulation bench (`make bench`)
//! and the convergence test.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{CountsTable, Decider, History, Request};
use kairos_rules::RuleSet;
use kairos_state::ContactState;

/// The rules of the simulation: one sequence, one step, one variant per rate.
pub fn rules(rates: &[f64], exploration: f64, min_sends: u64) -> RuleSet {
    let content: Vec<String> = (0..rates.len())
        .map(|i| format!("{{ variant: v{i}, template: t{i} }}"))
        .collect();
    let yaml = format!(
        "segments:\n  - {{ id: all, name: All, rule: {{ consent: subscribed }} }}\nsending:\n  learning: {{ exploration: {exploration}, min_sends: {min_sends} }}\nsequences:\n  - id: sim\n    name: Sim\n    entry: {{ segment: all }}\n    steps:\n      - id: one\n        content: [ {} ]\n",
        content.join(", ")
    );
    RuleSet::from_yaml(&yaml).expect("the simulation's rules compile")
}

/// Cumulative goals of each strategy over the same number of sends, and how
/// often Thompson sampling chose each variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Goals with Thompson sampling (the decider).
    pub thompson: u64,
    /// Goals choosing uniformly at random.
    pub uniform: u64,
    /// Goals always sending the best variant.
    pub oracle: u64,
    /// Per variant, how many sends Thompson sampling chose it for.
    pub chosen: Vec<u64>,
    /// Per variant, in the last tenth of the sends.
    pub chosen_late: Vec<u64>,
}

/// Runs `sends` decisions for fresh contacts with the variants' true goal `rates`.
pub fn run(rates: &[f64], sends: usize, exploration: f64, min_sends: u64, seed: u64) -> Outcome {
    let rules = rules(rates, exploration, min_sends);
    let decider = Decider::new(&rules);
    let state = ContactState::default();
    let mut counts = CountsTable::new();
    let mut world = StdRng::seed_from_u64(seed);
    let best = (0..rates.len()).fold(0, |b, i| if rates[i] > rates[b] { i } else { b });
    let mut out = Outcome {
        thompson: 0,
        uniform: 0,
        oracle: 0,
        chosen: vec![0; rates.len()],
        chosen_late: vec![0; rates.len()],
    };
    for n in 0..sends {
        let contact = format!("c{n}@sim.test");
        let request = Request {
            contact: &contact,
            channel: "email",
            now: 1_764_237_600,
            key: None,
            seed: Some(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        };
        let history = History {
            state: &state,
            sends: &[],
        };
        let decision = decider.decide(&request, &history, &counts);
        let send = decision.send.expect("every simulated contact gets a send");
        let v: usize = send.variant[1..].parse().expect("variant ids are v<i>");
        out.chosen[v] += 1;
        if n >= sends - sends / 10 {
            out.chosen_late[v] += 1;
        }
        let goal = world.gen::<f64>() < rates[v];
        let entry = counts.entry(("sim".into(), "one".into(), send.variant)).or_default();
        entry.sends += 1;
        entry.goals += u64::from(goal);
        out.thompson += u64::from(goal);
        let u = world.gen_range(0..rates.len());
        out.uniform += u64::from(world.gen::<f64>() < rates[u]);
        out.oracle += u64::from(world.gen::<f64>() < rates[best]);
    }
    out
}
