//! [`FaultProxy`]: faults on the wire, between the AWS SDK and moto server.
//!
//! A plain HTTP/1.1 relay on a free loopback port. Seeded, at configured
//! rates, it answers a share of DynamoDB and SQS requests itself with the
//! services' real throttling errors, not forwarding them (HTTP 400, AWS JSON
//! 1.0 bodies: DynamoDB's `ProvisionedThroughputExceededException` and
//! `ThrottlingException`; SQS's `RequestThrottled`, which SQS's JSON protocol
//! names in the `x-amzn-query-error` header, as the SDK reads it), and it
//! forwards a share and then closes the connection without the answer: the
//! request took effect, the caller never hears (the ambiguous outcome). So
//! the SDK's own retry settings and the adapters' error mapping are tested as
//! deployed. On demand ([`FaultProxy::cancel_transactions`],
//! [`FaultProxy::cancel_next_transactions`]) it answers `TransactWriteItems`
//! with a `TransactionCanceledException` naming a cancellation reason.
//! [`SdkCalls`] counts the SDK's operations and attempts beside it.
//!
//! Requests keep their connection alive (as the SDK's pool does); bodies come
//! with `Content-Length` or chunked. A dropped answer closes the connection
//! before a byte of it is written, as a network that loses it would.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How often each fault is injected, per DynamoDB or SQS request.
#[derive(Debug, Clone, Copy)]
pub struct WireRates {
    /// Answered with a throttling error, not forwarded.
    pub throttle: f64,
    /// Forwarded, then the answer dropped (the connection closed).
    pub drop: f64,
}

/// The service a request is for, from its `x-amz-target` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// `DynamoDB_20120810.*`.
    DynamoDb,
    /// `AmazonSQS.*`.
    Sqs,
    /// Anything else: relayed, never faulted.
    Other,
}

/// A fault the proxy injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WireFault {
    /// DynamoDB `ProvisionedThroughputExceededException` (HTTP 400).
    ProvisionedThroughputExceeded,
    /// DynamoDB `ThrottlingException` (HTTP 400).
    DynamoDbThrottling,
    /// SQS `RequestThrottled` (HTTP 400).
    SqsRequestThrottled,
    /// A DynamoDB request forwarded, its answer dropped.
    DynamoDbAnswerDropped,
    /// An SQS request forwarded, its answer dropped.
    SqsAnswerDropped,
    /// A DynamoDB transaction answered cancelled (HTTP 400), not forwarded.
    TransactionCanceled,
}

impl WireFault {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            WireFault::ProvisionedThroughputExceeded => "DynamoDB ProvisionedThroughputExceededException",
            WireFault::DynamoDbThrottling => "DynamoDB ThrottlingException",
            WireFault::SqsRequestThrottled => "SQS RequestThrottled",
            WireFault::DynamoDbAnswerDropped => "DynamoDB answer dropped (request applied)",
            WireFault::SqsAnswerDropped => "SQS answer dropped (request applied)",
            WireFault::TransactionCanceled => "DynamoDB TransactionCanceledException",
        }
    }
}

/// What the proxy saw and did.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests received, by `x-amz-target` (e.g. `DynamoDB_20120810.PutItem`).
    pub requests: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<WireFault, u64>,
    /// Time spent waiting on the upstream's answers.
    pub upstream: std::time::Duration,
}

impl Tally {
    /// Requests received for `service`.
    pub fn requests_for(&self, service: Service) -> u64 {
        let of = self.requests.iter().filter(|(target, _)| service_of(target) == service);
        of.map(|(_, n)| n).sum()
    }

    /// Faults injected, all kinds.
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// A fault-injecting proxy in front of an upstream endpoint. It stops
/// accepting connections when dropped.
pub struct FaultProxy {
    /// Where the SDK is pointed (`http://127.0.0.1:<port>`).
    pub endpoint: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    rng: Mutex<StdRng>,
    rates: Mutex<WireRates>,
    /// The cancellation reason transactions are answered with, if any, and
    /// how many more are (`None`: all).
    cancel: Mutex<Option<(String, Option<u32>)>>,
    /// How many more `BatchGetItem` requests are answered with every key unprocessed.
    unprocessed: Mutex<u32>,
    tally: Mutex<Tally>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. moto's endpoint), drawing
    /// its faults from `seed` at `rates`.
    pub async fn start(upstream: &str, seed: u64, rates: WireRates) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().no_proxy().build().expect("an HTTP client"),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates: Mutex::new(rates),
            cancel: Mutex::default(),
            unprocessed: Mutex::default(),
            tally: Mutex::default(),
        });
        let serving = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        FaultProxy {
            endpoint,
            shared,
            accept,
        }
    }

    /// What it saw and did so far.
    pub fn tally(&self) -> Tally {
        self.shared.tally.lock().unwrap().clone()
    }

    /// Changes the rates from the next request on (e.g. none, to quiesce).
    pub fn set_rates(&self, rates: WireRates) {
        *self.shared.rates.lock().unwrap() = rates;
    }

    /// From the next request on, answers every `TransactWriteItems` with a
    /// `TransactionCanceledException` whose first action (a save's record)
    /// failed for `code` (e.g. `ThrottlingError`) and the others for
    /// nothing, as DynamoDB does; `None`: forwards them again.
    pub fn cancel_transactions(&self, code: Option<&str>) {
        *self.shared.cancel.lock().unwrap() = code.map(|c| (c.to_string(), None));
    }

    /// As [`FaultProxy::cancel_transactions`], for the next `count`
    /// transactions only; the ones after are forwarded.
    pub fn cancel_next_transactions(&self, code: &str, count: u32) {
        *self.shared.cancel.lock().unwrap() = Some((code.to_string(), Some(count)));
    }

    /// Answers the next `count` `BatchGetItem` requests with no items and
    /// every key unprocessed (HTTP 200), as a throttled table does.
    pub fn leave_next_batch_reads_unprocessed(&self, count: u32) {
        *self.shared.unprocessed.lock().unwrap() = count;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One request read off a connection.
struct Request {
    method: String,
    path: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// What to do with a request.
enum Fate {
    Forward,
    Throttle(WireFault),
    Drop(WireFault),
    /// Answered `TransactionCanceledException` with this reason code.
    Cancel(String),
    /// A `BatchGetItem` answered with every key unprocessed, not forwarded.
    Unprocessed,
}

fn service_of(target: &str) -> Service {
    match target {
        t if t.starts_with("DynamoDB_") => Service::DynamoDb,
        t if t.starts_with("AmazonSQS.") => Service::Sqs,
        _ => Service::Other,
    }
}

impl Shared {
    /// The reason to cancel the transaction at hand with, if any (one fewer left).
    fn next_cancel(&self) -> Option<String> {
        let mut cancel = self.cancel.lock().unwrap();
        let (code, left) = cancel.as_mut()?;
        let code = code.clone();
        match left {
            Some(0) => {
                *cancel = None;
                None
            }
            Some(n) => {
                *n -= 1;
                Some(code)
            }
            None => Some(code),
        }
    }

    /// Counts the request and draws its fate.
    fn decide(&self, request: &Request) -> Fate {
        let target = request.header("x-amz-target").unwrap_or("").to_string();
        let service = service_of(&target);
        let rates = *self.rates.lock().unwrap();
        let (roll, coin): (f64, bool) = {
            let mut rng = self.rng.lock().unwrap();
            (rng.gen(), rng.gen())
        };
        let cancel = match (service, target.ends_with(".TransactWriteItems")) {
            (Service::DynamoDb, true) => self.next_cancel(),
            _ => None,
        };
        let unprocessed = target.ends_with(".BatchGetItem") && {
            let mut left = self.unprocessed.lock().unwrap();
            let take = *left > 0;
            *left = left.saturating_sub(1);
            take
        };
        let fate = match (cancel, service, roll) {
            (Some(code), _, _) => Fate::Cancel(code),
            (None, Service::DynamoDb, _) if unprocessed => Fate::Unprocessed,
            (None, Service::Other, _) => Fate::Forward,
            (None, Service::DynamoDb, r) if r < rates.throttle => Fate::Throttle(match coin {
                true => WireFault::ProvisionedThroughputExceeded,
                false => WireFault::DynamoDbThrottling,
            }),
            (None, Service::Sqs, r) if r < rates.throttle => Fate::Throttle(WireFault::SqsRequestThrottled),
            (None, Service::DynamoDb, r) if r < rates.throttle + rates.drop => {
                Fate::Drop(WireFault::DynamoDbAnswerDropped)
            }
            (None, Service::Sqs, r) if r < rates.throttle + rates.drop => Fate::Drop(WireFault::SqsAnswerDropped),
            _ => Fate::Forward,
        };
        let mut tally = self.tally.lock().unwrap();
        *tally.requests.entry(target).or_default() += 1;
        if let Fate::Throttle(kind) | Fate::Drop(kind) = fate {
            *tally.faults.entry(kind).or_default() += 1;
        }
        if let Fate::Cancel(_) = fate {
            *tally.faults.entry(WireFault::TransactionCanceled).or_default() += 1;
        }
        fate
    }
}

/// Serves one connection's requests until it closes or an answer is dropped.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    while let Some(request) = read(&mut stream).await {
        let answer = match shared.decide(&request) {
            Fate::Throttle(kind) => throttled(kind),
            Fate::Cancel(code) => cancelled(&code, &request.body),
            Fate::Unprocessed => unprocessed(&request.body),
            Fate::Forward => match forward(&shared, &request).await {
                Some(answer) => answer,
                None => bad_gateway(),
            },
            Fate::Drop(_) => {
                // The request takes effect upstream; the caller never hears.
                let _ = forward(&shared, &request).await;
                let _ = stream.get_mut().shutdown().await;
                return;
            }
        };
        if stream.get_mut().write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Reads one request (head, then a `Content-Length` or chunked body); `None`
/// when the connection ends or is not HTTP/1.1.
async fn read(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .ok()?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    request.body = match chunked {
        true => read_chunked(stream).await?,
        false => {
            let length = request.header("content-length").map_or(Some(0), |v| v.parse().ok())?;
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.ok()?;
            body
        }
    };
    Some(request)
}

/// A chunked body, its trailers skipped.
async fn read_chunked<R: AsyncRead + Unpin>(stream: &mut BufReader<R>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
        let size = line.trim().split(';').next()?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            loop {
                line.clear();
                stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
                if line.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        stream.read_exact(&mut body[start..]).await.ok()?;
        body.truncate(start + size);
    }
}

/// Headers a relay sets itself (hop-by-hop, or recomputed).
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "expect"
    )
}

/// The request sent upstream; its answer as HTTP/1.1 bytes (`None`: upstream unreachable).
async fn forward(shared: &Shared, request: &Request) -> Option<Vec<u8>> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).ok()?;
    let mut out = shared
        .http
        .request(method, format!("{}{}", shared.upstream, request.path));
    for (name, value) in request.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        out = out.header(name, value);
    }
    let started = std::time::Instant::now();
    let response = out.body(request.body.clone()).send().await.ok()?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(n, _)| !hop_by_hop(n.as_str()))
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.bytes().await.ok()?;
    shared.tally.lock().unwrap().upstream += started.elapsed();
    Some(http_response(status, &headers, &body))
}

/// The throttling error the service sends (AWS JSON 1.0, as the SDK speaks to both).
fn throttled(kind: WireFault) -> Vec<u8> {
    let (kind, message, query_error) = match kind {
        WireFault::SqsRequestThrottled => (
            "com.amazonaws.sqs#RequestThrottled",
            "Request is throttled.",
            Some("RequestThrottled;Sender"),
        ),
        WireFault::ProvisionedThroughputExceeded => (
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            None,
        ),
        _ => (
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.",
            None,
        ),
    };
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    let mut headers = json_headers();
    if let Some(value) = query_error {
        headers.push(("x-amzn-query-error".into(), value.into()));
    }
    http_response(400, &headers, body.as_bytes())
}

/// DynamoDB's answer to a cancelled transaction: one reason per action of
/// the request, the first `code`, the others `None`
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>).
fn cancelled(code: &str, request: &[u8]) -> Vec<u8> {
    let actions = serde_json::from_slice::<serde_json::Value>(request)
        .ok()
        .and_then(|r| r["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1)
        .max(1);
    let mut reasons = vec![serde_json::json!({ "Code": code, "Message": format!("{code} (fault proxy)") })];
    reasons.extend((1..actions).map(|_| serde_json::json!({ "Code": "None" })));
    let codes: Vec<&str> = std::iter::once(code).chain((1..actions).map(|_| "None")).collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        "CancellationReasons": reasons,
    });
    let headers = json_headers();
    http_response(400, &headers, body.to_string().as_bytes())
}

/// DynamoDB's answer to a `BatchGetItem` it served none of: no items, every
/// key requested back as `UnprocessedKeys`
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>).
fn unprocessed(request: &[u8]) -> Vec<u8> {
    let asked = serde_json::from_slice::<serde_json::Value>(request).unwrap_or_default();
    let body = serde_json::json!({ "Responses": {}, "UnprocessedKeys": asked["RequestItems"] });
    let headers = json_headers();
    http_response(200, &headers, body.to_string().as_bytes())
}

/// The headers of an AWS JSON 1.0 answer from the proxy.
fn json_headers() -> Vec<(String, String)> {
    vec![
        ("content-type".to_string(), "application/x-amz-json-1.0".to_string()),
        ("x-amzn-requestid".to_string(), "fault-proxy".to_string()),
    ]
}

fn bad_gateway() -> Vec<u8> {
    http_response(502, &[], b"upstream unreachable")
}

fn http_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

/// An SDK configuration for `endpoint` (dummy credentials, `us-east-1`)
/// with the deployed functions' retry and timeout settings
/// ([`kairos_store::sdk`]).
pub async fn deployed_config(endpoint: &str) -> aws_config::SdkConfig {
    let local = kairos::local::sdk_config(endpoint).await.to_builder();
    let deployed = local.retry_config(kairos_store::sdk::retry_config());
    deployed.timeout_config(kairos_store::sdk::timeout_config()).build()
}

/// Counts an SDK client's operations and attempts (an interceptor): how many
/// calls the adapters made, how many requests the SDK sent for them (its
/// retries), and the calls that failed with every attempt spent.
#[derive(Debug, Default, Clone)]
pub struct SdkCalls {
    tally: Arc<Mutex<CallTally>>,
}

/// What [`SdkCalls`] counted.
#[derive(Debug, Default, Clone)]
pub struct CallTally {
    /// Operations started, by `Service.Operation`.
    pub operations: BTreeMap<String, u64>,
    /// Attempts (requests sent), all operations.
    pub attempts: u64,
    /// Operations that ended in an error, by `Service.Operation: error`
    /// (its first 140 characters), with the attempts they spent.
    pub errors: BTreeMap<String, (u64, u64)>,
    /// Operations that ended in an error with every attempt spent (the last
    /// error may be one the SDK does not retry: a failed condition after
    /// earlier attempts were throttled or their answers lost).
    pub exhausted: u64,
}

impl CallTally {
    /// Operations started, all of them.
    pub fn operations_total(&self) -> u64 {
        self.operations.values().sum()
    }
}

impl SdkCalls {
    /// What was counted so far.
    pub fn tally(&self) -> CallTally {
        self.tally.lock().unwrap().clone()
    }

    /// A DynamoDB client over `aws` with this interceptor.
    pub fn dynamodb(&self, aws: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(aws).interceptor(self.clone());
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// An SQS client over `aws` with this interceptor.
    pub fn sqs(&self, aws: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(aws).interceptor(self.clone());
        aws_sdk_sqs::Client::from_conf(config.build())
    }
}

fn operation_name(cfg: &aws_sdk_dynamodb::config::ConfigBag) -> String {
    let metadata = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>();
    metadata.map_or("unknown".into(), |m| format!("{}.{}", m.service(), m.name()))
}

impl aws_sdk_dynamodb::config::Intercept for SdkCalls {
    fn name(&self) -> &'static str {
        "SdkCalls"
    }

    fn read_before_execution(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        *self
            .tally
            .lock()
            .unwrap()
            .operations
            .entry(operation_name(cfg))
            .or_default() += 1;
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.tally.lock().unwrap().attempts += 1;
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(Err(error)) = context.output_or_error() else {
            return Ok(());
        };
        let attempts = cfg.load::<aws_smithy_runtime_api::client::retries::RequestAttempts>();
        let attempts = attempts.map_or(0, |a| a.attempts() as u64);
        let max = cfg.load::<aws_sdk_dynamodb::config::retry::RetryConfig>();
        let max = max.map_or(kairos_store::sdk::MAX_ATTEMPTS as u64, |r| r.max_attempts() as u64);
        let text = aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string();
        let text: String = text.lines().next().unwrap_or("").chars().take(140).collect();
        let mut tally = self.tally.lock().unwrap();
        let entry = tally
            .errors
            .entry(format!("{}: {text}", operation_name(cfg)))
            .or_default();
        (entry.0, entry.1) = (entry.0 + 1, entry.1 + attempts);
        if attempts >= max {
            tally.exhausted += 1;
        }
        Ok(())
    }
}
