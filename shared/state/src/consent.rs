use kairos_event::{Event, EventType};
use serde::{Deserialize, Serialize};

/// A contact's subscription state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Nothing has said otherwise: the contact may be emailed.
    #[default]
    Subscribed,
    /// The address bounced.
    Bounced,
    /// The contact unsubscribed.
    Unsubscribed,
    /// The contact marked an email as spam.
    Complained,
}

impl ConsentStatus {
    /// Every status, in the order rules and docs list them.
    pub const ALL: [ConsentStatus; 4] = [
        ConsentStatus::Subscribed,
        ConsentStatus::Unsubscribed,
        ConsentStatus::Bounced,
        ConsentStatus::Complained,
    ];

    /// The status named `name` ([`ConsentStatus::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<ConsentStatus> {
        ConsentStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The name used in rules and JSON (`subscribed`, `unsubscribed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Subscribed => "subscribed",
            ConsentStatus::Bounced => "bounced",
            ConsentStatus::Unsubscribed => "unsubscribed",
            ConsentStatus::Complained => "complained",
        }
    }
}

/// The subscription state as a last-writer-wins register keyed by event time;
/// simultaneous changes resolve to the more restrictive status, so the result
/// does not depend on arrival order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    status: ConsentStatus,
    at: i64,
}

impl Consent {
    /// The status `status`, set at `at` (unix seconds).
    pub fn new(status: ConsentStatus, at: i64) -> Consent {
        Consent { status, at }
    }

    /// Its place in last-writer-wins order, as one number: a later consent, or
    /// at the same time a more restrictive one, is greater; 0 for the default
    /// (never set). [`Consent::from_order`] reads it back.
    pub fn order(&self) -> i64 {
        let rank = match self.status {
            ConsentStatus::Subscribed => 0,
            ConsentStatus::Bounced => 1,
            ConsentStatus::Unsubscribed => 2,
            ConsentStatus::Complained => 3,
        };
        self.at.saturating_mul(4).saturating_add(rank)
    }

    /// The consent whose [`Consent::order`] is `order`.
    pub fn from_order(order: i64) -> Consent {
        let status = match order.rem_euclid(4) {
            0 => ConsentStatus::Subscribed,
            1 => ConsentStatus::Bounced,
            2 => ConsentStatus::Unsubscribed,
            _ => ConsentStatus::Complained,
        };
        Consent::new(status, order.div_euclid(4))
    }

    /// The current status.
    pub fn status(&self) -> ConsentStatus {
        self.status
    }

    /// When the current status was set (unix seconds; 0 if never).
    pub fn since(&self) -> i64 {
        self.at
    }

    /// Keeps the later of the two (the more restrictive at equal times), as if
    /// both had been observed here.
    pub(crate) fn merge(&mut self, other: &Consent) {
        if (other.at, other.status) > (self.at, self.status) {
            *self = *other;
        }
    }

    /// Records the event's status change if it is the latest; returns whether it was.
    pub(crate) fn observe(&mut self, event: &Event, at: i64) -> bool {
        let Some(status) = status_of(event) else {
            return false;
        };
        let newer = (at, status) > (self.at, self.status);
        if newer {
            self.status = status;
            self.at = at;
        }
        newer
    }
}

/// Whether applying `event` can change a contact's consent.
pub fn affects_consent(event: &Event) -> bool {
    status_of(event).is_some()
}

fn status_of(event: &Event) -> Option<ConsentStatus> {
    match event.kind {
        EventType::EmailBounced => Some(ConsentStatus::Bounced),
        EventType::EmailUnsubscribed => Some(ConsentStatus::Unsubscribed),
        EventType::EmailComplained => Some(ConsentStatus::Complained),
        EventType::ConsentChanged => ConsentStatus::from_name(event.properties.get("status")?.as_str()?),
        _ => None,
    }
}
