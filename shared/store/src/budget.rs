//! A stored contact item is held to [`ITEM_BUDGET_BYTES`], counted as
//! DynamoDB counts item sizes
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>),
//! well under its 400 KB item limit, so that no input can make a contact's
//! write fail. Before every write, [`StoredContact::fit`] degrades what it must:
//! the state to [`STATE_BUDGET_BYTES`] ([`ContactState::fit`](kairos_state::ContactState::fit)),
//! then the explanations of the outbox's transitions, largest first (each
//! keeps its summary, cut to [`SUMMARY_BYTES`]).

use kairos_event::{Change, WritebackMessage};
use kairos_state::{Fitted, STATE_BUDGET_BYTES};

use crate::StoredContact;

/// A contact item's size budget (bytes; 200 KiB, half DynamoDB's item limit).
pub const ITEM_BUDGET_BYTES: usize = 200 * 1024;
/// A transition whose explanation is dropped keeps this much of its summary (bytes).
pub const SUMMARY_BYTES: usize = 200;

/// What [`StoredContact::fit`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitReport {
    /// What the state gave up.
    pub state: Fitted,
    /// The item's size before (bytes, as DynamoDB counts it).
    pub before: usize,
    /// The item's size as it will be written.
    pub after: usize,
    /// Transitions in the outbox whose explanation was dropped.
    pub explanations_dropped: usize,
}

impl FitReport {
    /// Whether anything was given up.
    pub fn degraded(&self) -> bool {
        self.state.degraded() || self.explanations_dropped > 0
    }

    /// Whether the item is within [`ITEM_BUDGET_BYTES`] (false only for
    /// memberships and transitions too many to fit: see the README).
    pub fn fits(&self) -> bool {
        self.after <= ITEM_BUDGET_BYTES
    }
}

impl StoredContact {
    /// Degrades the record until it fits [`ITEM_BUDGET_BYTES`], as
    /// documented in this module, and reports what it did.
    pub fn fit(&mut self, contact: &str) -> FitReport {
        let state = self.state.fit(STATE_BUDGET_BYTES);
        let before = self.item_size_with(contact, state.before);
        let mut size = self.item_size_with(contact, state.after);
        let mut explanations_dropped = 0;
        let mut largest: Vec<usize> = (0..self.outbox.len()).collect();
        largest.sort_by_key(|i| std::cmp::Reverse(self.outbox[*i].len()));
        for i in largest {
            if size <= ITEM_BUDGET_BYTES {
                break;
            }
            if let Some(shorter) = without_explanation(&self.outbox[i]).filter(|s| s.len() < self.outbox[i].len()) {
                size -= self.outbox[i].len() - shorter.len();
                self.outbox[i] = shorter;
                explanations_dropped += 1;
            }
        }
        FitReport {
            after: self.item_size_with(contact, state.after),
            state,
            before,
            explanations_dropped,
        }
    }

    /// The item's size as DynamoDB counts it, for the attributes the DynamoDB
    /// adapter writes: each name's bytes plus its value's (binary and strings
    /// their bytes, numbers a byte per two significant digits plus one, lists
    /// 3 bytes plus a byte per element).
    pub fn item_size(&self, contact: &str) -> usize {
        self.item_size_with(contact, self.state.to_bytes().len())
    }

    /// [`StoredContact::item_size`], given the encoded state's size.
    fn item_size_with(&self, contact: &str, state_bytes: usize) -> usize {
        let text = |name: &str, value: usize| name.len() + value;
        let number = |name: &str, value: i128| name.len() + number_size(value);
        let mut size = text("pk", "contact#".len() + contact.len())
            + number("format", kairos_state::STATE_FORMAT.into())
            + number("version", self.version.into())
            + text("state", state_bytes)
            + number("expires_at", self.expires_at.into());
        if !self.outbox.is_empty() {
            size += text("outbox", 3) + self.outbox.iter().map(|m| 1 + m.len()).sum::<usize>();
        }
        if let Some(t) = self.next_change_at {
            size += number("next_change_at", t.into());
        }
        if let Some(target) = &self.merged_into {
            size += text("merged_into", target.len());
        } else if let Some(t) = self.due_at {
            // The shard counted at its largest (below `MAX_DUE_SHARDS`).
            size += number("due_at", t.into()) + text("due_shard", number_size(999));
        }
        if let Some(kept) = self.consent_to_keep().or(self.consent_kept) {
            size += number("consent_kept", kept.order().into());
        }
        if !self.overrides.is_empty() {
            let json = serde_json::to_string(&self.overrides).map_or(0, |j| j.len());
            size += text("overrides", json);
        }
        if let Some(written) = &self.written {
            size += text("written", 3) + written.iter().map(|m| 1 + m.len()).sum::<usize>();
        }
        size
    }
}

/// A number's size in DynamoDB: a byte per two significant digits, plus one.
pub(crate) fn number_size(value: i128) -> usize {
    let digits = value.unsigned_abs().to_string();
    let significant = digits.trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

/// A transition body without its explanation (a condition saying why), its
/// summary cut to [`SUMMARY_BYTES`]; none if the body is not a transition.
fn without_explanation(body: &str) -> Option<String> {
    let WritebackMessage::Transition(mut t) = WritebackMessage::decode(body.as_bytes()).ok()?;
    let condition = "explanation omitted: the contact's record was over its size budget";
    t.explanation = serde_json::json!({"condition": condition, "result": t.change == Change::Entered});
    if t.summary.len() > SUMMARY_BYTES {
        let cut = (0..=SUMMARY_BYTES)
            .rev()
            .find(|i| t.summary.is_char_boundary(*i))
            .unwrap_or(0);
        t.summary.truncate(cut);
        t.summary.push('…');
    }
    Some(WritebackMessage::Transition(t).encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_event::Transition;

    fn transition(segment: usize, explanation_bytes: usize) -> String {
        let t = serde_json::json!({
            "contact": "ada@x.test", "segment": format!("s{segment}"), "change": "entered",
            "rule_version": "0badcafe", "state_version": 7, "at": "2026-11-27T10:00:00Z",
            "summary": "é".repeat(300), "explanation": {"condition": "x".repeat(explanation_bytes), "result": true},
        });
        t.to_string()
    }

    #[test]
    fn an_outbox_over_the_budget_loses_explanations_largest_first_and_nothing_else() {
        let mut record = StoredContact {
            version: 7,
            outbox: (0..256).map(|i| transition(i, 600 + i * 4)).collect(),
            ..StoredContact::default()
        };
        assert!(record.item_size("ada@x.test") > ITEM_BUDGET_BYTES);
        let report = record.fit("ada@x.test");
        assert!(
            report.fits() && report.degraded() && report.explanations_dropped < 256,
            "{report:?}"
        );
        assert_eq!(report.after, record.item_size("ada@x.test"));
        for (i, body) in record.outbox.iter().enumerate() {
            let WritebackMessage::Transition(t): WritebackMessage = WritebackMessage::decode(body.as_bytes()).unwrap();
            let Transition {
                segment,
                summary,
                explanation,
                ..
            } = t;
            assert_eq!(segment, format!("s{i}"));
            let kept = explanation["condition"].as_str().unwrap().starts_with('x');
            // The largest explanations (the last segments) went first.
            assert_eq!(kept, i < 256 - report.explanations_dropped, "s{i}");
            assert!(
                kept || (summary.len() <= SUMMARY_BYTES + 3 && summary.ends_with('…')),
                "{summary}"
            );
        }
    }

    #[test]
    fn a_record_within_the_budget_is_written_as_it_is() {
        let mut record = StoredContact {
            outbox: vec![transition(1, 100)],
            ..StoredContact::default()
        };
        let before = record.clone();
        assert!(!record.fit("ada@x.test").degraded());
        assert_eq!(record, before);
    }
}
