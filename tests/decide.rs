//! `POST /v1/decide` through the real handler over moto server (DynamoDB wire
//! protocol, the template's table): contact state written by the real
//! evaluate handler, decisions recorded in transactions, ESP reports reconciled.

mod support;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use chrono::{DateTime, Utc};
use kairos_decide::in_holdout;
use kairos_decide_fn::{handle, reconcile, reconcile_batch, Decide, DecideConfig, DecisionStore};
use kairos_event::Event;
use kairos_rules::RuleSet;
use serde_json::Value;
use support::{apigw_post, Stack};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn event(id: &str, contact: &str, kind: &str, when: &str, extra: &str) -> String {
    format!(r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{when}","source":"test"{extra}}}"#)
}

fn ask(contact: &str, now: &str, key: Option<&str>) -> ApiGatewayV2httpRequest {
    let body = format!(r#"{{"contact": "{contact}", "channel": "email", "now": "{now}"}}"#);
    let mut req = apigw_post("/v1/decide", &body);
    req.headers.insert("x-api-key", "decide-key".parse().unwrap());
    if let Some(key) = key {
        req.headers.insert("idempotency-key", key.parse().unwrap());
    }
    req
}

/// Asks the real handler over the stack's table at `now` (the time received).
async fn decide(stack: &Stack, rules: &RuleSet, contact: &str, now: &str, key: Option<&str>) -> Value {
    let config = DecideConfig {
        api_keys: vec!["decide-key".into()],
        table: stack.infra.table.clone(),
        ..DecideConfig::default()
    };
    let (contacts, decisions) = (stack.store(), stack.decisions());
    let decide = Decide {
        config: &config,
        rules,
        contacts: &contacts,
        decisions: &decisions,
    };
    let response = handle(ask(contact, now, key), &decide, at(now).timestamp()).await;
    let Some(Body::Text(text)) = response.body else {
        panic!("a text body")
    };
    assert_eq!(response.status_code, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn counter(stack: &Stack, pk: &str, name: &str) -> u64 {
    let item = stack.raw_item(pk).await.unwrap_or_default();
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn demo_rules() -> RuleSet {
    RuleSet::from_yaml(kairos_decide_fn::DEFAULT_RULES).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comparison_click_switches_threads_retries_record_once_and_esp_reports_reconcile() {
    let stack = Stack::start().await;
    let rules = demo_rules();
    let eve = "eve@initech.test";
    assert!(
        !in_holdout(eve, rules.sending().holdout.as_ref().unwrap()),
        "the test contact is not held out"
    );
    let signup = [
        event(
            "e1",
            eve,
            "contact.identified",
            "2026-11-24T14:00:00Z",
            r#","traits":{"timezone":"America/New_York"}"#,
        ),
        event(
            "e2",
            eve,
            "form.submitted",
            "2026-11-24T14:00:05Z",
            r#","properties":{"form":"signup"}"#,
        ),
    ];
    stack.apply(&rules, &signup, at("2026-11-24T14:00:10Z")).await;
    let first = decide(&stack, &rules, eve, "2026-11-24T14:01:00Z", Some("esp-1")).await;
    assert_eq!(first["send"]["sequence"], "onboarding", "{first}");
    assert_eq!(first["send"]["step"], "welcome");
    // A retry with the same key: the same answer, recorded once.
    let retry = decide(&stack, &rules, eve, "2026-11-24T14:01:30Z", Some("esp-1")).await;
    assert_eq!(retry, first);
    let variant = first["send"]["variant"].as_str().unwrap();
    // Counted in Eve's own shard of the variant's counters; a read sums the
    // shards, the unsharded key of earlier builds (shard 0) included.
    let key = ("onboarding".to_string(), "welcome".to_string(), variant.to_string());
    let base = format!("variant#onboarding#welcome#{variant}");
    let own = kairos_store::due_shard(eve, kairos_store::COUNTER_SHARDS);
    assert_ne!(own, 0, "the test contact's shard is not the unsharded key");
    let pk = kairos_store::counter_shard_key(&base, own);
    assert_eq!(counter(&stack, &pk, "sends").await, 1);
    stack
        .put_raw_item(&format!(
            r#"{{"pk": {{"S": "{base}"}}, "sends": {{"N": "5"}}, "goals": {{"N": "2"}}}}"#
        ))
        .await;
    let counts = stack.decisions().counts(std::slice::from_ref(&key)).await.unwrap();
    assert_eq!((counts[0].sends, counts[0].goals), (6, 2));
    let log = stack.decisions().sends(eve).await.unwrap();
    assert_eq!((log.sends.len(), log.version), (1, 1));

    // The ESP reports the send (by decision id) and a click on it (by template id).
    let id = first["decision_id"].as_str().unwrap();
    let template = first["send"]["content"].as_str().unwrap();
    let reports = [
        event(
            "s1",
            eve,
            "email.sent",
            "2026-11-24T14:01:02Z",
            &format!(r#","message_id":"m-eve-1","properties":{{"decision_id":"{id}"}}"#),
        ),
        event(
            "c1",
            eve,
            "email.clicked",
            "2026-11-24T15:00:00Z",
            &format!(r#","properties":{{"template_id":"{template}"}}"#),
        ),
    ];
    // Through the events queue, the evaluate handler, then reconciliation, as the evaluate function runs them.
    stack.send("EventsQueue", &reports).await;
    let messages = stack.receive("EventsQueue", reports.len()).await;
    let batch = support::sqs_event(&messages);
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let evaluator = kairos_evaluate::Evaluator::new(&rules, &store, &queue);
    let mut response = kairos_evaluate::handle(batch.clone(), &evaluator, at("2026-11-24T15:00:01Z")).await;
    let done = reconcile_batch(&rules, &stack.decisions(), &batch, &mut response).await;
    assert_eq!((done.confirmed, done.goals), (1, 1));
    assert!(response.batch_item_failures.is_empty());
    let parsed: Vec<Event> = reports
        .iter()
        .map(|r| Event::from_json(r.as_bytes()).unwrap())
        .collect();
    let again = reconcile(&rules, &stack.decisions(), &parsed).await.unwrap();
    assert_eq!(again.goals, 0, "a redelivered click counts nothing twice");
    assert_eq!(counter(&stack, &pk, "goals").await, 1);
    let log = stack.decisions().sends(eve).await.unwrap();
    assert_eq!(log.sends[0].message_id.as_deref(), Some("m-eve-1"));
    let decision = stack.raw_item(&format!("decision#{id}")).await.unwrap();
    assert!(
        decision.contains_key("sent_at") && decision.contains_key("goal_at"),
        "{decision:?}"
    );

    // Next day: pricing, then the comparison page. The next decision moves Eve onto the pricing thread.
    let browsing = [
        event(
            "w1",
            eve,
            "page.viewed",
            "2026-11-25T15:10:00Z",
            r#","url":"https://kairos.example/pricing""#,
        ),
        event(
            "w2",
            eve,
            "page.viewed",
            "2026-11-25T15:12:00Z",
            r#","url":"https://kairos.example/compare""#,
        ),
    ];
    stack.apply(&rules, &browsing, at("2026-11-25T15:12:05Z")).await;
    let switched = decide(&stack, &rules, eve, "2026-11-25T15:15:00Z", None).await;
    assert_eq!(switched["send"]["sequence"], "pricing-intent", "{switched}");
    assert!(switched["explanation"]
        .as_str()
        .unwrap()
        .contains("`onboarding` (priority 10) outranked"));
    // At 22:00 in New York the next pricing step would wait for quiet hours anyway; the step's wait comes first.
    let night = decide(&stack, &rules, eve, "2026-11-26T03:00:00Z", None).await;
    assert_eq!(night["send"], Value::Null, "{night}");
}

const CAPPED: &str = r#"
segments:
  - { id: everyone, name: Everyone, rule: { consent: subscribed } }
sending:
  caps: [ { channel: email, max: 2, per: 1d } ]
  quiet_hours: { from: "21:00", to: "08:00", default_zone: Europe/London }
sequences:
  - id: drip
    name: Drip
    entry: { segment: everyone }
    steps:
      - { id: one, content: [ { variant: a, template: t1 } ] }
      - { id: two, content: [ { variant: a, template: t2 } ] }
      - { id: three, content: [ { variant: a, template: t3 } ] }
      - { id: four, content: [ { variant: a, template: t4 } ] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_cap_holds_across_midnight_and_quiet_hours_follow_dst() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(CAPPED).unwrap();
    let ny = "ny@x.test";
    let identify = [event(
        "i1",
        ny,
        "contact.identified",
        "2026-03-06T12:00:00Z",
        r#","traits":{"timezone":"America/New_York"}"#,
    )];
    stack.apply(&rules, &identify, at("2026-03-06T12:00:01Z")).await;
    // 18:50 and 19:05 in New York (EST): two sends either side of 00:00 UTC.
    let one = decide(&stack, &rules, ny, "2026-03-06T23:50:00Z", None).await;
    let two = decide(&stack, &rules, ny, "2026-03-07T00:05:00Z", None).await;
    assert_eq!(
        (one["reason"].as_str(), two["reason"].as_str()),
        (Some("send"), Some("send")),
        "{one} {two}"
    );
    // A calendar-day cap would allow another after midnight UTC; the rolling one does not.
    let third = decide(&stack, &rules, ny, "2026-03-07T00:10:00Z", None).await;
    assert_eq!(third["reason"], "frequency cap until 2026-03-07T23:50:00Z", "{third}");
    // 23:50 UTC on the 7th is 18:50 EST: the cap has rolled and it is not quiet.
    let rolled = decide(&stack, &rules, ny, "2026-03-07T23:50:00Z", None).await;
    assert_eq!(rolled["reason"], "send", "{rolled}");
    // 04:00 UTC on the 8th is 23:00 EST; New York springs forward at 02:00 that
    // night, so quiet hours end at 08:00 EDT = 12:00 UTC (not 13:00).
    let night = decide(&stack, &rules, ny, "2026-03-08T04:00:00Z", None).await;
    assert_eq!(night["reason"], "quiet hours until 2026-03-08T12:00:00Z", "{night}");
    assert!(night["explanation"]
        .as_str()
        .unwrap()
        .contains("America/New_York (the contact's zone)"));
}
