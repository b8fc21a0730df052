//! The stored encoding of a [`ContactState`], versioned.
//!
//! Format 1 is what the first release wrote; format 2 keeps each remembered
//! event id with its time to the second and the dedupe floor; format 3 keeps
//! 40-bit fingerprints of the ids instead of 48-bit hashes, their time gaps
//! as plain LEB128 (`seen.rs`); format 4 ([`STATE_FORMAT`]) keeps only the
//! recent ids in the record, with the cold cutoff and the cold days that
//! hold the older ones (`cold.rs`). A state's format is stored beside it (the contact item's
//! `format` attribute, absent for format 1): [`ContactState::decode`] reads
//! every format up to this build's, and refuses a newer one with
//! [`CodecError::Newer`], a permanent error. A change of layout takes a new
//! format number and keeps a decoder for the old one; fixtures of every
//! format are in `tests/fixtures/`.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::seen::{Seen, SeenV2, SeenV3};
use crate::{Consent, ContactState, SignalState, TraitValue};

/// The newest state format this build reads, and the one it writes.
pub const STATE_FORMAT: u32 = 4;

/// Why stored state bytes could not be decoded. Both are permanent: the same
/// bytes fail the same way every time.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The state was written by a newer build than this one.
    #[error("contact state format {found} is newer than this build reads (up to {supported}): deploy the newer build")]
    Newer {
        /// The stored format.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The bytes are not a state of their format.
    #[error("contact state (format {format}) is not decodable: {source}")]
    Invalid {
        /// The stored format.
        format: u32,
        /// What postcard found.
        source: postcard::Error,
    },
}

impl ContactState {
    /// Encodes the state compactly in [`STATE_FORMAT`] (postcard: varints, no field names).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("contact state always encodes")
    }

    /// Decodes a state written by [`ContactState::to_bytes`] of this build.
    pub fn from_bytes(bytes: &[u8]) -> Result<ContactState, CodecError> {
        ContactState::decode(bytes, STATE_FORMAT)
    }

    /// Decodes a state stored in `format` (1 up to [`STATE_FORMAT`]).
    pub fn decode(bytes: &[u8], format: u32) -> Result<ContactState, CodecError> {
        let invalid = |source| CodecError::Invalid { format, source };
        match format {
            1 => V1::decode(bytes).map(ContactState::from).map_err(invalid),
            2 => postcard::from_bytes::<Older<SeenV2>>(bytes)
                .map(ContactState::from)
                .map_err(invalid),
            3 => postcard::from_bytes::<Older<SeenV3>>(bytes)
                .map(ContactState::from)
                .map_err(invalid),
            STATE_FORMAT => postcard::from_bytes(bytes).map_err(invalid),
            found if found > STATE_FORMAT => Err(CodecError::Newer {
                found,
                supported: STATE_FORMAT,
            }),
            _ => Err(invalid(postcard::Error::DeserializeBadEncoding)),
        }
    }
}

/// Formats 2 and 3: [`ContactState`]'s fields, the event ids as `S` reads
/// them (format 2: 48-bit hashes; format 3: fingerprints, no cold days).
#[derive(Deserialize)]
struct Older<S> {
    signals: Vec<SignalState>,
    traits: BTreeMap<String, (i64, TraitValue)>,
    consent: Consent,
    seen: S,
    members: Vec<(String, i64)>,
    rules: u32,
    deadlines: Vec<(u32, i64)>,
    merged: Vec<([u8; 6], i64)>,
    holds: Vec<u8>,
    coarse: u32,
}

impl<S: Into<Seen>> From<Older<S>> for ContactState {
    fn from(old: Older<S>) -> ContactState {
        ContactState {
            signals: old.signals,
            traits: old.traits,
            consent: old.consent,
            seen: old.seen.into(),
            members: old.members,
            rules: old.rules,
            deadlines: old.deadlines,
            merged: old.merged,
            holds: old.holds,
            coarse: old.coarse,
        }
    }
}

impl From<SeenV2> for Seen {
    fn from(v2: SeenV2) -> Seen {
        v2.0
    }
}

impl From<SeenV3> for Seen {
    fn from(v3: SeenV3) -> Seen {
        v3.0
    }
}

/// Format 1: event ids with their hour, no floor.
#[derive(Deserialize)]
struct V1 {
    signals: Vec<SignalState>,
    traits: BTreeMap<String, (i64, TraitValue)>,
    consent: Consent,
    /// (id hash, event hour).
    seen: Vec<([u8; 6], i64)>,
    members: Vec<(String, i64)>,
    rules: u32,
    deadlines: Vec<(u32, i64)>,
    merged: Vec<([u8; 6], i64)>,
    holds: Vec<u8>,
}

impl V1 {
    /// Also reads states from before holds were kept (they end before it: none recorded).
    fn decode(bytes: &[u8]) -> Result<V1, postcard::Error> {
        match postcard::from_bytes(bytes) {
            Err(postcard::Error::DeserializeUnexpectedEnd) => {
                let mut with_no_holds = bytes.to_vec();
                with_no_holds.push(0);
                postcard::from_bytes(&with_no_holds).map_err(|_| postcard::Error::DeserializeUnexpectedEnd)
            }
            decoded => decoded,
        }
    }
}

impl From<V1> for ContactState {
    fn from(v1: V1) -> ContactState {
        // An id is remembered until its hour's end: never forgotten earlier than it was.
        let ids = v1
            .seen
            .into_iter()
            .map(|(id, hour)| (crate::seen::fingerprint(id), hour * 3600 + 3599))
            .collect();
        ContactState {
            signals: v1.signals,
            traits: v1.traits,
            consent: v1.consent,
            seen: Seen::from_ids(ids, 0),
            members: v1.members,
            rules: v1.rules,
            deadlines: v1.deadlines,
            merged: v1.merged,
            holds: v1.holds,
            coarse: 0,
        }
    }
}

impl ContactState {
    /// Where the encoded state's bytes go: each part's share of
    /// [`ContactState::to_bytes`], in encoding order. The parts add up to the
    /// whole: `signals (keys, latest)` is each signal's key and latest time
    /// with the list lengths, `occurrences (exact)` their exact times,
    /// `occurrences (hourly buckets)` the buckets, `event ids (dedupe)` the
    /// ids kept in the record with the floor, `event ids: cold cutoff and
    /// days` what the record says of the ids kept apart (`cold.rs`); the rest are the fields of the same name.
    pub fn encoded_parts(&self) -> Vec<(&'static str, usize)> {
        let (mut exact, mut hours) = (0, 0);
        for signal in &self.signals {
            let (without_hours, bare) = signal.without_occurrences();
            exact += size(&without_hours) - size(&bare);
            hours += size(signal) - size(&without_hours);
        }
        let signals = size(&self.signals) - exact - hours;
        vec![
            ("signals (keys, latest)", signals),
            ("occurrences (exact)", exact),
            ("occurrences (hourly buckets)", hours),
            ("traits", size(&self.traits)),
            ("consent", size(&self.consent)),
            ("event ids (dedupe)", size(&self.seen) - self.seen.cold_size()),
            ("event ids: cold cutoff and days", self.seen.cold_size()),
            ("memberships", size(&self.members)),
            ("rules fingerprint", size(&self.rules)),
            ("deadlines", size(&self.deadlines)),
            ("merged anonymous ids", size(&self.merged)),
            ("holds", size(&self.holds)),
            ("bucket width", size(&self.coarse)),
        ]
    }
}

/// Bytes of a value's postcard encoding.
fn size<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).expect("contact state always encodes")
}
