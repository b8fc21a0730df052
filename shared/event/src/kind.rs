use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of canonical event. The JSON names (`email.opened`, ...) are the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// An email was accepted by the provider for sending.
    #[serde(rename = "email.sent")]
    EmailSent,
    /// The receiving server accepted the email.
    #[serde(rename = "email.delivered")]
    EmailDelivered,
    /// Delivery was temporarily refused and will be retried.
    #[serde(rename = "email.deferred")]
    EmailDeferred,
    /// The provider dropped the email without trying (suppression, invalid).
    #[serde(rename = "email.dropped")]
    EmailDropped,
    /// The email bounced.
    #[serde(rename = "email.bounced")]
    EmailBounced,
    /// The email was opened (see `machine` for privacy-proxy opens).
    #[serde(rename = "email.opened")]
    EmailOpened,
    /// A link in the email was clicked.
    #[serde(rename = "email.clicked")]
    EmailClicked,
    /// The recipient marked the email as spam.
    #[serde(rename = "email.complained")]
    EmailComplained,
    /// The recipient unsubscribed.
    #[serde(rename = "email.unsubscribed")]
    EmailUnsubscribed,
    /// A website page was viewed.
    #[serde(rename = "page.viewed")]
    PageViewed,
    /// An ad was clicked.
    #[serde(rename = "ad.clicked")]
    AdClicked,
    /// The contact sent a chat message.
    #[serde(rename = "chat.message")]
    ChatMessage,
    /// The contact completed a form.
    #[serde(rename = "form.submitted")]
    FormSubmitted,
    /// Traits about the contact became known (carried in `traits`).
    #[serde(rename = "contact.identified")]
    ContactIdentified,
    /// The contact's consent changed (`properties.status`).
    #[serde(rename = "consent.changed")]
    ConsentChanged,
    /// A custom event, named by `name`.
    #[serde(rename = "track")]
    Track,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 16] = [
        EventType::EmailSent,
        EventType::EmailDelivered,
        EventType::EmailDeferred,
        EventType::EmailDropped,
        EventType::EmailBounced,
        EventType::EmailOpened,
        EventType::EmailClicked,
        EventType::EmailComplained,
        EventType::EmailUnsubscribed,
        EventType::PageViewed,
        EventType::AdClicked,
        EventType::ChatMessage,
        EventType::FormSubmitted,
        EventType::ContactIdentified,
        EventType::ConsentChanged,
        EventType::Track,
    ];

    /// The JSON name of this type, e.g. `email.opened`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EmailSent => "email.sent",
            EventType::EmailDelivered => "email.delivered",
            EventType::EmailDeferred => "email.deferred",
            EventType::EmailDropped => "email.dropped",
            EventType::EmailBounced => "email.bounced",
            EventType::EmailOpened => "email.opened",
            EventType::EmailClicked => "email.clicked",
            EventType::EmailComplained => "email.complained",
            EventType::EmailUnsubscribed => "email.unsubscribed",
            EventType::PageViewed => "page.viewed",
            EventType::AdClicked => "ad.clicked",
            EventType::ChatMessage => "chat.message",
            EventType::FormSubmitted => "form.submitted",
            EventType::ContactIdentified => "contact.identified",
            EventType::ConsentChanged => "consent.changed",
            EventType::Track => "track",
        }
    }

    /// True for the `email.*` types, whose contact key is an email address.
    pub fn is_email(self) -> bool {
        self.as_str().starts_with("email.")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`, expected one of: email.sent, email.delivered, email.deferred, email.dropped, email.bounced, email.opened, email.clicked, email.complained, email.unsubscribed, page.viewed, ad.clicked, chat.message, form.submitted, contact.identified, consent.changed, track")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}
