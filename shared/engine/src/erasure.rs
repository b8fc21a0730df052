//! Erasure, the engine's part (`docs/governance.md`): what an erased
//! contact's record becomes, what destinations are told, and which later
//! events a tombstone lets through.
//!
//! An erased contact's record is replaced by a *tombstone*: an empty state,
//! no overrides, nothing due, kept for the erasure window
//! (`KAIROS_ERASURE_WINDOW_DAYS`, default [`DEFAULT_WINDOW_DAYS`]) and
//! carrying the erasure's time. Every segment destinations were told the
//! contact is in gets an exit ([`Engine::erase`]). While the tombstone lasts,
//! events for the contact are dropped ([`admit`]) unless a consent event
//! saying `subscribed`, dated after the erasure, re-opens the contact: then
//! only the events dated after the erasure are applied, to a new record.

use chrono::{DateTime, Utc};
use kairos_event::{Change, Event, EventType, Transition};
use kairos_state::ConsentStatus;
use serde_json::json;

use crate::{govern, Contact, Engine, Outcome};

/// How long a tombstone drops a contact's events unless configured (days).
pub const DEFAULT_WINDOW_DAYS: i64 = 30;

/// Reads a `KAIROS_ERASURE_WINDOW_DAYS` value: a whole number of days from 1
/// to 3,650; the error says what was expected.
pub fn parse_window_days(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=3650).contains(&n) => Ok(n),
        _ => Err(format!("`{value}`: expected a whole number of days from 1 to 3650")),
    }
}

/// What a tombstone does with a batch of events.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// No tombstone in force: apply every event.
    All,
    /// Drop every event (the contact stays erased).
    Drop,
    /// A new consent re-opens the contact: apply only these events (those
    /// dated after the erasure), to a new record.
    Reopen(Vec<Event>),
}

/// Whether `event` is a consent event saying the contact subscribed.
fn subscribes(event: &Event) -> bool {
    event.kind == EventType::ConsentChanged
        && event
            .properties
            .get("status")
            .and_then(|s| s.as_str())
            .and_then(ConsentStatus::from_name)
            == Some(ConsentStatus::Subscribed)
}

/// What a tombstone of an erasure at `erased_at` (unix seconds), kept until
/// `until`, does with `events` as of `now`.
pub fn admit(erased_at: Option<i64>, until: i64, events: &[Event], now: i64) -> Admit {
    let Some(erased_at) = erased_at.filter(|_| now <= until) else {
        return Admit::All;
    };
    let after: Vec<Event> = events
        .iter()
        .filter(|e| e.at.timestamp() > erased_at)
        .cloned()
        .collect();
    if after.iter().any(subscribes) {
        Admit::Reopen(after)
    } else {
        Admit::Drop
    }
}

impl Engine<'_> {
    /// Erases the contact `key` as of `now`, by `actor`: its record becomes a
    /// tombstone kept `window_secs` (the version moves on, so a concurrent
    /// writer loses its race), and each segment destinations were told it is
    /// in gets an exit carrying an empty membership, saying
    /// `erased by <actor>`. The audit entries are one exit per segment the
    /// contact is a member of, so the save counts each segment's members down
    /// (`kairos_store::counters`); the erasure deletes the trail they join
    /// and keeps its receipt apart, under a salted hash of the key.
    pub fn erase(
        &self,
        key: &str,
        contact: &mut Contact,
        actor: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Outcome {
        let written = govern::written_of(contact);
        let members = govern::effective(self.rules, contact);
        *contact = Contact {
            version: kairos_state::next_version(contact.version, now.timestamp_millis()),
            expires_at: now.timestamp() + window_secs,
            rules_seq: contact.rules_seq,
            written: Some(Vec::new()),
            ..Contact::default()
        };
        let exit = |id: &String| Transition {
            summary: format!("erased by {actor}"),
            explanation: json!({"erasure": {"actor": actor}}),
            members: Some(Vec::new()),
            ..govern::bare(self.rules, key, contact, id, Change::Exited, now)
        };
        let audit = members
            .iter()
            .map(|id| govern::left_entry(self.rules, &exit(id), "erasure", Some(actor), written.contains(id)))
            .collect();
        Outcome {
            transitions: written.iter().map(exit).collect(),
            audit,
            version: Some(contact.version),
            ..Outcome::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(id: &str, kind: &str, at: i64, status: Option<&str>) -> Event {
        let props = status.map_or(String::new(), |s| format!(r#","properties":{{"status":"{s}"}}"#));
        let at = Utc.timestamp_opt(at, 0).unwrap().to_rfc3339();
        let json = format!(
            r#"{{"id":"{id}","contact":"ada@example.com","type":"{kind}","at":"{at}","source":"test"{props}}}"#
        );
        Event::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_tombstone_drops_events_until_a_later_subscribe_reopens() {
        let click = event("c", "email.clicked", 900, None);
        let late_click = event("c2", "email.clicked", 1_100, None);
        let old_subscribe = event("s0", "consent.changed", 800, Some("subscribed"));
        let subscribe = event("s", "consent.changed", 1_200, Some("subscribed"));
        let unsubscribe = event("u", "consent.changed", 1_300, Some("unsubscribed"));
        let now = 2_000;
        assert_eq!(admit(None, 0, std::slice::from_ref(&click), now), Admit::All);
        assert_eq!(
            admit(Some(1_000), 500, std::slice::from_ref(&click), now),
            Admit::All,
            "window over"
        );
        let batch = [click.clone(), late_click.clone(), old_subscribe, unsubscribe];
        assert_eq!(admit(Some(1_000), 5_000, &batch, now), Admit::Drop);
        let batch = [click, late_click.clone(), subscribe.clone()];
        assert_eq!(
            admit(Some(1_000), 5_000, &batch, now),
            Admit::Reopen(vec![late_click, subscribe])
        );
    }

    #[test]
    fn window_days_are_checked() {
        assert_eq!(parse_window_days(" 30 "), Ok(30));
        assert!(parse_window_days("0").unwrap_err().contains("1 to 3650"));
        assert!(parse_window_days("x").is_err());
    }
}
