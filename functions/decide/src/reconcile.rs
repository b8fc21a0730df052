//! Reconciliation: the ESP's own reports of the sends Kairos decided, and the
//! goals they led to, matched to the recorded decisions by decision id, or by
//! template id against the contact's send log.

use kairos_decide::{attribute, decision_of, send_of_event, template_of};
use kairos_event::{Event, EventType};
use kairos_rules::RuleSet;
use kairos_store::StoreError;

use crate::store::DecisionStore;

/// What reconciling a batch of events did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// ESP `email.sent`/`email.delivered` events matched to a recorded decision.
    pub confirmed: usize,
    /// Goals counted for a decision's variant (each decision at most once).
    pub goals: usize,
}

/// Matches `events` to recorded decisions: an `email.sent` or
/// `email.delivered` carrying a decision id, or naming a content template of
/// the rules, confirms that decision (and notes its ESP message id in the
/// contact's send log, so a click naming only the message id is attributed); a goal event (`sending.learning.goal`)
/// within the attribution window of a send counts one goal on its variant.
/// Events are idempotent here as in the engine: a redelivered one counts nothing twice.
pub async fn reconcile<D: DecisionStore>(
    rules: &RuleSet,
    store: &D,
    events: &[Event],
) -> Result<Reconciled, StoreError> {
    let mut done = Reconciled::default();
    for event in events {
        let at = event.at.timestamp();
        let status = match event.kind {
            EventType::EmailSent => Some("sent"),
            EventType::EmailDelivered => Some("delivered"),
            _ => None,
        };
        let names_ours =
            decision_of(event).is_some() || template_of(event).and_then(|t| rules.content_of_template(t)).is_some();
        if let Some(status) = status.filter(|_| names_ours) {
            if let Some(id) = decision_for(rules, store, event).await? {
                done.confirmed += usize::from(store.confirm(&id, status, at).await?);
                if let Some(message) = &event.message_id {
                    store.note_message(&event.contact, &id, message).await?;
                }
            }
        }
        if rules.is_goal(event) {
            let log = store.sends(&event.contact).await?;
            if let Some(sent) = attribute(rules, event, &log.sends) {
                done.goals += usize::from(store.goal(&sent.decision_id, at).await?);
            }
        }
    }
    Ok(done)
}

/// The decision an ESP send report is about: its decision id, else the
/// contact's latest logged send of the template it names.
async fn decision_for<D: DecisionStore>(
    rules: &RuleSet,
    store: &D,
    event: &Event,
) -> Result<Option<String>, StoreError> {
    if let Some(id) = decision_of(event) {
        return Ok(Some(id.to_string()));
    }
    let Some(reported) = send_of_event(
        rules,
        &Event {
            kind: EventType::EmailSent,
            ..event.clone()
        },
    ) else {
        return Ok(None);
    };
    let log = store.sends(&event.contact).await?;
    Ok(log
        .sends
        .iter()
        .rev()
        .find(|s| {
            s.sequence == reported.sequence
                && s.step == reported.step
                && s.variant == reported.variant
                && s.at <= event.at.timestamp()
        })
        .map(|s| s.decision_id.clone()))
}

/// Reconciles the events of an events-queue batch after the evaluate handler
/// ran on it: each message it did not report as failed is matched to the
/// recorded decisions; a message whose reconciliation fails (storage) is added
/// to the failures, so SQS redelivers it (the engine skips it as a duplicate,
/// and nothing here counts twice).
pub async fn reconcile_batch<D: DecisionStore>(
    rules: &RuleSet,
    store: &D,
    batch: &aws_lambda_events::sqs::SqsEvent,
    response: &mut aws_lambda_events::sqs::SqsBatchResponse,
) -> Reconciled {
    let mut total = Reconciled::default();
    if rules.sequences().is_empty() {
        return total;
    }
    for record in &batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        if response.batch_item_failures.iter().any(|f| f.item_identifier == id) {
            continue;
        }
        let Some(Ok(kairos_event::EventsMessage::Event(event))) = record
            .body
            .as_deref()
            .map(|b| kairos_event::EventsMessage::decode(b.as_bytes()))
        else {
            continue;
        };
        match reconcile(rules, store, std::slice::from_ref(&event)).await {
            Ok(done) => {
                total.confirmed += done.confirmed;
                total.goals += done.goals;
            }
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "reconciling with decisions failed; redelivering");
                let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    total
}
