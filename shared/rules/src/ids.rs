//! Segment ids to indexes: an open-addressing table keyed by an id's first
//! eight bytes, so a recorded membership finds its segment in one or two probes.

/// Segment ids hashed to their indexes.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    /// (the id's [`prefix_key`], its length, segment index); `u32::MAX`: empty.
    slots: Vec<(u64, u32, u32)>,
    /// `slots.len() - 1` (a power of two, less one).
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl Ids {
    /// The table of `ids`, each mapped to its position.
    pub(crate) fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Ids {
        let size = (ids.len() * 2).next_power_of_two().max(2);
        let mut table = Ids {
            slots: vec![(0, 0, EMPTY); size],
            mask: size - 1,
        };
        for (i, id) in ids.enumerate() {
            let (key, len) = (prefix_key(id), id.len() as u32);
            let mut at = table.home(key, len);
            while table.slots[at].2 != EMPTY {
                at = (at + 1) & table.mask;
            }
            table.slots[at] = (key, len, i as u32);
        }
        table
    }

    /// The index of `id`, if a segment has it. `id_of` gives a segment's id by
    /// index, for ids longer than the key.
    #[inline]
    pub(crate) fn get<'a>(&self, id: &str, id_of: impl Fn(usize) -> &'a str) -> Option<usize> {
        let (key, len) = (prefix_key(id), id.len() as u32);
        let mut at = self.home(key, len);
        loop {
            let (k, l, i) = self.slots[at];
            if i == EMPTY {
                return None;
            }
            // Ids up to eight bytes are their key; longer ones are compared.
            if k == key && l == len && (len <= 8 || id_of(i as usize) == id) {
                return Some(i as usize);
            }
            at = (at + 1) & self.mask;
        }
    }

    fn home(&self, key: u64, len: u32) -> usize {
        let mixed = (key ^ u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as usize & self.mask
    }
}

/// An id's first eight bytes, zero-padded, as a number.
fn prefix_key(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = id.len().min(8);
    bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::Ids;

    #[test]
    fn finds_every_id_and_only_those() {
        let ids = [
            "a",
            "a\0",
            "engaged",
            "engaged-openers",
            "engaged-openers-1",
            "engaged-x",
            "12345678",
        ];
        let table = Ids::new(ids.iter().copied());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(table.get(id, |j| ids[j]), Some(i), "{id}");
        }
        for absent in [
            "",
            "b",
            "a\0\0",
            "engaged-openers-2",
            "engaged-",
            "1234567",
            "123456789",
        ] {
            assert_eq!(table.get(absent, |j| ids[j]), None, "{absent:?}");
        }
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        assert_eq!(Ids::new(std::iter::empty()).get("x", |_| unreachable!()), None);
    }
}
