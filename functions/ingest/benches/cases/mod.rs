//! The signed request of each provider for the bench, built from the fixtures.

use std::sync::Arc;

use aws_lambda_events::http::HeaderMap;
use kairos_ingest::Webhook;

mod hmac_signed;
mod sendgrid;
mod ses;

/// One provider's bench request and its configured webhook.
pub struct Case {
    /// The provider.
    pub name: &'static str,
    /// The webhook, configured with the key the request is signed with.
    pub hook: Arc<dyn Webhook>,
    /// The headers as the provider sends them.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The time the request is checked at.
    pub now: i64,
}

/// Fixed "now" for every case.
pub const NOW: i64 = 1_795_000_000;

/// Every provider's case, in the docs' order.
pub fn all() -> Vec<Case> {
    vec![
        sendgrid::case(),
        hmac_signed::mailgun(),
        hmac_signed::postmark(),
        ses::case(),
        hmac_signed::mandrill(),
        hmac_signed::brevo(),
        hmac_signed::sparkpost(),
        hmac_signed::resend(),
        hmac_signed::customerio(),
    ]
}

/// A header map from name/value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name: aws_lambda_events::http::HeaderName = name.parse().expect("a header name");
        map.insert(name, value.parse().expect("a header value"));
    }
    map
}
