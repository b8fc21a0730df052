//! What a leaf condition observed, as its explanation reports it. Kept typed,
//! so an explanation builds no JSON; written as JSON when serialized or shown.

use chrono::{DateTime, SecondsFormat};
use kairos_state::ConsentStatus;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

use crate::compile::matcher::Bound;

/// What one leaf condition observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Occurrences in a window, or a sequence's steps done in order.
    Count(u64),
    /// The latest occurrence (unix seconds), if any: RFC 3339 text, or `"never"`.
    Last(Option<i64>),
    /// A velocity: occurrences in its window (`count`), in the baseline before
    /// it (`baseline_count`), and the ratio of their rates (`"infinite"` with
    /// an empty baseline).
    Velocity {
        /// Occurrences in the window.
        count: u64,
        /// Occurrences in the baseline before it.
        baseline_count: u64,
        /// The window's rate over the baseline's (as reported: explanations
        /// round it to two decimals where that keeps its answer).
        ratio: f64,
    },
    /// A score's value (as reported: see [`RuleSet::evaluate`](crate::RuleSet::evaluate)'s
    /// explanations, which round it to two decimals where that keeps its answer).
    Score(f64),
    /// Membership of the referenced segment.
    Member(bool),
    /// The contact's subscription status.
    Consent(ConsentStatus),
    /// A trait's value (null when unset).
    Trait(Value),
}

impl Observation {
    /// The observation as JSON, as it is serialized.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("observations serialize")
    }
}

/// A reported number (see [`shown`]), or `"infinite"`.
struct Reported(f64);

impl Reported {
    fn value(&self) -> Option<f64> {
        // -0 reads 0.
        Some(self.0 + 0.0).filter(|x| x.is_finite())
    }

    /// As serde_json writes it (`2.0`, `0.25`, `1e+16`; `"infinite"`), with
    /// the float formatter serde_json uses.
    fn write(&self, out: &mut String) {
        match self.value() {
            Some(x) => out.push_str(zmij::Buffer::new().format_finite(x)),
            None => out.push_str("\"infinite\""),
        }
    }
}

impl Serialize for Reported {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value() {
            Some(x) => s.serialize_f64(x),
            None => s.serialize_str("infinite"),
        }
    }
}

/// A computed number as an explanation reports it: to two decimals, or to as
/// many more as it takes for each of `bounds` to answer the same of the
/// reported number as of `x` (a score of 6.998 against `>= 7` reads 6.998, not
/// 7.0); `x` itself if no rounding does.
pub(crate) fn shown(x: f64, bounds: &[(Bound, f64)]) -> f64 {
    const SCALES: [f64; 16] = [
        1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
    ];
    let same = |r: f64| bounds.iter().all(|(b, y)| b.holds(r, *y) == b.holds(x, *y));
    SCALES
        .iter()
        .map(|scale| (x * scale).round() / scale + 0.0)
        .find(|r| r.is_finite() && same(*r))
        .unwrap_or(x)
}

/// RFC 3339 in UTC to the second (`2026-11-18T11:06:40Z`), or `None` out of range.
fn timestamp(t: Option<i64>) -> Option<String> {
    let mut out = String::with_capacity(20);
    write_timestamp(t?, &mut out)?;
    Some(out)
}

/// Writes `t` as [`timestamp`] does; years 0 to 9999 by hand, others as chrono
/// writes them.
fn write_timestamp(t: i64, out: &mut String) -> Option<()> {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    if !(0..=9999).contains(&year) {
        let at = DateTime::from_timestamp(t, 0)?;
        out.push_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true));
        return Some(());
    }
    let digits = |out: &mut String, n: i64, width: usize| {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(n);
        (text.len()..width).for_each(|_| out.push('0'));
        out.push_str(text);
    };
    digits(out, year, 4);
    for (sep, n) in [
        ('-', month),
        ('-', day),
        ('T', secs / 3600),
        (':', secs / 60 % 60),
        (':', secs % 60),
    ] {
        out.push(sep);
        digits(out, n, 2);
    }
    out.push('Z');
    Some(())
}

/// (year, month, day) of a count of days since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl Observation {
    /// Appends the observation as compact JSON, as it is serialized (what
    /// `Display` shows), without going through a formatter.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Observation::Count(n) => out.push_str(itoa::Buffer::new().format(*n)),
            Observation::Last(t) => {
                out.push('"');
                if t.and_then(|t| write_timestamp(t, out)).is_none() {
                    out.push_str("never");
                }
                out.push('"');
            }
            Observation::Velocity {
                count,
                baseline_count,
                ratio,
            } => {
                out.push_str("{\"baseline_count\":");
                out.push_str(itoa::Buffer::new().format(*baseline_count));
                out.push_str(",\"count\":");
                out.push_str(itoa::Buffer::new().format(*count));
                out.push_str(",\"ratio\":");
                Reported(*ratio).write(out);
                out.push('}');
            }
            Observation::Score(v) => Reported(*v).write(out),
            Observation::Member(m) => out.push_str(if *m { "true" } else { "false" }),
            Observation::Consent(c) => {
                out.push('"');
                out.push_str(c.as_str());
                out.push('"');
            }
            Observation::Trait(v) => {
                use std::fmt::Write;
                let _ = write!(out, "{v}");
            }
        }
    }
}

impl Serialize for Observation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Observation::Count(n) => s.serialize_u64(*n),
            Observation::Last(t) => s.serialize_str(timestamp(*t).as_deref().unwrap_or("never")),
            Observation::Velocity {
                count,
                baseline_count,
                ratio,
            } => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("baseline_count", baseline_count)?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("ratio", &Reported(*ratio))?;
                map.end()
            }
            Observation::Score(v) => Reported(*v).serialize(s),
            Observation::Member(m) => s.serialize_bool(*m),
            Observation::Consent(c) => s.serialize_str(c.as_str()),
            Observation::Trait(v) => v.serialize(s),
        }
    }
}

/// Compact JSON, as serialized ([`Observation::write_json`]).
impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut out = String::new();
        self.write_json(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::Observation;
    use kairos_state::ConsentStatus;
    use serde_json::json;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::{DateTime, SecondsFormat};
        let edges = [
            0,
            -1,
            951_782_400,     // 2000-02-29
            4_107_542_400,   // 2100-03-01
            -62_167_219_200, // 0000-01-01
            -62_167_219_201, // year -1: chrono's form
            253_402_300_799, // 9999-12-31T23:59:59
            253_402_300_800, // 10000-01-01: chrono's form
            i64::MAX,        // out of range: none
        ];
        // Every 997,001 seconds (a prime, so times of day and days vary) over years 0 to 10000.
        let sweep = (-62_167_219_200..253_402_400_000).step_by(997_001);
        for t in edges.into_iter().chain(sweep) {
            let chrono = DateTime::from_timestamp(t, 0).map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
            assert_eq!(super::timestamp(Some(t)), chrono, "{t}");
        }
    }

    #[test]
    fn shown_as_the_json_it_serializes_to() {
        let cases = [
            (Observation::Count(3), json!(3)),
            (Observation::Last(Some(1_795_000_000)), json!("2026-11-18T11:06:40Z")),
            (Observation::Last(None), json!("never")),
            (
                Observation::Velocity {
                    count: 5,
                    baseline_count: 1,
                    ratio: 2.0 / 3.0,
                },
                json!({"baseline_count": 1, "count": 5, "ratio": 0.6666666666666666}),
            ),
            (
                Observation::Velocity {
                    count: 2,
                    baseline_count: 0,
                    ratio: f64::INFINITY,
                },
                json!({"baseline_count": 0, "count": 2, "ratio": "infinite"}),
            ),
            (Observation::Score(2.0), json!(2.0)),
            (Observation::Score(0.125), json!(0.125)),
            (Observation::Member(true), json!(true)),
            (Observation::Consent(ConsentStatus::Bounced), json!("bounced")),
            (Observation::Trait(json!({"a": "b\"c"})), json!({"a": "b\"c"})),
            (Observation::Score(1e16), json!(1e16)),
            (Observation::Score(-0.0), json!(0.0)),
            (Observation::Score(-0.004), json!(-0.004)),
            (Observation::Score(1e307), json!(1e307)),
            (Observation::Score(f64::INFINITY), json!("infinite")),
        ];
        for (observation, expected) in cases {
            assert_eq!(observation.to_json(), expected);
            assert_eq!(observation.to_string(), expected.to_string());
        }
    }

    #[test]
    fn reported_numbers_keep_their_side_of_every_bound() {
        use super::shown;
        use crate::compile::matcher::Bound::{Gt, Gte, Lt, Lte};
        let cases = [
            (6.998, vec![(Gte, 7.0)], 6.998),
            (6.998, vec![(Gt, 6.99)], 7.0),
            (7.001, vec![(Gt, 7.0)], 7.001),
            (7.004, vec![(Lte, 7.0), (Gte, 1.0)], 7.004),
            (6.99999999, vec![(Gte, 7.0)], 6.99999999),
            (2.0 / 3.0, vec![(Gte, 0.5)], 0.67),
            (0.125, vec![], 0.13),
            (-0.004, vec![], 0.0),
            (-0.004, vec![(Lt, 0.0)], -0.004),
            // Below any decimal: the value itself.
            (-5e-324, vec![(Lt, 0.0)], -5e-324),
            (1e300, vec![(Gte, 1.0)], 1e300),
        ];
        for (x, bounds, expected) in cases {
            let got = shown(x, &bounds);
            assert_eq!(got, expected, "{x} against {bounds:?}");
            for (b, y) in &bounds {
                assert_eq!(b.holds(got, *y), b.holds(x, *y), "{x} against {b:?} {y}");
            }
        }
    }

    #[test]
    fn numbers_are_shown_as_serde_json_writes_them() {
        // Magnitudes from 1e-6 to 1e300, both signs, with varied digits.
        let mut x = 1.234_567_890_123e-6_f64;
        while x < 1e300 {
            for v in [x, -x, x * 7.77, (x * 100.0).round() / 100.0] {
                let observation = Observation::Score(v);
                assert_eq!(observation.to_string(), observation.to_json().to_string(), "{v:e}");
            }
            x *= 3.3;
        }
    }
}
