//! Verifies the Cognito ID tokens the console's session cookie carries
//! (RS256, with `ring`), since the HTTP API's JWT authorizer reads only the
//! `Authorization` header and a browser's page navigation sends a cookie.
//!
//! [`Verifier::verify`] checks, in order: the token's shape, `alg` = RS256,
//! the signature against the user pool's key named by `kid` (the pool's JWKS,
//! fetched once per container and cached; fetched again when a token names
//! a key the cache lacks, at most once per [`Verifier::refetch_interval`]),
//! `iss` = the pool, `token_use` = `id`, `aud` = the app client, and `exp` /
//! `nbf` with [`LEEWAY_SECS`] of clock skew. The claims of a verified token
//! become the strings [`super::access::Identity::from_claims`] reads.
//!
//! Errors ([`TokenError`]) name what failed, never the token or a claim's value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// The shortest time between two JWKS fetches caused by an unknown `kid`
/// (a token naming made-up keys cannot make every request fetch the JWKS).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Why a token was refused. Messages never include the token or a claim's value.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and payload.
    #[error("the token is malformed")]
    Malformed,
    /// The header's `alg` is not RS256 (`none` and HMAC are refused).
    #[error("the token's algorithm is not RS256")]
    Algorithm,
    /// No key of the pool's JWKS has the token's `kid` (even after a refetch).
    #[error("the token's signing key is not one of the user pool's")]
    UnknownKey,
    /// The signature does not verify with the named key.
    #[error("the token's signature does not verify")]
    Signature,
    /// `iss` is not the user pool.
    #[error("the token was not issued by the console's user pool")]
    Issuer,
    /// `aud` is not the console's app client.
    #[error("the token is not for the console's app client")]
    Audience,
    /// `token_use` is not `id`.
    #[error("the token is not an ID token")]
    TokenUse,
    /// `exp` has passed (or is missing).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The JWKS could not be fetched or read (retryable: the user can reload).
    #[error("the user pool's keys could not be fetched: {0}")]
    Jwks(String),
}

/// A verified ID token's claims.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Every claim as a string (arrays as JSON), as [`super::access::Identity::from_claims`] reads them.
    pub claims: HashMap<String, String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: i64,
}

/// One RSA public key of the pool's JWKS.
#[derive(Debug, Clone)]
struct Key {
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    fetched_at: Option<Instant>,
}

/// Verifies ID tokens of one user pool and app client (see the module's documentation).
pub struct Verifier {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// The shortest time between two fetches caused by an unknown `kid` ([`REFETCH_INTERVAL`]).
    pub refetch_interval: Duration,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl Verifier {
    /// A verifier for tokens issued by `issuer` (the pool's URL; its keys at
    /// `<issuer>/.well-known/jwks.json`) for the app client `client_id`.
    pub fn new(issuer: &str, client_id: &str, http: reqwest::Client) -> Verifier {
        let issuer = issuer.trim_end_matches('/').to_string();
        Verifier {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            client_id: client_id.to_string(),
            http,
            cache: RwLock::new(Cache::default()),
            refetch_interval: REFETCH_INTERVAL,
        }
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` at `now` (seconds since the epoch).
    pub async fn verify(&self, token: &str, now: i64) -> Result<Verified, TokenError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(head)?;
        if header.alg != "RS256" {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
        let key = self.key(&kid).await?;
        let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
        RsaPublicKeyComponents { n: &key.n, e: &key.e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: Map<String, Value> = decode_json(body)?;
        self.check_claims(&claims, now)?;
        let expires_at = claims.get("exp").and_then(Value::as_i64).ok_or(TokenError::Expired)?;
        Ok(Verified {
            claims: claims.into_iter().map(|(k, v)| (k, claim_text(v))).collect(),
            expires_at,
        })
    }

    /// The claims' checks: issuer, use, audience, times.
    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<(), TokenError> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Issuer);
        }
        if claims.get("token_use").and_then(Value::as_str) != Some("id") {
            return Err(TokenError::TokenUse);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.client_id.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if now < exp + LEEWAY_SECS => {}
            _ => return Err(TokenError::Expired),
        }
        match claims.get("nbf") {
            None => Ok(()),
            Some(nbf) => match nbf.as_i64() {
                Some(nbf) if nbf <= now + LEEWAY_SECS => Ok(()),
                _ => Err(TokenError::NotYetValid),
            },
        }
    }

    /// The key named `kid`: from the cache, else from a (re)fetched JWKS.
    async fn key(&self, kid: &str) -> Result<Key, TokenError> {
        let due = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            cache.fetched_at.is_none_or(|at| at.elapsed() >= self.refetch_interval)
        };
        if !due {
            return Err(TokenError::UnknownKey);
        }
        let keys = self.fetch().await?;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache.keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
    }

    /// The pool's RSA keys by `kid`.
    async fn fetch(&self) -> Result<HashMap<String, Key>, TokenError> {
        let fail = |e: reqwest::Error| TokenError::Jwks(e.without_url().to_string());
        let response = self.http.get(&self.jwks_url).send().await.map_err(fail)?;
        let response = response.error_for_status().map_err(fail)?;
        let jwks: Jwks = response.json().await.map_err(fail)?;
        tracing::info!(keys = jwks.keys.len(), "console sign-in: fetched the user pool's keys");
        let b64 = |v: &Option<String>| v.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        Ok(jwks
            .keys
            .iter()
            .filter(|k| k.kty == "RSA")
            .filter_map(|k| {
                Some((
                    k.kid.clone()?,
                    Key {
                        n: b64(&k.n)?,
                        e: b64(&k.e)?,
                    },
                ))
            })
            .collect())
    }
}

/// A base64url JSON part of a token.
fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// A claim as text: strings as they are, anything else (e.g. `cognito:groups`) as JSON.
fn claim_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verifier() -> Verifier {
        Verifier::new("https://pool.test/p1/", "client-1", reqwest::Client::new())
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn each_claim_check_refuses_its_own_mistake() {
        let v = verifier();
        assert_eq!(v.issuer(), "https://pool.test/p1");
        let good = json!({"iss": "https://pool.test/p1", "aud": "client-1", "token_use": "id", "exp": 1000});
        assert!(v.check_claims(&claims(good.clone()), 900).is_ok());
        assert!(
            v.check_claims(&claims(good.clone()), 1000 + LEEWAY_SECS - 1).is_ok(),
            "within the leeway"
        );
        let with = |key: &str, value: Value| {
            let mut c = claims(good.clone());
            c.insert(key.to_string(), value);
            v.check_claims(&c, 900)
        };
        assert!(matches!(
            v.check_claims(&claims(good.clone()), 1000 + LEEWAY_SECS),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            with("iss", json!("https://other.test/p1")),
            Err(TokenError::Issuer)
        ));
        assert!(matches!(with("aud", json!("client-2")), Err(TokenError::Audience)));
        assert!(with("aud", json!(["client-2", "client-1"])).is_ok());
        assert!(matches!(with("token_use", json!("access")), Err(TokenError::TokenUse)));
        assert!(matches!(with("exp", json!("soon")), Err(TokenError::Expired)));
        assert!(matches!(
            with("nbf", json!(900 + LEEWAY_SECS + 1)),
            Err(TokenError::NotYetValid)
        ));
        assert!(with("nbf", json!(900 + LEEWAY_SECS)).is_ok());
        let mut no_exp = claims(good);
        no_exp.remove("exp");
        assert!(matches!(v.check_claims(&no_exp, 900), Err(TokenError::Expired)));
    }

    #[tokio::test]
    async fn malformed_and_unsigned_tokens_are_refused_before_any_key_is_fetched() {
        let v = verifier();
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = part(json!({"iss": "https://pool.test/p1"}));
        for token in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(
                matches!(v.verify(token, 0).await, Err(TokenError::Malformed)),
                "{token}"
            );
        }
        let none = format!("{}.{body}.", part(json!({"alg": "none", "kid": "k"})));
        assert!(matches!(v.verify(&none, 0).await, Err(TokenError::Algorithm)));
        let hmac = format!("{}.{body}.c2ln", part(json!({"alg": "HS256", "kid": "k"})));
        assert!(matches!(v.verify(&hmac, 0).await, Err(TokenError::Algorithm)));
        let no_kid = format!("{}.{body}.c2ln", part(json!({"alg": "RS256"})));
        assert!(matches!(v.verify(&no_kid, 0).await, Err(TokenError::UnknownKey)));
        assert!(v.cache.read().unwrap().fetched_at.is_none(), "nothing was fetched");
    }

    #[test]
    fn claims_become_the_strings_the_identity_reads() {
        assert_eq!(claim_text(json!("ada@x.test")), "ada@x.test");
        assert_eq!(claim_text(json!(["viewer", "editor"])), r#"["viewer","editor"]"#);
        assert_eq!(claim_text(json!(1000)), "1000");
    }
}
