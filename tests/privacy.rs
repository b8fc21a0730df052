//! Privacy in logs: the whole pipeline (ingest, evaluate, write-back, through
//! the demo) logs no contact key or email address at any level down to debug,
//! only their keyed hashes (`kairos_event::log`); and each invocation logs its
//! one summary line at info.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_contact_or_address_is_logged_even_at_debug() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    kairos_event::log::init(Some("privacy-test-key"));
    let mut timeline = Vec::new();
    kairos::demo::run(
        kairos_evaluate::DEFAULT_RULES,
        kairos::demo::DEFAULT_EVENTS,
        kairos::demo::DEFAULT_DESTINATIONS,
        &mut timeline,
    )
    .await
    .unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let contacts: Vec<String> = kairos::demo::DEFAULT_EVENTS
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["contact"].as_str().map(str::to_string))
        .collect();
    assert!(contacts.iter().any(|c| c.contains('@')), "the demo has addresses");
    let hashed = kairos_event::log::hash_with(b"privacy-test-key", &contacts[0].to_lowercase());
    assert!(text.contains(&hashed), "lines about a contact carry its hash:\n{text}");
    for contact in &contacts {
        assert!(!text.contains(contact.as_str()), "{contact} is in the logs:\n{text}");
    }
    assert!(!text.contains('@'), "no address in the logs:\n{text}");
    for summary in ["request handled", "batch evaluated", "batch written back"] {
        let line = text.lines().find(|l| l.contains(summary) && l.contains("INFO"));
        assert!(line.is_some(), "no `{summary}` line at info:\n{text}");
    }
}
