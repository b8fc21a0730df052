//! The seeded synthetic workload: contacts with power-law activity over 90 days,
//! each contact's events in time order.

use chrono::{DateTime, Utc};
use kairos_event::{Event, EventType};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Map, Value};

/// 2026-01-01T00:00:00Z: the start of the 90-day period.
pub const PERIOD_START: i64 = 1_767_225_600;
/// The period's length.
pub const PERIOD_SECS: i64 = 90 * 86_400;

/// Page paths, weighted towards the blog.
const PAGES: [&str; 9] = [
    "/pricing",
    "/compare",
    "/signup",
    "/blog/segmentation-101",
    "/blog/apple-mpp-opens",
    "/blog/real-time-crm",
    "/docs/getting-started",
    "/",
    "/customers",
];
const PAGE_WEIGHTS: [u32; 9] = [10, 5, 3, 12, 8, 8, 6, 14, 4];
pub const FORMS: [&str; 3] = ["demo", "trial", "newsletter"];
pub const COMPANY_SIZES: [i64; 10] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];
pub const JOB_TITLES: [&str; 9] = [
    "VP Marketing",
    "Director of Sales",
    "Head of Growth",
    "Software Engineer",
    "Marketing Manager",
    "CEO",
    "Data Analyst",
    "Chief Revenue Officer",
    "Developer Advocate",
];
pub const STAGES: [&str; 5] = ["lead", "mql", "sql", "opportunity", "customer"];
pub const CAMPAIGNS: usize = 12;

/// One contact's events, ascending by time.
pub struct Contact {
    pub events: Vec<Event>,
}

/// Events per contact: a discrete power law `floor(u^(-1/alpha))` capped at `max`
/// (alpha 0.8: ~72% of contacts have 1-5 events, ~2.5% have 100 or more).
fn activity(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen_range(1e-9..1.0);
    (u.powf(-1.0 / 0.8).floor() as usize).clamp(1, 3000)
}

fn pick_weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

struct Builder<'a> {
    contact: &'a str,
    next_id: u64,
    out: Vec<Event>,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: EventType,
        at: i64,
        source: &str,
        machine: bool,
        url: Option<String>,
        campaign: Option<String>,
        message_id: Option<String>,
        properties: Map<String, Value>,
        traits: Map<String, Value>,
    ) {
        if !(PERIOD_START..PERIOD_START + PERIOD_SECS).contains(&at) {
            return;
        }
        self.next_id += 1;
        self.out.push(Event {
            id: format!("e{}", self.next_id),
            contact: self.contact.to_string(),
            kind,
            name: None,
            at: DateTime::<Utc>::from_timestamp(at, 0).expect("in range"),
            source: source.to_string(),
            machine,
            url,
            campaign,
            message_id,
            properties,
            traits,
        });
    }

    fn simple(&mut self, kind: EventType, at: i64, source: &str) {
        self.push(kind, at, source, false, None, None, None, Map::new(), Map::new());
    }

    fn page(&mut self, rng: &mut StdRng, at: i64, path: Option<&str>) {
        let path = path.unwrap_or_else(|| PAGES[pick_weighted(rng, &PAGE_WEIGHTS)]);
        self.push(
            EventType::PageViewed,
            at,
            "web",
            false,
            Some(format!("https://x.test{path}")),
            None,
            None,
            Map::new(),
            Map::new(),
        );
    }
}

fn identify(b: &mut Builder, rng: &mut StdRng, at: i64, stage_floor: usize) {
    let mut traits = Map::new();
    traits.insert(
        "company_size".into(),
        json!(COMPANY_SIZES[rng.gen_range(0..COMPANY_SIZES.len())]),
    );
    traits.insert(
        "job_title".into(),
        json!(JOB_TITLES[rng.gen_range(0..JOB_TITLES.len())]),
    );
    let stage = rng.gen_range(stage_floor.min(STAGES.len() - 1)..STAGES.len());
    traits.insert("lifecycle_stage".into(), json!(STAGES[stage]));
    b.push(
        EventType::ContactIdentified,
        at,
        "crm",
        false,
        None,
        None,
        None,
        Map::new(),
        traits,
    );
}

/// Appends one episode starting at `t`: an email send (delivery, maybe opens and a
/// click), a web session, an ad click, a chat or a form.
fn episode(b: &mut Builder, rng: &mut StdRng, t: i64, msg: &mut u64) {
    match rng.gen_range(0..100) {
        // An email: delivered, then maybe a privacy-proxy open within seconds, a human
        // open within a day, a click, and a landing page view.
        0..=54 => {
            *msg += 1;
            let campaign = format!("cmp-{}", rng.gen_range(0..CAMPAIGNS));
            let message_id = format!("m{}", *msg);
            let email = |b: &mut Builder, kind, at, machine| {
                b.push(
                    kind,
                    at,
                    "esp",
                    machine,
                    None,
                    Some(campaign.clone()),
                    Some(message_id.clone()),
                    Map::new(),
                    Map::new(),
                )
            };
            email(b, EventType::EmailDelivered, t, false);
            // About a third of opens are Apple privacy-proxy opens.
            if rng.gen_bool(0.25) {
                email(b, EventType::EmailOpened, t + rng.gen_range(2..120), true);
            }
            if rng.gen_bool(0.45) {
                let open = t + rng.gen_range(60..86_400);
                email(b, EventType::EmailOpened, open, false);
                if rng.gen_bool(0.3) {
                    email(b, EventType::EmailOpened, open + rng.gen_range(60..7200), false);
                }
                if rng.gen_bool(0.3) {
                    let click = open + rng.gen_range(5..600);
                    email(b, EventType::EmailClicked, click, false);
                    if rng.gen_bool(0.7) {
                        let at = click + rng.gen_range(1..10);
                        b.page(rng, at, None);
                    }
                }
            }
            if rng.gen_bool(0.004) {
                email(b, EventType::EmailUnsubscribed, t + rng.gen_range(60..172_800), false);
            }
        }
        // A web session: 1-6 pages a few seconds to minutes apart; sometimes a form.
        55..=84 => {
            let mut at = t;
            for _ in 0..rng.gen_range(1..=6) {
                b.page(rng, at, None);
                at += rng.gen_range(5..400);
            }
            if rng.gen_bool(0.12) {
                let form = FORMS[pick_weighted(rng, &[2, 3, 5])];
                let mut props = Map::new();
                props.insert("form".into(), json!(form));
                b.push(
                    EventType::FormSubmitted,
                    at,
                    "web",
                    false,
                    None,
                    None,
                    None,
                    props,
                    Map::new(),
                );
            }
        }
        // An ad click and its landing page.
        85..=92 => {
            let campaign = format!("ad-{}", rng.gen_range(0..4));
            let path = ["/pricing", "/compare", "/"][rng.gen_range(0..3)];
            b.push(
                EventType::AdClicked,
                t,
                "ads",
                false,
                Some(format!("https://x.test{path}")),
                Some(campaign),
                None,
                Map::new(),
                Map::new(),
            );
            let at = t + rng.gen_range(1..5);
            b.page(rng, at, Some(path));
        }
        // A chat.
        93..=96 => {
            for i in 0..rng.gen_range(1..4) {
                b.simple(EventType::ChatMessage, t + i * rng.gen_range(10..120), "chat");
            }
        }
        // New facts about the contact.
        _ => identify(b, rng, t, 1),
    }
}

/// Generates `contacts` contacts' events.
pub fn generate(rng: &mut StdRng, contacts: usize) -> Vec<Contact> {
    let mut msg = 0u64;
    (0..contacts)
        .map(|i| {
            let contact = format!("c{i}@x.test");
            let target = activity(rng);
            let mut b = Builder {
                contact: &contact,
                next_id: 0,
                out: Vec::with_capacity(target + 8),
            };
            // Active from a random start to the end of the period; half the episodes
            // fall in a few bursts of a couple of days (campaign weeks, buying research).
            let start = PERIOD_START + rng.gen_range(0..PERIOD_SECS - 3600);
            let span = PERIOD_START + PERIOD_SECS - start;
            let bursts: Vec<i64> = (0..rng.gen_range(1..4))
                .map(|_| start + rng.gen_range(0..span))
                .collect();
            if rng.gen_bool(0.6) {
                identify(&mut b, rng, start, 0);
            }
            while b.out.len() < target {
                let t = if rng.gen_bool(0.5) {
                    let c = bursts[rng.gen_range(0..bursts.len())];
                    c + rng.gen_range(-2 * 86_400..2 * 86_400)
                } else {
                    start + rng.gen_range(0..span)
                };
                episode(&mut b, rng, t, &mut msg);
            }
            let mut events = b.out;
            events.truncate(target.max(1));
            events.sort_by_key(|e| e.at);
            Contact { events }
        })
        .collect()
}
