//! One SQS batch: messages read, every destination served concurrently over
//! the same messages (isolation: a destination that is down or paused holds
//! only its own share; the others write and record theirs, so a redelivery
//! finds them done in the ledger), then each message acknowledged, put off,
//! or dead-lettered with the destination's reason.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use kairos_event::metrics::{Metrics, Unit};
use kairos_event::{Transition, WritebackMessage};
use kairos_store::{ContactStore, DeadLetters, DeliveryLedger, Redelivery, MAX_DELAY_SECS};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::deliver::{drive, ledger_key, ledger_mark, record, Destination, Final, Write};
use crate::Writeback;

/// The message attribute naming the one destination a message is for (set on
/// dead letters, so a redrive goes only where it failed).
pub const DESTINATION_ATTRIBUTE: &str = "kairos-destination";
/// The message attribute carrying why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "kairos-reason";

/// A message read from the batch.
struct Item {
    id: String,
    receipt: Option<String>,
    body: String,
    /// Only this destination (a redriven dead letter).
    only: Option<String>,
    transition: Transition,
    /// The state version its membership is of (a format-1 transition's
    /// membership is read as of the contact's newest version).
    version: u64,
}

/// Handles one batch as of the invocation's `deadline_ms`: returns the ids of
/// the messages SQS should deliver again.
pub async fn handle<D, L, C, Q, R>(
    batch: SqsEvent,
    deadline_ms: u64,
    wb: &Writeback<'_, D, L, C, Q, R>,
) -> SqsBatchResponse
where
    D: Destination,
    L: DeliveryLedger,
    C: ContactStore,
    Q: DeadLetters,
    R: Redelivery,
{
    let mut failed = Vec::new();
    let mut items = Vec::new();
    let messages = batch.records.len();
    for record in batch.records {
        match read(record, wb).await {
            Ok(item) => items.push(item),
            Err(Some(id)) => failed.push(id),
            Err(None) => {}
        }
    }
    let shares = join_all(wb.destinations.iter().map(|d| serve(d, &items, wb, deadline_ms))).await;
    let names = || wb.destinations.iter().map(|d| d.name());
    log_summary(
        messages,
        messages - items.len(),
        names().zip(shares.iter().map(|s| &s.ends)),
    );
    metrics(messages, messages - items.len(), names().zip(&shares)).emit();
    for (i, item) in items.iter().enumerate() {
        let pending: Vec<Option<Duration>> = shares
            .iter()
            .filter_map(|share| match share.ends.get(&i) {
                Some(Final::Pending(after)) => Some(*after),
                _ => None,
            })
            .collect();
        if pending.is_empty() {
            continue;
        }
        failed.push(item.id.clone());
        // The soonest wait any destination asked for; none known: the queue's own timeout.
        if let (Some(after), Some(receipt)) = (pending.iter().min().copied().flatten(), &item.receipt) {
            let secs = (after.as_millis().div_ceil(1000) as u32).clamp(1, MAX_DELAY_SECS);
            if let Err(err) = wb.redelivery.delay(receipt, secs).await {
                tracing::warn!(message_id = %item.id, error = %err, "could not put off the redelivery");
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// Logs the invocation's one info line: per destination, how many messages
/// were delivered (written, or already done), failed permanently
/// (dead-lettered) and left for a retry; and how many were unreadable.
fn log_summary<'a>(
    messages: usize,
    unreadable: usize,
    shares: impl Iterator<Item = (&'a str, &'a BTreeMap<usize, Final>)>,
) {
    let per_destination: Vec<String> = shares
        .map(|(name, ends)| {
            let count = |f: fn(&Final) -> bool| ends.values().filter(|e| f(e)).count();
            format!(
                "{name}: {} delivered, {} failed, {} to retry",
                count(|e| matches!(e, Final::Done)),
                count(|e| matches!(e, Final::Dead(_))),
                count(|e| matches!(e, Final::Pending(_)))
            )
        })
        .collect();
    tracing::info!(messages, unreadable, destinations = %per_destination.join("; "), "batch written back");
}

/// The invocation's metrics (EMF): `Messages` and `MessagesUnreadable`; per
/// `Destination`: `Deliveries` (written, or already done), `Failures`
/// (dead-lettered), `Pending` (left for SQS to redeliver), `Retries`
/// (retryable failures met, each retried now or later); and the samples
/// `LagToDeliveryMs`, from the triggering event's time to its delivery.
fn metrics<'a>(messages: usize, unreadable: usize, shares: impl Iterator<Item = (&'a str, &'a Share)>) -> Metrics {
    let mut m = Metrics::new("writeback");
    m.count("Messages", &[], messages as u64);
    m.count("MessagesUnreadable", &[], unreadable as u64);
    for (name, share) in shares {
        let count = |f: fn(&Final) -> bool| share.ends.values().filter(|e| f(e)).count() as u64;
        let dims = [("Destination", name)];
        m.count("Deliveries", &dims, count(|e| matches!(e, Final::Done)));
        m.count("Failures", &dims, count(|e| matches!(e, Final::Dead(_))));
        m.count("Pending", &dims, count(|e| matches!(e, Final::Pending(_))));
        m.count("Retries", &dims, share.retries);
        for lag in &share.lags_ms {
            m.sample("LagToDeliveryMs", Unit::Milliseconds, &[], *lag);
        }
    }
    m
}

/// Reads a message. A malformed one is dead-lettered with its reason and
/// acknowledged (`Err(None)`); one that cannot be handled now is retried (`Err(Some(id))`).
async fn read<D, L, C: ContactStore, Q: DeadLetters, R>(
    record: SqsMessage,
    wb: &Writeback<'_, D, L, C, Q, R>,
) -> Result<Item, Option<String>> {
    let id = record.message_id.unwrap_or_default();
    let body = record.body.unwrap_or_default();
    let only = record
        .message_attributes
        .get(DESTINATION_ATTRIBUTE)
        .and_then(|a| a.string_value.clone());
    let mut transition = match WritebackMessage::decode(body.as_bytes()) {
        Ok(WritebackMessage::Transition(t)) => t,
        Err(err) => {
            tracing::error!(message_id = %id, error = %err, "malformed write-back message: dead-lettered");
            let reason = format!("malformed message: {err}");
            return match wb
                .dead_letters
                .dead_letter(&body, &[(REASON_ATTRIBUTE.into(), reason)])
                .await
            {
                Ok(()) => Err(None),
                Err(_) => Err(Some(id)),
            };
        }
    };
    let mut version = transition.state_version;
    if transition.members.is_none() {
        // Format 1 (written before transitions carried the membership): the
        // contact's stored record has it, as of a version at least as new.
        match wb.contacts.load(&transition.contact).await {
            Ok(record) => {
                let record = record.unwrap_or_default();
                transition.members = Some(record.state.members().iter().map(|(s, _)| s.clone()).collect());
                version = version.max(record.version);
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "cannot read the contact for a format-1 transition");
                return Err(Some(id));
            }
        }
    }
    Ok(Item {
        id,
        receipt: record.receipt_handle,
        body,
        only,
        transition,
        version,
    })
}

/// What one destination made of a batch.
struct Share {
    /// Each message's end for this destination (absent: nothing to do).
    ends: BTreeMap<usize, Final>,
    /// Retryable failures met.
    retries: u64,
    /// For each transition written with a triggering event: ms from the event to now.
    lags_ms: Vec<f64>,
}

/// One destination's share: the newest state per contact among the messages
/// it receives, minus what the ledger has; driven; dead letters sent.
async fn serve<D, L, C, Q, R>(dest: &D, items: &[Item], wb: &Writeback<'_, D, L, C, Q, R>, deadline_ms: u64) -> Share
where
    D: Destination,
    L: DeliveryLedger,
    Q: DeadLetters,
{
    let mut by_contact: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let mine = item.only.as_deref().is_none_or(|d| d == dest.name());
        if mine && dest.segments().receives(&item.transition.segment) {
            by_contact.entry(&item.transition.contact).or_default().push(i);
        }
    }
    let mut ends = BTreeMap::new();
    let mut writes: Vec<(Write, Vec<usize>)> = Vec::new();
    for (contact, indexes) in by_contact {
        let newest = indexes.iter().map(|&i| items[i].version).max().unwrap_or(0);
        let (current, older): (Vec<usize>, Vec<usize>) = indexes.into_iter().partition(|&i| items[i].version == newest);
        // Several transitions of one contact collapse to the newest state.
        older.into_iter().for_each(|i| drop(ends.insert(i, Final::Done)));
        // Dropped once this version is written or a newer one attempted; a
        // redriven dead letter is written again unless a newer one was attempted.
        let redrive = current.iter().any(|&i| items[i].only.is_some());
        match wb.ledger.delivered(&ledger_key(dest.name(), contact)).await {
            Ok(Some(mark)) if mark > ledger_mark(newest, redrive) => {
                current.into_iter().for_each(|i| drop(ends.insert(i, Final::Done)));
                continue;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(destination = dest.name(), contact = %kairos_event::log::hashed(contact), error = %err, "ledger read failed");
                current
                    .into_iter()
                    .for_each(|i| drop(ends.insert(i, Final::Pending(None))));
                continue;
            }
        }
        let first = &items[current[0]].transition;
        let write = Write {
            contact: contact.to_string(),
            version: newest,
            redrive,
            members: dest.segments().filter(first.members.as_deref().unwrap_or_default()),
            transitions: current.iter().map(|&i| items[i].transition.clone()).collect(),
        };
        writes.push((write, current));
    }
    let batch: Vec<Write> = writes.iter().map(|(w, _)| w.clone()).collect();
    let (finals, retries) = drive(dest, &batch, wb.ledger, wb.clock, deadline_ms).await;
    let mut lags_ms = Vec::new();
    for ((write, indexes), end) in writes.into_iter().zip(finals) {
        let end = match end {
            Final::Dead(reason) => dead_letter(dest, &write, &indexes, items, &reason, wb).await,
            Final::Done => {
                lags_ms.extend(delivered(dest.name(), &write, wb.clock.now_ms()));
                Final::Done
            }
            other => other,
        };
        indexes.into_iter().for_each(|i| drop(ends.insert(i, end.clone())));
    }
    Share { ends, retries, lags_ms }
}

/// Logs a write delivered, with the events that caused its transitions (one
/// grep for an event id follows it from ingest to here); returns the lag of
/// each of them, from the event's time to `now_ms`.
fn delivered(destination: &str, write: &Write, now_ms: u64) -> Vec<f64> {
    let triggers: Vec<_> = write.transitions.iter().filter_map(|t| t.trigger.as_ref()).collect();
    let ids: Vec<String> = triggers
        .iter()
        .map(|e| kairos_event::log::id(&e.id).to_string())
        .collect();
    tracing::info!(
        destination,
        contact = %kairos_event::log::hashed(&write.contact),
        version = write.version,
        event_id = %ids.join(","),
        "delivered"
    );
    let lag = |at: i64| (now_ms as i64).saturating_sub(at).max(0) as f64;
    triggers.iter().map(|e| lag(e.at.timestamp_millis())).collect()
}

/// Sends a permanently failed write's messages to the dead-letter queue, named
/// for this destination with its reason, then records the version as handled
/// so batch-mates redelivered for other destinations do not send it again (a
/// redrive writes it anyway: see `serve`).
async fn dead_letter<D, L, C, Q, R>(
    dest: &D,
    write: &Write,
    indexes: &[usize],
    items: &[Item],
    reason: &str,
    wb: &Writeback<'_, D, L, C, Q, R>,
) -> Final
where
    D: Destination,
    L: DeliveryLedger,
    Q: DeadLetters,
{
    tracing::error!(destination = dest.name(), contact = %kairos_event::log::hashed(&write.contact), version = write.version, reason, "permanent failure: dead-lettered");
    let attributes = [
        (DESTINATION_ATTRIBUTE.to_string(), dest.name().to_string()),
        (REASON_ATTRIBUTE.to_string(), reason.chars().take(1000).collect()),
    ];
    for &i in indexes {
        if let Err(err) = wb.dead_letters.dead_letter(&items[i].body, &attributes).await {
            tracing::error!(destination = dest.name(), error = %err, "dead-letter queue refused the message; retried later");
            return Final::Pending(None);
        }
    }
    record(wb.ledger, dest.name(), write).await;
    Final::Dead(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_event::{Change, Trigger};
    use serde_json::{json, Value};

    fn write(triggered_at_ms: &[i64]) -> Write {
        let transition = |at: Option<i64>| Transition {
            contact: "ada@example.com".into(),
            segment: "engaged".into(),
            change: Change::Entered,
            rule_version: "r1".into(),
            state_version: 7,
            at: chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap(),
            trigger: at.map(|ms| Trigger {
                id: format!("evt-{ms}"),
                kind: kairos_event::EventType::EmailClicked,
                at: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
            }),
            summary: String::new(),
            explanation: Value::Null,
            members: Some(vec!["engaged".into()]),
        };
        let mut transitions: Vec<Transition> = triggered_at_ms.iter().map(|&ms| transition(Some(ms))).collect();
        transitions.push(transition(None));
        Write {
            contact: "ada@example.com".into(),
            version: 7,
            redrive: false,
            members: vec!["engaged".into()],
            transitions,
        }
    }

    #[test]
    fn a_delivery_lags_each_triggering_event_and_not_the_time_based_ones() {
        let lags = delivered("hook", &write(&[1_000, 4_500]), 5_000);
        assert_eq!(lags, vec![4_000.0, 500.0]);
    }

    #[test]
    fn the_metrics_count_each_destination_apart_and_pool_the_lags() {
        let hubspot = Share {
            ends: BTreeMap::from([
                (0, Final::Done),
                (1, Final::Dead("400".into())),
                (2, Final::Pending(None)),
            ]),
            retries: 3,
            lags_ms: vec![250.0],
        };
        let hook = Share {
            ends: BTreeMap::from([(0, Final::Done), (1, Final::Done)]),
            retries: 0,
            lags_ms: vec![90.0, 40.0],
        };
        let m = metrics(4, 1, [("hubspot", &hubspot), ("hook", &hook)].into_iter());
        let docs: Vec<Value> = m.lines(0).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let of = |d: &str| docs.iter().find(|doc| doc["Destination"] == d).unwrap().clone();
        let h = of("hubspot");
        assert_eq!(
            [&h["Deliveries"], &h["Failures"], &h["Pending"], &h["Retries"]],
            [&json!(1), &json!(1), &json!(1), &json!(3)]
        );
        assert_eq!(of("hook")["Deliveries"], 2);
        let all = docs.iter().find(|doc| doc.get("Destination").is_none()).unwrap();
        assert_eq!((&all["Messages"], &all["MessagesUnreadable"]), (&json!(4), &json!(1)));
        assert_eq!(all["LagToDeliveryMs"], json!([250, 90, 40]));
    }
}
