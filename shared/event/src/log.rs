//! Privacy in logs: a contact key, an email address or an anonymous id is
//! never written to a log as such. Where a line needs to say which contact it
//! is about, it logs [`hashed`]: a keyed hash (HMAC-SHA256, the first 64 bits
//! in hex, `h:` first) that is the same for one value in every function, so an
//! operator can follow a contact across ingest, evaluate and write-back, and
//! find its lines by hashing its key with the same key (`kairos log-hash`).
//! Event ids go through [`id`]: shown as they are, unless they carry an
//! address (some providers' ids do), then hashed.
//!
//! The key is `KAIROS_LOG_HASH_KEY`, given once per process with [`init`]
//! (the template passes one SSM parameter to every function). It is not a
//! secret that appears in logs; without it each process draws a random key,
//! so hashes still hide the values but match only within one process.

use std::fmt;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Sets the hash key for this process (`KAIROS_LOG_HASH_KEY`; `None`: a random
/// one). The first call wins; later calls change nothing.
pub fn init(key: Option<&str>) {
    let _ = KEY.set(match key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) => key.as_bytes().to_vec(),
        None => random_key(),
    });
}

fn random_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    if getrandom::getrandom(&mut key).is_err() {
        // No OS randomness: the addresses of this process's data still differ per run.
        let seed = &key as *const Vec<u8> as usize ^ std::process::id() as usize;
        key[..8].copy_from_slice(&(seed as u64).to_le_bytes());
    }
    key
}

/// A value as it may be logged: its keyed hash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Hashed(String);

impl fmt::Display for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The keyed hash of `value`, for logs: `h:` and 16 hex digits.
pub fn hashed(value: &str) -> Hashed {
    Hashed(hash_with(KEY.get_or_init(random_key), value))
}

/// The keyed hash of `value` under `key` (what [`hashed`] computes once [`init`] set `key`).
pub fn hash_with(key: &[u8], value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("h:{hex}")
}

/// An event id as it may be logged: as it is, or its hash when it holds an `@`
/// (SES and Resend ids end with the recipient's address).
pub fn id(value: &str) -> Hashed {
    match value.contains('@') {
        true => hashed(value),
        false => Hashed(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_hide_the_value_and_are_stable_for_one_key() {
        let a = hash_with(b"key-1", "ada@example.com");
        assert_eq!(a, hash_with(b"key-1", "ada@example.com"));
        assert_ne!(a, hash_with(b"key-2", "ada@example.com"));
        assert!(a.starts_with("h:") && a.len() == 18 && !a.contains("ada"));
        assert_eq!(hashed("x"), hashed("x"));
        assert_eq!(id("sg-123").to_string(), "sg-123");
        assert!(!id("sns-1:ada@example.com").to_string().contains("ada@example.com"));
    }
}
