//! The event ids a contact's state has applied, for deduplication: a 40-bit
//! fingerprint of each id with the event's time, kept for the dedupe horizon
//! and at most [`MAX_SEEN_IDS`](crate::MAX_SEEN_IDS) of them.
//!
//! The fingerprint's width is the chance that a new event is taken for a
//! repeat (and not counted): with `n` ids remembered, `n / 2^40` per event:
//! about 1 in 10^10 at 100 ids, 1 in 1.2 × 10^9 at 900 (the heaviest
//! contacts of the soak), 1 in 2.7 × 10^8 at the cap (4,096). Format 2 kept
//! 48 bits (`n / 2^48`): the ids are most of an active contact's record, and
//! each byte of a fingerprint was 12% of them (`docs/soak.md`).
//!
//! When more ids arrive within the horizon than the cap holds, the oldest are
//! forgotten and the *floor* moves past them: an event dated before the floor
//! is then refused as stale, exactly as one older than the horizon, so a
//! forgotten id can never be counted twice.
//!
//! Where the ids are stored is `cold.rs`'s concern: the record keeps the
//! recent ones, older ones move to one item per day; the engine sees the ids
//! the evaluator read back for the events at hand, and dedupes as before.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cold::{ColdDays, Place};

/// A 40-bit fingerprint of an event's (source, id): the first 5 bytes of
/// its 48-bit hash, so format 2's ids keep matching once cut to it.
pub(crate) type IdHash = [u8; 5];

/// The fingerprint of a 48-bit hash (an id of format 2, or a new one).
pub(crate) fn fingerprint(hash: [u8; 6]) -> IdHash {
    [hash[0], hash[1], hash[2], hash[3], hash[4]]
}

/// One remembered id: its fingerprint, its event's time and where it is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) hash: IdHash,
    /// The event's time (unix seconds).
    pub(crate) at: i64,
    /// Where the id is stored (not encoded: see [`Place`]).
    pub(crate) place: Place,
}

/// Applied event ids and the floor below which events are refused.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    /// The ids, sorted by hash.
    pub(crate) ids: Vec<Entry>,
    /// Events dated before this are refused as stale (unix seconds; 0: none).
    floor: i64,
    /// The ids kept apart from the record, in one item per day (`cold.rs`).
    pub(crate) cold: ColdDays,
}

/// Equal when they remember the same ids (fingerprint and time), the same
/// floor and the same cold days; where each id is kept does not count.
impl PartialEq for Seen {
    fn eq(&self, other: &Seen) -> bool {
        self.floor == other.floor
            && self.cold == other.cold
            && self.ids.len() == other.ids.len()
            && self
                .ids
                .iter()
                .zip(&other.ids)
                .all(|(a, b)| (a.hash, a.at) == (b.hash, b.at))
    }
}

impl Seen {
    /// From ids in any order, as read from the record.
    pub(crate) fn from_ids(ids: Vec<(IdHash, i64)>, floor: i64) -> Seen {
        let mut ids: Vec<Entry> = ids
            .into_iter()
            .map(|(hash, at)| Entry {
                hash,
                at,
                place: Place::Record,
            })
            .collect();
        ids.sort_unstable_by_key(|e| (e.hash, e.at));
        ids.dedup_by_key(|e| e.hash);
        Seen {
            ids,
            floor,
            cold: ColdDays::default(),
        }
    }

    /// How many ids are remembered (wherever they are kept).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Events dated before this are refused (0: only the horizon applies).
    pub(crate) fn floor(&self) -> i64 {
        self.floor
    }

    /// Where `id` is, or would go.
    fn find(&self, id: &IdHash) -> Result<usize, usize> {
        self.ids.binary_search_by_key(id, |e| e.hash)
    }

    /// Records `id` (of an event at `at`); false if it is already recorded
    /// for an event at or after `oldest` (the horizon). One recorded before
    /// it is forgotten, whether or not a compaction dropped it yet: it is
    /// recorded anew.
    pub(crate) fn insert(&mut self, id: IdHash, at: i64, oldest: i64) -> bool {
        let entry = Entry {
            hash: id,
            at,
            place: Place::New,
        };
        match self.find(&id) {
            Ok(pos) if self.ids[pos].at >= oldest => false,
            Ok(pos) => {
                self.ids[pos] = entry;
                true
            }
            Err(pos) => {
                self.ids.insert(pos, entry);
                true
            }
        }
    }

    /// Adds an id read from a cold day, unless the id is already known.
    pub(crate) fn insert_cold(&mut self, id: IdHash, at: i64) {
        if let Err(pos) = self.find(&id) {
            let place = Place::Cold;
            self.ids.insert(pos, Entry { hash: id, at, place });
        }
    }

    /// Forgets ids of events before `oldest` (the horizon).
    pub(crate) fn forget_before(&mut self, oldest: i64) {
        self.ids.retain(|e| e.at >= oldest);
    }

    /// Over `cap`, forgets the oldest ids (an eighth of the cap more, so that
    /// a flood does not trim on every event) and raises the floor past them.
    /// Returns the new floor if it moved.
    pub(crate) fn cap(&mut self, cap: usize) -> Option<i64> {
        if self.ids.len() <= cap {
            return None;
        }
        let keep = cap - cap / 8;
        let mut times: Vec<i64> = self.ids.iter().map(|e| e.at).collect();
        let cut = times.len() - keep;
        let (_, newest_dropped, _) = times.select_nth_unstable(cut - 1);
        let floor = *newest_dropped + 1;
        // Everything before the floor goes, ties with the cut included: those
        // events are refused from now on anyway.
        self.ids.retain(|e| e.at >= floor);
        self.floor = self.floor.max(floor);
        Some(self.floor)
    }

    /// Bytes of the encoding taken by the cold cutoff and days.
    pub(crate) fn cold_size(&self) -> usize {
        let (through, days) = self.cold.encoded(&self.ids);
        postcard::experimental::serialized_size(&(through, Bytes(&days))).unwrap_or(0)
    }

    /// Adds `other`'s ids (new to this record, wherever `other` kept them);
    /// the higher floor holds (an id forgotten on either side must stay refused).
    pub(crate) fn merge(&mut self, other: &Seen) {
        for e in &other.ids {
            self.insert(e.hash, e.at, i64::MIN);
        }
        self.floor = self.floor.max(other.floor);
    }
}

/// Encoded as the floor, one byte string of the ids kept in the record, and
/// the cold days (`cold.rs`). The byte string holds the ids ascending by
/// time, each as its time's gap from the previous one (from 0 for the first;
/// LEB128, usually 1 to 3 bytes; wrapping, so any `i64` round-trips) and its
/// 5 fingerprint bytes (format 4; [`SeenV3`] reads format 3, which had no
/// cold days, and [`SeenV2`] format 2).
impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let in_record = self.ids.iter().filter(|e| e.place.in_record());
        let bytes = id_bytes(in_record.map(|e| (e.at, e.hash)));
        let (through, days) = self.cold.encoded(&self.ids);
        (self.floor, Bytes(&bytes), through, Bytes(&days)).serialize(s)
    }
}

/// The byte string of ids (event time, fingerprint), in any order.
fn id_bytes(ids: impl Iterator<Item = (i64, IdHash)>) -> Vec<u8> {
    let mut by_time: Vec<(i64, IdHash)> = ids.collect();
    by_time.sort_unstable();
    let mut bytes = Vec::with_capacity(by_time.len() * 7);
    let mut prev = 0u64;
    for (at, hash) in by_time {
        push_varint(&mut bytes, (at as u64).wrapping_sub(prev));
        prev = at as u64;
        bytes.extend_from_slice(&hash);
    }
    bytes
}

/// Appends `value` as LEB128.
pub(crate) fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push(value as u8 | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

/// A byte slice that serializes as bytes (one length and the raw bytes in
/// postcard), not as a sequence of numbers.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
        let (floor, bytes, through, days) = <(i64, ByteBuf, i64, ByteBuf)>::deserialize(d)?;
        let ids = parse(&bytes.0).ok_or_else(|| serde::de::Error::custom("malformed event ids"))?;
        let mut seen = Seen::from_ids(ids, floor);
        seen.cold =
            ColdDays::decode(through, &days.0).ok_or_else(|| serde::de::Error::custom("malformed cold days"))?;
        Ok(seen)
    }
}

/// The ids as format 3 stored them: every id in the record, no cold days.
pub(crate) struct SeenV3(pub(crate) Seen);

impl<'de> Deserialize<'de> for SeenV3 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SeenV3, D::Error> {
        let (floor, bytes) = <(i64, ByteBuf)>::deserialize(d)?;
        let ids = parse(&bytes.0).ok_or_else(|| serde::de::Error::custom("malformed event ids"))?;
        Ok(SeenV3(Seen::from_ids(ids, floor)))
    }
}

/// The ids as format 2 stored them: zigzag gaps and 48-bit hashes, read
/// into fingerprints.
pub(crate) struct SeenV2(pub(crate) Seen);

impl<'de> Deserialize<'de> for SeenV2 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SeenV2, D::Error> {
        let (floor, bytes) = <(i64, ByteBuf)>::deserialize(d)?;
        let ids = parse_v2(&bytes.0).ok_or_else(|| serde::de::Error::custom("malformed event ids"))?;
        let ids = ids.into_iter().map(|(hash, at)| (fingerprint(hash), at)).collect();
        Ok(SeenV2(Seen::from_ids(ids, floor)))
    }
}

/// Reads one LEB128 varint off the front of `bytes`.
pub(crate) fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
}

/// Reads the byte string [`Seen`] serializes to.
fn parse(mut bytes: &[u8]) -> Option<Vec<(IdHash, i64)>> {
    let mut ids = Vec::with_capacity(bytes.len() / 6);
    let mut at = 0u64;
    while !bytes.is_empty() {
        at = at.wrapping_add(varint(&mut bytes)?);
        let (hash, rest) = bytes.split_first_chunk::<5>()?;
        bytes = rest;
        ids.push((*hash, at as i64));
    }
    Some(ids)
}

/// Reads format 2's byte string: zigzag gaps, 6 hash bytes.
fn parse_v2(mut bytes: &[u8]) -> Option<Vec<([u8; 6], i64)>> {
    let mut ids = Vec::with_capacity(bytes.len() / 7);
    let mut at = 0i64;
    while !bytes.is_empty() {
        let zigzag = varint(&mut bytes)?;
        let gap = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        at = at.wrapping_add(gap);
        let (hash, rest) = bytes.split_first_chunk::<6>()?;
        bytes = rest;
        ids.push((*hash, at));
    }
    Some(ids)
}

/// Owned bytes, deserialized from a byte string.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_byte_string() {
        let ids = vec![
            ([1; 5], -5),
            ([9; 5], 1_795_000_000),
            ([3; 5], 1_795_000_000),
            ([7; 5], i64::MAX),
            ([2; 5], i64::MIN),
        ];
        let seen = Seen::from_ids(ids, 1_794_000_000);
        let bytes = postcard::to_stdvec(&seen).unwrap();
        assert_eq!(postcard::from_bytes::<Seen>(&bytes).unwrap(), seen);
        assert!(postcard::from_bytes::<Seen>(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(parse(&[0x80]), None);
    }

    #[test]
    fn an_id_costs_its_five_fingerprint_bytes_and_its_gap() {
        // Ten events a minute apart (gap under 128 s: one byte each).
        let ids = (0..10).map(|i| ([i as u8; 5], 1_795_000_000 + 60 * i)).collect();
        let bytes = postcard::to_stdvec(&Seen::from_ids(ids, 0)).unwrap();
        // floor (1), length (1), first time (5 bytes of varint) + 5, then 9 × (1 + 5);
        // no cold days: their day (1) and an empty byte string (1).
        assert_eq!(bytes.len(), 1 + 1 + (5 + 5) + 9 * 6 + 2);
    }

    #[test]
    fn format_2_ids_read_as_their_fingerprints() {
        // Format 2: floor, then (zigzag gap, 6 hash bytes) per id: +120 s and +(-0) gaps.
        let mut v2 = vec![0x02, 15];
        v2.extend([0xf0, 0x01, 1, 2, 3, 4, 5, 6]);
        v2.extend([0x00, 9, 9, 9, 9, 9, 9]);
        let SeenV2(seen) = postcard::from_bytes(&v2).unwrap();
        assert_eq!(seen.floor(), 1);
        let ids: Vec<_> = seen.ids.iter().map(|e| (e.hash, e.at)).collect();
        assert_eq!(ids, [([1, 2, 3, 4, 5], 120), ([9; 5], 120)]);
    }
}
