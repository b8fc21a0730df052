//! Contact keys: the one normalization every event's `contact` (and
//! `properties.anonymous_id`, which becomes the key `anon:<id>`) goes through,
//! whatever the event type or source, so one person is one key.
//!
//! 1. Outer whitespace is trimmed.
//! 2. Control characters (Unicode Cc: C0, DEL, C1), the line and paragraph
//!    separators and the invisible direction and zero-width marks are refused.
//! 3. The key is put in Unicode NFC, so `é` typed two ways is one key.
//! 4. An email-shaped key (`local@domain`, no whitespace) is lowercased, local
//!    part included: every provider treats addresses case-insensitively.
//!    Sub-addresses are kept: `ada+news@example.com` is not `ada@example.com`
//!    (whether they reach one mailbox is the mail provider's choice, and ESPs
//!    report the address as it was sent to).
//! 5. The result must be at most [`MAX_CONTACT_BYTES`] bytes of UTF-8.

use unicode_normalization::UnicodeNormalization;

use crate::ANONYMOUS_PREFIX;

/// Longest contact key, in bytes of UTF-8, after normalization (`anon:` included).
///
/// DynamoDB stops a partition key at 2,048 bytes, and the table's keys add to the
/// contact: `contact#<contact>`, and write-back's ledger keys
/// `delivery#<destination>:<contact>:<segment>` (segment ids are at most 64 bytes).
/// 512 leaves room for all of them; an email address is at most 254 (RFC 5321).
pub const MAX_CONTACT_BYTES: usize = 512;

/// Why a contact key is refused. Never carries the key itself (it is personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing but whitespace.
    #[error("must not be empty")]
    Empty,
    /// A control or invisible formatting character.
    #[error("has the control or invisible character U+{code:04X} at character {position}")]
    Control {
        /// The character's code point.
        code: u32,
        /// Its position in the trimmed key, counted in characters from 0.
        position: usize,
    },
    /// Longer than [`MAX_CONTACT_BYTES`].
    #[error("is {bytes} bytes, over the {MAX_CONTACT_BYTES}-byte limit for contact keys")]
    TooLong {
        /// The normalized key's length in bytes.
        bytes: usize,
    },
}

/// The normalized form of a contact key (see the module docs). An `anon:` key
/// normalizes its id as [`normalize_anonymous_id`] does.
pub fn normalize_contact(raw: &str) -> Result<String, KeyError> {
    match raw.trim().strip_prefix(ANONYMOUS_PREFIX) {
        Some(id) => normalize_anonymous_id(id).map(|id| format!("{ANONYMOUS_PREFIX}{id}")),
        None => normalized(raw, 0),
    }
}

/// The normalized form of an anonymous id (without `anon:`), sized so that
/// `anon:<id>` fits [`MAX_CONTACT_BYTES`].
pub fn normalize_anonymous_id(raw: &str) -> Result<String, KeyError> {
    normalized(raw, ANONYMOUS_PREFIX.len()).map_err(|e| match e {
        KeyError::TooLong { bytes } => KeyError::TooLong {
            bytes: bytes + ANONYMOUS_PREFIX.len(),
        },
        other => other,
    })
}

/// Trims, checks, composes and (for an address) lowercases; `reserved` bytes of
/// the limit are taken by a prefix.
fn normalized(raw: &str, reserved: usize) -> Result<String, KeyError> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if let Some((position, c)) = key.chars().enumerate().find(|(_, c)| refused(*c)) {
        return Err(KeyError::Control {
            code: u32::from(c),
            position,
        });
    }
    let composed: String = key.nfc().collect();
    let key = match is_email_shaped(&composed) {
        true => composed.to_lowercase().nfc().collect(),
        false => composed,
    };
    if key.len() + reserved > MAX_CONTACT_BYTES {
        return Err(KeyError::TooLong { bytes: key.len() });
    }
    Ok(key)
}

/// True for `local@domain` with both parts non-empty and no whitespace.
pub fn is_email_shaped(key: &str) -> bool {
    key.rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !key.chars().any(char::is_whitespace)
}

/// Control characters, line and paragraph separators, and the invisible
/// direction, zero-width and byte-order marks (they make two keys look alike).
fn refused(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_lowercased_and_composed_and_ids_keep_their_case() {
        assert_eq!(normalize_contact(" Ada@Example.COM\t").unwrap(), "ada@example.com");
        assert_eq!(normalize_contact("User-AB ").unwrap(), "User-AB");
        let decomposed = "Rene\u{301}@Example.com";
        assert_eq!(normalize_contact(decomposed).unwrap(), "ren\u{e9}@example.com");
        assert_eq!(
            normalize_contact("Jose\u{301}").unwrap(),
            "Jos\u{e9}",
            "NFC for every key"
        );
        assert_eq!(
            normalize_contact("ada+news@example.com").unwrap(),
            "ada+news@example.com"
        );
        assert_eq!(
            normalize_contact("anon: Visitor@Example.com").unwrap(),
            "anon:visitor@example.com"
        );
        assert_eq!(normalize_anonymous_id(" A1b2 ").unwrap(), "A1b2");
    }

    #[test]
    fn control_characters_empty_and_long_keys_are_refused_without_echoing_them() {
        assert_eq!(normalize_contact(" \n "), Err(KeyError::Empty));
        assert_eq!(
            normalize_contact("ada\u{0}@example.com"),
            Err(KeyError::Control { code: 0, position: 3 })
        );
        let rlo = normalize_contact("ada\u{202E}moc.elpmaxe@").unwrap_err();
        assert_eq!(
            rlo.to_string(),
            "has the control or invisible character U+202E at character 3"
        );
        let long = format!("{}@example.com", "a".repeat(MAX_CONTACT_BYTES));
        let err = normalize_contact(&long).unwrap_err();
        assert_eq!(
            err,
            KeyError::TooLong {
                bytes: MAX_CONTACT_BYTES + 12
            }
        );
        assert!(!err.to_string().contains("aaaa"));
        let just = "a".repeat(MAX_CONTACT_BYTES - ANONYMOUS_PREFIX.len());
        assert!(normalize_anonymous_id(&just).is_ok());
        assert_eq!(
            normalize_anonymous_id(&format!("{just}b")),
            Err(KeyError::TooLong {
                bytes: MAX_CONTACT_BYTES + 1
            })
        );
    }
}
