//! A compiled score: its terms, and its decay precomputed hour by hour for the
//! state's retention. How it is evaluated: `crate::evaluate::score`.

use kairos_state::{BUCKET_SECS as HOUR, RETENTION_SECS};

use crate::compile::Sig;

/// A compiled score.
#[derive(Debug, Clone)]
pub(crate) struct Score {
    pub id: String,
    pub half_life: i64,
    pub terms: Vec<(Sig, f64)>,
    /// `decay[k]`: the factor after `k` whole hours, for every hour the state retains.
    pub decay: Vec<f64>,
    /// The factor over the whole retention: what is left of a weight as it leaves.
    pub at_expiry: f64,
}

impl Score {
    pub fn new(id: String, half_life: i64, terms: Vec<(Sig, f64)>) -> Score {
        let hours = RETENTION_SECS / HOUR + 2;
        let decay = (0..hours)
            .map(|k| (-((k * HOUR) as f64) / half_life.max(1) as f64).exp2())
            .collect();
        Score {
            id,
            half_life,
            terms,
            decay,
            at_expiry: (-(RETENTION_SECS as f64) / half_life.max(1) as f64).exp2(),
        }
    }
}
