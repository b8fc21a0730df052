//! The audit trail port: a contact's audit entries, kept apart from its
//! record (so the record stays bounded), newest first, paginated.
//!
//! Entries are written by [`ContactStore::save`](crate::ContactStore::save)
//! from [`StoredContact::audit`](crate::StoredContact::audit), in the same
//! conditional write as the record: one audit item per saved version, so an
//! entry exists exactly once for each change, whatever SQS redelivers and
//! however evaluations race (the loser's write, entries and all, fails).

use kairos_event::AuditEntry;
use std::future::Future;

use crate::StoreError;

/// How long audit entries are kept unless configured
/// (`KAIROS_AUDIT_RETENTION_DAYS`): 400 days.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 400;

/// Reads a `KAIROS_AUDIT_RETENTION_DAYS` value: a whole number of days from
/// 1 to 3,650; the error says what was expected.
pub fn parse_retention_days(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=3650).contains(&n) => Ok(n),
        _ => Err(format!("`{value}`: expected a whole number of days from 1 to 3650")),
    }
}

/// One page of a contact's audit trail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass back as the cursor for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A contact's audit trail.
pub trait AuditTrail: Send + Sync {
    /// Up to about `limit` entries of `contact`'s trail, newest first, after
    /// `cursor` (a page's [`AuditPage::next`]). Entries of one change are
    /// never split across pages.
    fn audit(
        &self,
        contact: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<AuditPage, StoreError>> + Send;

    /// Deletes every entry of `contact`'s trail; returns how many changes' items it deleted.
    fn forget_audit(&self, contact: &str) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Appends entries outside a record's write, under `key` (an erasure
    /// receipt, keyed by a salted hash rather than the contact's key).
    fn append(&self, key: &str, entries: &[AuditEntry]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The cursor of the change whose entries were written at `version`.
pub(crate) fn cursor_of(version: u64) -> String {
    format!("{version:020}")
}
