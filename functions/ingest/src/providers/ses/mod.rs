//! `POST /webhooks/ses`: Amazon SES events delivered by an SNS HTTPS subscription.
//!
//! Verification, in order, before any network call: the body is an SNS
//! message whose `Type` agrees with the `x-amz-sns-message-type` header; its
//! `TopicArn` is one of the configured topics; its `SigningCertURL` (and a
//! confirmation's `SubscribeURL`) is `https://sns.<region>.amazonaws.com[.cn]`.
//! Then the certificate is fetched (once per URL per warm Lambda) and the
//! SignatureVersion 1 or 2 signature must verify.
//!
//! SNS's `Timestamp` is not held to the replay window: SNS redelivers a failed
//! message for up to an hour with the original timestamp, so a window would
//! drop real retries. Replays are bounded instead by the one-time claim on
//! `MessageId` and, later, by the events' stable ids.

pub mod cert;
mod events;
mod sns;

pub use cert::{cert_url, public_key, sns_url, CertCache, Fetch, FetchError, HttpsGet, Reqwest};
pub use events::normalize;
pub use sns::{string_to_sign, verify, Envelope, MessageType, SignatureError};

use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq;

use super::Settings;
use crate::config::ConfigError;
use crate::webhook::{Claim, NormalizeError, Parsed, Policy, Refusal, Request, Verification, Verified, Webhook};

/// The SES route: the accepted SNS topics and where signing certificates come from.
#[derive(Debug)]
pub struct Ses {
    topics: Vec<String>,
    certs: CertCache,
    window_secs: i64,
}

impl Ses {
    /// Accepts messages from `topics`, fetching certificates (and confirming
    /// subscriptions) through `source`; one-time claims last `window_secs`.
    pub fn new(topics: Vec<String>, source: Arc<dyn HttpsGet>, window_secs: i64) -> Ses {
        Ses {
            topics,
            certs: CertCache::new(source),
            window_secs,
        }
    }

    /// Built from `secret` (`KAIROS_SES_SECRET`): for SES the "secret" is the SNS
    /// topic ARN, or a comma-separated list of them.
    pub fn build(settings: &Settings) -> Result<Option<Ses>, ConfigError> {
        let Some(text) = &settings.secret else {
            return Ok(None);
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name: Settings::variable("ses", "SECRET"),
            reason,
        };
        let topics: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if topics.is_empty() || !topics.iter().all(|t| is_topic_arn(t)) {
            return Err(invalid(
                "expected SNS topic ARNs (arn:aws:sns:<region>:<account>:<topic>), comma-separated".into(),
            ));
        }
        let source = Reqwest::new().map_err(invalid)?;
        Ok(Some(Ses::new(topics, Arc::new(source), settings.replay_window_secs)))
    }

    fn accepts(&self, topic: &str) -> bool {
        let mut found = subtle::Choice::from(0);
        for t in &self.topics {
            found |= t.as_bytes().ct_eq(topic.as_bytes());
        }
        found.into()
    }

    /// The checks needing no network: type, topic and SNS-only URLs.
    fn precheck(&self, req: &Request<'_>) -> Result<(Envelope, MessageType), String> {
        let env = Envelope::from_slice(req.body)?;
        let kind = env.message_type().ok_or("unknown SNS message type")?;
        if req.header(sns::TYPE_HEADER) != Some(env.kind.as_str()) {
            return Err(format!("header {} missing or not the body's Type", sns::TYPE_HEADER));
        }
        if req.header(sns::TOPIC_HEADER).is_some_and(|h| h != env.topic_arn) {
            return Err(format!("header {} is not the body's TopicArn", sns::TOPIC_HEADER));
        }
        if !self.accepts(&env.topic_arn) {
            return Err("SNS topic is not configured".into());
        }
        cert_url(&env.signing_cert_url).map_err(|e| format!("SigningCertURL refused: {e}"))?;
        if kind == MessageType::SubscriptionConfirmation {
            let url = env.subscribe_url.as_deref().unwrap_or_default();
            sns_url(url).map_err(|e| format!("SubscribeURL refused: {e}"))?;
        }
        Ok((env, kind))
    }

    /// Prechecks, then verifies the signature with the (cached) certificate and
    /// acts on the message type. A certificate that cannot be fetched now is
    /// [`Refusal::Unavailable`] (503: SNS retries server errors, not client errors).
    async fn check(&self, req: &Request<'_>, now: i64) -> Result<Verified, Refusal> {
        let (env, kind) = self.precheck(req).map_err(Refusal::Unauthorized)?;
        let key = self.certs.key(&env.signing_cert_url, now).await?;
        verify(&key, &env).map_err(|e| Refusal::Unauthorized(e.to_string()))?;
        Ok(match kind {
            MessageType::Notification => Verified {
                claims: vec![Claim {
                    covers_body: true,
                    key: format!("ses:{}", env.message_id),
                    expires_at: now.saturating_add(self.window_secs),
                }],
                reply: None,
            },
            MessageType::SubscriptionConfirmation => self.confirm(&env).await,
            MessageType::UnsubscribeConfirmation => {
                tracing::info!(topic = %env.topic_arn, "SNS subscription to the ses route was deleted");
                Verified {
                    claims: Vec::new(),
                    reply: Some((200, json!({"unsubscribed": env.topic_arn}))),
                }
            }
        })
    }

    /// Confirms a verified subscription by GETting its `SubscribeURL`; on failure
    /// answers 503 so SNS may retry (the URL carries a token: it is not logged).
    async fn confirm(&self, env: &Envelope) -> Verified {
        let url = env.subscribe_url.as_deref().unwrap_or_default();
        let reply = match self.certs.source().get(url).await {
            Ok(_) => {
                tracing::info!(topic = %env.topic_arn, "confirmed the SNS subscription");
                (200, json!({"confirmed": env.topic_arn}))
            }
            Err(error) => {
                tracing::error!(topic = %env.topic_arn, %error, "could not confirm the SNS subscription");
                (503, json!({"error": "could not confirm the subscription; retry"}))
            }
        };
        Verified {
            claims: Vec::new(),
            reply: Some(reply),
        }
    }
}

/// `arn:aws[-cn|-us-gov]:sns:<region>:<account>:<name>`, loosely.
fn is_topic_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
        if partition.starts_with("aws") && !region.is_empty() && !account.is_empty() && !name.is_empty())
}

impl Webhook for Ses {
    fn name(&self) -> &'static str {
        "ses"
    }

    fn verify<'a>(&'a self, req: &'a Request<'a>, now: i64) -> Verification<'a> {
        Box::pin(self.check(req, now))
    }
}

/// SNS retries an HTTP(S) delivery on 5xx and timeouts, and treats a 4xx as
/// a client error it does not retry (it discards the message, or moves it to
/// the subscription's dead-letter queue): "Amazon SNS message delivery
/// retries" and "Amazon SNS dead-letter queues" in the SNS Developer Guide.
/// One message is one SES record, so an unreadable one will never read
/// better: 400 (kept in a DLQ when one is attached). A record with several
/// recipients where some are invalid: 200, so the good ones are not resent.
pub const POLICY: Policy = Policy {
    accepted: 200,
    partial: 200,
    malformed: 400,
};

/// Parses an SNS Notification carrying one SES record: one event per recipient.
pub fn parse(req: &Request<'_>) -> Result<Parsed, NormalizeError> {
    let env = Envelope::from_slice(req.body)?;
    if env.message_type() != Some(MessageType::Notification) {
        return Err("not an SNS Notification".into());
    }
    let record = crate::providers::shared::strict_json(env.message.as_bytes())
        .map_err(|e| format!("SNS Message is not an SES JSON record: {e}"))?;
    let mut parsed = Parsed::default();
    for (index, (id, event)) in normalize(&record, &env.message_id)?.into_iter().enumerate() {
        parsed.push(index, id, event);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
