//! Who is calling: the IAM principal API Gateway verified (SigV4, the
//! route's `AWS_IAM` authorization), or locally a configured admin key,
//! compared in constant time. Event API keys and write keys are never
//! accepted here.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header carrying an admin key (local use, where no IAM authorizer runs).
pub const ADMIN_KEY_HEADER: &str = "x-kairos-admin-key";

/// The caller's name for the audit trail (an IAM principal ARN, or
/// `admin-key:<name>`), or `None` if the request is not authorized.
pub(crate) fn actor(req: &ApiGatewayV2httpRequest, keys: &[(String, String)]) -> Option<String> {
    let iam = req.request_context.authorizer.as_ref().and_then(|a| a.iam.as_ref());
    if let Some(arn) = iam.and_then(|i| i.user_arn.clone()).filter(|a| !a.is_empty()) {
        return Some(arn);
    }
    let given = req.headers.get(ADMIN_KEY_HEADER)?.as_bytes();
    // Hashes compare in constant time whatever the lengths; every key is compared.
    let given = Sha256::digest(given);
    let mut found = None;
    for (name, secret) in keys {
        if bool::from(Sha256::digest(secret.as_bytes()).ct_eq(&given)) {
            found = Some(format!("admin-key:{name}"));
        }
    }
    found
}

/// Reads `KAIROS_ADMIN_KEYS`: `name=secret` pairs separated by commas, each
/// secret at least 32 characters; the error names the bad entry's position.
pub fn parse_admin_keys(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, entry) in value.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        match entry.split_once('=') {
            Some((name, secret)) if !name.trim().is_empty() && secret.len() >= 32 => {
                out.push((name.trim().to_string(), secret.to_string()))
            }
            _ => {
                return Err(format!(
                    "entry {}: expected name=secret with a secret of 32+ characters",
                    i + 1
                ))
            }
        }
    }
    Ok(out)
}
