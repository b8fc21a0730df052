//! The console in a real browser (issue 23): headless Chromium through
//! WebDriver opens a contact and reads its explanation, edits a rule with a
//! mistake and sees the problem at its line, fixes it, backtests, publishes
//! and sees the history, pins an override and sees the membership change,
//! and checks that HTML in a description runs nothing. With
//! `KAIROS_SCREENSHOTS_DIR` set (`make screenshots`) each page is saved as a PNG.

mod support;

use support::browser::Browser;
use support::console::ConsoleServer;

fn screenshots() -> Option<std::path::PathBuf> {
    std::env::var_os("KAIROS_SCREENSHOTS_DIR").map(std::path::PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_reads_a_contact_edits_backtests_publishes_and_pins_in_the_browser() {
    let dir = screenshots();
    let dir = dir.as_deref();
    let server = ConsoleServer::demo().await;
    let b = Browser::start().await;
    let url = &server.url;

    b.goto(&format!("{url}/segments")).await;
    assert!(b.text("#segments").await.contains("Pricing-page intent"));
    b.screenshot(dir, "segments").await;

    // A contact and the explanation of its memberships.
    b.goto(&format!("{url}/contact")).await;
    b.fill("#q", "bob@globex.test").await;
    b.click("form[action='/contact'] button").await;
    let memberships = b.wait_for("#memberships", "✓").await;
    assert!(memberships.contains('✓'), "{memberships}");
    assert!(b.text("#audit").await.contains("transition"));
    b.screenshot(dir, "contact").await;

    // A rule with a mistake: the problem at its line.
    let text = kairos_evaluate::DEFAULT_RULES;
    let line = text.lines().position(|l| l.trim() == "within: 24h").unwrap() + 1;
    b.goto(&format!("{url}/rules")).await;
    b.fill("#text", &text.replacen("within: 24h", "within: 24 hours", 1))
        .await;
    b.click("#validate").await;
    let problems = b.wait_for("#problems", "line ").await;
    assert!(
        problems.contains(&format!("line {line}: segment `pricing-intent`")),
        "{problems}"
    );
    b.screenshot(dir, "rules-problem").await;

    // Fixed (and a new segment): the backtest predicts who enters.
    let edited = text.replacen(
        "\nsegments:\n",
        "\nsegments:\n  - id: any-open\n    name: Opened any email\n    rule: { event: { type: email.opened, within: 30d } }\n",
        1,
    );
    b.fill("#text", &edited).await;
    b.click("#backtest").await;
    let backtest = b.wait_for("#backtest-result", "would enter").await;
    assert!(
        backtest.contains("any-open") && backtest.contains("would enter"),
        "{backtest}"
    );
    b.scroll_to("#backtest-result").await;
    b.screenshot(dir, "rules-backtest").await;

    // Published with a message: the history shows it.
    b.fill("#message", "new segment: any email opened").await;
    b.click("#publish").await;
    let notice = b.wait_for("#notice", "Published version 2").await;
    assert!(notice.contains("Published version 2"), "{notice}");
    let history = b.text("#history").await;
    assert!(
        history.contains("new segment: any email opened") && history.contains("in force"),
        "{history}"
    );
    b.scroll_to("#history").await;
    b.screenshot(dir, "rules-history").await;

    // Pin carol into pricing-intent: the membership appears.
    b.goto(&format!("{url}/contact?q=carol%40initech.test")).await;
    assert!(!b.text("#memberships").await.contains("pricing-intent"));
    b.click("#pin-form select[name=segment] option[value=pricing-intent]")
        .await;
    b.fill("#pin-form input[name=reason]", "asked for a quote by phone")
        .await;
    b.click("#pin-form button").await;
    let memberships = b.wait_for("#memberships", "pricing-intent").await;
    assert!(memberships.contains("pricing-intent"), "{memberships}");
    assert!(
        memberships.contains("asked for a quote by phone"),
        "the pin explains itself: {memberships}"
    );
    b.screenshot(dir, "contact-pinned").await;
    b.goto(&format!("{url}/overrides")).await;
    assert!(b.text("#overrides").await.contains("carol@initech.test"));
    b.screenshot(dir, "overrides").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistake_shows_at_its_line_while_typing_without_pressing_validate() {
    let server = ConsoleServer::demo().await;
    let b = Browser::start().await;
    let text = kairos_evaluate::DEFAULT_RULES;
    let line = text.lines().position(|l| l.trim() == "within: 24h").unwrap() + 1;
    b.goto(&format!("{}/rules", server.url)).await;
    b.fill("#text", &text.replacen("within: 24h", "within: 24 hours", 1))
        .await;
    // No button pressed: the console's script validated what was typed.
    let problems = b.wait_for("#problems", "line ").await;
    assert!(
        problems.contains(&format!("line {line}: segment `pricing-intent`")),
        "{problems}"
    );
    assert!(b.text("#live").await.contains("Problems"), "the live status says so");
    // Typing the fix clears them, still without a button.
    b.fill("#text", text).await;
    let live = b.wait_for("#live", "No problems").await;
    assert!(live.contains("No problems"), "{live}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequences_page_shows_variants_and_the_holdout() {
    let dir = screenshots();
    let events = format!(
        "{}\n{}",
        kairos::demo::DEFAULT_EVENTS,
        include_str!("../events/demo/sequences.jsonl")
    );
    let server = ConsoleServer::start(kairos_evaluate::DEFAULT_RULES, &events).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/sequences", server.url)).await;
    let variants = b.text("#variants").await;
    assert!(
        variants.contains("onboarding") && variants.contains("tpl-onboarding-welcome-short"),
        "{variants}"
    );
    assert!(b.text("#holdout").await.contains("Held out (5%)"));
    b.screenshot(dir.as_deref(), "sequences").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_in_a_segment_description_shows_as_text_and_runs_nothing() {
    let rules = "segments:\n  - id: x\n    name: X\n    description: \"<script>alert('owned')</script><img src=x onerror=alert(2)>\"\n    rule: { event: { type: email.clicked, within: 7d } }\n";
    let events = r#"{"id":"1","contact":"a@b.test","type":"email.clicked","at":"2026-11-20T10:00:00Z","source":"t"}"#;
    let server = ConsoleServer::start(rules, events).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/segments", server.url)).await;
    let shown = b.text("#segment-x").await;
    assert!(
        shown.contains("<script>alert('owned')</script><img src=x onerror=alert(2)>"),
        "{shown}"
    );
    assert!(!b.alert_open().await, "no script ran");
}
