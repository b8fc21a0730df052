//! How long each piece of a contact's data is kept, in one place. The README's
//! retention table lists the same values, and the integration tests check the
//! queue retentions against `infra/template.yaml`.
//!
//! The dedupe horizon is sized so that an event redriven from the events
//! dead-letter queue on its last day still applies (once): a provider may
//! deliver an event [`PROVIDER_DELAY_SECS`] after it happened, the
//! dead-letter queue keeps a message [`DEAD_LETTER_RETENTION_SECS`] after it
//! was first enqueued (SQS keeps the original enqueue time when it moves a
//! message to a dead-letter queue), and a redrive enqueues it anew, for up to
//! [`EVENTS_QUEUE_RETENTION_SECS`]
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html>).

const DAY: i64 = 86_400;

/// How long after it happened a provider may still deliver an event (seconds;
/// 3 days: SendGrid retries for 24 hours, Mailgun for 8, Brevo for 11).
pub const PROVIDER_DELAY_SECS: i64 = 3 * DAY;
/// The events queue's `MessageRetentionPeriod` (seconds; 4 days).
pub const EVENTS_QUEUE_RETENTION_SECS: i64 = 4 * DAY;
/// The dead-letter queues' `MessageRetentionPeriod` (seconds; 14 days, the SQS maximum).
pub const DEAD_LETTER_RETENTION_SECS: i64 = 14 * DAY;
/// Event ids are remembered this long after the event happened (seconds; 21
/// days); events older than this at apply time are refused as stale, so a
/// redelivery can never double count.
pub const DEDUPE_HORIZON_SECS: i64 = PROVIDER_DELAY_SECS + DEAD_LETTER_RETENTION_SECS + EVENTS_QUEUE_RETENTION_SECS;
/// Hourly buckets and recency older than this are dropped (seconds; 90 days).
pub const RETENTION_SECS: i64 = 90 * DAY;
/// A contact record outlives its last event by this long before the table's
/// TTL removes it (seconds; 120 days): past [`RETENTION_SECS`], it holds
/// nothing a rule reads.
pub const RECORD_TTL_SECS: i64 = RETENTION_SECS + 30 * DAY;
/// A delivery-ledger entry outlives its last delivery by this long (seconds;
/// 180 days), far past the write-back dead-letter queue's retention, so a
/// redriven transition is still recognised as delivered.
pub const LEDGER_TTL_SECS: i64 = 180 * DAY;

const _: () = assert!(DEDUPE_HORIZON_SECS <= RETENTION_SECS && RETENTION_SECS < RECORD_TTL_SECS);
const _: () = assert!(DEAD_LETTER_RETENTION_SECS < LEDGER_TTL_SECS);
