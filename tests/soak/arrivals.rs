//! The soak's traffic: the rules bench's seeded workload (contacts with
//! power-law activity over 90 days), made as the pipeline meets it: event ids
//! unique across contacts, some visitors anonymous until a `contact.identified`
//! links them, 5% of events delivered three times (an ESP's retries), 10%
//! arriving late (behind later events of their contact).

use crate::workload;
use kairos_event::{Event, EventType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Share of contacts browsing anonymously before they are identified.
const ANONYMOUS_FIRST: f64 = 0.1;
/// Share of events delivered three times.
const TRIPLED: f64 = 0.05;
/// Share of events arriving late.
const LATE: f64 = 0.1;
/// The longest delay of a late event or a copy (6 hours, within the exact windows).
const MAX_DELAY_SECS: i64 = 6 * 3600;

/// One delivery of an event to ingest, at `at` (unix seconds).
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When ingest receives it.
    pub at: i64,
    /// The event.
    pub event: Event,
}

/// The traffic of a soak run.
pub struct Traffic {
    /// Distinct events.
    pub events: usize,
    /// Contacts generated (anonymous visitors apart).
    pub contacts: usize,
    /// Every delivery, in arrival order.
    pub arrivals: Vec<Arrival>,
}

/// The traffic of `contacts` contacts from `seed`.
pub fn traffic(contacts: usize, seed: u64) -> Traffic {
    let mut rng = StdRng::seed_from_u64(seed);
    let generated = workload::generate(&mut rng, contacts);
    let mut events = Vec::new();
    for (i, contact) in generated.into_iter().enumerate() {
        let mut own = contact.events;
        for (n, event) in own.iter_mut().enumerate() {
            event.id = format!("c{i}-{n}");
        }
        if own.len() >= 4 && rng.gen_bool(ANONYMOUS_FIRST) {
            anonymous_first(&mut own, i);
        }
        events.extend(own);
    }
    let mut arrivals = Vec::with_capacity(events.len() * 12 / 10);
    for event in &events {
        let at = event.at.timestamp();
        let first = match rng.gen_bool(LATE) {
            true => at + rng.gen_range(60..MAX_DELAY_SECS),
            false => at + rng.gen_range(0..5),
        };
        arrivals.push(Arrival {
            at: first,
            event: event.clone(),
        });
        if rng.gen_bool(TRIPLED) {
            for _ in 0..2 {
                let again = first + rng.gen_range(1..MAX_DELAY_SECS);
                arrivals.push(Arrival {
                    at: again,
                    event: event.clone(),
                });
            }
        }
    }
    arrivals.sort_by(|a, b| (a.at, &a.event.id).cmp(&(b.at, &b.event.id)));
    Traffic {
        events: events.len(),
        contacts,
        arrivals,
    }
}

/// The first half of a contact's web events made anonymous (`anon:v<i>`),
/// and an identify linking the visitor at the half.
fn anonymous_first(events: &mut Vec<Event>, i: usize) {
    let half = events.len() / 2;
    let known = events[0].contact.clone();
    let anonymous = format!("v{i}");
    for event in events[..half].iter_mut() {
        if matches!(
            event.kind,
            EventType::PageViewed | EventType::FormSubmitted | EventType::AdClicked
        ) {
            event.contact = format!("{}{anonymous}", kairos_event::ANONYMOUS_PREFIX);
        }
    }
    let mut link = events[half].clone();
    link.id = format!("c{i}-link");
    link.contact = known;
    link.kind = EventType::ContactIdentified;
    link.source = "web".into();
    (link.url, link.campaign, link.message_id, link.name) = (None, None, None, None);
    link.machine = false;
    link.traits.clear();
    link.properties.clear();
    link.properties.insert("anonymous_id".into(), json!(anonymous));
    events.insert(half, link);
}
