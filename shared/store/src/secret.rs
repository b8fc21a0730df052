//! Secrets in configuration: a value is used as given, or, when it reads
//! `ssm:<parameter name>`, fetched once at cold start from SSM Parameter Store
//! (SecureString, decrypted). Secret values never appear in errors or logs.

use aws_sdk_ssm::Client;

/// Why a secret could not be resolved. Never contains the secret.
#[derive(Debug, thiserror::Error)]
#[error("cannot read SSM parameter `{name}`: {reason}")]
pub struct SecretError {
    /// The parameter name (not secret).
    pub name: String,
    /// Why, without the value.
    pub reason: String,
}

/// Resolves `ssm:<name>` through SSM; any other value is returned as is.
pub async fn resolve_secret(value: &str, ssm: &Client) -> Result<String, SecretError> {
    let Some(name) = value.strip_prefix("ssm:") else {
        return Ok(value.to_string());
    };
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| SecretError {
            name: name.to_string(),
            reason: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
        })?;
    out.parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| SecretError {
            name: name.to_string(),
            reason: "parameter has no value".into(),
        })
}
