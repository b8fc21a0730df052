//! The console's roles (issue 23 item 2): a viewer reads, searches and
//! backtests; an editor also pins and lifts overrides; a publisher also
//! publishes and rolls back. Each refusal is a 403 page naming the role
//! needed; every change is attributed to the signed-in user.

mod support;

use kairos::console::access::{Identity, Role};
use support::console::{ConsoleServer, Session};

fn as_user(user: &str, role: Option<Role>) -> Identity {
    Identity {
        user: user.to_string(),
        role,
    }
}

const PIN: [(&str, &str); 5] = [
    ("contact", "carol@initech.test"),
    ("segment", "pricing-intent"),
    ("member", "in"),
    ("reason", "asked for a quote by phone"),
    ("back", "/overrides"),
];
const LIFT: [(&str, &str); 3] = [
    ("contact", "carol@initech.test"),
    ("segment", "pricing-intent"),
    ("back", "/overrides"),
];

fn edited() -> String {
    kairos_evaluate::DEFAULT_RULES.replacen("count: { gte: 2 }", "count: { gte: 3 }", 1)
}

async fn rules_action(s: &mut Session, action: &str) -> support::console::Page {
    s.get("/rules").await;
    let text = edited();
    s.post(
        "/rules",
        &[
            ("text", &text),
            ("base", "1"),
            ("message", "three clicks"),
            ("action", action),
        ],
    )
    .await
}

fn refused_for(page: &support::console::Page, role: &str) {
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains(&format!("needs the {role} role")), "{}", page.body);
}

#[tokio::test]
async fn a_viewer_reads_searches_and_backtests_but_changes_nothing() {
    let server = ConsoleServer::signed_in(as_user("vi@x.test", Some(Role::Viewer))).await;
    let mut s = server.session();
    for path in ["/segments", "/contact?q=carol@initech.test", "/overrides", "/rules"] {
        let page = s.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains("vi@x.test"), "the signed-in user is shown: {path}");
    }
    assert_eq!(rules_action(&mut s, "validate").await.status, 200);
    let backtest = rules_action(&mut s, "backtest").await;
    assert_eq!(backtest.status, 200, "{}", backtest.body);
    assert!(backtest.body.contains("data-segment="), "{}", backtest.body);

    refused_for(&s.post("/overrides/pin", &PIN).await, "editor");
    refused_for(&s.post("/overrides/lift", &LIFT).await, "editor");
    refused_for(&rules_action(&mut s, "publish").await, "publisher");
    refused_for(
        &s.post("/rules/rollback", &[("to", "1"), ("base", "1")]).await,
        "publisher",
    );
    assert_eq!(server.console.rules().current().number, 1, "nothing published");
    let carol = s.get("/contact?q=carol@initech.test").await;
    assert!(!carol.body.contains("asked for a quote by phone"), "nothing pinned");
}

#[tokio::test]
async fn an_editor_pins_and_lifts_as_themself_but_cannot_publish() {
    let server = ConsoleServer::signed_in(as_user("ed@x.test", Some(Role::Editor))).await;
    let mut s = server.session();
    s.get("/overrides").await;
    let pinned = s.post("/overrides/pin", &PIN).await;
    assert_eq!(pinned.status, 303, "{}", pinned.body);
    let carol = s.get("/contact?q=carol@initech.test").await;
    assert!(carol.body.contains("data-segment=\"pricing-intent\""), "{}", carol.body);
    assert!(
        carol.body.contains("by admin-key:ed@x.test"),
        "attributed: {}",
        carol.body
    );
    assert_eq!(s.post("/overrides/lift", &LIFT).await.status, 303);

    refused_for(&rules_action(&mut s, "publish").await, "publisher");
    refused_for(
        &s.post("/rules/rollback", &[("to", "1"), ("base", "1")]).await,
        "publisher",
    );
    assert_eq!(server.console.rules().current().number, 1);
}

#[tokio::test]
async fn a_publisher_publishes_and_rolls_back_under_their_name() {
    let server = ConsoleServer::signed_in(as_user("pub@x.test", Some(Role::Publisher))).await;
    let mut s = server.session();
    let published = rules_action(&mut s, "publish").await;
    assert_eq!(published.status, 303, "{}", published.body);
    let version = server.console.rules().current();
    assert_eq!((version.number, version.by.as_str()), (2, "pub@x.test"));
    s.get("/rules").await;
    let rolled = s.post("/rules/rollback", &[("to", "1"), ("base", "2")]).await;
    assert_eq!(rolled.status, 303, "{}", rolled.body);
    let version = server.console.rules().current();
    assert_eq!((version.number, version.by.as_str()), (3, "pub@x.test"));
    s.get("/overrides").await;
    assert_eq!(
        s.post("/overrides/pin", &PIN).await.status,
        303,
        "a publisher is an editor too"
    );
}

#[tokio::test]
async fn a_user_in_no_console_group_is_refused_even_reading() {
    let server = ConsoleServer::signed_in(as_user("nobody@x.test", None)).await;
    let mut s = server.session();
    let page = s.get("/segments").await;
    refused_for(&page, "viewer");
    assert!(page.body.contains("nobody@x.test has no console role"), "{}", page.body);
}
