//! The AWS SDK settings every function builds its clients with: retries and
//! timeouts chosen for a Lambda whose messages SQS retries anyway.
//!
//! - **Retries: standard mode, 3 attempts, backoff from 100 ms (at most 2 s).**
//!   Standard mode retries throttling (`ProvisionedThroughputExceededException`,
//!   `ThrottlingException`, SQS `RequestThrottled`), 5xx and connection errors,
//!   with full jitter and a client-side retry quota that stops retrying when
//!   most calls fail. Three attempts ride out a momentary partition throttle;
//!   longer pressure is left to the outer retry, SQS's visibility timeout
//!   (minutes), instead of holding a batch and its Lambda's billed time. The
//!   SDK's default first backoff (1 s) is long beside a DynamoDB call (a few
//!   milliseconds) and an invocation of 10 s (ingest) or 30 s (evaluate).
//! - **Timeouts: 2 s an attempt, 5 s an operation** (connect 3.1 s, the
//!   SDK's). Without them an answer lost on the network (the request may
//!   have taken effect) holds the invocation until Lambda kills it; with
//!   them the attempt is retried as a timeout, and the adapters' idempotent
//!   writes make the repeat harmless. Single-item DynamoDB calls and SQS
//!   batches answer in milliseconds.
//! - **HTTPS: hyper 1 and rustls on ring** ([`https_client`]). The SDK
//!   crates are built without `default-https-client`, whose client uses
//!   rustls on aws-lc-rs: ring is the one crypto provider in the binaries
//!   (reqwest's TLS and ingest's signature checks use it too;
//!   docs/performance.md). Without a default client an `SdkConfig` must get
//!   its client here: [`loader`] is where every function, the CLI and the
//!   tests load theirs, and a config loaded elsewhere fails every call
//!   with "no HTTP client".

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext};
use aws_smithy_http_client::Builder;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's backoff ceiling (full jitter: a random wait up to it).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest one attempt waits for its answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a call takes, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The retry settings above.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The timeout settings above.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's HTTPS client: hyper 1 and rustls with ring as its crypto
/// provider, trusting the platform's root certificates (the Lambda image's).
/// Built once per `SdkConfig`; every client made from it shares its
/// connection pool.
pub fn https_client() -> SharedHttpClient {
    https_client_with(TlsContext::default())
}

/// [`https_client`] with its own TLS settings (trusted roots, for a test
/// server's certificate).
pub fn https_client_with(context: TlsContext) -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

/// The SDK's loader with the latest behaviour version and [`https_client`]:
/// the one place an `SdkConfig` starts from.
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client())
}

/// A loader with the functions' retry and timeout settings.
pub fn deployed(loader: ConfigLoader) -> ConfigLoader {
    loader.retry_config(retry_config()).timeout_config(timeout_config())
}

/// The environment's SDK configuration (region, credentials) with the
/// functions' retry and timeout settings: what each function's `main` loads.
pub async fn load_from_env() -> aws_config::SdkConfig {
    deployed(loader()).load().await
}

/// The environment's SDK configuration with the SDK's own retry and timeout
/// defaults: what the `kairos` CLI loads to work on a deployment.
pub async fn load_with_sdk_defaults() -> aws_config::SdkConfig {
    loader().load().await
}

#[cfg(test)]
mod tests;
