//! Delta encoding for ascending sequences: postcard writes small varints for the
//! gaps instead of full unix times, which keeps a contact's state near 1 KB.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `#[serde(with = "delta::times")]` for an ascending `Vec<i64>`.
pub(crate) mod times {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[i64], s: S) -> Result<S::Ok, S::Error> {
        let mut prev = 0i64;
        let deltas: Vec<i64> = values
            .iter()
            .map(|v| {
                let d = v - prev;
                prev = *v;
                d
            })
            .collect();
        deltas.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        let mut acc = 0i64;
        let deltas = Vec::<i64>::deserialize(d)?;
        Ok(deltas
            .into_iter()
            .map(|x| {
                acc = acc.wrapping_add(x);
                acc
            })
            .collect())
    }
}

/// `#[serde(with = "delta::keyed")]` for a `Vec<(i64, u32)>` ascending by its first field.
pub(crate) mod keyed {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[(i64, u32)], s: S) -> Result<S::Ok, S::Error> {
        let mut prev = 0i64;
        let deltas: Vec<(i64, u32)> = values
            .iter()
            .map(|(k, v)| {
                let d = k - prev;
                prev = *k;
                (d, *v)
            })
            .collect();
        deltas.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(i64, u32)>, D::Error> {
        let mut acc = 0i64;
        let deltas = Vec::<(i64, u32)>::deserialize(d)?;
        Ok(deltas
            .into_iter()
            .map(|(x, v)| {
                acc = acc.wrapping_add(x);
                (acc, v)
            })
            .collect())
    }
}
