//! The demo's send-time part: an ESP asks `POST /v1/decide` before each send,
//! through the real decide handler over the contacts the real evaluate handler
//! keeps (in memory). A new signup starts onboarding, a comparison-page click
//! moves her onto the pricing thread, and a London contact who signs up at
//! night waits for the morning.

use std::io::Write;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use chrono::{DateTime, Utc};
use kairos_decide_fn::{Decide, DecideConfig, MemoryDecisions};
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;
use kairos_store::{MemoryContacts, MemoryQueue, Message};

const KEY: &str = "demo-decide-key";

/// The story: (time, what happens) — an event line to apply, or a contact to decide for.
const STORY: &[(&str, Step)] = &[
    (
        "2026-11-24T14:00:00Z",
        Step::Event(
            r#"{"id":"d-1","contact":"eve@initech.test","type":"contact.identified","at":"2026-11-24T14:00:00Z","source":"website","traits":{"timezone":"America/New_York"}}"#,
        ),
    ),
    (
        "2026-11-24T14:00:05Z",
        Step::Event(
            r#"{"id":"d-2","contact":"eve@initech.test","type":"form.submitted","at":"2026-11-24T14:00:05Z","source":"website","properties":{"form":"signup"}}"#,
        ),
    ),
    ("2026-11-24T14:01:00Z", Step::Decide("eve@initech.test")),
    (
        "2026-11-25T15:10:00Z",
        Step::Event(
            r#"{"id":"d-3","contact":"eve@initech.test","type":"page.viewed","at":"2026-11-25T15:10:00Z","source":"website","url":"https://kairos.example/pricing"}"#,
        ),
    ),
    (
        "2026-11-25T15:12:00Z",
        Step::Event(
            r#"{"id":"d-4","contact":"eve@initech.test","type":"page.viewed","at":"2026-11-25T15:12:00Z","source":"website","url":"https://kairos.example/compare"}"#,
        ),
    ),
    ("2026-11-25T15:15:00Z", Step::Decide("eve@initech.test")),
    (
        "2026-11-25T22:40:00Z",
        Step::Event(
            r#"{"id":"d-5","contact":"dan@hooli.test","type":"form.submitted","at":"2026-11-25T22:40:00Z","source":"website","properties":{"form":"signup"}}"#,
        ),
    ),
    ("2026-11-25T22:41:00Z", Step::Decide("dan@hooli.test")),
    ("2026-11-26T08:00:00Z", Step::Decide("dan@hooli.test")),
];

enum Step {
    Event(&'static str),
    Decide(&'static str),
}

/// Plays the send-time story over `rules` (skipped when they have no sequences).
pub(super) async fn run(rules: &RuleSet, out: &mut impl Write) -> std::io::Result<usize> {
    if rules.sequences().is_empty() {
        return Ok(0);
    }
    writeln!(
        out,
        "\n── send-time decisions: an ESP asks POST /v1/decide before each send (functions/decide, in memory) ──"
    )?;
    let (contacts, transitions, decisions) = (
        MemoryContacts::default(),
        MemoryQueue::default(),
        MemoryDecisions::default(),
    );
    let evaluator = Evaluator::new(rules, &contacts, &transitions);
    let config = DecideConfig {
        api_keys: vec![KEY.into()],
        ..DecideConfig::default()
    };
    let decide = Decide {
        config: &config,
        rules,
        contacts: &contacts,
        decisions: &decisions,
    };
    let mut decided = 0;
    for (at, step) in STORY {
        let now = DateTime::parse_from_rfc3339(at).expect("story times").to_utc();
        match step {
            Step::Event(line) => {
                let message = Message {
                    id: "m".into(),
                    body: (*line).into(),
                };
                kairos_evaluate::handle(super::sqs(&[message]), &evaluator, now).await;
                transitions.drain();
                let event = kairos_event::Event::from_json(line.as_bytes()).expect("story events");
                writeln!(
                    out,
                    "{}  {:<20} {:<18} {}",
                    super::when(now),
                    event.contact,
                    event.kind.as_str(),
                    super::details(&event)
                )?;
            }
            Step::Decide(contact) => {
                decided += 1;
                let answer = ask(&decide, contact, now).await;
                let what = match answer["send"].as_object() {
                    Some(send) => format!(
                        "SEND {}/{}: template {} (variant {})",
                        text(&send["sequence"]),
                        text(&send["step"]),
                        text(&send["content"]),
                        text(&send["variant"])
                    ),
                    None => format!("NO SEND: {}", text(&answer["reason"])),
                };
                writeln!(out, "{}  {:<20} decide → {what}", super::when(now), contact)?;
                writeln!(out, "{:23}why: {}", "", text(&answer["explanation"]))?;
            }
        }
    }
    Ok(decided)
}

async fn ask(
    decide: &Decide<'_, MemoryContacts, MemoryDecisions>,
    contact: &str,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let mut req = ApiGatewayV2httpRequest::default();
    req.raw_path = Some("/v1/decide".into());
    req.headers
        .insert("x-api-key", aws_lambda_events::http::HeaderValue::from_static(KEY));
    req.body = Some(format!(r#"{{"contact": "{contact}", "channel": "email"}}"#));
    let response = kairos_decide_fn::handle(req, decide, now.timestamp()).await;
    match response.body {
        Some(Body::Text(t)) => serde_json::from_str(&t).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("")
}
