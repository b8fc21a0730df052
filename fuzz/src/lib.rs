//! What the fuzz targets run: a provider's parser and verifier, and the `/v1`
//! routes through the real handler, on arbitrary bytes; and a contact's state
//! under arbitrary event sequences ([`state`]). A panic is a finding.

mod state;

pub use state::state;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use kairos_ingest::providers::{self, Settings};
use kairos_ingest::{handle, Ingest, IngestConfig, Request};
use kairos_store::{MemoryClaims, MemoryQueue};

/// Headers that providers read, each set to the input's first line so the
/// verifiers' header parsing is exercised too.
const HEADERS: [&str; 12] = [
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "authorization",
    "x-mandrill-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-cio-signature",
    "x-cio-timestamp",
    "x-amz-sns-message-type",
    "x-kairos-webhook-secret",
    "content-type",
];

/// Settings that build provider `name`. SES's verifier fetches certificates
/// over the network, so only its parser and envelope checks are fuzzed.
fn settings(name: &str) -> Settings {
    let secret = match name {
        "resend" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "ses" => "not-a-topic-arn",
        _ => "fuzz-user:fuzz-password",
    };
    Settings {
        secret: Some(secret.into()),
        public_key: Some("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==".into()),
        url: Some("https://example.test/webhooks/fuzz".into()),
        basic_auth: Some("fuzz-user:fuzz-password".into()),
        replay_window_secs: 300,
    }
}

fn headers(data: &[u8]) -> HeaderMap {
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut map = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(first) {
        for name in HEADERS {
            map.insert(name, value.clone());
        }
    }
    map
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
}

/// Parses and verifies `data` as provider `name` would receive it.
pub fn webhook(name: &str, data: &[u8]) {
    let headers = headers(data);
    let req = Request {
        method: &Method::POST,
        headers: &headers,
        body: data,
    };
    let Ok(provider) = providers::known(name) else {
        return;
    };
    let _ = (provider.parse)(&req);
    if let Ok(Some(hook)) = (provider.build)(&settings(name)) {
        let _ = RUNTIME.with(|rt| rt.block_on(hook.verify(&req, 1_700_000_000)));
    }
}

/// Sends `data` to a `/v1` route through the real handler, with valid credentials.
pub fn v1(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = ["/v1/events", "/v1/track", "/v1/page", "/v1/identify", "/v1/batch"][usize::from(selector) % 5];
    let config = IngestConfig {
        api_keys: vec!["key".into()],
        write_keys: vec!["key".into()],
        ..IngestConfig::default()
    };
    let mut req = ApiGatewayV2httpRequest::default();
    req.request_context.http.method = Method::POST;
    req.raw_path = Some(path.into());
    req.body = Some(String::from_utf8_lossy(body).into_owned());
    req.headers.insert("x-api-key", HeaderValue::from_static("key"));
    req.headers.insert("authorization", HeaderValue::from_static("Basic a2V5Og=="));
    let (queue, claims) = (MemoryQueue::default(), MemoryClaims::default());
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    RUNTIME.with(|rt| rt.block_on(handle(req, &ingest, 1_700_000_000)));
}
