//! The signed request of each provider for the bench, built from the fixtures.

use std::sync::Arc;

use aws_lambda_events::http::HeaderMap;
use kairos_ingest::Webhook;

mod sendgrid;

/// One provider's bench request and its configured webhook.
pub struct Case {
    /// The provider.
    pub name: &'static str,
    /// The webhook, configured with the key the request is signed with.
    pub hook: Arc<dyn Webhook>,
    /// The URL the provider calls.
    pub url: String,
    /// The headers as the provider sends them.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The time the request is checked at.
    pub now: i64,
}

/// Fixed "now" for every case.
pub const NOW: i64 = 1_795_000_000;

/// Every provider's case.
pub fn all() -> Vec<Case> {
    vec![sendgrid::case()]
}
