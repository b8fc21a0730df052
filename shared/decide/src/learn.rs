//! Content choice: Thompson sampling over Beta posteriors of each variant's
//! goal rate, with an exploration floor, a minimum number of sends before the
//! posteriors decide, and a human pin.

use rand::Rng;
use serde::{Deserialize, Serialize};

use kairos_rules::{Learning, Step};

/// Sends of one variant, and how many of them led to a goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Sends recorded.
    pub sends: u64,
    /// Sends with an attributed goal (at most one per send).
    pub goals: u64,
}

impl Counts {
    /// The posterior Beta(1 + goals, 1 + sends - goals) (a uniform prior).
    pub fn posterior(self) -> (f64, f64) {
        let goals = self.goals.min(self.sends);
        (1.0 + goals as f64, 1.0 + (self.sends - goals) as f64)
    }

    /// The posterior mean.
    pub fn mean(self) -> f64 {
        let (a, b) = self.posterior();
        a / (a + b)
    }
}

/// Which variant of a step to send, and why.
pub(crate) struct Choice {
    pub index: usize,
    pub why: String,
}

/// Chooses a variant of `step` given each variant's counts (in content order).
pub(crate) fn choose(step: &Step, counts: &[Counts], learning: &Learning, rng: &mut impl Rng) -> Choice {
    let names: Vec<&str> = step.content.iter().map(|c| c.variant.as_str()).collect();
    if names.len() == 1 {
        return Choice {
            index: 0,
            why: format!("one variant ({})", names[0]),
        };
    }
    let posteriors = names
        .iter()
        .zip(counts)
        .map(|(name, c)| {
            format!(
                "variant {name}: {} goals / {} sends, mean {:.3}",
                c.goals,
                c.sends,
                c.mean()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if step.fixed {
        return Choice {
            index: 0,
            why: format!("{posteriors}; pinned to {} (`variant: fixed`), learning off", names[0]),
        };
    }
    let short = names.iter().zip(counts).find(|(_, c)| c.sends < learning.min_sends);
    if let Some((name, c)) = short {
        let index = rng.gen_range(0..names.len());
        let why = format!(
            "{posteriors}; exploring: {name} has {} of the {} sends needed before learning decides; chose {} at random",
            c.sends, learning.min_sends, names[index]
        );
        return Choice { index, why };
    }
    if rng.gen::<f64>() < learning.exploration {
        let index = rng.gen_range(0..names.len());
        let floor = learning.exploration * 100.0;
        let why = format!(
            "{posteriors}; exploration floor ({floor}%): chose {} at random",
            names[index]
        );
        return Choice { index, why };
    }
    let samples: Vec<f64> = counts
        .iter()
        .map(|c| {
            let (a, b) = c.posterior();
            beta(rng, a, b)
        })
        .collect();
    let index = argmax(&samples);
    let others = names
        .iter()
        .zip(&samples)
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, (n, s))| format!("{n} {s:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let why = format!(
        "{posteriors}; chose {}, sampled {:.3} vs {others}",
        names[index], samples[index]
    );
    Choice { index, why }
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A draw from Beta(a, b), a and b at least 1: X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b).
pub fn beta(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

/// A draw from Gamma(shape, 1), shape at least 1 (Marsaglia and Tsang, 2000).
fn gamma(rng: &mut impl Rng, shape: f64) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = rng.gen();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn beta_draws_have_the_posterior_mean() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 20_000;
        let mean = (0..n).map(|_| beta(&mut rng, 42.0, 340.0)).sum::<f64>() / n as f64;
        assert!((mean - 42.0 / 382.0).abs() < 0.002, "{mean}");
        let mean = (0..n).map(|_| beta(&mut rng, 1.0, 1.0)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
