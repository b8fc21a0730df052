//! The leaf conditions over a contact's occurrences of a signal: each one's
//! answer, the next time it could change without an event, and what it saw.

use kairos_state::{SignalState, BUCKET_SECS, EXACT_HORIZON_SECS};

use crate::compile::compiler::CountOp;
use crate::compile::matcher::Bound;
use crate::compile::Sig;
use crate::evaluate::node::{exits_until_flip, holds};
use crate::evaluate::{earliest, Decided, Leaf, Observed};

/// A count of occurrences in the window ending `now`.
#[inline]
pub(crate) fn count(s: Option<&SignalState>, now: i64, window: i64, count: &[(CountOp, u64)]) -> Leaf {
    let (decided, n) = counted(s, now, window, count);
    Leaf {
        result: decided.result,
        next: decided.next,
        observed: Observed::Count(n),
    }
}

/// [`count`]'s answer and next change, and the count itself.
#[inline]
fn counted(s: Option<&SignalState>, now: i64, window: i64, count: &[(CountOp, u64)]) -> (Decided, u64) {
    let Some(s) = s else {
        return (Decided::new(holds(count, 0), None), 0);
    };
    // Without new events the count only falls, one exit at a time.
    let flip = |observed| exits_until_flip(count, observed).map(|gone| gone - 1);
    let (n, next) = s.count_and_exit(now - window, now, bucketed(window), flip);
    let next = earliest(next, coarsening(s, window));
    (Decided::new(holds(count, n), next), n)
}

/// The steps in order within the window ending `now` (other occurrences between allowed).
#[inline]
pub(crate) fn sequence(signals: &[Option<&SignalState>], steps: &[Sig], window: i64, now: i64) -> Leaf {
    // Greedy is optimal: each step's earliest eligible occurrence leaves the most room.
    let (mut after, mut first, mut matched) = (now - window, None, 0);
    for step in steps {
        let next = signals[step.slot as usize].and_then(|s| {
            let times = s.exact_times();
            times.get(times.partition_point(|t| *t <= after)).filter(|t| **t <= now)
        });
        let Some(&t) = next else { break };
        first.get_or_insert(t);
        after = t;
        matched += 1;
    }
    let result = matched == steps.len();
    Leaf {
        result,
        next: first.filter(|_| result).map(|t| t + window),
        observed: Observed::Steps(matched),
    }
}

/// A velocity: the count in the window ending `now`, and with `ratio` its
/// rate against the baseline window before it.
#[inline]
pub(crate) fn velocity(
    s: Option<&SignalState>,
    now: i64,
    (window, baseline): (i64, i64),
    count: &[(CountOp, u64)],
    ratio: &[(Bound, f64)],
) -> Leaf {
    if ratio.is_empty() {
        // An absolute threshold: a count over the window (a baseline, if
        // any, is only reported).
        let (decided, recent) = counted(s, now, window, count);
        let earlier = match s {
            Some(s) if baseline > 0 => s.count_since(now - window - baseline, now - window),
            _ => 0,
        };
        let rate = rate(recent, earlier, window, baseline);
        return Leaf {
            result: decided.result,
            next: decided.next,
            observed: Observed::Velocity { recent, earlier, rate },
        };
    }
    // Conservative next change: when any counted occurrence changes window.
    let oldest = |count: u64| (count > 0).then_some(0);
    let span = window + baseline;
    let (recent, short) = s.map_or((0, None), |s| {
        s.count_and_exit(now - window, now, bucketed(window), oldest)
    });
    let (earlier, long) = s.map_or((0, None), |s| {
        s.count_and_exit(now - span, now - window, bucketed(span), oldest)
    });
    let rate = rate(recent, earlier, window, baseline);
    let result = holds(count, recent) && ratio.iter().all(|(b, y)| b.holds(rate, *y));
    let exits = earliest(short, long.map(|t| t + window));
    let coarse = s.and_then(|s| earliest(coarsening(s, window), coarsening(s, span)));
    Leaf {
        result,
        next: earliest(exits, coarse),
        observed: Observed::Velocity { recent, earlier, rate },
    }
}

/// A velocity's rate ratio: occurrences per second in the window over those in the baseline.
fn rate(recent: u64, earlier: u64, window: i64, baseline: i64) -> f64 {
    match (recent, earlier) {
        (0, _) => 0.0,
        (_, 0) => f64::INFINITY,
        (r, e) => (r as f64 / window as f64) / (e as f64 / baseline as f64),
    }
}

/// Whether a window edge `span` seconds back lies so far past the exact horizon
/// that every exact occurrence is in its hourly bucket before it gets there.
fn bucketed(span: i64) -> bool {
    span > EXACT_HORIZON_SECS + BUCKET_SECS
}

/// For a window edge `span` seconds back, within an hour past the exact
/// horizon: the next time one of the signal's exact occurrences moves into an
/// hourly bucket, which can move it across that edge. Nearer edges see only
/// exact times; farther ones are [`bucketed`].
fn coarsening(signal: &SignalState, span: i64) -> Option<i64> {
    let near = span > EXACT_HORIZON_SECS && !bucketed(span);
    signal.next_compaction().filter(|_| near)
}
