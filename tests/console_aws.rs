//! The console over the deployment (issue 23 item 2): the AWS backend on
//! moto (the template's contacts table with its pinned index, audit table,
//! write-back queue, versioned rules bucket and archive bucket), driven
//! through the router the console function serves (`signed_in_router` with
//! the signed-in identity) and once through `lambda::handle` with an API
//! Gateway v2 request.

mod support;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use chrono::{DateTime, Duration, Utc};
use kairos::console::access::{Identity, Role};
use kairos::console::{lambda, signed_in_router, Backend};
use kairos_store::{BackfillProgress, ContactScan};
use support::console::{add_claims, apigw_request, aws_console, field_value, Served, JWT_FIXTURE};
use support::{event_json, Stack};

const RULES: &str = "segments:
  - id: clicked
    name: Clicked
    description: clicked an email this week
    rule: { event: { type: email.clicked, within: 7d } }
  - id: opened
    name: Opened
    rule: { event: { type: email.opened, within: 7d } }
";

/// The rules with `clicked` needing two clicks.
fn edited() -> String {
    RULES.replace(
        "{ type: email.clicked, within: 7d }",
        "{ type: email.clicked, count: { gte: 2 }, within: 7d }",
    )
}

/// The stack with `RULES` published, three contacts evaluated under them
/// at `now`, and the same events in the archive (today's partition).
async fn deployment(now: DateTime<Utc>) -> (Stack, String) {
    let stack = Stack::start().await;
    let s3 = kairos::local::s3_client(&stack.aws);
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let first = kairos::publish::publish(&s3, &uri, RULES, "ops@x.test", "first rules")
        .await
        .expect("published");
    let events = [
        event_json("e1", "ada@x.test", "email.clicked", now - Duration::hours(3)),
        event_json("e2", "ada@x.test", "email.clicked", now - Duration::hours(2)),
        event_json("e3", "bo@x.test", "email.clicked", now - Duration::hours(1)),
        event_json("e4", "cy@x.test", "email.opened", now - Duration::hours(1)),
    ];
    let rules = kairos_rules::RuleSet::from_yaml(RULES).unwrap();
    stack.apply(&rules, &events, now).await;
    let key = format!("events/dt={}/part-1", now.date_naive());
    s3.put_object()
        .bucket(&stack.infra.buckets["ArchiveBucket"])
        .key(key)
        .body(events.join("\n").into_bytes().into())
        .send()
        .await
        .expect("archived");
    (stack, first)
}

fn publisher(user: &str) -> Identity {
    Identity {
        user: user.into(),
        role: Some(Role::Publisher),
    }
}

/// `<td class="members">N</td>` of a segment's row.
fn members(body: &str, segment: &str) -> String {
    let row = body.split(&format!("<tr id=\"segment-{segment}\">")).nth(1).unwrap();
    let cell = row.split("class=\"members\">").nth(1).unwrap();
    cell[..cell.find('<').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_and_changes_the_deployment() {
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let (stack, v1) = deployment(now).await;
    let console = aws_console(&stack);
    let ada = Served::start(signed_in_router(console.clone()).layer(axum::Extension(publisher("ada@x.test")))).await;
    let bert = Served::start(signed_in_router(console.clone()).layer(axum::Extension(publisher("bert@x.test")))).await;
    let mut s = ada.session();

    // Segments: members from the segment counters, no count of every contact.
    let segments = s.get("/segments").await;
    assert_eq!(segments.status, 200, "{}", segments.body);
    assert_eq!(members(&segments.body, "clicked"), "2");
    assert_eq!(members(&segments.body, "opened"), "1");
    assert!(segments.body.contains("members are counted per segment"));
    assert!(
        segments.body.contains(&format!("rules v{v1}")),
        "the version in force is S3's"
    );

    // A contact and its explanation, from the table and its audit trail.
    let contact = s.get("/contact?q=ada%40x.test").await;
    assert_eq!(contact.status, 200, "{}", contact.body);
    assert!(contact.body.contains("data-segment=\"clicked\""), "{}", contact.body);
    assert!(
        contact.body.contains("email.clicked"),
        "the explanation names the condition"
    );
    assert!(contact.body.contains("class=\"held\""));
    let missing = s.get("/contact?q=nobody%40x.test").await;
    assert_eq!(missing.status, 404);

    // Pin cy into `clicked`: on the overrides page (the pinned index), in the record,
    // its transition on the write-back queue and in the audit trail.
    s.get("/overrides").await;
    let before = stack.depth("WritebackQueue").await;
    let pin = [
        ("contact", "cy@x.test"),
        ("segment", "clicked"),
        ("member", "in"),
        ("reason", "VIP <b>customer</b>"),
        ("back", "/overrides"),
    ];
    let pinned = s.post("/overrides/pin", &pin).await;
    assert_eq!(pinned.status, 303, "{}", pinned.body);
    let overrides = s.get("/overrides").await;
    assert!(overrides.body.contains("cy@x.test"), "{}", overrides.body);
    assert!(
        overrides.body.contains("VIP &#60;b&#62;customer") && !overrides.body.contains("<b>customer"),
        "escaped: {}",
        overrides.body
    );
    let item = stack.raw_item("contact#cy@x.test").await.unwrap();
    assert!(item.contains_key("pinned"), "the record is in the pinned index");
    assert_eq!(
        stack.depth("WritebackQueue").await,
        before + 1,
        "the entry is written back"
    );
    let cy = s.get("/contact?q=cy%40x.test").await;
    assert!(cy.body.contains("data-segment=\"clicked\""), "{}", cy.body);
    assert!(cy.body.contains("ada@x.test"), "the pin is attributed: {}", cy.body);
    let segments = s.get("/segments").await;
    assert_eq!(members(&segments.body, "clicked"), "3", "counted with the transition");

    // Rules: the version in force and its history, from S3.
    let rules = s.get("/rules").await;
    assert_eq!(field_value(&rules.body, "base").as_deref(), Some(v1.as_str()));
    assert!(rules.body.contains("first rules") && rules.body.contains("ops@x.test"));

    // Backtest on the archive's recent events: ada clicked twice and stays, bo leaves.
    let text = edited();
    let backtest = s
        .post("/rules", &[("text", &text), ("base", &v1), ("action", "backtest")])
        .await;
    assert_eq!(backtest.status, 200, "{}", backtest.body);
    assert!(
        backtest
            .body
            .contains("Backtest on 4 events of the last 1 day in the archive"),
        "{}",
        backtest.body
    );
    let row = backtest.body.split("data-segment=\"clicked\"").nth(1).unwrap();
    assert!(row.contains("class=\"leaving\">1<"), "{row}");
    assert!(row.contains("bo@x.test"), "{row}");
    // Or on uploaded events.
    let upload = event_json("u1", "dee@x.test", "email.clicked", now);
    let uploaded = s
        .post(
            "/rules",
            &[
                ("text", &text),
                ("base", &v1),
                ("action", "backtest"),
                ("sample", &upload),
            ],
        )
        .await;
    assert!(
        uploaded.body.contains("Backtest on 1 uploaded events"),
        "{}",
        uploaded.body
    );

    // Publish on top of v1; a racing publish from the same version is refused.
    let publish = |base: String, message: &'static str| {
        let text = text.clone();
        let mut session = bert.session();
        async move {
            session.get("/rules").await;
            let fields = [
                ("text", text.as_str()),
                ("base", base.as_str()),
                ("message", message),
                ("action", "publish"),
            ];
            session.post("/rules", &fields).await
        }
    };
    let published = s
        .post(
            "/rules",
            &[
                ("text", &text),
                ("base", &v1),
                ("message", "two clicks"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(published.status, 303, "{}", published.body);
    let raced = publish(v1.clone(), "mine").await;
    assert_eq!(raced.status, 409, "{}", raced.body);
    assert!(
        raced.body.contains(&format!("was published after version {v1}")),
        "{}",
        raced.body
    );
    let s3 = kairos::local::s3_client(&stack.aws);
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let history = kairos::publish::history(&s3, &uri).await.unwrap();
    assert_eq!(history.len(), 2, "the race wrote nothing");
    let v2 = history[0].version.clone();
    assert_eq!(
        (history[0].by.as_str(), history[0].message.as_str()),
        ("ada@x.test", "two clicks")
    );

    // After the publish: no contact re-decided in the request; the backfill is pending.
    let after = s.get(published.location.as_deref().unwrap()).await;
    assert!(
        after.body.contains(&format!("Published version {v2};")),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("backfill re-decides every contact"),
        "{}",
        after.body
    );
    assert!(after.body.contains("Backfill pending"), "{}", after.body);
    assert!(
        after.body.contains("count: { gte: 2 }"),
        "the editor shows the rules in force"
    );
    let version = console.backend().current().await.unwrap();
    let store = stack.store();
    let mut progress = BackfillProgress::start(version.number, 1);
    progress.segment = 1;
    progress.sent = 3;
    store.record_progress(&progress).await.unwrap();
    let done = s.get("/rules").await;
    assert!(done.body.contains("Backfill done: 3 contacts"), "{}", done.body);

    // Roll back to v1 on top of v2; a stale rollback is refused.
    let back = s.post("/rules/rollback", &[("to", &v1), ("base", &v2)]).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let history = kairos::publish::history(&s3, &uri).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].message, format!("rollback to version {v1}"));
    let now_text = kairos::publish::text_of(&s3, &uri, &history[0].version).await.unwrap();
    assert_eq!(now_text, RULES);
    let stale = s.post("/rules/rollback", &[("to", &v1), ("base", &v2)]).await;
    assert_eq!(stale.status, 409, "{}", stale.body);

    // Lift the pin: the record leaves the pinned index.
    s.get("/overrides").await;
    let lifted = s
        .post(
            "/overrides/lift",
            &[("contact", "cy@x.test"), ("segment", "clicked"), ("back", "/overrides")],
        )
        .await;
    assert_eq!(lifted.status, 303, "{}", lifted.body);
    assert!(s.get("/overrides").await.body.contains("No overrides."));
    let item = stack.raw_item("contact#cy@x.test").await.unwrap();
    assert!(!item.contains_key("pinned"));
}

/// The official API Gateway v2 request with a verified Cognito token of `groups`.
fn apigw(method: Method, path: &str, groups: &str) -> ApiGatewayV2httpRequest {
    let mut req = apigw_request(JWT_FIXTURE, method, path);
    add_claims(&mut req, &[("email", "vi@x.test"), ("cognito:groups", groups)]);
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_adapter_serves_the_deployments_pages() {
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let (stack, v1) = deployment(now).await;
    let router = signed_in_router(aws_console(&stack));
    let page = lambda::handle(router.clone(), apigw(Method::GET, "/console/segments", "[viewer]")).await;
    assert_eq!(page.status_code, 200);
    let Some(Body::Text(body)) = &page.body else {
        panic!("{:?}", page.body)
    };
    assert!(
        body.contains("vi@x.test") && body.contains(&format!("rules v{v1}")),
        "{body}"
    );
    assert!(body.contains("href=\"/console/contact\""), "links below /console");
    assert_eq!(members(body, "clicked"), "2");
    let contact = lambda::handle(router, apigw(Method::GET, "/console/contact?q=bo%40x.test", "[viewer]")).await;
    let Some(Body::Text(body)) = &contact.body else {
        panic!()
    };
    assert!(body.contains("data-segment=\"clicked\""), "{body}");
}
