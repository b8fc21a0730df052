//! The provider webhooks, each at `POST /webhooks/<name>`, and how each is
//! configured: [`Settings`] from `KAIROS_<NAME>_SECRET` / `_PUBLIC_KEY` / `_URL`
//! (or the `kairos normalize` flags), built by [`build`].

pub mod brevo;
pub mod customerio;
pub mod mailgun;
pub mod mandrill;
pub mod postmark;
pub mod resend;
pub mod sendgrid;
pub mod ses;
pub mod shared;
pub mod sparkpost;

use std::sync::Arc;

use crate::config::ConfigError;
use crate::webhook::{Parsed, Request, Webhook};

/// Every provider name, in the order the docs list them.
pub const NAMES: [&str; 9] = [
    "sendgrid",
    "mailgun",
    "postmark",
    "ses",
    "mandrill",
    "brevo",
    "sparkpost",
    "resend",
    "customerio",
];

/// One provider's credentials and options, however supplied.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A shared secret: signing key, token or `user:password`, per provider.
    pub secret: Option<String>,
    /// A public verification key (SendGrid).
    pub public_key: Option<String>,
    /// The URL the provider was given (Mandrill signs it).
    pub url: Option<String>,
    /// Accepted distance between a signed timestamp and now, in seconds.
    pub replay_window_secs: i64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key.is_some())
            .field("url", &self.url)
            .field("replay_window_secs", &self.replay_window_secs)
            .finish()
    }
}

impl Settings {
    /// Reads `KAIROS_<NAME>_SECRET`, `KAIROS_<NAME>_PUBLIC_KEY` and `KAIROS_<NAME>_URL`.
    pub fn from_env(name: &str, replay_window_secs: i64, var: &dyn Fn(&str) -> Option<String>) -> Settings {
        let prefix = format!("KAIROS_{}_", name.to_uppercase());
        let get = |suffix: &str| var(&format!("{prefix}{suffix}")).filter(|v| !v.trim().is_empty());
        Settings {
            secret: get("SECRET"),
            public_key: get("PUBLIC_KEY"),
            url: get("URL"),
            replay_window_secs,
        }
    }

    /// The variable name of a setting, for error messages.
    pub fn variable(name: &str, suffix: &str) -> String {
        format!("KAIROS_{}_{suffix}", name.to_uppercase())
    }
}

/// Builds provider `name` from its settings: `None` when it is not configured
/// (its route answers 404), an error when a setting is present but unusable.
pub fn build(name: &str, settings: &Settings) -> Result<Option<Arc<dyn Webhook>>, ConfigError> {
    fn shared<W: Webhook + 'static>(
        w: Result<Option<W>, ConfigError>,
    ) -> Result<Option<Arc<dyn Webhook>>, ConfigError> {
        Ok(w?.map(|w| Arc::new(w) as Arc<dyn Webhook>))
    }
    match name {
        "sendgrid" => shared(sendgrid::SendGrid::build(settings)),
        "ses" => shared(ses::Ses::build(settings)),
        "mailgun" => shared(mailgun::Mailgun::build(settings)),
        "postmark" => shared(postmark::Postmark::build(settings)),
        "brevo" => shared(brevo::Brevo::build(settings)),
        "sparkpost" => shared(sparkpost::SparkPost::build(settings)),
        "mandrill" => shared(mandrill::Mandrill::build(settings)),
        "resend" => shared(resend::Resend::build(settings)),
        "customerio" => shared(customerio::CustomerIo::build(settings)),
        other => Err(ConfigError::Invalid {
            name: "provider".into(),
            reason: format!("unknown provider `{other}` (known: {})", NAMES.join(", ")),
        }),
    }
}

/// Parses a request as provider `name` does, without verifying it (for
/// `kairos normalize --skip-verify` and the fuzz targets).
pub fn parse(name: &str, req: &Request<'_>) -> Result<Parsed, String> {
    match name {
        "sendgrid" => sendgrid::parse(req),
        "mailgun" => mailgun::parse(req),
        "postmark" => postmark::parse(req),
        "ses" => ses::parse(req),
        "mandrill" => mandrill::parse(req),
        "resend" => resend::parse(req),
        "customerio" => customerio::parse(req),
        "brevo" => brevo::parse(req),
        "sparkpost" => sparkpost::parse(req),
        other => Err(format!("unknown provider `{other}` (known: {})", NAMES.join(", "))),
    }
}
