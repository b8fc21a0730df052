//! `make bench-console`: page load times of the local console (issue 23) for
//! a segment list of 200 segments and a contact with a long audit trail,
//! over HTTP on loopback (server render + transfer), median and worst of 20.

use kairos::console::Console;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEGMENTS: usize = 200;
const CONTACTS: usize = 100;
const LONG_TRAIL_EVENTS: usize = 600;

fn rules() -> String {
    let mut out = String::from("segments:\n");
    out.push_str("  - { id: clicked-recently, name: Clicked, rule: { event: { type: email.clicked, within: 1h } } }\n");
    out.push_str("  - { id: opened-recently, name: Opened, rule: { event: { type: email.opened, within: 1h } } }\n");
    for i in 2..SEGMENTS {
        out.push_str(&format!(
            "  - id: page-{i}\n    name: Page {i}\n    description: Viewed page {i} twice in a week.\n    rule:\n      event: {{ type: page.viewed, where: {{ url: {{ contains: /p{i} }} }}, count: {{ gte: 2 }}, within: 7d }}\n"
        ));
    }
    out
}

fn events() -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z").unwrap();
    let mut out = String::new();
    for i in 0..LONG_TRAIL_EVENTS {
        // Click, open, click…, two hours apart: each event leaves one segment and enters the other.
        let kind = if i % 2 == 0 { "email.clicked" } else { "email.opened" };
        let at = (start + chrono::Duration::hours(2 * i as i64)).to_rfc3339();
        out.push_str(&format!(
            r#"{{"id":"l{i}","contact":"long@trail.test","type":"{kind}","at":"{at}","source":"b"}}"#
        ));
        out.push('\n');
    }
    for c in 0..CONTACTS {
        for v in 0..4 {
            let page = (c * 7 + v / 2) % SEGMENTS;
            let at = (start + chrono::Duration::hours(2 * LONG_TRAIL_EVENTS as i64 - 10 + v as i64)).to_rfc3339();
            out.push_str(&format!(
                r#"{{"id":"c{c}-{v}","contact":"c{c}@x.test","type":"page.viewed","at":"{at}","source":"b","url":"https://x.test/p{page}"}}"#
            ));
            out.push('\n');
        }
    }
    out
}

async fn measure(http: &reqwest::Client, url: &str) -> (Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        bytes = response.bytes().await.unwrap().len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() - 1], bytes)
}

/// The long contact's audit entries, all pages.
async fn audit_len(console: &Console) -> usize {
    use kairos_store::AuditTrail;
    let (mut n, mut cursor) = (0, None);
    loop {
        let page = console
            .store()
            .audit("long@trail.test", cursor.as_deref(), 1000)
            .await
            .unwrap();
        n += page.entries.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => return n,
        }
    }
}

#[tokio::main]
async fn main() {
    let built = Instant::now();
    let console = Arc::new(Console::new(&rules(), &events()).await.unwrap());
    let setup = built.elapsed();
    let trail = audit_len(&console).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(kairos::console::serve(listener, console));
    let http = reqwest::Client::new();
    println!(
        "console over {SEGMENTS} segments, {} contacts (long@trail.test: {trail} audit entries), set up in {setup:.2?}",
        CONTACTS + 1
    );
    for (name, path) in [
        ("segments (200)", "/segments"),
        ("contact, long audit trail (first page)", "/contact?q=long%40trail.test"),
        ("rules", "/rules"),
        ("overrides", "/overrides"),
    ] {
        let (median, worst, bytes) = measure(&http, &format!("{base}{path}")).await;
        println!("{name:<42} median {median:>9.2?}  worst {worst:>9.2?}  {bytes} bytes");
    }
}
