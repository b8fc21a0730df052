use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use kairos_event::Event;
use kairos_store::MemoryContacts;
use serde_json::Value;

use super::*;
use std::sync::Mutex;

const RULES: &str = r#"
segments:
  - { id: everyone, name: Everyone, rule: { consent: subscribed } }
sending:
  learning: { attribution: 2d }
sequences:
  - id: welcome
    name: Welcome
    entry: { segment: everyone }
    steps:
      - id: hello
        content: [ { variant: a, template: tpl-a }, { variant: b, template: tpl-b } ]
      - id: again
        wait: 1d
        content: [ { variant: a, template: tpl-again } ]
"#;

const NOW: i64 = 1_795_773_600; // 2026-11-27T10:00:00Z

fn request(body: &str, key: Option<&str>, idempotency: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    req.raw_path = Some("/v1/decide".into());
    if let Some(key) = key {
        req.headers.insert("x-api-key", key.parse().unwrap());
    }
    if let Some(i) = idempotency {
        req.headers.insert("idempotency-key", i.parse().unwrap());
    }
    req.body = Some(body.into());
    req
}

struct World {
    config: DecideConfig,
    rules: RuleSet,
    contacts: MemoryContacts,
    decisions: MemoryDecisions,
}

impl World {
    fn new() -> World {
        World {
            config: DecideConfig {
                api_keys: vec!["k1".into()],
                ..DecideConfig::default()
            },
            rules: RuleSet::from_yaml(RULES).unwrap(),
            contacts: MemoryContacts::default(),
            decisions: MemoryDecisions::default(),
        }
    }

    async fn ask(&self, req: ApiGatewayV2httpRequest) -> (i64, Value) {
        let decide = Decide {
            config: &self.config,
            rules: &self.rules,
            contacts: &self.contacts,
            decisions: &self.decisions,
        };
        let response = handle(req, &decide, NOW).await;
        let body = match response.body {
            Some(Body::Text(t)) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        };
        (response.status_code, body)
    }
}

#[tokio::test]
async fn the_route_needs_a_configured_key_and_a_well_formed_body() {
    let world = World::new();
    let body = r#"{"contact": "ada@x.test"}"#;
    assert_eq!(world.ask(request(body, None, None)).await.0, 401);
    assert_eq!(world.ask(request(body, Some("k2"), None)).await.0, 401);
    let (status, error) = world
        .ask(request(
            r#"{"contact": "ada@x.test", "chanel": "email"}"#,
            Some("k1"),
            None,
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().contains("unknown field `chanel`"),
        "{error}"
    );
    let (status, error) = world
        .ask(request(
            r#"{"contact": "ada@x.test", "now": "2026-11-28T10:00:00Z"}"#,
            Some("k1"),
            None,
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("field `now` is 86400 s ahead"),
        "{error}"
    );
    let mut closed = World::new();
    closed.config.api_keys.clear();
    assert_eq!(closed.ask(request(body, Some("k1"), None)).await.0, 404);
}

#[tokio::test]
async fn a_send_is_recorded_once_and_a_keyed_retry_gets_the_same_answer() {
    let world = World::new();
    let body = r#"{"contact": "Ada@X.test", "channel": "email"}"#;
    let (status, first) = world.ask(request(body, Some("k1"), Some("esp-42"))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["send"]["step"], "hello");
    let retry = world.ask(request(body, Some("k1"), Some("esp-42"))).await.1;
    assert_eq!(retry, first);
    let log = world.decisions.sends("ada@x.test").await.unwrap();
    assert_eq!(log.sends.len(), 1);
    let variant = first["send"]["variant"].as_str().unwrap().to_string();
    let counts = world
        .decisions
        .counts(&[("welcome".into(), "hello".into(), variant)])
        .await
        .unwrap();
    assert_eq!(counts[0].sends, 1);
    // A new question (no key) now waits for the next step.
    let (_, next) = world.ask(request(body, Some("k1"), None)).await;
    assert_eq!(next["reason"], "waiting until 2026-11-28T10:00:00Z", "{next}");
}

#[tokio::test]
async fn esp_reports_confirm_the_decision_and_a_click_counts_one_goal() {
    let world = World::new();
    let (_, first) = world
        .ask(request(r#"{"contact": "ada@x.test"}"#, Some("k1"), None))
        .await;
    let id = first["decision_id"].as_str().unwrap();
    let template = first["send"]["content"].as_str().unwrap();
    let variant = first["send"]["variant"].as_str().unwrap().to_string();
    let event = |json: String| Event::from_json(json.as_bytes()).unwrap();
    let events = [
        event(format!(r#"{{"id":"s1","contact":"ada@x.test","type":"email.sent","at":"2026-11-27T10:00:01Z","source":"sendgrid","message_id":"m-9","properties":{{"decision_id":"{id}"}}}}"#)),
        event(format!(r#"{{"id":"d1","contact":"ada@x.test","type":"email.delivered","at":"2026-11-27T10:00:03Z","source":"sendgrid","properties":{{"template_id":"{template}"}}}}"#)),
        event(r#"{"id":"c1","contact":"ada@x.test","type":"email.clicked","at":"2026-11-27T11:00:00Z","source":"sendgrid"}"#.to_string()),
        event(r#"{"id":"c2","contact":"ada@x.test","type":"email.clicked","at":"2026-11-27T12:00:00Z","source":"sendgrid"}"#.to_string()),
    ];
    let done = reconcile(&world.rules, &world.decisions, &events).await.unwrap();
    assert_eq!(done, Reconciled { confirmed: 2, goals: 1 });
    assert_eq!(
        world.decisions.statuses(id).keys().collect::<Vec<_>>(),
        ["delivered", "sent"]
    );
    let counts = world
        .decisions
        .counts(&[("welcome".into(), "hello".into(), variant)])
        .await
        .unwrap();
    assert_eq!((counts[0].sends, counts[0].goals), (1, 1));
    // Redelivered: nothing counts twice.
    let again = reconcile(&world.rules, &world.decisions, &events[2..]).await.unwrap();
    assert_eq!(again.goals, 0);
}

#[test]
fn the_send_log_stays_bounded_and_keeps_each_sequence_s_first_and_last() {
    let sent = |i: i64, seq: &str| Sent {
        decision_id: format!("d{i}"),
        sequence: seq.into(),
        step: "s".into(),
        variant: "a".into(),
        channel: "email".into(),
        at: i * 86_400,
        message_id: None,
    };
    let old: Vec<Sent> = (0..100)
        .map(|i| sent(i, if i == 0 { "once" } else { "many" }))
        .collect();
    let log = trimmed(&old, &sent(200, "many"));
    assert!(log.len() <= LOG_MAX_SENDS);
    assert!(log
        .iter()
        .all(|s| s.at > 200 * 86_400 - LOG_KEEP_SECS || s.sequence == "once" || s.decision_id == "d1"));
    assert_eq!(log.last().unwrap().decision_id, "d200");
}

/// Counts the store calls a decision makes (each is one DynamoDB request in `DynamoDecisions`).
#[derive(Default)]
struct Counting {
    inner: MemoryDecisions,
    calls: Mutex<Vec<&'static str>>,
}

impl Counting {
    fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}

impl DecisionStore for Counting {
    async fn sends(&self, contact: &str) -> Result<SendLog, StoreError> {
        self.note("GetItem sends");
        self.inner.sends(contact).await
    }
    async fn counts(&self, keys: &[VariantKey]) -> Result<Vec<kairos_decide::Counts>, StoreError> {
        self.note("BatchGetItem variants");
        self.inner.counts(keys).await
    }
    async fn answer(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.note("GetItem decision");
        self.inner.answer(id).await
    }
    async fn record(&self, c: &str, s: &Sent, a: &str, l: &SendLog, e: u64) -> Result<Recorded, StoreError> {
        self.note("TransactWriteItems");
        self.inner.record(c, s, a, l, e).await
    }
    async fn goal(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.inner.goal(id, at).await
    }
    async fn note_message(&self, c: &str, id: &str, m: &str) -> Result<bool, StoreError> {
        self.inner.note_message(c, id, m).await
    }
    async fn confirm(&self, id: &str, status: &str, at: i64) -> Result<bool, StoreError> {
        self.inner.confirm(id, status, at).await
    }
}

#[tokio::test]
async fn a_decision_costs_three_reads_and_one_transaction() {
    let world = World::new();
    let counting = Counting::default();
    let decide = Decide {
        config: &world.config,
        rules: &world.rules,
        contacts: &world.contacts,
        decisions: &counting,
    };
    let ask = |key: Option<&'static str>| request(r#"{"contact": "ada@x.test"}"#, Some("k1"), key);
    assert_eq!(handle(ask(None), &decide, NOW).await.status_code, 200);
    // Besides the contact's record (ContactStore::load: 1 GetItem, 2 for a contact with only a kept consent).
    assert_eq!(
        counting.take(),
        ["GetItem sends", "BatchGetItem variants", "TransactWriteItems"]
    );
    // A `send: null` (the next step waits a day) writes nothing.
    assert_eq!(handle(ask(None), &decide, NOW).await.status_code, 200);
    assert_eq!(counting.take(), ["GetItem sends"]);
    // With an Idempotency-Key, the decision is looked up first (here a new one, still waiting).
    assert_eq!(handle(ask(Some("k-9")), &decide, NOW).await.status_code, 200);
    assert_eq!(counting.take(), ["GetItem sends", "GetItem decision"]);
}
