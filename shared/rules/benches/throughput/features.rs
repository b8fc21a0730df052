//! Precomputed features for the JSON Logic peer, derived from each contact's raw
//! event history (not from Kairos's state), following the rules language's
//! documented semantics and resolution:
//! - a signal's latest 64 occurrences of the last 48 hours keep their exact second;
//!   older ones count by their hour, which is in a window if the hour *starts* in it;
//! - windows are `(now - w, now]`; recency is exact;
//! - sequences use exact occurrences only (earliest in-order match, strictly increasing);
//! - scores sum `weight * 2^(-age / half_life)` over 90 days, every occurrence aged
//!   from its hour's start;
//! - traits and consent are last-writer-wins by event time.

use kairos_event::{Event, EventType};
use kairos_state::TraitValue;
use serde_json::Value;
use std::fmt::Write;

use super::segments::Plan;

const HOUR: i64 = 3600;
const EXACT_HORIZON: i64 = 48 * HOUR;
const EXACT_CAP: usize = 64;
const RETENTION: i64 = 90 * 86_400;

/// One contact's history, as needed for its features.
pub struct Tracker<'a> {
    plan: &'a Plan,
    /// Per signal: occurrence times, ascending.
    occ: Vec<Vec<i64>>,
    traits: Vec<(&'static str, Option<(i64, Value)>)>,
    /// (set at, restrictiveness rank, name).
    consent: (i64, u8, &'static str),
}

/// The occurrences of one signal as Kairos's state holds them at `now`.
struct View<'v> {
    /// Bucketed occurrences (ascending).
    bucketed: &'v [i64],
    /// Exact occurrences (ascending).
    exact: &'v [i64],
}

impl View<'_> {
    fn new(v: &[i64], now: i64) -> View<'_> {
        let aged = v.partition_point(|t| *t < now - EXACT_HORIZON);
        let split = aged.max(v.len().saturating_sub(EXACT_CAP));
        View {
            bucketed: &v[..split],
            exact: &v[split..],
        }
    }

    /// Occurrences counted in `(from, to]`.
    fn count(&self, from: i64, to: i64) -> u64 {
        let hour_in = |t: i64| t.div_euclid(HOUR) * HOUR;
        let b0 = self.bucketed.partition_point(|t| hour_in(*t) <= from);
        let b1 = self.bucketed.partition_point(|t| hour_in(*t) <= to);
        let e0 = self.exact.partition_point(|t| *t <= from);
        let e1 = self.exact.partition_point(|t| *t <= to);
        (b1.saturating_sub(b0) + e1.saturating_sub(e0)) as u64
    }
}

impl<'a> Tracker<'a> {
    pub fn new(plan: &'a Plan) -> Tracker<'a> {
        Tracker {
            plan,
            occ: vec![Vec::new(); plan.signals.len()],
            traits: plan.traits.iter().map(|t| (*t, None)).collect(),
            consent: (0, 0, "subscribed"),
        }
    }

    /// Takes in one event (events come in time order).
    pub fn observe(&mut self, e: &Event) {
        let at = e.at.timestamp();
        for (i, m) in self.plan.signals.iter().enumerate() {
            if m.matches(e) {
                let v = &mut self.occ[i];
                let pos = v.partition_point(|t| *t <= at);
                v.insert(pos, at);
            }
        }
        match e.kind {
            EventType::ContactIdentified => {
                for (name, slot) in &mut self.traits {
                    let Some(value) = e.traits.get(*name) else { continue };
                    let newer = match slot {
                        None => true,
                        Some((old_at, old)) => {
                            at > *old_at || (at == *old_at && TraitValue::from_json(value) > TraitValue::from_json(old))
                        }
                    };
                    if newer {
                        *slot = Some((at, value.clone()));
                    }
                }
            }
            kind => {
                let status = match kind {
                    EventType::EmailBounced => Some((1, "bounced")),
                    EventType::EmailUnsubscribed => Some((2, "unsubscribed")),
                    EventType::EmailComplained => Some((3, "complained")),
                    _ => None,
                };
                if let Some((rank, name)) = status {
                    if (at, rank) > (self.consent.0, self.consent.1) {
                        self.consent = (at, rank, name);
                    }
                }
            }
        }
    }

    /// The feature object at `now`, as JSON text.
    pub fn features(&self, now: i64) -> String {
        let plan = self.plan;
        let views: Vec<View> = self.occ.iter().map(|v| View::new(v, now)).collect();
        let mut out = String::with_capacity(4096);
        out.push('{');
        for &(sig, w) in &plan.counts {
            let _ = write!(out, "\"c{sig}_{w}\":{},", views[sig].count(now - w, now));
        }
        for &(sig, w, b) in &plan.baselines {
            let _ = write!(out, "\"p{sig}_{w}_{b}\":{},", views[sig].count(now - w - b, now - w));
        }
        for &sig in &plan.lasts {
            match self.occ[sig].last() {
                Some(t) => {
                    let _ = write!(out, "\"a{sig}\":{},", now - t);
                }
                None => {
                    let _ = write!(out, "\"a{sig}\":null,");
                }
            }
        }
        for (name, slot) in &self.traits {
            let v = slot.as_ref().map_or(Value::Null, |(_, v)| v.clone());
            let _ = write!(out, "\"t_{name}\":{v},");
        }
        for (i, s) in plan.sequences.iter().enumerate() {
            let mut after = now - s.within;
            let mut done = true;
            for step in &s.steps {
                match views[*step].exact.iter().find(|t| **t > after && **t <= now) {
                    Some(t) => after = *t,
                    None => {
                        done = false;
                        break;
                    }
                }
            }
            let _ = write!(out, "\"q{i}\":{done},");
        }
        for s in &plan.scores {
            let mut total = 0.0;
            for (sig, weight) in &s.terms {
                let view = &views[*sig];
                let from = now - RETENTION;
                let decay = |t: i64| (-((now - t) as f64) / s.half_life as f64).exp2();
                let mut decayed = 0.0;
                // Bucketed occurrences, grouped by hour, at the hour's start.
                let mut i = 0;
                while i < view.bucketed.len() {
                    let hour = view.bucketed[i].div_euclid(HOUR) * HOUR;
                    let mut n = 0u32;
                    while i < view.bucketed.len() && view.bucketed[i].div_euclid(HOUR) * HOUR == hour {
                        n += 1;
                        i += 1;
                    }
                    if hour > from && hour <= now {
                        decayed += f64::from(n) * decay(hour);
                    }
                }
                for &t in view.exact {
                    if t > from && t <= now {
                        decayed += decay(t.div_euclid(HOUR) * HOUR);
                    }
                }
                total += weight * decayed;
            }
            let _ = write!(out, "\"s_{}\":{},", s.id, Value::from(total));
        }
        let _ = write!(out, "\"consent\":\"{}\"}}", self.consent.2);
        out
    }
}
