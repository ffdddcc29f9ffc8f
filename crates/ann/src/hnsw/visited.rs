//! The set of nodes one search has already seen.
//!
//! A generation-tagged array (as hnswlib's visited-list pool): a node is
//! visited when its mark equals the current generation, so starting a new
//! search is one increment instead of clearing the array. Marks are u16 to
//! keep the array small enough to stay in cache; the array is wiped only
//! when the generation wraps around.

/// Marks for one search at a time; reuse it across searches.
#[derive(Debug, Default)]
pub(super) struct VisitedSet {
    marks: Vec<u16>,
    generation: u16,
}

impl VisitedSet {
    /// Forgets every mark and makes room for ids below `capacity`.
    pub(super) fn begin(&mut self, capacity: usize) {
        if self.marks.len() < capacity {
            self.marks.resize(capacity, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `id`; true when it was not marked yet in this search.
    #[inline]
    pub(super) fn insert(&mut self, id: u32) -> bool {
        let mark = &mut self.marks[id as usize];
        let fresh = *mark != self.generation;
        *mark = self.generation;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_reset_per_search_even_across_wraparound() {
        let mut v = VisitedSet::default();
        for round in 0..70_000u32 {
            v.begin(8);
            assert!(v.insert(round % 8), "round {round}");
            assert!(!v.insert(round % 8));
        }
        v.begin(16);
        assert!((0..16).all(|i| v.insert(i)));
    }
}
