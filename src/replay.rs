//! Backtesting: replay canonical events (any order, duplicates allowed)
//! through the engine in memory, as the deployed pipeline would have seen
//! them, and report each contact's segments as of a time.

use chrono::{DateTime, SecondsFormat, Utc};
use kairos_engine::{Contact, Timeline};
use kairos_event::{Event, Transition};
use kairos_rules::RuleSet;
use serde_json::{json, Map, Value};

/// The outcome of a replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// One JSON line per contact, sorted by contact.
    pub lines: Vec<String>,
    /// Input lines that were not valid events: `line N: reason`.
    pub rejected: Vec<String>,
    /// Every segment entry and exit up to the replay's time, in the order the
    /// pipeline would have announced them.
    pub transitions: Vec<Transition>,
}

/// Replays JSON-lines events through `rules` and reports every contact as of
/// `at` (default: the latest event's time). Events after `at` are ignored.
///
/// The events play through the engine step as the deployed pipeline sees
/// them ([`Timeline`]): each arriving at its own time, in time order (then
/// by id, then content, so the order of the lines never matters), the sweep
/// re-deciding a contact whenever an answer is due, and an anonymous
/// visitor's events counting for the first contact an event links it to
/// (`docs/identity.md`). Lines are read one at a time: a line that is not
/// UTF-8 is rejected alone, and a leading byte-order mark is skipped.
pub fn replay(rules: &RuleSet, events: &[u8], at: Option<DateTime<Utc>>, explain: bool) -> Replay {
    replay_with_overrides(rules, events, b"", at, explain)
}

/// One line of an overrides file (`kairos replay --overrides`): a human's
/// pin as the admin API records it, played at its time.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideLine {
    contact: String,
    segment: String,
    /// Pinned in (`true`) or out (`false`); `null` removes the segment's override.
    member: Option<bool>,
    #[serde(default)]
    reason: String,
    actor: String,
    at: DateTime<Utc>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// The overrides of JSON lines, by time, and the lines rejected (`overrides line N: reason`).
fn read_overrides(text: &[u8]) -> (Vec<OverrideLine>, Vec<String>) {
    let (mut out, mut rejected) = (Vec::new(), Vec::new());
    for (i, line) in String::from_utf8_lossy(text).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = serde_json::from_str::<OverrideLine>(line).map_err(|e| e.to_string());
        let keyed = parsed.and_then(|mut o| {
            o.contact = kairos_event::key::normalize_contact(&o.contact).map_err(|e| format!("contact: {e}"))?;
            Ok(o)
        });
        match keyed {
            Ok(o) => out.push(o),
            Err(err) => rejected.push(format!("overrides line {}: {err}", i + 1)),
        }
    }
    out.sort_by_key(|o| o.at);
    (out, rejected)
}

fn manual_of(o: &OverrideLine) -> kairos_engine::Manual {
    match o.member {
        Some(member) => kairos_engine::Manual::Pin(kairos_engine::Override {
            segment: o.segment.clone(),
            member,
            actor: o.actor.clone(),
            reason: o.reason.clone(),
            at: o.at.timestamp(),
            expires_at: o.expires_at.map(|t| t.timestamp()),
        }),
        None => kairos_engine::Manual::Unpin {
            segment: o.segment.clone(),
            actor: o.actor.clone(),
        },
    }
}

/// [`replay`] with human overrides (JSON lines of [`OverrideLine`]) played
/// at their times among the events, so a backtest agrees with production.
pub fn replay_with_overrides(
    rules: &RuleSet,
    events: &[u8],
    overrides: &[u8],
    at: Option<DateTime<Utc>>,
    explain: bool,
) -> Replay {
    let (overrides, mut rejected_overrides) = read_overrides(overrides);
    let (events, mut rejected) = read(events);
    rejected.append(&mut rejected_overrides);
    let mut backtest = Backtest::new(rules, at).with_overrides(overrides);
    backtest.play(events);
    backtest.finish();
    let transitions = backtest.take_transitions();
    Replay {
        lines: backtest.lines(explain),
        rejected,
        transitions,
    }
}

/// Replays the event archive's events inside `window` day by day
/// ([`crate::archive::play`]) through the same [`Backtest`] as [`replay`],
/// as of `window.until` (default: the latest event's time). Memory holds
/// the contacts and one day's events; transitions are not kept
/// ([`Replay::transitions`] is empty). Errors name the object that could not
/// be listed or read.
pub async fn replay_archive(
    rules: &RuleSet,
    source: &crate::archive::Source,
    window: crate::archive::Window,
    explain: bool,
) -> Result<Replay, String> {
    let mut backtest = Backtest::new(rules, window.until);
    let read = crate::archive::play(source, window, |events| {
        backtest.play(events);
        backtest.take_transitions();
    })
    .await?;
    Ok(Replay {
        lines: backtest.lines(explain),
        rejected: read.rejected,
        transitions: Vec::new(),
    })
}

/// A replay fed in pieces (a file at once, an archive day by day): each
/// piece's events are sorted and played through the engine's [`Timeline`]
/// after those of the pieces before. Pieces that follow each other in time
/// give the same result as one piece holding them all; memory holds the
/// contacts' states, not the events played.
#[derive(Debug, Clone)]
pub struct Backtest<'r> {
    rules: &'r RuleSet,
    timeline: Timeline<'r>,
    /// The evaluation time asked for; events after it are ignored.
    at: Option<DateTime<Utc>>,
    /// The latest event's time so far (the default evaluation time).
    latest: Option<DateTime<Utc>>,
    /// Human overrides not yet played, latest first (popped in time order).
    pins: Vec<OverrideLine>,
}

impl<'r> Backtest<'r> {
    /// An empty backtest over `rules`, evaluated as of `at` (default: the
    /// latest event's time).
    pub fn new(rules: &'r RuleSet, at: Option<DateTime<Utc>>) -> Backtest<'r> {
        Backtest {
            rules,
            timeline: Timeline::new(rules),
            at,
            latest: None,
            pins: Vec::new(),
        }
    }

    /// Plays these overrides at their times among the events (as the admin
    /// API records them; `kairos replay --overrides`).
    fn with_overrides(mut self, mut pins: Vec<OverrideLine>) -> Self {
        pins.sort_by_key(|o| std::cmp::Reverse(o.at));
        self.pins = pins;
        self
    }

    /// Plays the overrides made at or before `until`.
    fn pin_until(&mut self, until: DateTime<Utc>) {
        while self.pins.last().is_some_and(|o| o.at <= until) {
            let o = self.pins.pop().expect("checked above");
            self.timeline.manual(&o.contact, &manual_of(&o), o.at);
        }
    }

    /// Plays a piece of events, in time order (then by id, then content, so
    /// the order within the piece never matters); events after the
    /// evaluation time are ignored.
    pub fn play(&mut self, mut events: Vec<Event>) {
        if let Some(at) = self.at {
            events.retain(|e| e.at <= at);
        }
        // The state keeps the first of an id; with two versions of one event at
        // the same time, which comes first is their content's, not the file's.
        let content = |e: &Event| serde_json::to_vec(e).expect("an event serializes");
        events.sort_by(|a, b| {
            (a.at, &a.id)
                .cmp(&(b.at, &b.id))
                .then_with(|| content(a).cmp(&content(b)))
        });
        for event in &events {
            self.latest = self.latest.max(Some(event.at));
            self.pin_until(event.at);
            self.timeline.event(event);
        }
    }

    /// The evaluation time: the one asked for, else the latest event's
    /// (`None` with neither).
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.at.or(self.latest)
    }

    /// Lets time pass to the evaluation time (the sweeps due by then).
    pub fn finish(&mut self) {
        if let Some(at) = self.at() {
            self.pin_until(at);
            self.timeline.advance(at);
        }
    }

    /// The transitions announced since the last call.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        self.timeline.take_transitions()
    }

    /// The contacts' records so far, by key.
    pub fn contacts(&self) -> &std::collections::BTreeMap<String, Contact> {
        self.timeline.contacts()
    }

    /// One JSON line per contact, sorted by contact, as of the evaluation
    /// time (after [`Backtest::finish`]); none before any event.
    pub fn lines(&mut self, explain: bool) -> Vec<String> {
        let Some(at) = self.at() else {
            return Vec::new();
        };
        self.finish();
        let rules = self.rules;
        self.contacts()
            .iter()
            .map(|(key, contact)| contact_line(rules, key, contact, at, explain))
            .collect()
    }
}

/// The events of JSON lines, and the lines rejected (`line N: reason`).
pub(crate) fn read(events: &[u8]) -> (Vec<Event>, Vec<String>) {
    let mut rejected = Vec::new();
    let mut out = Vec::new();
    let events = events.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(events);
    for (i, line) in events.split(|b| *b == b'\n').enumerate() {
        let line = match std::str::from_utf8(line) {
            Ok(line) => line.trim(),
            Err(e) => {
                let at = e.valid_up_to() + 1;
                rejected.push(format!("line {}: not UTF-8 text (byte {at} of the line)", i + 1));
                continue;
            }
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match Event::from_json(line.as_bytes()) {
            Ok(event) => out.push(event),
            Err(err) => rejected.push(format!("line {}: {err}", i + 1)),
        }
    }
    (out, rejected)
}

/// 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
const LAST_RFC3339: i64 = 253_402_300_799;

fn contact_line(rules: &RuleSet, key: &str, contact: &Contact, at: DateTime<Utc>, explain: bool) -> String {
    // The effective membership: the rules' answers with the overrides in force.
    let effective = kairos_engine::effective(rules, contact);
    let segments: Vec<&str> = effective.iter().map(String::as_str).collect();
    // RFC 3339 ends with year 9999; a later change is announced then (early
    // is allowed, late never).
    let next = contact
        .next_change_at
        .map(|t| t.min(LAST_RFC3339))
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    let explain = explain.then(|| Value::Object(explanations(rules, contact, at)));
    let line = Line {
        contact: key,
        segments,
        next_change_at: next,
        explain,
    };
    serde_json::to_string(&line).expect("a replay line serializes")
}

/// Each segment's explanation for `contact` under `rules` as of `at` (the
/// state as the sweep would find it then), by segment id.
pub fn explanations(rules: &RuleSet, contact: &Contact, at: DateTime<Utc>) -> Map<String, Value> {
    let mut state = contact.state.clone();
    state.compact(at.timestamp());
    let evaluation = rules.evaluate(&state, at.timestamp());
    let verdicts = evaluation.verdicts.iter();
    verdicts
        .map(|v| (v.segment.to_string(), json!(v.explanation)))
        .collect()
}

/// One output line; fields in this order, `explain` only when asked for.
#[derive(serde::Serialize)]
struct Line<'a> {
    contact: &'a str,
    segments: Vec<&'a str>,
    next_change_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_play_at_their_times_and_lapse_like_in_production() {
        let events =
            br#"{"id":"c1","contact":"ada@x.test","type":"email.clicked","at":"2026-11-27T10:00:00Z","source":"t"}
{"id":"v1","contact":"ada@x.test","type":"page.viewed","at":"2026-11-27T12:00:00Z","source":"t"}"#;
        let overrides = br#"{"contact":"Ada@X.test","segment":"clicker","member":false,"reason":"asked","actor":"ops","at":"2026-11-27T11:00:00Z","expires_at":"2026-11-27T11:30:00Z"}
{"contact":"ada@x.test","segment":"any-page","member":false,"reason":"test account","actor":"ops","at":"2026-11-27T11:00:00Z"}
not json"#;
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let at = |t: &str| Some(t.parse::<DateTime<Utc>>().unwrap());
        let during = replay_with_overrides(&rules, events, overrides, at("2026-11-27T11:10:00Z"), false);
        assert_eq!(
            during.lines,
            [r#"{"contact":"ada@x.test","segments":[],"next_change_at":"2026-11-27T11:30:00Z"}"#]
        );
        assert_eq!(during.rejected.len(), 1);
        assert!(
            during.rejected[0].starts_with("overrides line 3: "),
            "{:?}",
            during.rejected
        );
        // The pin out of `clicker` lapsed at 11:30; `any-page` stays pinned out after the view.
        let after = replay_with_overrides(&rules, events, overrides, at("2026-11-27T12:00:00Z"), false);
        assert!(
            after.lines[0].contains(r#""segments":["clicker"]"#),
            "{:?}",
            after.lines
        );
        let summaries: Vec<&str> = after.transitions.iter().map(|t| t.summary.as_str()).collect();
        assert!(summaries.contains(&"override by ops: asked"), "{summaries:?}");
    }

    const RULES: &str = "segments:\n  - id: clicker\n    name: C\n    rule: { event: { type: email.clicked, within: 1d } }\n  - id: any-page\n    name: P\n    rule: { last: { type: page.viewed, within: 7d } }\n";

    fn line(id: &str, contact: &str, kind: &str, at: &str) -> String {
        format!(r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{at}","source":"t"}}"#)
    }

    #[test]
    fn order_and_duplicates_do_not_matter_and_output_is_sorted() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let events = [
            line("1", "zed@x.test", "email.clicked", "2026-11-27T10:00:00Z"),
            line("2", "amy", "page.viewed", "2026-11-20T10:00:00Z"),
            line("1", "zed@x.test", "email.clicked", "2026-11-27T10:00:00Z"),
            "not json".to_string(),
            line("3", "amy", "page.viewed", "2026-11-26T09:00:00Z"),
            // Two versions of one event: the same one is kept in any order.
            line("9", "kim", "page.viewed", "2026-11-27T09:00:00Z"),
            line("9", "kim", "email.clicked", "2026-11-27T09:00:00Z"),
        ];
        let forward = replay(&rules, events.join("\n").as_bytes(), None, false);
        let mut reversed_events = events.clone();
        reversed_events.reverse();
        let backward = replay(&rules, reversed_events.join("\n").as_bytes(), None, false);
        assert_eq!(forward.lines, backward.lines);
        assert_eq!(
            forward.lines,
            [
                r#"{"contact":"amy","segments":["any-page"],"next_change_at":"2026-12-03T09:00:00Z"}"#,
                r#"{"contact":"kim","segments":["clicker"],"next_change_at":"2026-11-28T09:00:00Z"}"#,
                r#"{"contact":"zed@x.test","segments":["clicker"],"next_change_at":"2026-11-28T10:00:00Z"}"#,
            ]
        );
        assert_eq!(forward.rejected.len(), 1);
        assert!(
            forward.rejected[0].starts_with("line 4: expected ident at column 2"),
            "{:?}",
            forward.rejected
        );
    }

    #[test]
    fn an_id_repeated_after_the_dedupe_horizon_counts_again_whatever_falls_between() {
        let rules = RuleSet::from_yaml(
            "segments:\n  - id: twice\n    name: T\n    rule: { event: { type: email.clicked, count: { gte: 2 }, within: 30d } }\n",
        )
        .unwrap();
        let copies = [
            line("x", "amy", "email.clicked", "2026-11-01T10:00:00Z"),
            line("x", "amy", "email.clicked", "2026-11-25T10:00:00Z"),
        ];
        let between = line("v", "amy", "page.viewed", "2026-11-20T10:00:00Z");
        let alone = replay(&rules, copies.join("\n").as_bytes(), None, false);
        let with_between = [copies[0].clone(), between, copies[1].clone()].join("\n");
        let with_between = replay(&rules, with_between.as_bytes(), None, false);
        let segments = |r: &Replay| serde_json::from_str::<Value>(&r.lines[0]).unwrap()["segments"].clone();
        assert_eq!(
            segments(&alone),
            json!(["twice"]),
            "24 days apart (the horizon is 21): two clicks"
        );
        assert_eq!(segments(&with_between), json!(["twice"]));
        // Within the horizon a copy is the same event: the earliest is kept.
        let close = [
            copies[0].clone(),
            line("x", "amy", "email.clicked", "2026-11-20T10:00:00Z"),
        ];
        let close = replay(&rules, close.join("\n").as_bytes(), None, false);
        assert_eq!(segments(&close), json!([]));
    }

    #[test]
    fn transitions_are_announced_as_the_pipeline_would_with_the_sweep() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let events = [
            line("2", "amy", "page.viewed", "2026-11-20T10:00:00Z"),
            line("1", "amy", "email.clicked", "2026-11-20T09:00:00Z"),
        ];
        let out = replay(
            &rules,
            events.join("\n").as_bytes(),
            Some("2026-12-01T00:00:00Z".parse().unwrap()),
            false,
        );
        let seen: Vec<(String, &str, String, Option<&str>)> = out
            .transitions
            .iter()
            .map(|t| {
                let change = serde_json::to_value(t.change).unwrap().as_str().unwrap().to_string();
                (
                    t.at.to_rfc3339(),
                    t.segment.as_str(),
                    change,
                    t.trigger.as_ref().map(|t| t.id.as_str()),
                )
            })
            .collect();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap().to_rfc3339();
        assert_eq!(
            seen,
            [
                (at("2026-11-20T09:00:00Z"), "clicker", "entered".into(), Some("1")),
                (at("2026-11-20T10:00:00Z"), "any-page", "entered".into(), Some("2")),
                (at("2026-11-21T09:00:00Z"), "clicker", "exited".into(), None),
                (at("2026-11-27T10:00:00Z"), "any-page", "exited".into(), None),
            ]
        );
    }

    #[test]
    fn a_change_after_year_9999_is_announced_at_its_end() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let late = line("1", "amy", "page.viewed", "9999-12-30T10:00:00Z");
        let out = replay(&rules, late.as_bytes(), None, false);
        assert_eq!(
            out.lines,
            [r#"{"contact":"amy","segments":["any-page"],"next_change_at":"9999-12-31T23:59:59Z"}"#]
        );
    }

    #[test]
    fn anonymous_views_count_for_the_contact_first_linked() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let link = |id: &str, contact: &str, at: &str| {
            let l = line(id, contact, "contact.identified", at);
            l.replace(r#""source":"t""#, r#""source":"t","properties":{"anonymous_id":"x"}"#)
        };
        let events = [
            line("1", "anon:x", "page.viewed", "2026-11-26T10:00:00Z"),
            link("2", "bob", "2026-11-27T09:00:00Z"),
            link("3", "amy", "2026-11-27T08:00:00Z"),
            line("4", "anon:y", "page.viewed", "2026-11-26T10:00:00Z"),
        ];
        let out = replay(&rules, events.join("\n").as_bytes(), None, false);
        let contacts: Vec<(String, Value)> = out
            .lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["contact"].as_str().unwrap().to_string(), v["segments"].clone()))
            .collect();
        assert_eq!(
            contacts,
            [
                ("amy".to_string(), json!(["any-page"])),
                ("anon:y".to_string(), json!(["any-page"])),
                ("bob".to_string(), json!([])),
            ]
        );
    }

    #[test]
    fn at_sets_the_evaluation_time_and_explain_adds_reasons() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        let events = line("1", "zed@x.test", "email.clicked", "2026-11-27T10:00:00Z");
        let later = "2026-11-29T00:00:00Z".parse().unwrap();
        let out = replay(&rules, events.as_bytes(), Some(later), true);
        let v: Value = serde_json::from_str(&out.lines[0]).unwrap();
        assert_eq!(v["segments"], json!([]));
        assert_eq!(v["next_change_at"], Value::Null);
        assert_eq!(v["explain"]["clicker"]["observed"], 0);
        let before = "2026-11-26T00:00:00Z".parse().unwrap();
        assert!(
            replay(&rules, events.as_bytes(), Some(before), false).lines.is_empty(),
            "no events yet"
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_rejected_alone() {
        let rules = RuleSet::from_yaml(RULES).unwrap();
        // "amé" in Latin-1: one byte that no UTF-8 text has alone.
        let latin1 = line("2", "am\u{0}", "page.viewed", "2026-11-26T09:00:00Z");
        let latin1 = latin1.bytes().map(|b| if b == 0 { 0xE9 } else { b });
        let mut events = b"\xEF\xBB\xBF".to_vec();
        events.extend(line("1", "amy", "page.viewed", "2026-11-26T10:00:00Z").bytes());
        events.extend(b"\r\n");
        events.extend(latin1);
        events.extend(b"\r\n");
        events.extend(line("3", "bob", "email.clicked", "2026-11-26T10:00:00Z").bytes());
        let out = replay(&rules, &events, None, false);
        let contacts: Vec<Value> = out
            .lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["contact"].clone())
            .collect();
        assert_eq!(contacts, [json!("amy"), json!("bob")]);
        assert_eq!(out.rejected, ["line 2: not UTF-8 text (byte 24 of the line)"]);
    }
}
