//! The contact routes' answers.

use chrono::{DateTime, SecondsFormat, Utc};
use kairos_engine::{Manual, Override, MAX_REASON_BYTES};
use kairos_event::AuditKind;
use kairos_store::{AuditTrail, ContactStore, Erasure, Queue, StoredContact};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{error, Admin, Answer};

/// Audit entries per page of `GET …/audit`.
const PAGE: usize = 50;
/// The latest transitions `GET /v1/contacts/{key}` shows.
const LATEST: usize = 10;

fn time(t: i64) -> Value {
    DateTime::from_timestamp(t, 0).map_or(Value::Null, |t| json!(t.to_rfc3339_opts(SecondsFormat::Secs, true)))
}

async fn load<S: ContactStore, Q>(admin: &Admin<'_, S, Q>, key: &str) -> Result<StoredContact, Answer> {
    match admin.evaluator.store.load(key).await {
        Ok(Some(record)) if record.version > 0 && record.merged_into.is_none() && record.erased_at.is_none() => {
            Ok(record)
        }
        Ok(_) => Err(error(404, "no contact with this key", Some("key"))),
        Err(err) => Err(error(503, format!("storage: {err}"), None)),
    }
}

/// The contact document of `GET /v1/contacts/{key}` (without the latest transitions).
fn document<S, Q>(admin: &Admin<'_, S, Q>, key: &str, record: &StoredContact, now: DateTime<Utc>) -> Value {
    let rules = admin.evaluator.rules;
    let contact = kairos_engine::Contact {
        state: record.state.clone(),
        overrides: record.overrides.clone(),
        ..Default::default()
    };
    let evaluation = rules.evaluate(&record.state, now.timestamp());
    let memberships: Vec<Value> = kairos_engine::effective(rules, &contact)
        .iter()
        .map(|id| {
            let pin = record.overrides.iter().find(|o| &o.segment == id);
            let since = record.state.member_since(id).or(pin.map(|o| o.at));
            let verdict = evaluation.verdicts.iter().find(|v| v.segment == id);
            json!({
                "segment": id,
                "since": since.map_or(Value::Null, time),
                "rule_version": verdict.map(|v| v.rule_version),
                "explanation": match pin {
                    Some(o) => json!(o.summary()),
                    None => json!(verdict.map(|v| v.explanation.summary())),
                },
                "written": record.written.as_ref().is_none_or(|w| w.contains(id)),
            })
        })
        .collect();
    let traits: Map<String, Value> = record
        .state
        .traits()
        .map(|(name, _, value)| (name.to_string(), json!(value)))
        .collect();
    let consent = record.state.consent();
    json!({
        "contact": key,
        "version": record.version,
        "memberships": memberships,
        "consent": {"status": consent.status().as_str(), "since": (consent.since() > 0).then(|| time(consent.since()))},
        "traits": traits,
        "next_change_at": record.next_change_at.map(time),
        "overrides": record.overrides.iter().map(override_json).collect::<Vec<_>>(),
        "merged_anonymous_ids": record.state.merged_count(),
    })
}

fn override_json(o: &Override) -> Value {
    json!({
        "segment": o.segment,
        "member": o.member,
        "reason": o.reason,
        "actor": o.actor,
        "at": time(o.at),
        "expires_at": o.expires_at.map(time),
    })
}

/// `GET /v1/contacts/{key}`.
pub(crate) async fn show<S: ContactStore + AuditTrail, Q>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    now: DateTime<Utc>,
) -> Answer {
    let record = match load(admin, key).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let mut doc = document(admin, key, &record, now);
    let latest = match admin.evaluator.store.audit(key, None, PAGE).await {
        Ok(page) => page
            .entries
            .into_iter()
            .filter(|e| e.kind == AuditKind::Transition)
            .take(LATEST)
            .collect(),
        Err(err) => return error(503, format!("storage: {err}"), None),
    };
    let latest: Vec<kairos_event::AuditEntry> = latest;
    doc["latest_transitions"] = json!(latest);
    (200, doc)
}

/// `GET /v1/contacts/{key}/audit?cursor=`.
pub(crate) async fn audit<S: ContactStore + AuditTrail, Q>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    cursor: Option<&str>,
) -> Answer {
    if let Some(c) = cursor.filter(|c| c.len() != 20 || !c.bytes().all(|b| b.is_ascii_digit())) {
        return error(
            400,
            format!("cursor `{c}`: expected a `next_cursor` of an earlier page"),
            Some("cursor"),
        );
    }
    if let Err(answer) = load(admin, key).await {
        return answer;
    }
    match admin.evaluator.store.audit(key, cursor, PAGE).await {
        Ok(page) => (
            200,
            json!({"contact": key, "entries": page.entries, "next_cursor": page.next}),
        ),
        Err(err) => error(503, format!("storage: {err}"), None),
    }
}

/// `GET /v1/contacts/{key}/export`: the contact document, its stored
/// signals (what each counts, occurrences within retention) and its whole audit trail.
pub(crate) async fn export<S: ContactStore + AuditTrail, Q>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    now: DateTime<Utc>,
) -> Answer {
    let record = match load(admin, key).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let mut doc = document(admin, key, &record, now);
    let rules = admin.evaluator.rules;
    let retention = now.timestamp() - kairos_state::RETENTION_SECS;
    let signals: Vec<Value> = record
        .state
        .signals()
        .iter()
        .map(|s| {
            json!({
                "signal": rules.signal_text(s.key).map_or_else(|| format!("signal {:08x}", s.key), str::to_string),
                "occurrences": s.count_since(retention, now.timestamp()),
                "last_at": s.last_at().map(time),
            })
        })
        .collect();
    let (mut audit, mut cursor) = (Vec::new(), None);
    loop {
        match admin.evaluator.store.audit(key, cursor.as_deref(), 1000).await {
            Ok(page) => {
                audit.extend(page.entries);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            Err(err) => return error(503, format!("storage: {err}"), None),
        }
    }
    doc["exported_at"] = json!(now.to_rfc3339_opts(SecondsFormat::Secs, true));
    doc["signals"] = json!(signals);
    doc["audit"] = json!(audit);
    (200, doc)
}

/// The body of `PUT …/overrides/{segment}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    member: bool,
    reason: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// `PUT /v1/contacts/{key}/overrides/{segment}`.
pub(crate) async fn pin<S: ContactStore, Q: Queue>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    segment: &str,
    body: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Answer {
    let mut json = serde_json::Deserializer::from_str(body);
    let body: PinBody = match serde_path_to_error::deserialize(&mut json) {
        Ok(b) => b,
        Err(e) => {
            let field = e.path().to_string();
            let field = (field != ".").then_some(field);
            let message = format!("body: {}", e.into_inner());
            return error(400, message, Some(field.as_deref().unwrap_or("body")));
        }
    };
    if body.reason.trim().is_empty() || body.reason.len() > MAX_REASON_BYTES {
        return error(
            400,
            format!("reason: expected 1 to {MAX_REASON_BYTES} bytes"),
            Some("reason"),
        );
    }
    if body.expires_at.is_some_and(|t| t <= now) {
        return error(400, "expires_at: expected a time in the future", Some("expires_at"));
    }
    if admin.evaluator.rules.segment_index(segment).is_none() {
        return error(
            404,
            format!("no segment `{segment}` in the rules in force"),
            Some("segment"),
        );
    }
    let pin = Override {
        segment: segment.to_string(),
        member: body.member,
        actor: actor.to_string(),
        reason: body.reason,
        at: now.timestamp(),
        expires_at: body.expires_at.map(|t| t.timestamp()),
    };
    let answer = json!({"contact": key, "override": override_json(&pin)});
    changed(admin, key, &Manual::Pin(pin), now, answer).await
}

/// `DELETE /v1/contacts/{key}/overrides/{segment}`.
pub(crate) async fn unpin<S: ContactStore, Q: Queue>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    segment: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Answer {
    match load(admin, key).await {
        Ok(r) if r.overrides.iter().any(|o| o.segment == segment) => {}
        Ok(_) => return error(404, format!("no override of segment `{segment}`"), Some("segment")),
        Err(answer) => return answer,
    }
    let manual = Manual::Unpin {
        segment: segment.to_string(),
        actor: actor.to_string(),
    };
    changed(admin, key, &manual, now, json!({"contact": key, "removed": segment})).await
}

async fn changed<S: ContactStore, Q: Queue>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    manual: &Manual,
    now: DateTime<Utc>,
    mut answer: Value,
) -> Answer {
    match admin.evaluator.manual(key, manual, now).await {
        Ok(Some(outcome)) => {
            let transitions: Vec<Value> = outcome
                .transitions
                .iter()
                .map(|t| json!({"segment": t.segment, "change": t.change, "summary": t.summary}))
                .collect();
            answer["transitions"] = json!(transitions);
            (200, answer)
        }
        Ok(None) => error(404, "no contact with this key", Some("key")),
        Err(err) if err.is_permanent() => error(500, err.to_string(), None),
        Err(err) => error(503, err.to_string(), None),
    }
}

/// `DELETE /v1/contacts/{key}`: erasure, by the one implementation
/// ([`kairos_evaluate::Evaluator::erase`]); a repeat finishes an erasure cut
/// short by the deadline (202) and answers the same receipt.
pub(crate) async fn erase<S: ContactStore + AuditTrail + Erasure, Q: Queue>(
    admin: &Admin<'_, S, Q>,
    key: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Answer {
    let erasure = kairos_evaluate::Erasure {
        actor,
        salt: admin.erasure.salt,
        window_secs: admin.erasure.window_secs,
        deadline: admin.erasure.deadline,
    };
    match admin.evaluator.erase(key, &erasure, now).await {
        Ok(done) => {
            let status = if done.complete { 200 } else { 202 };
            let body = json!({
                "contact": key,
                "complete": done.complete,
                "erased_at": time(done.erased_at),
                "receipt": done.receipt,
                "exits": done.exits,
                "anonymous_records": done.anonymous,
                "audit_items": done.audit_items,
                "delivery_entries": done.deliveries,
            });
            (status, body)
        }
        Err(kairos_evaluate::EraseError::Unknown) => error(404, "no contact with this key", Some("key")),
        Err(kairos_evaluate::EraseError::Contact(err)) if !err.is_permanent() => error(503, err.to_string(), None),
        Err(kairos_evaluate::EraseError::Store(err)) if !err.is_permanent() => error(503, err.to_string(), None),
        Err(err) => error(500, err.to_string(), None),
    }
}
