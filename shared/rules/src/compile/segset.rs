//! A set of segment indexes, one bit each: what a delta decides is computed a
//! word (64 segments) at a time instead of segment by segment.

/// A set of indexes below a fixed size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SegSet(Vec<u64>);

impl SegSet {
    /// The empty set over `n` indexes.
    pub fn empty(n: usize) -> SegSet {
        SegSet(vec![0; n.div_ceil(64)])
    }

    /// Every index below `n`.
    pub fn full(n: usize) -> SegSet {
        let mut words = vec![!0u64; n.div_ceil(64)];
        if let Some(last) = words.last_mut().filter(|_| n % 64 != 0) {
            *last = (1 << (n % 64)) - 1;
        }
        SegSet(words)
    }

    pub fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Adds every index of `other`.
    pub fn add(&mut self, other: &SegSet) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
    }

    /// Adds the indexes of `when` that are in `set`, and those of `otherwise` that are not.
    pub fn add_selected(&mut self, set: &SegSet, when: &SegSet, otherwise: &SegSet) {
        for (((a, s), w), o) in self.0.iter_mut().zip(&set.0).zip(&when.0).zip(&otherwise.0) {
            *a |= (s & w) | (!s & o);
        }
    }

    /// The indexes in `a` or `b` but not both, and not in `except`.
    pub fn differing(a: &SegSet, b: &SegSet, except: &SegSet) -> SegSet {
        let words = a.0.iter().zip(&b.0).zip(&except.0).map(|((a, b), e)| (a ^ b) & !e);
        SegSet(words.collect())
    }

    /// Keeps only the indexes for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        for (w, word) in self.0.iter_mut().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                *word &= !(u64::from(!keep(w * 64 + bit)) << bit);
            }
        }
    }

    /// How many indexes it holds.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The indexes, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    w * 64 + bit
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SegSet;

    #[test]
    fn sets_combine_word_by_word_and_list_ascending() {
        let mut a = SegSet::empty(130);
        [0, 63, 64, 129].into_iter().for_each(|i| a.insert(i));
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert_eq!(a.len(), 4);
        assert!(a.contains(129) && !a.contains(128) && !a.contains(500));
        let full = SegSet::full(130);
        assert_eq!(full.iter().count(), 130);
        let none = SegSet::empty(130);
        let diff = SegSet::differing(&full, &a, &none);
        assert_eq!(diff.iter().count(), 126);
        assert!(!diff.contains(64) && diff.contains(65));
        let mut picked = SegSet::empty(130);
        let mut when = SegSet::empty(130);
        let mut otherwise = SegSet::empty(130);
        [63, 2].into_iter().for_each(|i| when.insert(i));
        [1, 0].into_iter().for_each(|i| otherwise.insert(i));
        picked.add_selected(&a, &when, &otherwise);
        // 63 is in `a` and `when`, 1 in neither `a` nor `when` but in `otherwise`;
        // 2 (not in `a`) and 0 (in `a`) are each only in the other list.
        assert_eq!(picked.iter().collect::<Vec<_>>(), [1, 63]);
        picked.add(&a);
        assert_eq!(picked.iter().collect::<Vec<_>>(), [0, 1, 63, 64, 129]);
        picked.retain(|i| i % 2 == 1);
        assert_eq!(picked.iter().collect::<Vec<_>>(), [1, 63, 129]);
    }
}
