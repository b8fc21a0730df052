//! Cold start and size of each function as built for release (`make bench`):
//! every function's release binary is started against a local stand-in of the
//! Lambda runtime API, with the environment the template gives it (dummy
//! table, queue and stream names, a region, dummy credentials), and timed from
//! process start to its first `GET /2018-06-01/runtime/invocation/next`: by
//! then its configuration is read, its SSM parameters fetched (the stand-in
//! answers SSM too, as `AWS_ENDPOINT_URL`) and its SDK clients built.
//!
//! Prints, per function, the binary's size and the median, fastest and slowest
//! init of `KAIROS_COLD_RUNS` starts (default 20). The binaries are this
//! machine's architecture (x86_64 here), not the arm64 ones Lambda runs; the
//! SSM answers come over loopback, so the network time of the real SSM calls
//! is not included. The binaries are read from `KAIROS_BIN_DIR`
//! (default `target/release`); `make bench` builds them first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// The functions, as the template names their binaries.
const FUNCTIONS: [&str; 6] = ["ingest", "evaluate", "writeback", "sweep", "decide", "admin"];
/// The issue's goal for every function's init.
const GOAL_MS: f64 = 20.0;
/// Longest a start may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(10);
/// SendGrid's test-vector key (tests/fixtures/esp), so ingest parses a real key at init.
const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

/// A well-formed webhook signing secret (`whsec_` + base64 of 24 bytes) for write-back.
const WEBHOOK_SECRET: &str = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMjRi";

/// What the stand-in saw of one start.
enum Seen {
    /// The first request for an invocation: init is over.
    Ready(Instant),
    /// The function reported an init error, or asked for something the stand-in does not serve.
    Failed(String),
}

/// One HTTP request: method, path, the `X-Amz-Target` header and the body.
struct Request {
    method: String,
    path: String,
    target: Option<String>,
    body: String,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut target) = (0usize, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "x-amz-target" => target = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Some(Request {
        method,
        path,
        target,
        body,
    })
}

/// The SSM answer to `request`, if it is a call the functions make at init.
fn ssm_answer(request: &Request) -> Option<String> {
    match request.target.as_deref()? {
        "AmazonSSM.GetParameter" => {
            let asked: serde_json::Value = serde_json::from_str(&request.body).ok()?;
            let name = asked["Name"].as_str()?;
            // Write-back refuses a webhook secret that is not `whsec_` + base64 of at least 16 bytes.
            let value = if name.ends_with("webhook-secret") {
                WEBHOOK_SECRET
            } else {
                "bench-secret"
            };
            let parameter = serde_json::json!({"Name": name, "Type": "SecureString", "Value": value, "Version": 1});
            Some(serde_json::json!({ "Parameter": parameter }).to_string())
        }
        "AmazonSSM.GetParametersByPath" => Some(r#"{"Parameters":[]}"#.to_string()),
        _ => None,
    }
}

/// Serves one connection: SSM calls answered, the first `/next` reported and left waiting.
fn serve(stream: TcpStream, seen: Sender<Seen>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        if request.method == "GET" && request.path.ends_with("/runtime/invocation/next") {
            let _ = seen.send(Seen::Ready(Instant::now()));
            // No invocation comes: the connection stays open until the process is killed.
            let _ = reader.read_to_end(&mut Vec::new());
            return;
        }
        if request.path.ends_with("/runtime/init/error") {
            let _ = seen.send(Seen::Failed(format!("init error: {}", request.body)));
            return;
        }
        let Some(answer) = ssm_answer(&request) else {
            let _ = seen.send(Seen::Failed(format!(
                "unexpected request {} {}",
                request.method, request.path
            )));
            return;
        };
        // One write: head and body in two small writes would wait on Nagle's
        // algorithm and the client's delayed ACK (40 ms on Linux), not on the function.
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The stand-in runtime API (and SSM) on a loopback port; what it sees arrives on the receiver.
fn stand_in() -> (String, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("bound").to_string();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let send = send.clone();
            std::thread::spawn(move || serve(stream, send));
        }
    });
    (address, receive)
}

/// The environment every function is started with: the template's variables with dummy values.
fn environment(function: &str, address: &str) -> Vec<(&'static str, String)> {
    let queue = |name: &str| format!("https://sqs.us-east-1.amazonaws.com/123456789012/kairos-{name}");
    vec![
        ("AWS_LAMBDA_RUNTIME_API", address.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("kairos-{function}")),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/kairos-{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-key".into()),
        ("AWS_SESSION_TOKEN", "bench-token".into()),
        ("AWS_ENDPOINT_URL", format!("http://{address}")),
        ("RUST_LOG", "info".into()),
        ("KAIROS_LOG_HASH_KEY", "ssm:/kairos/log-hash-key".into()),
        ("KAIROS_METRICS_NAMESPACE", "Kairos/bench".into()),
        ("KAIROS_TABLE", "kairos-contacts".into()),
        ("KAIROS_EVENTS_QUEUE_URL", queue("events")),
        ("KAIROS_WRITEBACK_QUEUE_URL", queue("writeback")),
        ("KAIROS_WRITEBACK_DLQ_URL", queue("writeback-dlq")),
        ("KAIROS_SECRETS_PATH", "/kairos/ingest".into()),
        ("KAIROS_SENDGRID_PUBLIC_KEY", SENDGRID_KEY.into()),
        ("KAIROS_DUE_SHARDS", "16".into()),
        ("KAIROS_RULES_URI", "s3://kairos-rules/segments.yaml".into()),
        ("KAIROS_RULES_REFRESH_SECS", "30".into()),
        ("KAIROS_ARCHIVE_STREAM", "kairos-archive".into()),
        ("KAIROS_AUDIT_TABLE", "kairos-audit".into()),
        ("KAIROS_AUDIT_RETENTION_DAYS", "400".into()),
        ("KAIROS_WEBHOOK_URL", "https://crm.example.com/kairos".into()),
        ("KAIROS_WEBHOOK_SECRET_PARAMETER", "/kairos/webhook-secret".into()),
        ("KAIROS_ADMIN_KEYS", String::new()),
    ]
}

/// One start of `binary`: time from spawn to its first `/next`.
fn start(binary: &PathBuf, function: &str, address: &str, seen: &Receiver<Seen>) -> Result<Duration, String> {
    while seen.try_recv().is_ok() {}
    let began = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(environment(function, address))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let outcome = match seen.recv_timeout(TIMEOUT) {
        Ok(Seen::Ready(at)) => Ok(at - began),
        Ok(Seen::Failed(why)) => Err(why),
        Err(_) => Err(format!("no request for an invocation within {TIMEOUT:?}")),
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

fn runs() -> usize {
    std::env::var("KAIROS_COLD_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn bin_dir() -> PathBuf {
    std::env::var_os("KAIROS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let (dir, runs) = (bin_dir(), runs());
    let (address, seen) = stand_in();
    println!(
        "cold start: process start → first /next, {runs} starts each, {} binaries (not arm64), {}",
        std::env::consts::ARCH,
        dir.display()
    );
    println!(
        "{:<10} {:>12} {:>9} {:>14} {:>9} {:>9}",
        "function", "bytes", "MB", "init median ms", "min ms", "max ms"
    );
    for function in FUNCTIONS {
        let binary = dir.join(function);
        let bytes = std::fs::metadata(&binary)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build the release binaries first: make bench)",
                    binary.display()
                )
            })
            .len();
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| start(&binary, function, &address, &seen).unwrap_or_else(|why| panic!("{function}: {why}")))
            .collect();
        times.sort();
        let half = times.len() / 2;
        let median = if times.len() % 2 == 0 {
            (ms(times[half - 1]) + ms(times[half])) / 2.0
        } else {
            ms(times[half])
        };
        println!(
            "{function:<10} {bytes:>12} {:>9.2} {median:>14.2} {:>9.2} {:>9.2}{}",
            bytes as f64 / 1e6,
            ms(times[0]),
            ms(times[times.len() - 1]),
            if median <= GOAL_MS {
                ""
            } else {
                "  (over the 20 ms goal)"
            }
        );
    }
}
