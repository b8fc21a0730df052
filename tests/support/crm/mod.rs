//! Local HTTP servers standing in for the CRMs, one per vendor, each enforcing
//! the request shapes, authentication and limits of the vendor's API reference
//! (cited at each expectation) and answering as the vendor does, with fault
//! injection (429s, 5xx) and a virtual clock shared with the client, so rate
//! windows of hours pass at once. A call made while a limit's window is still
//! closed is recorded as a violation.

pub mod hubspot;
pub mod pipedrive;
pub mod salesforce;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kairos_writeback::{Clock, ManualClock};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a roll of the dice injects into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    TooMany,
    Unavailable,
}

/// Seeded fault injection: `too_many` and `unavailable` are per-call probabilities.
#[derive(Debug)]
pub struct Faults {
    state: AtomicU64,
    pub too_many: f64,
    pub unavailable: f64,
}

impl Faults {
    pub fn new(seed: u64, too_many: f64, unavailable: f64) -> Faults {
        Faults {
            state: AtomicU64::new(seed | 1),
            too_many,
            unavailable,
        }
    }

    pub fn none() -> Faults {
        Faults::new(1, 0.0, 0.0)
    }

    pub fn roll(&self) -> Fault {
        // xorshift64*: deterministic per seed.
        let mut x = self.state.load(Ordering::SeqCst);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.store(x, Ordering::SeqCst);
        let r = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        if r < self.too_many {
            Fault::TooMany
        } else if r < self.too_many + self.unavailable {
            Fault::Unavailable
        } else {
            Fault::None
        }
    }
}

/// What every server counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every request received.
    pub calls: AtomicUsize,
    /// Requests answered 429.
    pub too_many: AtomicUsize,
    /// Requests answered 5xx.
    pub unavailable: AtomicUsize,
    /// Requests refused because a daily or org limit was reached.
    pub refused: AtomicUsize,
    /// Requests made while a limit's window was closed.
    pub violations: Mutex<Vec<String>>,
}

impl Counters {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    pub fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }
}

/// The virtual clock shared by a server and its client.
pub fn clock() -> Arc<ManualClock> {
    // 2026-11-27T10:00:00Z.
    Arc::new(ManualClock::at(1_795_773_600_000))
}

pub fn now(clock: &ManualClock) -> u64 {
    clock.now_ms()
}

/// Serves `app` on a free loopback port: its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// An answer given instead of serving a request (boxed: a response is large).
pub type Refusal = Box<Response>;

/// A JSON answer with extra headers.
pub fn answer(status: u16, body: serde_json::Value, headers: &[(&str, String)]) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    for (name, value) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    r
}

/// [`answer`], given instead of serving a request.
pub fn refuse(status: u16, body: serde_json::Value, headers: &[(&str, String)]) -> Refusal {
    Box::new(answer(status, body, headers))
}

/// The next midnight after `now_ms` at `offset_ms` from UTC.
pub fn midnight(now_ms: u64, offset_ms: i64) -> u64 {
    kairos_writeback::next_midnight(now_ms, offset_ms)
}
