//! The caps that keep one contact's state bounded whatever its input, and the
//! size budget its encoding is held to ([`ContactState::fit`](crate::ContactState::fit)).
//!
//! | list | cap | past it |
//! |---|---|---|
//! | event ids | [`MAX_SEEN_IDS`] | the oldest are forgotten; events before them are refused as stale |
//! | traits | [`MAX_TRAITS`], names up to [`MAX_TRAIT_NAME_BYTES`], values up to [`MAX_TRAIT_VALUE_BYTES`] | the least recently set trait is dropped; a longer name or value is not stored |
//! | merged anonymous ids | [`MAX_MERGED`] | a further anonymous visitor's history is not merged (its later events still count) |
//! | occurrences of a signal | [`EXACT_CAP`](crate::EXACT_CAP) exact, one bucket per hour of [`RETENTION_SECS`](crate::RETENTION_SECS) | older exact times go to buckets |
//! | memberships, deadlines, holds | one per segment, at most [`MAX_SEGMENTS`] (the rules compiler refuses more) | — |
//!
//! The whole state is held to [`STATE_BUDGET_BYTES`] encoded; over it, it is
//! degraded in this order until it fits: hourly buckets merged into wider ones
//! (2 h, 4 h, ... up to the retention), exact times moved into buckets, the
//! oldest event ids forgotten (the dedupe floor moves), the least recently
//! set traits dropped.

/// At most this many event ids are remembered per contact: past it, the
/// oldest are forgotten and events dated before them are refused as stale
/// ([`ContactState::stale_before`](crate::ContactState::stale_before)).
pub const MAX_SEEN_IDS: usize = 4096;
/// At most this many traits are kept: past it, the least recently set goes.
pub const MAX_TRAITS: usize = 64;
/// A trait whose name is longer than this (bytes) is not stored.
pub const MAX_TRAIT_NAME_BYTES: usize = 64;
/// A trait value (text, or an array or object as JSON text) longer than this
/// (bytes) is not stored.
pub const MAX_TRAIT_VALUE_BYTES: usize = 512;
/// At most this many anonymous visitors are merged into one contact at a time
/// (each is remembered until its frozen record expires).
pub const MAX_MERGED: usize = 100;
/// At most this many segments in a rules file: each may hold a membership,
/// a deadline and a hold in every contact's state.
pub const MAX_SEGMENTS: usize = 256;
/// A contact's encoded state is kept under this many bytes (64 KiB), however
/// hostile its input: see the module's table for what gives first.
pub const STATE_BUDGET_BYTES: usize = 64 * 1024;
/// How far ahead of `now` a deployment may let events be dated at most
/// (seconds; a day): a configured clock skew above it is refused, and
/// occurrences dated further ahead (written before events were bounded) are
/// dropped at compaction.
pub const MAX_CLOCK_SKEW_LIMIT_SECS: i64 = 86_400;
