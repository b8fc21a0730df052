//! Verify + normalize throughput per provider payload (`make bench-ingest`).
//!
//! Each case is a real fixture payload, signed (or authenticated) the way the
//! provider does it, run through the provider's `verify` and `parse` exactly as
//! the ingest route runs them. Prints one line per provider: body size, events
//! per request, microseconds in verify and in parse, and requests and events per
//! second on one core.

mod cases;

use std::time::{Duration, Instant};

use kairos_ingest::{Request, Webhook};

/// How long each provider is measured (seconds; `KAIROS_BENCH_SECS`).
fn budget() -> Duration {
    let secs = std::env::var("KAIROS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// Runs `f` repeatedly for the budget; the mean time per call.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut n = 0u32;
    while n < 10 || start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed() / n
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let budget = budget();
    println!(
        "{:<10} {:>7} {:>7} {:>11} {:>10} {:>11} {:>11}",
        "provider", "bytes", "events", "verify µs", "parse µs", "requests/s", "events/s"
    );
    for case in cases::all() {
        let req = Request {
            method: &aws_lambda_events::http::Method::POST,
            headers: &case.headers,
            body: &case.body,
        };
        let hook: &dyn Webhook = case.hook.as_ref();
        let parse = kairos_ingest::providers::find(hook.name())
            .expect("a registered provider")
            .parse;
        let verified = rt.block_on(hook.verify(&req, case.now));
        assert!(
            verified.is_ok(),
            "{}: the bench request must verify: {verified:?}",
            case.name
        );
        let parsed = parse(&req).expect("the bench payload parses");
        assert!(parsed.rejected.is_empty(), "{}: {:?}", case.name, parsed.rejected);
        let events = parsed.events.len();
        let verify = time(budget, || {
            let _ = std::hint::black_box(rt.block_on(hook.verify(&req, case.now)));
        });
        let parse = time(budget, || {
            let _ = std::hint::black_box(parse(&req));
        });
        let per_request = (verify + parse).as_secs_f64();
        println!(
            "{:<10} {:>7} {:>7} {:>11.1} {:>10.1} {:>11.0} {:>11.0}",
            case.name,
            case.body.len(),
            events,
            verify.as_secs_f64() * 1e6,
            parse.as_secs_f64() * 1e6,
            1.0 / per_request,
            events as f64 / per_request,
        );
    }
}
