//! `kairos normalize`: one provider request body in, its canonical events out,
//! through the same verification and parsing code as the ingest function. For
//! debugging a provider's payloads and signatures without deploying anything.
//!
//! One-time-token claims are not recorded (nothing is stored), so a request
//! can be normalized any number of times.

use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, Method};
use kairos_ingest::providers::{self, Settings};
use kairos_ingest::{Parsed, Request};

/// What to normalize and how to check it.
#[derive(Debug, Clone)]
pub struct Input {
    /// The provider name, as in `/webhooks/<name>`.
    pub provider: String,
    /// Request headers, each `Name: value`.
    pub headers: Vec<String>,
    /// Credentials and options (`--secret`, `--public-key`, `--url`, `--basic-auth`).
    pub settings: Settings,
    /// Check the request as of this unix time (and take it as the receive time).
    pub now: i64,
    /// How far ahead of `now` an event may be dated (`KAIROS_MAX_CLOCK_SKEW_SECS`).
    pub max_clock_skew_secs: i64,
    /// Parse without checking the signature or credential.
    pub skip_verify: bool,
    /// The raw body, exactly as the provider sent it.
    pub body: Vec<u8>,
}

/// Verifies (unless skipped) and parses as the ingest route does, refusing
/// events dated beyond the clock skew: the events and the rejected items, or
/// why the whole request is refused (bad signature, stale timestamp, malformed payload).
pub async fn normalize(input: &Input) -> Result<Parsed, String> {
    let provider = providers::known(&input.provider)?;
    let headers = header_map(&input.headers)?;
    let req = Request {
        method: &Method::POST,
        headers: &headers,
        body: &input.body,
    };
    if !input.skip_verify {
        let hook = (provider.build)(&input.settings)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "provider `{}` needs its credential to verify: {}",
                    provider.name, provider.flags
                )
            })?;
        let verified = hook
            .verify(&req, input.now)
            .await
            .map_err(|why| format!("verification failed: {why}"))?;
        if let Some((status, body)) = verified.reply {
            return Err(format!("not an event delivery: the route would answer {status} {body}"));
        }
    }
    let mut parsed = (provider.parse)(&req).map_err(|e| format!("malformed payload: {e}"))?;
    let received = chrono::DateTime::from_timestamp(input.now, 0).unwrap_or_default();
    parsed.refuse_ahead(received, input.max_clock_skew_secs);
    Ok(parsed)
}

/// Parses `Name: value` lines into a header map.
fn header_map(lines: &[String]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header `{line}` is not `Name: value`"))?;
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("header name `{name}` is invalid"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("header `{name}` has an invalid value"))?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_are_named() {
        let map = header_map(&["X-Sig: abc".into(), "x-ts:  12 ".into()]).unwrap();
        assert_eq!(map.get("x-sig").unwrap(), "abc");
        assert_eq!(map.get("X-TS").unwrap(), "12");
        assert!(header_map(&["no colon".into()]).unwrap_err().contains("no colon"));
    }
}
