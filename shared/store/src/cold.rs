//! Cold days: the event ids a contact's record no longer carries
//! (`kairos_state`'s `cold.rs` says which and why), one item per contact and
//! day of the events' time, `seen#<contact>#<yyyy-mm-dd>` in the contacts
//! table. A save writes them before the record
//! ([`ContactStore::save`](crate::ContactStore::save)); the evaluator reads
//! them back only for events dated before the record's cold cutoff
//! ([`ContactStore::load_seen`](crate::ContactStore::load_seen)); the erasure
//! deletes them with the contact's other items.
//!
//! In DynamoDB a day is a Binary Set of 8-byte elements (the 5 fingerprint
//! bytes, then the second of the day in 3 bytes, big-endian), added to with
//! `UpdateItem ADD`: idempotent, so a repeated write (a retry, a crash before
//! the record's write) changes nothing, and no transaction is needed. Each
//! day expires by the table's TTL ([`expires_at`]) once past the dedupe horizon.

use kairos_state::{SeenId, DEDUPE_HORIZON_SECS};

const DAY: i64 = 86_400;

/// The bytes of one id in a day's set.
pub(crate) const ELEMENT_BYTES: usize = 8;

/// When a cold day (days since 1970-01-01, UTC) may be deleted by the
/// table's TTL: a day after its last id passed the dedupe horizon.
pub fn expires_at(day: i64) -> i64 {
    (day + 2) * DAY + DEDUPE_HORIZON_SECS
}

/// The cold day's key suffix: `<contact>#<yyyy-mm-dd>`.
pub(crate) fn day_key(contact: &str, day: i64) -> String {
    format!("{contact}#{}", crate::day_of(day * DAY))
}

/// The contact a cold day's key suffix (`<contact>#<yyyy-mm-dd>`) names.
#[cfg_attr(not(feature = "aws"), allow(dead_code))] // used by the DynamoDB adapter
pub(crate) fn contact_of(day_key: &str) -> Option<&str> {
    day_key.rsplit_once('#').map(|(contact, _)| contact)
}

/// The set element of an id of `day`.
#[cfg_attr(not(feature = "aws"), allow(dead_code))] // used by the DynamoDB adapter
pub(crate) fn element(id: &SeenId) -> [u8; ELEMENT_BYTES] {
    let second = id.at.rem_euclid(DAY) as u32;
    let f = id.fingerprint;
    let s = second.to_be_bytes();
    [f[0], f[1], f[2], f[3], f[4], s[1], s[2], s[3]]
}

/// The id an element of `day`'s set holds; `None` if it is not one.
#[cfg_attr(not(feature = "aws"), allow(dead_code))] // used by the DynamoDB adapter
pub(crate) fn from_element(day: i64, bytes: &[u8]) -> Option<SeenId> {
    let bytes: &[u8; ELEMENT_BYTES] = bytes.try_into().ok()?;
    let second = i64::from(u32::from_be_bytes([0, bytes[5], bytes[6], bytes[7]]));
    (second < DAY).then_some(SeenId {
        fingerprint: [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]],
        at: day * DAY + second,
    })
}

/// A cold day item's size as DynamoDB counts it, holding `ids` ids: `pk`
/// (S), `ids` (BS: the elements' bytes) and `expires_at` (N, 10 digits).
pub fn item_size(contact: &str, ids: usize) -> usize {
    let pk = "pk".len() + "seen#".len() + day_key(contact, 0).len();
    pk + "ids".len() + ids * ELEMENT_BYTES + "expires_at".len() + 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_element_and_day() {
        let id = SeenId {
            fingerprint: [1, 2, 3, 4, 5],
            at: 1_795_651_200 + 86_399,
        };
        let day = id.at.div_euclid(DAY);
        assert_eq!(from_element(day, &element(&id)), Some(id));
        assert_eq!(from_element(day, &[0; 7]), None);
        assert_eq!(from_element(day, &[0, 0, 0, 0, 0, 0xff, 0xff, 0xff]), None);
        assert_eq!(day_key("ada@x.test", day), "ada@x.test#2026-11-26");
        assert_eq!(contact_of(&day_key("a#b", day)), Some("a#b"));
        assert!(expires_at(day) > id.at + DEDUPE_HORIZON_SECS);
    }
}
