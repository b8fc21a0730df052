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

/// Reads every parameter under `path` (recursively, decrypted) as
/// `(KAIROS_<NAME>, value)` pairs: `/kairos/mailgun-secret` becomes
/// `KAIROS_MAILGUN_SECRET`, `/kairos/mailgun/secret` too. Lets an operator
/// configure a provider by creating one SecureString, with no template change.
pub async fn parameters_under(path: &str, ssm: &Client) -> Result<Vec<(String, String)>, SecretError> {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let mut pages = ssm
        .get_parameters_by_path()
        .path(&prefix)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SecretError {
            name: prefix.clone(),
            reason: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
        })?;
        for p in page.parameters() {
            if let (Some(name), Some(value)) = (p.name(), p.value()) {
                found.push((variable_name(&name[prefix.len().min(name.len())..]), value.to_string()));
            }
        }
    }
    Ok(found)
}

/// `mailgun/secret` or `mailgun-secret` → `KAIROS_MAILGUN_SECRET`.
fn variable_name(relative: &str) -> String {
    let upper: String = relative
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("KAIROS_{upper}")
}

/// Sets the key of the hashes that stand for contacts in this function's logs
/// ([`kairos_event::log`]) from `KAIROS_LOG_HASH_KEY` (a value, or `ssm:<name>`);
/// unset, each process draws a random key. Called once at cold start.
pub async fn init_log_hashing(aws: &aws_config::SdkConfig) -> Result<(), SecretError> {
    let key = match std::env::var("KAIROS_LOG_HASH_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Some(value) => Some(resolve_secret(&value, &Client::new(aws)).await?),
        None => None,
    };
    kairos_event::log::init(key.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameter_names_become_variable_names() {
        assert_eq!(super::variable_name("mailgun-secret"), "KAIROS_MAILGUN_SECRET");
        assert_eq!(super::variable_name("ses/secret"), "KAIROS_SES_SECRET");
        assert_eq!(super::variable_name("api-keys"), "KAIROS_API_KEYS");
    }
}
