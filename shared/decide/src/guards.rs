//! The guards of a send: the holdout draw, rolling frequency caps and quiet
//! hours in the contact's own time zone. Each answers when it next lets a
//! send through.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use kairos_rules::{Cap, Holdout, QuietHours};
use kairos_state::ContactState;
use sha2::{Digest, Sha256};

/// Whether `contact` is in the holdout group: the first 8 bytes of
/// SHA-256(salt, NUL, contact key), modulo 10,000, below the basis points.
/// Depends on nothing but the key and the salt, so the same contacts stay
/// held out across reruns and rules edits that keep the salt.
pub fn in_holdout(contact: &str, holdout: &Holdout) -> bool {
    holdout_draw(contact, &holdout.salt) < holdout.basis_points
}

/// The contact's draw, 0..10,000.
pub fn holdout_draw(contact: &str, salt: &str) -> u32 {
    let mut hash = Sha256::new();
    hash.update(salt.as_bytes());
    hash.update([0]);
    hash.update(contact.as_bytes());
    let digest = hash.finalize();
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (head % 10_000) as u32
}

/// Under a rolling cap, given the times of earlier sends it counts: `None`
/// if a send is allowed at `now`, else the first time one is (when enough
/// of the sends in the window have slid out of it). A send at `t` counts in
/// every window `(now - per, now]` that holds it, so two sends can never
/// land closer than the cap allows, whatever the calendar.
pub fn cap_until(times: &[i64], cap: Cap, now: i64) -> Option<i64> {
    let mut inside: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| *t > now - cap.per_secs && *t <= now)
        .collect();
    if inside.len() < cap.max as usize {
        return None;
    }
    inside.sort_unstable();
    // The oldest sends must leave the window until max - 1 remain.
    let leave = inside.len() - cap.max as usize;
    Some(inside[leave] + cap.per_secs)
}

/// The contact's time zone: the configured trait if it names an IANA zone,
/// else the configured default; and whether it came from the trait.
pub fn zone(state: &ContactState, quiet: &QuietHours) -> (Tz, bool) {
    let named = state
        .trait_value(&quiet.zone_trait)
        .and_then(|v| v.to_json().as_str().and_then(|s| s.trim().parse::<Tz>().ok()));
    match named {
        Some(tz) => (tz, true),
        None => (quiet.default_zone, false),
    }
}

/// Whether `now` falls in quiet hours in `tz`; if so, the first instant
/// quiet hours end, as an absolute time. DST-correct: the end is the local
/// wall-clock time `to` on the right local date; if that time does not
/// exist that day (a spring-forward gap) the first minute after the gap.
pub fn quiet_until(quiet: &QuietHours, tz: Tz, now: i64) -> Option<i64> {
    let at = DateTime::<Utc>::from_timestamp(now, 0)?.with_timezone(&tz);
    let minute = at.hour() * 60 + at.minute();
    let (from, to) = (quiet.from_min, quiet.to_min);
    let quiet_now = if from < to {
        minute >= from && minute < to
    } else {
        minute >= from || minute < to
    };
    if !quiet_now {
        return None;
    }
    // The end is today if `to` is still ahead on the local clock, else tomorrow.
    let date = if minute < to {
        at.date_naive()
    } else {
        at.date_naive() + Duration::days(1)
    };
    let end = NaiveTime::from_hms_opt(to / 60, to % 60, 0)?;
    let mut local = date.and_time(end);
    for _ in 0..(24 * 60) {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return Some(t.timestamp());
        }
        local += Duration::minutes(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(zone: &str) -> QuietHours {
        QuietHours {
            from_min: 21 * 60,
            to_min: 8 * 60,
            zone_trait: "timezone".into(),
            default_zone: zone.parse().unwrap(),
        }
    }

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn a_rolling_cap_counts_across_midnight() {
        let cap = Cap {
            max: 2,
            per_secs: 86_400,
        };
        let sends = [at("2026-11-26T23:50:00Z"), at("2026-11-27T00:05:00Z")];
        // A calendar-day cap would allow a third send at 00:10 the next day; rolling does not.
        assert_eq!(
            cap_until(&sends, cap, at("2026-11-27T00:10:00Z")),
            Some(at("2026-11-27T23:50:00Z"))
        );
        assert_eq!(
            cap_until(&sends, cap, at("2026-11-27T23:49:59Z")),
            Some(at("2026-11-27T23:50:00Z"))
        );
        assert_eq!(cap_until(&sends, cap, at("2026-11-27T23:50:00Z")), None);
    }

    #[test]
    fn quiet_hours_end_at_local_eight_across_the_spring_change() {
        // New York springs forward on 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let q = quiet("America/New_York");
        let tz = q.default_zone;
        // 23:00 EST on the 7th (04:00Z on the 8th): quiet until 08:00 EDT = 12:00Z.
        assert_eq!(
            quiet_until(&q, tz, at("2026-03-08T04:00:00Z")),
            Some(at("2026-03-08T12:00:00Z"))
        );
        // The day before, 08:00 EST = 13:00Z.
        assert_eq!(
            quiet_until(&q, tz, at("2026-03-07T04:00:00Z")),
            Some(at("2026-03-07T13:00:00Z"))
        );
        // 12:00Z on the 8th is 08:00 EDT: allowed.
        assert_eq!(quiet_until(&q, tz, at("2026-03-08T12:00:00Z")), None);
    }

    #[test]
    fn quiet_hours_that_end_in_a_gap_end_after_it() {
        let q = QuietHours {
            from_min: 60,
            to_min: 2 * 60 + 30,
            zone_trait: "timezone".into(),
            default_zone: "America/New_York".parse().unwrap(),
        };
        // 01:30 EST on 2026-03-08; 02:30 does not exist that day: 03:00 EDT (07:00Z).
        let until = quiet_until(&q, q.default_zone, at("2026-03-08T06:30:00Z"));
        assert_eq!(until, Some(at("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn the_holdout_draw_is_stable_and_salted() {
        let h = Holdout {
            basis_points: 1000,
            salt: "s1".into(),
        };
        let held: Vec<bool> = (0..2000).map(|i| in_holdout(&format!("c{i}@x.test"), &h)).collect();
        let again: Vec<bool> = (0..2000).map(|i| in_holdout(&format!("c{i}@x.test"), &h)).collect();
        assert_eq!(held, again);
        let share = held.iter().filter(|h| **h).count();
        assert!((150..250).contains(&share), "{share} of 2000 held out at 10%");
        assert_ne!(holdout_draw("ada@x.test", "s1"), holdout_draw("ada@x.test", "s2"));
    }
}
