//! When a destination may be called next: a short hold (a burst window: a
//! `Retry-After`, rate-limit headers saying none are left) and a long pause (a
//! daily or org-wide limit reached) until its window allows. Each destination
//! has one; the CRM modules set it from what the CRM answers, and the driver
//! calls only once it is open. A pause is shared with other concurrent
//! instances through the delivery ledger (see `deliver.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A destination's next allowed call time.
#[derive(Debug, Default)]
pub struct Gate {
    hold_until_ms: AtomicU64,
    pause_until_ms: AtomicU64,
    reason: Mutex<String>,
}

impl Gate {
    /// When the next call may go (ms since the epoch; 0: now).
    pub fn ready_at(&self) -> u64 {
        self.hold_until_ms
            .load(Ordering::SeqCst)
            .max(self.pause_until_ms.load(Ordering::SeqCst))
    }

    /// No call before `until_ms` (a burst window).
    pub fn hold(&self, until_ms: u64) {
        self.hold_until_ms.fetch_max(until_ms, Ordering::SeqCst);
    }

    /// No call before `until_ms`, because of `reason` (a daily or org limit).
    pub fn pause(&self, until_ms: u64, reason: &str) {
        if self.pause_until_ms.fetch_max(until_ms, Ordering::SeqCst) < until_ms {
            *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.to_string();
        }
    }

    /// The pause's end, if one was set.
    pub fn paused_until(&self) -> u64 {
        self.pause_until_ms.load(Ordering::SeqCst)
    }

    /// Why the destination is paused or held.
    pub fn reason(&self) -> String {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The next midnight after `now_ms` in a time zone `offset_ms` from UTC.
pub fn next_midnight(now_ms: u64, offset_ms: i64) -> u64 {
    const DAY: i64 = 86_400_000;
    let local = now_ms as i64 + offset_ms;
    let midnight = (local.div_euclid(DAY) + 1) * DAY;
    (midnight - offset_ms).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_of_hold_and_pause_wins_and_neither_moves_back() {
        let gate = Gate::default();
        gate.hold(1_000);
        gate.hold(500);
        assert_eq!(gate.ready_at(), 1_000);
        gate.pause(5_000, "DAILY");
        gate.pause(2_000, "other");
        assert_eq!((gate.ready_at(), gate.reason().as_str()), (5_000, "DAILY"));
    }

    #[test]
    fn midnight_is_local() {
        // 2026-11-27T23:30:00Z; in UTC-5 it is 18:30, so midnight is 05:00Z next day.
        let now = 1_795_822_200_000;
        assert_eq!(next_midnight(now, 0), 1_795_824_000_000);
        assert_eq!(next_midnight(now, -5 * 3_600_000), 1_795_842_000_000);
    }
}
