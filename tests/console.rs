//! `kairos console` over HTTP (issue 23): the pages over the embedded
//! default, overrides through the admin handlers, CSRF on every change,
//! escaping, rules validated at their lines, backtested, published
//! (a racing publish refused) and rolled back.

mod support;

use support::console::{field_value, ConsoleServer};

const HOSTILE_RULES: &str = "segments:
  - id: clicked
    name: Clicked <b>bold</b>
    description: \"<script>alert('segment')</script>\"
    rule:
      any:
        - event: { type: email.clicked, within: 7d }
        - trait: { title: { contains: vp } }
";

const HOSTILE_EVENTS: &str = r#"{"id":"h1","contact":"eve@evil.test","type":"email.clicked","at":"2026-11-20T10:00:00Z","source":"t"}
{"id":"h2","contact":"eve@evil.test","type":"contact.identified","at":"2026-11-20T10:01:00Z","source":"t","traits":{"title":"<img src=x onerror=alert('trait')>"}}
"#;

#[tokio::test]
async fn html_in_a_description_a_name_or_a_trait_renders_as_text() {
    let server = ConsoleServer::start(HOSTILE_RULES, HOSTILE_EVENTS).await;
    let mut s = server.session();
    let page = s.get("/segments").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<b>bold"));
    // askama escapes with numeric references.
    assert!(
        page.body
            .contains("&#60;script&#62;alert(&#39;segment&#39;)&#60;/script&#62;"),
        "{}",
        page.body
    );
    let contact = s.get("/contact?q=eve@evil.test").await;
    assert_eq!(contact.status, 200, "{}", contact.body);
    assert!(
        contact.body.contains("<td>title</td>"),
        "the trait is shown: {}",
        contact.body
    );
    assert!(!contact.body.contains("<img src=x"), "{}", contact.body);
    assert!(
        contact.body.contains("&#60;img src=x onerror=alert("),
        "{}",
        contact.body
    );
    let rules = s.get("/rules").await;
    assert!(
        !rules.body.contains("<script>alert"),
        "the editor's text is escaped too"
    );
    assert!(rules.body.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn the_segments_page_lists_each_segment_with_its_rule_and_members() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    let page = s.get("/segments").await;
    assert_eq!(page.status, 200);
    for id in [
        "pricing-intent",
        "comparing-vendors",
        "engaged-reader",
        "sales-ready",
        "gone-quiet",
    ] {
        assert!(page.body.contains(&format!("id=\"segment-{id}\"")), "{id}");
    }
    assert!(
        page.body.contains("Viewed the pricing page at least twice"),
        "description"
    );
    assert!(
        page.body.contains("page.viewed where url contains"),
        "the rule in words"
    );
    assert!(page.body.contains("contains: /pricing"), "the rule as written");
    let members = counts(&page.body);
    assert!(members.values().sum::<usize>() > 0, "{members:?}");
    // The counters (kept from transitions) agree with the contacts' effective memberships.
    assert_eq!(members, scanned_members(&server).await);
    // The trend ends at members now; the chart's bars carry each day's entries and exits.
    for row in page.body.split("<tr id=\"segment-").skip(1) {
        let trend = row.split("class=\"trend\"").nth(1).unwrap();
        let trend = trend.split('>').nth(1).unwrap().split('<').next().unwrap();
        assert_eq!(trend.split(" → ").count(), 7, "{trend}");
        let now = row
            .split("class=\"members\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        assert_eq!(trend.rsplit(" → ").next().unwrap(), now.trim(), "{trend}");
        assert_eq!(row.matches("<rect class=\"entries\"").count(), 7);
    }
    let entered: u64 = page
        .body
        .split(" entered, ")
        .filter_map(|p| p.rsplit(": ").next()?.parse::<u64>().ok())
        .sum();
    assert!(entered > 0, "some entries in the last 7 days");
}

/// Members per segment counted from each contact's effective memberships.
async fn scanned_members(server: &ConsoleServer) -> std::collections::BTreeMap<String, usize> {
    use kairos_store::ContactStore;
    let console = &server.console;
    let version = console.rules().current();
    let mut out: std::collections::BTreeMap<String, usize> =
        version.rules.segments().map(|s| (s.id.to_string(), 0)).collect();
    for key in console.store().contacts() {
        let record = console.store().load(&key).await.unwrap().unwrap();
        if record.merged_into.is_some() {
            continue;
        }
        let contact = kairos_engine::Contact {
            state: record.state,
            overrides: record.overrides,
            ..Default::default()
        };
        for id in kairos_engine::effective(&version.rules, &contact) {
            *out.get_mut(&id).unwrap() += 1;
        }
    }
    out
}

/// Member count per segment row of the segments page.
fn counts(body: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for row in body.split("<tr id=\"segment-").skip(1) {
        let id = row.split('"').next().unwrap().to_string();
        let n = row.split("class=\"members\">").nth(1).unwrap();
        out.insert(id, n.split('<').next().unwrap().trim().parse().unwrap());
    }
    out
}

#[tokio::test]
async fn a_contact_shows_memberships_with_explanations_consent_and_the_audit_trail() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    let page = s.get("/contact?q=bob@globex.test").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("class=\"membership\""), "{}", page.body);
    assert!(page.body.contains("class=\"explanation\""));
    assert!(page.body.contains("✓"), "held conditions are marked");
    assert!(page.body.contains("id=\"consent\">subscribed"), "{}", page.body);
    assert!(
        page.body.contains("<span class=\"tag\">transition</span>"),
        "the audit trail"
    );
    // The same contact by another spelling of its email (keys are normalized).
    assert_eq!(s.get("/contact?q=Bob@Globex.test").await.status, 200);
    let missing = s.get("/contact?q=nobody@nowhere.test").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no contact with this key"));
}

#[tokio::test]
async fn pinning_changes_the_membership_and_the_audit_then_lifting_undoes_it() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    let before = s.get("/contact?q=carol@initech.test").await;
    assert!(!before.body.contains("data-segment=\"pricing-intent\""));
    let count = counts(&s.get("/segments").await.body)["pricing-intent"];
    let pinned = s
        .post(
            "/overrides/pin",
            &[
                ("contact", "carol@initech.test"),
                ("segment", "pricing-intent"),
                ("member", "in"),
                ("reason", "asked for a quote by phone"),
                ("expires_at", "2027-01-31T00:00:00Z"),
                ("back", "/contact?q=carol%40initech.test"),
            ],
        )
        .await;
    assert_eq!(pinned.status, 303, "{}", pinned.body);
    assert_eq!(pinned.location.as_deref(), Some("/contact?q=carol%40initech.test"));
    let after = s.get("/contact?q=carol@initech.test").await;
    assert!(after.body.contains("data-segment=\"pricing-intent\""), "{}", after.body);
    assert!(after.body.contains("asked for a quote by phone"));
    assert!(
        after.body.contains("by admin-key:console-local"),
        "attributed: {}",
        after.body
    );
    assert_eq!(counts(&s.get("/segments").await.body)["pricing-intent"], count + 1);
    let listed = s.get("/overrides").await;
    assert!(listed.body.contains("carol@initech.test") && listed.body.contains("2027-01-31T00:00:00Z"));
    let lifted = s
        .post(
            "/overrides/lift",
            &[
                ("contact", "carol@initech.test"),
                ("segment", "pricing-intent"),
                ("back", "/overrides"),
            ],
        )
        .await;
    assert_eq!(lifted.status, 303, "{}", lifted.body);
    let gone = s.get("/contact?q=carol@initech.test").await;
    assert!(!gone.body.contains("data-segment=\"pricing-intent\""));
    assert_eq!(counts(&s.get("/segments").await.body)["pricing-intent"], count);
    // The admin handler's own checks answer through the page.
    let bad = s
        .post(
            "/overrides/pin",
            &[
                ("contact", "carol@initech.test"),
                ("segment", "no-such"),
                ("member", "in"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(bad.status, 404);
    assert!(bad.body.contains("no segment `no-such`"), "{}", bad.body);
}

#[tokio::test]
async fn every_change_without_the_matching_csrf_token_is_refused() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    s.get("/contact?q=carol@initech.test").await;
    let pin = [
        ("contact", "carol@initech.test"),
        ("segment", "pricing-intent"),
        ("member", "in"),
        ("reason", "forged"),
    ];
    let mut forged = pin.to_vec();
    forged.push(("csrf", ""));
    assert_eq!(s.post("/overrides/pin", &forged).await.status, 403);
    // Another browser's token does not fit this browser's cookie.
    let mut other = server.session();
    other.get("/overrides").await;
    let theirs = other.csrf.clone().unwrap();
    assert_ne!(Some(&theirs), s.csrf.as_ref());
    let mut crossed = pin.to_vec();
    crossed.push(("csrf", &theirs));
    assert_eq!(s.post("/overrides/pin", &crossed).await.status, 403);
    // No cookie at all (a cross-site form post sends none: SameSite=Strict).
    let mut bare = server.session();
    let mut with_token = pin.to_vec();
    with_token.push(("csrf", &theirs));
    assert_eq!(bare.post("/overrides/pin", &with_token).await.status, 403);
    let rules = [
        ("text", "segments: []"),
        ("base", "1"),
        ("message", "x"),
        ("action", "publish"),
    ];
    let mut rules_forged = rules.to_vec();
    rules_forged.push(("csrf", "0000"));
    assert_eq!(s.post("/rules", &rules_forged).await.status, 403);
    assert_eq!(
        s.post("/rules/rollback", &[("csrf", ""), ("to", "1"), ("base", "1")])
            .await
            .status,
        403
    );
    assert_eq!(server.console.rules().current().number, 1, "nothing published");
    let page = s.get("/contact?q=carol@initech.test").await;
    assert!(!page.body.contains("forged"), "nothing pinned");
}

#[tokio::test]
async fn validate_names_each_problem_at_its_line() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    let page = s.get("/rules").await;
    let text = kairos_evaluate::DEFAULT_RULES;
    let line = text.lines().position(|l| l.trim() == "within: 24h").unwrap() + 1;
    let broken = text.replacen("within: 24h", "within: 24 hours", 1);
    assert!(page.body.contains("Editing on top of version 1"));
    let checked = s
        .post("/rules", &[("text", &broken), ("base", "1"), ("action", "validate")])
        .await;
    assert_eq!(checked.status, 422);
    assert!(
        checked.body.contains(&format!("line {line}: segment `pricing-intent`")),
        "line {line}: {}",
        checked.body
    );
    let fixed = s
        .post("/rules", &[("text", text), ("base", "1"), ("action", "validate")])
        .await;
    assert_eq!(fixed.status, 200);
    assert!(fixed.body.contains("No problems"), "{}", fixed.body);
    let syntax = s
        .post(
            "/rules",
            &[
                ("text", "segments:\n  - id: [\n"),
                ("base", "1"),
                ("action", "validate"),
            ],
        )
        .await;
    assert_eq!(syntax.status, 422);
    assert!(syntax.body.contains("line "), "{}", syntax.body);
}

#[tokio::test]
async fn a_backtest_shows_who_would_enter_with_explanations() {
    let server = ConsoleServer::demo().await;
    let mut s = server.session();
    s.get("/rules").await;
    let edited = kairos_evaluate::DEFAULT_RULES.replacen(
        "\nsegments:\n",
        "\nsegments:\n  - id: any-open\n    name: Opened any email\n    rule: { event: { type: email.opened, within: 30d } }\n",
        1,
    );
    let page = s
        .post("/rules", &[("text", &edited), ("base", "1"), ("action", "backtest")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = page
        .body
        .split("<tr data-segment=\"any-open\">")
        .nth(1)
        .expect("a row for the new segment");
    let entering: usize = row
        .split("class=\"entering\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(entering > 0, "{row}");
    assert!(row.contains("would enter"));
    assert!(row.contains("email.opened within 30d"), "the explanation: {row}");
    let unchanged = page.body.split("<tr data-segment=\"pricing-intent\">").nth(1).unwrap();
    assert!(unchanged.contains("class=\"entering\">0<") && unchanged.contains("class=\"leaving\">0<"));
}

#[tokio::test]
async fn publish_needs_a_message_refuses_a_race_and_can_roll_back() {
    let server = ConsoleServer::demo().await;
    let (mut alice, mut bert) = (server.session(), server.session());
    alice.get("/rules").await;
    let bert_page = bert.get("/rules").await;
    assert_eq!(field_value(&bert_page.body, "base").as_deref(), Some("1"));
    let edited = kairos_evaluate::DEFAULT_RULES.replacen("count: { gte: 2 }", "count: { gte: 3 }", 1);
    assert_ne!(edited, kairos_evaluate::DEFAULT_RULES);
    let silent = alice
        .post(
            "/rules",
            &[
                ("text", &edited),
                ("base", "1"),
                ("message", " "),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(silent.status, 400);
    assert!(silent.body.contains("a message saying why is required"));
    let invalid = alice
        .post(
            "/rules",
            &[
                ("text", "segments: [{ id: x }]"),
                ("base", "1"),
                ("message", "m"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.body.contains("id=\"problems\""));
    let published = alice
        .post(
            "/rules",
            &[
                ("text", &edited),
                ("base", "1"),
                ("message", "pricing: three views"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(published.status, 303, "{}", published.body);
    let raced = bert
        .post(
            "/rules",
            &[
                ("text", kairos_evaluate::DEFAULT_RULES),
                ("base", "1"),
                ("message", "mine"),
                ("action", "publish"),
            ],
        )
        .await;
    assert_eq!(raced.status, 409, "{}", raced.body);
    assert!(
        raced.body.contains("version 2 was published after version 1"),
        "{}",
        raced.body
    );
    assert!(raced.body.contains("mine"), "the editor keeps the message");
    let after = alice.get(published.location.as_deref().unwrap()).await;
    assert!(after.body.contains("Published version 2"), "{}", after.body);
    assert!(after.body.contains("pricing: three views"));
    assert!(
        after.body.contains("count: { gte: 3 }"),
        "the editor shows the rules in force"
    );
    assert_eq!(
        server.console.rules().history().len(),
        2,
        "the race did not add a version"
    );
    let back = alice.post("/rules/rollback", &[("to", "1"), ("base", "2")]).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let now = server.console.rules().current();
    assert_eq!((now.number, now.message.as_str()), (3, "rollback to version 1"));
    assert_eq!(now.text, kairos_evaluate::DEFAULT_RULES);
    let stale = alice.post("/rules/rollback", &[("to", "1"), ("base", "2")]).await;
    assert_eq!(stale.status, 409);
}

#[tokio::test]
async fn the_rules_page_loads_its_script_from_the_console_and_the_policy_allows_no_other() {
    let server = ConsoleServer::demo().await;
    let rules = reqwest::get(format!("{}/rules", server.url)).await.unwrap();
    let policy = rules.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("connect-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    let body = rules.text().await.unwrap();
    assert!(body.contains("<script src=\"/console.js\" defer></script>"));
    assert_eq!(body.matches("<script").count(), 1, "no inline script");
    let script = reqwest::get(format!("{}/console.js", server.url)).await.unwrap();
    assert_eq!(script.status(), 200);
    let kind = script.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/javascript"), "{kind}");
    let js = script.text().await.unwrap();
    assert!(
        js.contains("\"validate\"") && js.contains("FormData(form)"),
        "posts the form's validate action, token included"
    );
}

#[tokio::test]
async fn the_sequences_page_shows_each_variant_as_the_sequences_report_does_and_escapes() {
    let hostile = "tpl-<i>short</i>";
    let rules = kairos_evaluate::DEFAULT_RULES.replace("tpl-onboarding-welcome-short", hostile);
    let events = format!(
        "{}\n{}",
        kairos::demo::DEFAULT_EVENTS,
        include_str!("../events/demo/sequences.jsonl").replace("tpl-onboarding-welcome-short", hostile)
    );
    let server = ConsoleServer::start(&rules, &events).await;
    let mut s = server.session();
    let page = s.get("/sequences").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("tpl-&#60;i&#62;short&#60;/i&#62;"), "escaped");
    assert!(!page.body.contains(hostile));
    // Every variant's sends, goals and posterior as `kairos sequences report` computes them.
    let parsed = kairos_rules::RuleSet::from_yaml(&rules).unwrap();
    let report = kairos::sequences::play(&parsed, events.as_bytes(), Some(server.console.clock())).report();
    let variants = report["variants"].as_array().unwrap();
    assert!(
        variants.iter().any(|v| v["sends"].as_u64() > Some(0)),
        "the history has sends"
    );
    for v in variants {
        let id = format!(
            "{}/{}/{}",
            v["sequence"].as_str().unwrap(),
            v["step"].as_str().unwrap(),
            v["variant"].as_str().unwrap()
        );
        let row = page
            .body
            .split(&format!("data-variant=\"{id}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("{id}"));
        let cell = |class: &str| {
            row.split(&format!("class=\"{class}\">"))
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(cell("sends"), v["sends"].to_string(), "{id}");
        assert_eq!(cell("goals"), v["goals"].to_string(), "{id}");
        assert_eq!(
            cell("posterior"),
            format!("{:.3}", v["posterior_mean"].as_f64().unwrap()),
            "{id}"
        );
    }
    let holdout = page.body.split("id=\"holdout\"").nth(1).unwrap();
    assert!(
        holdout.contains("Held out (5%)") && holdout.contains("id=\"lift\""),
        "{holdout}"
    );
}
