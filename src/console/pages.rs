//! The routes and their pages.

use super::backend::{Backend, ConsoleError, Sample};
use super::explain::{self, Line};
use super::rules::{problems, PublishError, Version};
use super::{admin, csrf, time, Console};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::DateTime;
use futures_util::stream::{self, StreamExt};
use kairos_store::{ContactScan, ContactStore, PinnedContacts, SegmentCounters};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Shared<B> = State<Arc<Console<B>>>;

/// The console's routes over `console`.
pub fn router<B: Backend>(console: Arc<Console<B>>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/segments") }))
        .route("/segments", get(segments::<B>))
        .route("/contact", get(contact::<B>))
        .route("/overrides", get(overrides::<B>))
        .route("/overrides/pin", post(pin::<B>))
        .route("/overrides/lift", post(lift::<B>))
        .route("/rules", get(rules_page::<B>).post(rules_action::<B>))
        .route("/rules/rollback", post(rollback::<B>))
        .route("/console.js", get(script))
        .route("/sequences", get(sequences::<B>))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// The console's one script: validation as the rules are typed (progressive).
const SCRIPT: &str = include_str!("../../templates/console/console.js");

async fn script() -> Response {
    let mut response = SCRIPT.into_response();
    let kind = HeaderValue::from_static("text/javascript; charset=utf-8");
    response.headers_mut().insert(header::CONTENT_TYPE, kind);
    response
}

/// No script runs but the console's own file (no inline script), it talks
/// only to its own origin, nothing frames the console.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let policy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
                  img-src 'self'; form-action 'self'; frame-ancestors 'none'";
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// What every page's header shows.
struct Chrome {
    user: String,
    clock: String,
    version: String,
}

fn chrome<B: Backend>(console: &Console<B>, version: &Version) -> Chrome {
    Chrome {
        user: super::access::actor(),
        clock: time(console.clock()),
        version: version.id.clone(),
    }
}

/// The rules in force, or the page saying they could not be read.
async fn in_force<B: Backend>(console: &Console<B>) -> Result<Arc<Version>, Response> {
    match console.backend().current().await {
        Ok(version) => Ok(version),
        Err(err) => Err(unavailable(console, &err).await),
    }
}

/// The page for a backend failure (503: retrying may help).
async fn unavailable<B: Backend>(console: &Console<B>, err: &ConsoleError) -> Response {
    tracing::warn!(error = %err, "console: reading its state failed");
    let message = format!("not available right now: {err}");
    refused(console, StatusCode::SERVICE_UNAVAILABLE, message, "/").await
}

fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| explain::plain(value), str::to_string)
}

/// A rendered page with its status, setting the CSRF cookie if it is new.
fn page(template: &impl Template, status: StatusCode, cookie: Option<HeaderValue>) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, axum::response::Html(html)).into_response();
            csrf::set(response.headers_mut(), cookie);
            response
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering: {err}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    message: String,
    back: String,
}

pub(super) async fn refused<B: Backend>(
    console: &Console<B>,
    status: StatusCode,
    message: impl Into<String>,
    back: &str,
) -> Response {
    let chrome = match console.backend().current().await {
        Ok(version) => chrome(console, &version),
        Err(_) => Chrome {
            user: super::access::actor(),
            clock: time(console.clock()),
            version: "unavailable".into(),
        },
    };
    let error = ErrorPage {
        chrome,
        message: message.into(),
        back: local(back),
    };
    page(&error, status, None)
}

async fn forged<B: Backend>(console: &Console<B>, back: &str) -> Response {
    let message =
        "refused: the form's CSRF token is missing or does not match this browser's; reload the page and try again";
    refused(console, StatusCode::FORBIDDEN, message, back).await
}

/// A path on this site (anything else, e.g. `//evil.test`, becomes `/`).
fn local(back: &str) -> String {
    if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back.to_string()
    } else {
        "/".to_string()
    }
}

// ── Segments ────────────────────────────────────────────────────────────

struct SegmentRow {
    id: String,
    name: String,
    description: String,
    purpose: &'static str,
    paused: bool,
    members: i64,
    /// Members at the end of each of the last 7 days, oldest first.
    trend: Vec<i64>,
    chart: Chart,
    rule: String,
    sentence: Vec<Line>,
}

/// Entries and exits per day as SVG bars (no script): entries up from the
/// middle line, exits down from it.
struct Chart {
    bars: Vec<Bar>,
}

/// One day's bars; every number is SVG user units.
struct Bar {
    day: String,
    x: u32,
    entries: u64,
    exits: u64,
    up: u32,
    down: u32,
}

/// Half the chart's height: the tallest bar.
const CHART_HALF: u32 = 20;

impl Chart {
    fn of(days: &[kairos_store::DayCount]) -> Chart {
        let most = days.iter().map(|d| d.entries.max(d.exits)).max().unwrap_or(0).max(1);
        let scale = |n: u64| ((n * u64::from(CHART_HALF)).div_ceil(most)) as u32;
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, d)| Bar {
                day: d.day.clone(),
                x: i as u32 * 12,
                entries: d.entries,
                exits: d.exits,
                up: scale(d.entries),
                down: scale(d.exits),
            })
            .collect();
        Chart { bars }
    }
}

/// How many days the trend and chart show.
const TREND_DAYS: usize = 7;
/// Segments whose counters are read at once (two `BatchGetItem` requests each).
const SEGMENTS_READ_AT_ONCE: usize = 8;

#[derive(Template)]
#[template(path = "console/segments.html")]
struct SegmentsPage {
    chrome: Chrome,
    rows: Vec<SegmentRow>,
    /// Every contact, when known without reading every record (locally).
    contacts: Option<u64>,
}

async fn segments<B: Backend>(State(console): Shared<B>, headers: HeaderMap) -> Response {
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let rules = &version.rules;
    let clock = console.clock();
    let contacts = console.backend().contact_count().await;
    let days = kairos_store::last_days(clock.timestamp(), TREND_DAYS);
    let store = console.backend().store();
    let ids: Vec<String> = rules.segments().map(|s| s.id.to_string()).collect();
    let reads = stream::iter(ids)
        .map(|id| {
            let days = &days;
            async move {
                let read = store.segment_counts(&id, days).await;
                (id, read)
            }
        })
        .buffered(SEGMENTS_READ_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut counts = HashMap::new();
    for (id, read) in reads {
        match read {
            Ok(read) => counts.insert(id, read),
            Err(err) => return unavailable(&console, &err.into()).await,
        };
    }
    let file = kairos_rules::read_yaml(&version.text).unwrap_or(Value::Null);
    let written = file["segments"].as_array().cloned().unwrap_or_default();
    let blank = rules.evaluate(&kairos_state::ContactState::default(), clock.timestamp());
    let rows = rules
        .segments()
        .map(|s| {
            let rule = written
                .iter()
                .find(|w| w["id"].as_str() == Some(s.id))
                .map(|w| &w["rule"]);
            let verdict = blank.verdicts.iter().find(|v| v.segment == s.id);
            SegmentRow {
                id: s.id.to_string(),
                name: s.name.to_string(),
                description: s.description.to_string(),
                purpose: if s.purpose.is_marketing() {
                    "marketing"
                } else {
                    "operational"
                },
                paused: s.paused,
                members: counts[s.id].members,
                trend: counts[s.id].trend(),
                chart: Chart::of(&counts[s.id].days),
                rule: rule.and_then(|r| serde_norway::to_string(r).ok()).unwrap_or_default(),
                sentence: verdict.map_or_else(Vec::new, |v| explain::conditions(&json!(v.explanation))),
            }
        })
        .collect();
    let (_, cookie) = csrf::token(&headers);
    let view = SegmentsPage {
        chrome: chrome(&console, &version),
        rows,
        contacts,
    };
    page(&view, StatusCode::OK, cookie)
}

// ── Sequences ───────────────────────────────────────────────────────────

#[derive(Template)]
#[template(path = "console/sequences.html")]
struct SequencesPage {
    chrome: Chrome,
    report: super::sequences::Report,
    /// Where the events came from.
    source: String,
}

async fn sequences<B: Backend>(State(console): Shared<B>) -> Response {
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let sample = match console.backend().sample().await {
        Ok(sample) => sample,
        Err(err) => return unavailable(&console, &err).await,
    };
    let view = SequencesPage {
        chrome: chrome(&console, &version),
        report: super::sequences::report(&version.rules, &sample, console.clock()),
        source: sample.source.clone(),
    };
    page(&view, StatusCode::OK, None)
}

// ── Contact ─────────────────────────────────────────────────────────────

struct MembershipView {
    segment: String,
    since: String,
    rule_version: Option<String>,
    written: bool,
    lines: Vec<Line>,
}

struct OverrideView {
    contact: String,
    segment: String,
    member: bool,
    reason: String,
    actor: String,
    at: String,
    expires_at: Option<String>,
}

struct AuditView {
    at: String,
    kind: String,
    segment: Option<String>,
    change: Option<String>,
    summary: String,
    cause: String,
    actor: Option<String>,
}

struct ContactView {
    key: String,
    version: u64,
    consent: String,
    consent_since: Option<String>,
    merged: u64,
    next_change_at: Option<String>,
    next_change: Vec<String>,
    memberships: Vec<MembershipView>,
    overrides: Vec<OverrideView>,
    traits: Vec<(String, String)>,
    audit: Vec<AuditView>,
    next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/contact.html")]
struct ContactPage {
    chrome: Chrome,
    csrf: String,
    query: String,
    error: Option<String>,
    contact: Option<ContactView>,
    segments: Vec<String>,
    pin_contact: String,
    back: String,
}

#[derive(Deserialize)]
struct ContactQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: Option<String>,
}

async fn contact<B: Backend>(
    State(console): Shared<B>,
    headers: HeaderMap,
    Query(query): Query<ContactQuery>,
) -> Response {
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let (token, cookie) = csrf::token(&headers);
    let q = query.q.trim().to_string();
    let (mut error, mut view, mut status) = (None, None, StatusCode::OK);
    if !q.is_empty() {
        match contact_view(&console, &version, &q, query.cursor.as_deref()).await {
            Ok(v) => view = Some(v),
            Err((code, message)) => {
                status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                error = Some(message);
            }
        }
    }
    let key = view.as_ref().map_or(q.clone(), |v: &ContactView| v.key.clone());
    let back = format!("/contact?q={}", admin::encode(&key));
    let template = ContactPage {
        chrome: chrome(&console, &version),
        csrf: token,
        query: q,
        error,
        segments: segment_ids(&version),
        pin_contact: key,
        back,
        contact: view,
    };
    page(&template, status, cookie)
}

fn segment_ids(version: &Version) -> Vec<String> {
    version.rules.segments().map(|s| s.id.to_string()).collect()
}

async fn contact_view<B: Backend>(
    console: &Console<B>,
    version: &Version,
    q: &str,
    cursor: Option<&str>,
) -> Result<ContactView, (u16, String)> {
    let failed = |(code, body): (u16, Value)| (code, body["error"].as_str().unwrap_or("failed").to_string());
    let (code, doc) = admin::call(console, version, Method::GET, q, "", None).await;
    if code != 200 {
        return Err(failed((code, doc)));
    }
    let key = doc["contact"].as_str().unwrap_or(q).to_string();
    let audit_query = cursor
        .map(|c| format!("?cursor={}", admin::encode(c)))
        .unwrap_or_default();
    let (code, trail) = admin::call(
        console,
        version,
        Method::GET,
        &key,
        &format!("/audit{audit_query}"),
        None,
    )
    .await;
    if code != 200 {
        return Err(failed((code, trail)));
    }
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let opt = |v: &Value| v.as_str().map(str::to_string);
    Ok(ContactView {
        version: doc["version"].as_u64().unwrap_or(0),
        consent: text(&doc["consent"]["status"]),
        consent_since: opt(&doc["consent"]["since"]),
        merged: doc["merged_anonymous_ids"].as_u64().unwrap_or(0),
        next_change_at: opt(&doc["next_change_at"]),
        next_change: next_change(console, version, &key, &doc["next_change_at"]).await,
        memberships: list(&doc["memberships"])
            .iter()
            .map(|m| MembershipView {
                segment: text(&m["segment"]),
                since: text(&m["since"]),
                rule_version: m["rule_version"]
                    .as_u64()
                    .map(|v| format!("{v:08x}"))
                    .or_else(|| opt(&m["rule_version"])),
                written: m["written"].as_bool().unwrap_or(true),
                lines: explain::lines(&m["explanation"]),
            })
            .collect(),
        overrides: list(&doc["overrides"]).iter().map(|o| override_view(&key, o)).collect(),
        traits: doc["traits"]
            .as_object()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default(),
        audit: list(&trail["entries"])
            .iter()
            .map(|a| AuditView {
                at: text(&a["at"]),
                kind: text(&a["kind"]),
                segment: opt(&a["segment"]),
                change: opt(&a["change"]),
                summary: text(&a["summary"]),
                cause: text(&a["cause"]),
                actor: opt(&a["actor"]),
            })
            .collect(),
        next_cursor: opt(&trail["next_cursor"]),
        key,
    })
}

fn override_view(contact: &str, o: &Value) -> OverrideView {
    OverrideView {
        contact: contact.to_string(),
        segment: text(&o["segment"]),
        member: o["member"].as_bool().unwrap_or(false),
        reason: text(&o["reason"]),
        actor: text(&o["actor"]),
        at: text(&o["at"]),
        expires_at: o["expires_at"].as_str().map(str::to_string),
    }
}

/// What the next change will be: the segments the rules would enter or
/// leave at `next_change_at` with no new event.
async fn next_change<B: Backend>(console: &Console<B>, version: &Version, key: &str, at: &Value) -> Vec<String> {
    let at = at.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let (Some(at), Ok(Some(record))) = (at, console.backend().store().load(key).await) else {
        return Vec::new();
    };
    let rules = &version.rules;
    let now: Vec<String> = rules
        .evaluate(&record.state, console.clock().timestamp())
        .members()
        .map(str::to_string)
        .collect();
    let then: Vec<String> = rules
        .evaluate(&record.state, at.timestamp())
        .members()
        .map(str::to_string)
        .collect();
    let mut out: Vec<String> = then
        .iter()
        .filter(|s| !now.contains(s))
        .map(|s| format!("enters {s}"))
        .collect();
    out.extend(now.iter().filter(|s| !then.contains(s)).map(|s| format!("leaves {s}")));
    if out.is_empty() {
        out.push("a window or score moves; no membership changes".into());
    }
    out
}

// ── Overrides ───────────────────────────────────────────────────────────

#[derive(Template)]
#[template(path = "console/overrides.html")]
struct OverridesPage {
    chrome: Chrome,
    csrf: String,
    rows: Vec<OverrideView>,
    segments: Vec<String>,
    pin_contact: String,
    back: String,
    /// The next page's first contact comes after this one.
    next: Option<String>,
}

/// Pinned contacts per page of the Overrides page.
const OVERRIDES_PAGE: usize = 50;

#[derive(Deserialize)]
struct OverridesQuery {
    #[serde(default)]
    after: Option<String>,
}

async fn overrides<B: Backend>(
    State(console): Shared<B>,
    headers: HeaderMap,
    Query(query): Query<OverridesQuery>,
) -> Response {
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let (token, cookie) = csrf::token(&headers);
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let pinned = match console.backend().store().pinned(after, OVERRIDES_PAGE).await {
        Ok(pinned) => pinned,
        Err(err) => return unavailable(&console, &err.into()).await,
    };
    let at = |t: i64| DateTime::from_timestamp(t, 0).map(time).unwrap_or_default();
    let rows = pinned
        .contacts
        .iter()
        .flat_map(|(key, overrides)| {
            overrides.iter().map(move |o| OverrideView {
                contact: key.clone(),
                segment: o.segment.clone(),
                member: o.member,
                reason: o.reason.clone(),
                actor: o.actor.clone(),
                at: at(o.at),
                expires_at: o.expires_at.map(at),
            })
        })
        .collect();
    let template = OverridesPage {
        chrome: chrome(&console, &version),
        csrf: token,
        rows,
        segments: segment_ids(&version),
        pin_contact: String::new(),
        back: "/overrides".into(),
        next: pinned.next,
    };
    page(&template, StatusCode::OK, cookie)
}

#[derive(Deserialize)]
struct PinForm {
    #[serde(default)]
    csrf: String,
    contact: String,
    segment: String,
    member: String,
    reason: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    back: String,
}

async fn pin<B: Backend>(State(console): Shared<B>, headers: HeaderMap, Form(form): Form<PinForm>) -> Response {
    if !csrf::valid(&headers, &form.csrf) {
        return forged(&console, &form.back).await;
    }
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let member = match form.member.as_str() {
        "in" => true,
        "out" => false,
        other => {
            return refused(
                &console,
                StatusCode::BAD_REQUEST,
                format!("pin: expected in or out, got `{other}`"),
                &form.back,
            )
            .await
        }
    };
    let mut body = json!({"member": member, "reason": form.reason});
    if !form.expires_at.trim().is_empty() {
        body["expires_at"] = json!(form.expires_at.trim());
    }
    let rest = format!("/overrides/{}", admin::encode(&form.segment));
    let (code, answer) = admin::call(
        &console,
        &version,
        Method::PUT,
        form.contact.trim(),
        &rest,
        Some(body.to_string()),
    )
    .await;
    done(&console, code, &answer, &form.back).await
}

#[derive(Deserialize)]
struct LiftForm {
    #[serde(default)]
    csrf: String,
    contact: String,
    segment: String,
    #[serde(default)]
    back: String,
}

async fn lift<B: Backend>(State(console): Shared<B>, headers: HeaderMap, Form(form): Form<LiftForm>) -> Response {
    if !csrf::valid(&headers, &form.csrf) {
        return forged(&console, &form.back).await;
    }
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let rest = format!("/overrides/{}", admin::encode(&form.segment));
    let (code, answer) = admin::call(&console, &version, Method::DELETE, form.contact.trim(), &rest, None).await;
    done(&console, code, &answer, &form.back).await
}

/// Back where the change was asked for, or the admin API's error.
async fn done<B: Backend>(console: &Console<B>, code: u16, answer: &Value, back: &str) -> Response {
    if code == 200 {
        return Redirect::to(&local(back)).into_response();
    }
    let mut message = text(&answer["error"]);
    if let Some(field) = answer["field"].as_str() {
        message.push_str(&format!(" (field {field})"));
    }
    refused(
        console,
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        message,
        back,
    )
    .await
}

// ── Rules ───────────────────────────────────────────────────────────────

struct VersionView {
    id: String,
    at: String,
    by: String,
    message: String,
    current: bool,
}

struct ProblemView {
    line: Option<usize>,
    text: String,
}

struct ExampleView {
    contact: String,
    change: &'static str,
    lines: Vec<Line>,
}

struct BacktestRow {
    segment: String,
    old: usize,
    new: usize,
    entering: usize,
    leaving: usize,
    examples: Vec<ExampleView>,
}

#[derive(Template)]
#[template(path = "console/rules.html")]
struct RulesPage {
    chrome: Chrome,
    csrf: String,
    current: String,
    base: String,
    text: String,
    message: String,
    /// Events the user gave for a backtest (JSON lines), kept in the form.
    sample: String,
    sample_limit_kb: usize,
    problems: Vec<ProblemView>,
    notice: Option<String>,
    /// Where re-deciding every contact under the version in force stands (AWS).
    backfill: Option<String>,
    error: Option<String>,
    backtest: Option<Vec<BacktestRow>>,
    history: Vec<VersionView>,
}

impl RulesPage {
    /// The page over the version in force, editing `text` on top of `base`.
    async fn new<B: Backend>(
        console: &Console<B>,
        current: &Version,
        csrf: String,
        text: String,
        base: String,
    ) -> Result<RulesPage, ConsoleError> {
        let history = console
            .backend()
            .history()
            .await?
            .into_iter()
            .map(|v| VersionView {
                current: v.id == current.id,
                id: v.id,
                at: v.at,
                by: v.by,
                message: v.message,
            })
            .collect();
        Ok(RulesPage {
            chrome: chrome(console, current),
            csrf,
            current: current.id.clone(),
            base,
            text,
            message: String::new(),
            sample: String::new(),
            sample_limit_kb: super::sample::MAX_UPLOAD_BYTES / 1024,
            problems: Vec::new(),
            notice: None,
            backfill: backfill(console, current).await,
            error: None,
            backtest: None,
            history,
        })
    }

    fn problems(&mut self) -> bool {
        self.problems = problems(&self.text)
            .into_iter()
            .map(|p| ProblemView {
                line: p.line,
                text: p.text,
            })
            .collect();
        self.problems.is_empty()
    }
}

/// Where the sweep's backfill stands for the version in force (`None`
/// locally, where a publish re-decides every contact in the request, and
/// before anything was published).
async fn backfill<B: Backend>(console: &Console<B>, current: &Version) -> Option<String> {
    if !console.backend().backfills() || current.number == 0 {
        return None;
    }
    Some(match console.backend().store().progress().await {
        Ok(Some(p)) if p.seq == current.number && p.done() => {
            format!("Backfill done: {} contacts re-decided under this version.", p.sent)
        }
        Ok(Some(p)) if p.seq == current.number => format!(
            "Backfill in progress: {} contacts re-decided so far (part {} of {}).",
            p.sent,
            p.segment + 1,
            p.segments
        ),
        Ok(Some(p)) if p.seq > current.number => "Backfill: a newer version is being backfilled.".to_string(),
        Ok(_) => "Backfill pending: the sweep re-decides every contact under this version \
                  (it starts within a minute of the publish)."
            .to_string(),
        Err(err) => format!("Backfill: its progress could not be read ({err})."),
    })
}

#[derive(Deserialize)]
struct RulesQuery {
    published: Option<String>,
    redecided: Option<usize>,
}

async fn rules_page<B: Backend>(
    State(console): Shared<B>,
    headers: HeaderMap,
    Query(query): Query<RulesQuery>,
) -> Response {
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let (token, cookie) = csrf::token(&headers);
    let view = RulesPage::new(&console, &version, token, version.text.clone(), version.id.clone()).await;
    let mut view = match view {
        Ok(view) => view,
        Err(err) => return unavailable(&console, &err).await,
    };
    if let Some(n) = query.published {
        view.notice = Some(match query.redecided {
            Some(redecided) => format!("Published version {n}; {redecided} contacts re-decided under it."),
            None => format!("Published version {n}; the sweep's backfill re-decides every contact under it."),
        });
    }
    page(&view, StatusCode::OK, cookie)
}

#[derive(Deserialize)]
struct RulesForm {
    #[serde(default)]
    csrf: String,
    text: String,
    base: String,
    #[serde(default)]
    message: String,
    /// Events to backtest on instead of the sample (JSON lines).
    #[serde(default)]
    sample: String,
    action: String,
}

async fn rules_action<B: Backend>(
    State(console): Shared<B>,
    headers: HeaderMap,
    Form(form): Form<RulesForm>,
) -> Response {
    if !csrf::valid(&headers, &form.csrf) {
        return forged(&console, "/rules").await;
    }
    let version = match in_force(&console).await {
        Ok(version) => version,
        Err(page) => return page,
    };
    let text = form.text.replace("\r\n", "\n");
    let view = RulesPage::new(&console, &version, form.csrf.clone(), text, form.base.clone()).await;
    let mut view = match view {
        Ok(view) => view,
        Err(err) => return unavailable(&console, &err).await,
    };
    view.message = form.message.clone();
    view.sample = form.sample.clone();
    let status = match form.action.as_str() {
        "validate" => validate(&mut view),
        "backtest" => run_backtest(&console, &version, &mut view).await,
        "publish" => match console.publish(&view.text, &form.message, &form.base).await {
            Ok(published) => return Redirect::to(&published_at(&published)).into_response(),
            Err(err) => publish_refused(&mut view, err),
        },
        other => {
            view.error = Some(format!(
                "unknown action `{other}`: expected validate, backtest or publish"
            ));
            StatusCode::BAD_REQUEST
        }
    };
    page(&view, status, None)
}

fn validate(view: &mut RulesPage) -> StatusCode {
    if !view.problems() {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    let n = console_segments(&view.text);
    view.notice = Some(format!("No problems: the rules compile ({n} segments)."));
    StatusCode::OK
}

/// The backtest of the edited rules on the uploaded events, or else the backend's sample.
async fn run_backtest<B: Backend>(console: &Console<B>, current: &Version, view: &mut RulesPage) -> StatusCode {
    if !view.problems() {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    let sample = if view.sample.trim().is_empty() {
        console.backend().sample().await.map_err(|e| e.to_string())
    } else {
        super::sample::uploaded(&view.sample).map(Arc::new)
    };
    match sample {
        Ok(sample) => {
            view.backtest = Some(backtest(current, &view.text, &sample));
            view.notice = Some(format!(
                "Backtest on {} {}, as of the latest.",
                sample.events.len(),
                sample.source
            ));
            StatusCode::OK
        }
        Err(err) => {
            view.error = Some(format!("Not backtested: {err}"));
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// Where a publish's answer is shown.
fn published_at(published: &super::Published) -> String {
    let id = admin::encode(&published.version.id);
    match published.redecided {
        Some(n) => format!("/rules?published={id}&redecided={n}"),
        None => format!("/rules?published={id}"),
    }
}

fn publish_refused(view: &mut RulesPage, err: PublishError) -> StatusCode {
    match err {
        PublishError::Invalid(_) => {
            view.problems();
            view.error = Some("Not published: the rules have problems.".into());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        err @ PublishError::Conflict { .. } => {
            view.error = Some(err.to_string());
            StatusCode::CONFLICT
        }
        err @ PublishError::Backend(_) => {
            view.error = Some(err.to_string());
            StatusCode::SERVICE_UNAVAILABLE
        }
        err => {
            view.error = Some(err.to_string());
            StatusCode::BAD_REQUEST
        }
    }
}

fn console_segments(text: &str) -> usize {
    kairos_rules::RuleSet::from_yaml(text).map_or(0, |r| r.segments().count())
}

/// The edited rules against the rules in force, on the sample's events.
fn backtest(current: &Version, text: &str, sample: &Sample) -> Vec<BacktestRow> {
    let Ok(edited) = kairos_rules::RuleSet::from_yaml(text) else {
        return Vec::new();
    };
    let mut diff = crate::diff::Diff::new(&current.rules, &edited, None);
    diff.play(sample.events.clone());
    diff.segments(crate::diff::DEFAULT_EXAMPLES)
        .into_iter()
        .map(|s| BacktestRow {
            examples: s
                .examples
                .iter()
                .map(|e| ExampleView {
                    contact: e.contact.clone(),
                    change: e.change,
                    lines: explain::lines(if e.change == "enter" { &e.new } else { &e.old }),
                })
                .collect(),
            segment: s.segment,
            old: s.old,
            new: s.new,
            entering: s.entering,
            leaving: s.leaving,
        })
        .collect()
}

#[derive(Deserialize)]
struct RollbackForm {
    #[serde(default)]
    csrf: String,
    to: String,
    base: String,
}

async fn rollback<B: Backend>(
    State(console): Shared<B>,
    headers: HeaderMap,
    Form(form): Form<RollbackForm>,
) -> Response {
    if !csrf::valid(&headers, &form.csrf) {
        return forged(&console, "/rules").await;
    }
    match console.rollback(&form.to, &form.base).await {
        Ok(published) => Redirect::to(&published_at(&published)).into_response(),
        Err(err @ PublishError::Conflict { .. }) => {
            refused(&console, StatusCode::CONFLICT, err.to_string(), "/rules").await
        }
        Err(err @ PublishError::Backend(_)) => {
            refused(&console, StatusCode::SERVICE_UNAVAILABLE, err.to_string(), "/rules").await
        }
        Err(err) => refused(&console, StatusCode::BAD_REQUEST, err.to_string(), "/rules").await,
    }
}
