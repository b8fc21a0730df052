//! The SNS HTTP(S) envelope and its signature: SignatureVersion 1 (RSA
//! PKCS#1 v1.5 over SHA-1) and 2 (SHA-256) over the documented string to sign.

use base64::Engine;
use ring::signature::{RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256};
use serde::Deserialize;

use super::cert::SigningKey;

/// The header naming the message type; it must agree with the body's `Type`.
pub const TYPE_HEADER: &str = "x-amz-sns-message-type";
/// The header naming the topic; when present it must agree with the body's `TopicArn`.
pub const TOPIC_HEADER: &str = "x-amz-sns-topic-arn";

/// The SNS message types delivered to an HTTP(S) subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// A message published to the topic (an SES event).
    Notification,
    /// SNS asks the endpoint to confirm a new subscription (GET its `SubscribeURL`).
    SubscriptionConfirmation,
    /// The subscription was deleted.
    UnsubscribeConfirmation,
}

impl MessageType {
    /// The type named by `Type` or the header.
    pub fn from_name(name: &str) -> Option<MessageType> {
        Some(match name {
            "Notification" => MessageType::Notification,
            "SubscriptionConfirmation" => MessageType::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => MessageType::UnsubscribeConfirmation,
            _ => return None,
        })
    }
}

/// The JSON body SNS POSTs (fields as SNS names them).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Unique per published message; the same on redeliveries.
    pub message_id: String,
    /// The topic the message was published to.
    pub topic_arn: String,
    /// The notification's subject, when the publisher gave one.
    #[serde(default)]
    pub subject: Option<String>,
    /// The payload: for SES, an event record as a JSON string.
    pub message: String,
    /// When the message was published (ISO 8601).
    pub timestamp: String,
    /// `1` (SHA-1) or `2` (SHA-256).
    pub signature_version: String,
    /// Base64 RSA signature over [`string_to_sign`].
    pub signature: String,
    /// Where the signing certificate is (checked before any fetch).
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    /// The URL that confirms a subscription (confirmation messages only).
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    /// The confirmation token (confirmation messages only).
    #[serde(default)]
    pub token: Option<String>,
}

/// Why an SNS message's signature was refused. Never carries a signature or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `Type` is not one of the three SNS message types.
    #[error("unknown SNS message type")]
    UnknownType,
    /// A field the string to sign needs is absent.
    #[error("SNS message lacks field {0}")]
    Missing(&'static str),
    /// `SignatureVersion` is not 1 or 2.
    #[error("unsupported SNS SignatureVersion")]
    Version,
    /// `Signature` is not base64.
    #[error("SNS signature is not base64")]
    Malformed,
    /// The signature does not verify with the certificate's key.
    #[error("SNS signature does not verify")]
    Invalid,
}

impl Envelope {
    /// Reads an SNS body.
    pub fn from_slice(body: &[u8]) -> Result<Envelope, String> {
        serde_json::from_slice(body).map_err(|e| format!("body is not an SNS message: {e}"))
    }

    /// The message type, if known.
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::from_name(&self.kind)
    }
}

/// The canonical string SNS signs: `Name\nvalue\n` per field, in the documented
/// order for the message type (Subject only when present).
pub fn string_to_sign(env: &Envelope) -> Result<String, SignatureError> {
    let kind = env.message_type().ok_or(SignatureError::UnknownType)?;
    let mut fields: Vec<(&str, &str)> = vec![("Message", &env.message), ("MessageId", &env.message_id)];
    match kind {
        MessageType::Notification => {
            if let Some(subject) = &env.subject {
                fields.push(("Subject", subject));
            }
        }
        MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
            let url = env
                .subscribe_url
                .as_deref()
                .ok_or(SignatureError::Missing("SubscribeURL"))?;
            fields.push(("SubscribeURL", url));
        }
    }
    fields.push(("Timestamp", &env.timestamp));
    if kind != MessageType::Notification {
        fields.push(("Token", env.token.as_deref().ok_or(SignatureError::Missing("Token"))?));
    }
    fields.push(("TopicArn", &env.topic_arn));
    fields.push(("Type", &env.kind));
    Ok(fields
        .iter()
        .map(|(name, value)| format!("{name}\n{value}\n"))
        .collect())
}

/// Verifies the envelope's signature with the signing certificate's key.
pub fn verify(key: &SigningKey, env: &Envelope) -> Result<(), SignatureError> {
    let text = string_to_sign(env)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(env.signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let params = match env.signature_version.as_str() {
        "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "2" => &RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(SignatureError::Version),
    };
    if key.verifies(params, text.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}
