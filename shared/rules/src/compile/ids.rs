//! Segment ids to indexes: an open-addressing table keyed by a hash of the
//! whole id, so a recorded membership finds its segment in about one probe.

/// Segment ids hashed to their indexes.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    /// (the id's [`hash`], its length, segment index); `u32::MAX`: empty.
    slots: Vec<(u64, usize, u32)>,
    /// 64 less the log2 of `slots.len()` (a power of two): a hash's top bits
    /// pick its home slot.
    shift: u32,
}

const EMPTY: u32 = u32::MAX;

impl Ids {
    /// The table of `ids`, each mapped to its position.
    pub(crate) fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Ids {
        let size = (ids.len() * 2).next_power_of_two().max(2);
        let mut table = Ids {
            slots: vec![(0, 0, EMPTY); size],
            shift: 64 - size.trailing_zeros(),
        };
        for (i, id) in ids.enumerate() {
            let h = hash(id);
            let mut at = table.home(h);
            while table.slots[at].2 != EMPTY {
                at = (at + 1) % size;
            }
            table.slots[at] = (h, id.len(), i as u32);
        }
        table
    }

    /// The index of `id`, if a segment has it. `id_of` gives a segment's id by
    /// index, for ids longer than eight bytes.
    #[inline]
    pub(crate) fn get<'a>(&self, id: &str, id_of: impl Fn(usize) -> &'a str) -> Option<usize> {
        let h = hash(id);
        let mut at = self.home(h);
        loop {
            let (k, len, i) = self.slots[at];
            if i == EMPTY {
                return None;
            }
            // Up to eight bytes the hash is one-to-one; longer ids are compared.
            if k == h && len == id.len() && (len <= 8 || id_of(i as usize) == id) {
                return Some(i as usize);
            }
            at = (at + 1) % self.slots.len();
        }
    }

    fn home(&self, h: u64) -> usize {
        (h >> self.shift) as usize
    }
}

/// A hash of every byte of `id`, eight at a time, without copying: for ids
/// up to eight bytes it is one-to-one among ids of one length (one
/// multiplication by an odd constant of a word that holds every byte).
fn hash(id: &str) -> u64 {
    let step = |h: u64, word: u64| (h.rotate_left(26) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = id.as_bytes();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes")));
    let (n, tail) = (b.len(), b.len() % 8);
    match n {
        0 => step(0, 0),
        // Every byte sits in the word: first, middle and last of up to three,
        // or the first and last four (overlapping) of four to eight.
        1..=3 => step(
            0,
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
        ),
        4..=7 => step(0, half(0) | half(n - 4) << 32),
        _ => {
            let h = (0..n / 8).fold(0, |h, i| step(h, word(8 * i)));
            // The last `tail` bytes: the last word, less the bytes already hashed.
            if tail == 0 {
                h
            } else {
                step(h, word(n - 8) >> (8 * (8 - tail)))
            }
        }
    }
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
            "é",
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
            "e",
        ] {
            assert_eq!(table.get(absent, |j| ids[j]), None, "{absent:?}");
        }
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        assert_eq!(Ids::new(std::iter::empty()).get("x", |_| unreachable!()), None);
    }

    /// Ids that share their first bytes, or all but their last, still spread
    /// over the table: on average each sits less than one slot past its home.
    #[test]
    fn similar_ids_spread_over_the_table() {
        let sets: [Vec<String>; 3] = [
            ('a'..='z').map(String::from).collect(),
            (0..4000).map(|n| format!("campaign-{n:05}")).collect(),
            ["us", "eu", "apac", "latam"]
                .iter()
                .flat_map(|r| ["churned", "active", "new"].map(|s| format!("{r}-{s}")))
                .collect(),
        ];
        for ids in &sets {
            let table = Ids::new(ids.iter().map(String::as_str));
            let size = table.slots.len();
            let displaced: usize = (table.slots.iter().enumerate())
                .filter(|(_, s)| s.2 != super::EMPTY)
                .map(|(at, s)| (at + size - table.home(s.0)) % size)
                .sum();
            assert!(displaced < ids.len(), "{} ids {displaced} slots from home", ids.len());
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(table.get(id, |j| &ids[j]), Some(i));
            }
        }
    }
}
