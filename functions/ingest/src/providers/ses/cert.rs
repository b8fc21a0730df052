//! SNS signing certificates: which URLs may be fetched, how they are fetched
//! (HTTPS only, no redirects, short timeout) and the per-URL in-memory cache,
//! so a warm Lambda fetches each certificate once. A failed fetch is remembered
//! for [`FAILED_FETCH_SECS`] (and at most [`MAX_FAILED`] URLs may be failing at
//! once because SNS is out), so a caller cannot make ingest fetch again and
//! again; the request is answered 503, which SNS retries. A URL SNS answers
//! with a 4xx (no such certificate) is remembered on its own and does not
//! count toward that limit: otherwise anyone knowing a configured topic's ARN
//! could fill it with made-up certificate names and hold up real deliveries.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::signature::{RsaParameters, RsaPublicKeyComponents};
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, DecodePem, Reader, SliceReader};
use x509_cert::spki::ObjectIdentifier;
use x509_cert::Certificate;

use crate::webhook::Refusal;

/// The future of one HTTPS GET: the response body, or why there is none.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + 'a>>;

/// Why an HTTPS GET has no body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server answered with this status, not a 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// No answer, or one that could not be read (a timeout, a refused
    /// connection, a body over the limit).
    #[error("{0}")]
    Failed(String),
}

impl FetchError {
    /// Whether SNS itself was unreachable or failing (not a 4xx for this URL):
    /// only such failures count toward [`MAX_FAILED`].
    fn is_outage(&self) -> bool {
        !matches!(self, FetchError::Status(400..=499))
    }
}

/// An HTTPS GET: fetches signing certificates and confirms subscriptions.
/// Tests inject one that records its calls.
pub trait HttpsGet: Send + Sync {
    /// GETs `url` (already checked by [`sns_url`]) and returns the body of a 2xx response.
    fn get<'a>(&'a self, url: &'a str) -> Fetch<'a>;
}

/// Longest certificate or confirmation response read (SNS certificates are about 2 KB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most certificates cached; SNS rotates its certificate rarely, so this is never reached in practice.
const MAX_CACHED: usize = 32;
/// How long a failed fetch is not retried (seconds).
pub const FAILED_FETCH_SECS: i64 = 60;
/// Most URLs whose fetch failed within [`FAILED_FETCH_SECS`]; beyond, no new URL is fetched.
pub const MAX_FAILED: usize = 8;

/// The real [`HttpsGet`]: reqwest with rustls, HTTPS only, no redirects, 5 s timeout.
#[derive(Debug, Clone)]
pub struct Reqwest {
    client: reqwest::Client,
}

impl Reqwest {
    /// A client for SNS hosts only (callers check URLs with [`sns_url`] first).
    pub fn new() -> Result<Reqwest, String> {
        let client = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        Ok(Reqwest { client })
    }
}

impl HttpsGet for Reqwest {
    fn get<'a>(&'a self, url: &'a str) -> Fetch<'a> {
        Box::pin(async move {
            // Errors are reported without the URL: a SubscribeURL carries a token.
            let response = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| FetchError::Failed(e.without_url().to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let over = || FetchError::Failed(format!("response is over {MAX_RESPONSE_BYTES} bytes"));
            if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
                return Err(over());
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| FetchError::Failed(e.without_url().to_string()))?;
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(over());
            }
            Ok(body.to_vec())
        })
    }
}

/// Checks that `url` is `https://sns.<region>.amazonaws.com[.cn]/<path>` with no
/// user info, no port, no fragment and no percent-escapes in its path; returns the path and query.
pub fn sns_url(url: &str) -> Result<&str, &'static str> {
    let rest = url.strip_prefix("https://").ok_or("not an https URL")?;
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(split);
    if host.contains(['@', ':']) {
        return Err("URL has user info or a port");
    }
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
        })
        .ok_or("host is not sns.<region>.amazonaws.com")?;
    if !is_region(region) {
        return Err("host is not sns.<region>.amazonaws.com");
    }
    let plain_path = path.split('?').next().unwrap_or_default();
    if !path.starts_with('/') || path.starts_with("//") || path.contains(['#', '\\']) || plain_path.contains('%') {
        return Err("URL path is not plain");
    }
    Ok(path)
}

/// Checks a SigningCertURL: an SNS URL ([`sns_url`]) whose path is a plain `/<name>.pem`.
pub fn cert_url(url: &str) -> Result<(), &'static str> {
    let path = sns_url(url)?;
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if !plain || !path.ends_with(".pem") || path.contains("..") {
        return Err("certificate URL path is not /<name>.pem");
    }
    Ok(())
}

/// An AWS region name: `[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}` (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (country, middle, number) = match parts.as_slice() {
        [c, m, n] => (*c, *m, *n),
        [c, "gov", m, n] => (*c, *m, *n),
        _ => return false,
    };
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    country.len() == 2
        && letters(country)
        && letters(middle)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Signing keys by certificate URL, fetched through an [`HttpsGet`] on first use.
pub struct CertCache {
    source: Arc<dyn HttpsGet>,
    keys: Mutex<HashMap<String, SigningKey>>,
    /// URLs whose fetch failed, when (unix seconds), and whether SNS was out
    /// ([`FetchError::is_outage`]: only those count toward [`MAX_FAILED`]).
    failed: Mutex<HashMap<String, (i64, bool)>>,
}

impl std::fmt::Debug for CertCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.keys.lock().map(|k| k.len()).unwrap_or_default();
        f.debug_struct("CertCache").field("cached", &cached).finish()
    }
}

impl CertCache {
    /// An empty cache fetching through `source`.
    pub fn new(source: Arc<dyn HttpsGet>) -> CertCache {
        CertCache {
            source,
            keys: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The source, shared with subscription confirmation.
    pub fn source(&self) -> &dyn HttpsGet {
        self.source.as_ref()
    }

    /// The RSA key of the certificate at `url` (checked with [`cert_url`] first),
    /// cached. A refused URL is [`Refusal::Unauthorized`]; a fetch that failed, now
    /// or within [`FAILED_FETCH_SECS`] of `now`, is [`Refusal::Unavailable`].
    pub async fn key(&self, url: &str, now: i64) -> Result<SigningKey, Refusal> {
        cert_url(url).map_err(|e| Refusal::Unauthorized(format!("SigningCertURL refused: {e}")))?;
        if let Some(key) = self.keys.lock().ok().and_then(|keys| keys.get(url).cloned()) {
            return Ok(key);
        }
        self.may_fetch(url, now)?;
        let fetched = self.source.get(url).await;
        let outage = fetched.as_ref().err().is_none_or(FetchError::is_outage);
        let key = fetched
            .map_err(|e| format!("cannot fetch the signing certificate: {e}"))
            .and_then(|pem| public_key(&pem));
        match key {
            Ok(key) => {
                if let Ok(mut keys) = self.keys.lock() {
                    if keys.len() >= MAX_CACHED {
                        keys.clear();
                    }
                    keys.insert(url.to_string(), key.clone());
                }
                Ok(key)
            }
            Err(why) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.insert(url.to_string(), (now, outage));
                }
                Err(Refusal::Unavailable(why))
            }
        }
    }

    /// Refuses a fetch of a URL that failed recently, or of a new one while
    /// [`MAX_FAILED`] others did.
    fn may_fetch(&self, url: &str, now: i64) -> Result<(), Refusal> {
        let Ok(mut failed) = self.failed.lock() else {
            return Ok(());
        };
        failed.retain(|_, (at, _)| now.saturating_sub(*at) < FAILED_FETCH_SECS);
        if let Some((at, _)) = failed.get(url) {
            return Err(Refusal::Unavailable(format!(
                "the signing certificate could not be fetched {} s ago; not fetched again before {FAILED_FETCH_SECS} s",
                now.saturating_sub(*at)
            )));
        }
        if failed.values().filter(|(_, outage)| *outage).count() >= MAX_FAILED {
            return Err(Refusal::Unavailable(format!(
                "{MAX_FAILED} signing certificate fetches failed in the last {FAILED_FETCH_SECS} s; not fetching another"
            )));
        }
        Ok(())
    }
}

/// rsaEncryption (RFC 8017), the algorithm of an RSA SubjectPublicKeyInfo.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An SNS signing certificate's RSA public key (modulus and exponent, big-endian),
/// checked with `ring` (already in the functions through reqwest's TLS stack,
/// several times faster than the pure-Rust `rsa`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl SigningKey {
    /// A key from a PKCS#1 `RSAPublicKey` (`SEQUENCE { n INTEGER, e INTEGER }`, DER).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<SigningKey, &'static str> {
        let mut reader = SliceReader::new(der).map_err(|_| "not DER")?;
        let (n, e) = reader
            .sequence(|r| Ok((UintRef::decode(r)?, UintRef::decode(r)?)))
            .map_err(|_| "not an RSA public key")?;
        reader
            .finish(())
            .map_err(|_| "trailing bytes after the RSA public key")?;
        Ok(SigningKey {
            n: n.as_bytes().to_vec(),
            e: e.as_bytes().to_vec(),
        })
    }

    /// Whether `signature` is an RSA PKCS#1 v1.5 signature of `message` under
    /// `params` (digest, and 2048 to 8192-bit keys).
    pub fn verifies(&self, params: &'static RsaParameters, message: &[u8], signature: &[u8]) -> bool {
        RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(params, message, signature)
            .is_ok()
    }
}

/// The RSA public key of a PEM X.509 certificate. Its validity dates are not
/// checked: the trust anchor is fetching it over TLS from the SNS host.
pub fn public_key(pem: &[u8]) -> Result<SigningKey, String> {
    let cert = Certificate::from_pem(pem).map_err(|_| "signing certificate is not a PEM X.509 certificate")?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let not_rsa = || "signing certificate key is not RSA".to_string();
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(not_rsa());
    }
    let pkcs1 = spki.subject_public_key.as_bytes().ok_or_else(not_rsa)?;
    SigningKey::from_pkcs1_der(pkcs1).map_err(|_| not_rsa())
}
