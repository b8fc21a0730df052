//! The provider webhooks, each at `POST /webhooks/<name>`, registered once in
//! [`PROVIDERS`] (name, constructor, parser, statuses, guide), and how each is
//! configured: [`Settings`] from `KAIROS_<NAME>_SECRET` / `_PUBLIC_KEY` / `_URL`
//! (or the `kairos normalize` flags).

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
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use crate::config::ConfigError;
use crate::webhook::{NormalizeError, Parsed, Policy, Request, Webhook};

/// One provider's credentials and options, however supplied.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A shared secret: signing key, token or `user:password`, per provider.
    pub secret: Option<String>,
    /// A public verification key (SendGrid).
    pub public_key: Option<String>,
    /// The URL the provider was given (Mandrill signs it).
    pub url: Option<String>,
    /// `user:password` that the provider sends as HTTP basic auth, from the
    /// credentials in its webhook URL (Mailgun's second factor).
    pub basic_auth: Option<String>,
    /// Accepted distance between a signed timestamp and now, in seconds.
    pub replay_window_secs: i64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key.is_some())
            .field("url", &self.url)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "<redacted>"))
            .field("replay_window_secs", &self.replay_window_secs)
            .finish()
    }
}

impl Settings {
    /// Reads `KAIROS_<NAME>_SECRET`, `_PUBLIC_KEY`, `_URL` and `_BASIC_AUTH`.
    pub fn from_env(name: &str, replay_window_secs: i64, var: &dyn Fn(&str) -> Option<String>) -> Settings {
        let prefix = format!("KAIROS_{}_", name.to_uppercase());
        let get = |suffix: &str| var(&format!("{prefix}{suffix}")).filter(|v| !v.trim().is_empty());
        Settings {
            secret: get("SECRET"),
            public_key: get("PUBLIC_KEY"),
            url: get("URL"),
            basic_auth: get("BASIC_AUTH"),
            replay_window_secs,
        }
    }

    /// The variable name of a setting, for error messages.
    pub fn variable(name: &str, suffix: &str) -> String {
        format!("KAIROS_{}_{suffix}", name.to_uppercase())
    }
}

/// A configured provider's verifier: `None` when its settings are absent.
pub type Built = Result<Option<Arc<dyn Webhook>>, ConfigError>;

/// One provider, registered once: its route name, how it is built from its
/// settings, how its bodies are parsed, the statuses it gets and its guide.
pub struct Provider {
    /// The route name: `/webhooks/<name>`.
    pub name: &'static str,
    /// Its guide, relative to the repository root.
    pub docs: &'static str,
    /// The statuses its retry behaviour needs (see each module's `POLICY`).
    pub policy: Policy,
    /// The `kairos normalize` flags that carry its credential.
    pub flags: &'static str,
    /// Builds its verifier from its settings: `None` when not configured
    /// (its route answers 404), an error when a setting is unusable.
    pub build: fn(&Settings) -> Built,
    /// Parses a verified request (also used unverified by `kairos normalize
    /// --skip-verify` and the fuzz targets).
    pub parse: fn(&Request<'_>) -> Result<Parsed, NormalizeError>,
    /// The largest body it may post (bytes), accepted whatever
    /// `KAIROS_MAX_BODY_BYTES` says: a provider that retries a 413 with the
    /// same batch would otherwise lose it. 0: the setting alone.
    pub batch_bytes: usize,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn built<W: Webhook + 'static>(w: Result<Option<W>, ConfigError>) -> Built {
    Ok(w?.map(|w| Arc::new(w) as Arc<dyn Webhook>))
}

const SECRET: &str = "give --secret (or --skip-verify)";

/// Every provider, in the order the docs list them.
pub const PROVIDERS: [Provider; 9] = [
    Provider {
        name: "sendgrid",
        docs: "docs/providers/sendgrid.md",
        policy: sendgrid::POLICY,
        flags: "give --public-key (or --skip-verify)",
        build: |s| built(sendgrid::SendGrid::build(s)),
        parse: sendgrid::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "mailgun",
        docs: "docs/providers/mailgun.md",
        policy: mailgun::POLICY,
        flags: "give --secret and --basic-auth, with the Authorization header (or --skip-verify)",
        build: |s| built(mailgun::Mailgun::build(s)),
        parse: mailgun::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "postmark",
        docs: "docs/providers/postmark.md",
        policy: postmark::POLICY,
        flags: SECRET,
        build: |s| built(postmark::Postmark::build(s)),
        parse: postmark::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "ses",
        docs: "docs/providers/ses.md",
        policy: ses::POLICY,
        flags: "give --secret with the SNS topic ARN (or --skip-verify)",
        build: |s| built(ses::Ses::build(s)),
        parse: ses::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "mandrill",
        docs: "docs/providers/mandrill.md",
        policy: mandrill::POLICY,
        flags: "give --secret and --url (or --skip-verify)",
        build: |s| built(mandrill::Mandrill::build(s)),
        parse: mandrill::parse,
        batch_bytes: mandrill::BATCH_BYTES,
    },
    Provider {
        name: "brevo",
        docs: "docs/providers/brevo.md",
        policy: brevo::POLICY,
        flags: SECRET,
        build: |s| built(brevo::Brevo::build(s)),
        parse: brevo::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "sparkpost",
        docs: "docs/providers/sparkpost.md",
        policy: sparkpost::POLICY,
        flags: SECRET,
        build: |s| built(sparkpost::SparkPost::build(s)),
        parse: sparkpost::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "resend",
        docs: "docs/providers/resend.md",
        policy: resend::POLICY,
        flags: SECRET,
        build: |s| built(resend::Resend::build(s)),
        parse: resend::parse,
        batch_bytes: 0,
    },
    Provider {
        name: "customerio",
        docs: "docs/providers/customerio.md",
        policy: customerio::POLICY,
        flags: SECRET,
        build: |s| built(customerio::CustomerIo::build(s)),
        parse: customerio::parse,
        batch_bytes: 0,
    },
];

/// The registered provider named `name`.
pub fn find(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// The provider named `name`, or an error listing the known ones.
pub fn known(name: &str) -> Result<&'static Provider, String> {
    find(name).ok_or_else(|| {
        let names: Vec<&str> = PROVIDERS.iter().map(|p| p.name).collect();
        format!("unknown provider `{name}` (known: {})", names.join(", "))
    })
}
