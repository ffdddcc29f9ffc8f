//! The layered graph's storage.
//!
//! ```text
//! levels    [u8; capacity]             ABSENT, or the node's top level
//! level0    [u32; capacity * (1 + 2m)] per node: count, then 2m neighbour slots
//! upper_at  [u32; capacity]            NO_UPPER, or where the node's blocks start
//! upper     [u32; …]                   per node with level L > 0: L blocks of
//!                                      (count, m neighbour slots), level 1 first
//! ```
//!
//! Slots are indexed by the caller's ids directly. Level 0, which every
//! search spends nearly all its time in, is one allocation with a fixed
//! stride; only the few nodes above level 0 pay for upper blocks. A node's
//! level is a function of its id ([`level_for`]), so a deleted id inserted
//! again reuses its upper blocks.
//!
//! The words are `AtomicU32` so that builder threads can share the graph:
//! writers and builder readers hold the node's lock ([`NodeLocks`]), queries
//! (which run only while nobody writes, as `&self` vs `&mut self` ensures)
//! read without locks. Relaxed atomic loads and stores compile to plain
//! moves on x86-64 and aarch64, so the search pays nothing for this.

use crate::rng::Rng;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// `levels` value of an id that is not in the graph.
pub(super) const ABSENT: u8 = u8::MAX;
/// `upper_at` value of an id without upper blocks.
const NO_UPPER: u32 = u32::MAX;
/// Highest level a node can get (pgvector caps levels the same way).
pub(super) const MAX_LEVEL: u8 = 15;
/// Seed of the level assignment; fixed so that builds are repeatable.
const LEVEL_SEED: u64 = 0x6876_7368_6172_6421;

/// The level of node `id`: `floor(-ln(U) / ln(m))` with `U` drawn from a
/// seeded generator keyed by the id, capped at [`MAX_LEVEL`].
pub(super) fn level_for(id: u32, m: usize) -> u8 {
    let u = Rng::new(LEVEL_SEED ^ id as u64).next_f64();
    let ml = 1.0 / (m as f64).ln();
    let level = (-(1.0 - u).ln() * ml).floor();
    level.min(MAX_LEVEL as f64) as u8
}

/// Adjacency lists of every level, indexed by id.
#[derive(Debug)]
pub(super) struct Graph {
    stride0: usize,
    stride_up: usize,
    levels: Vec<u8>,
    level0: Vec<AtomicU32>,
    upper_at: Vec<u32>,
    upper: Vec<AtomicU32>,
}

impl Graph {
    /// An empty graph for `m` neighbours per upper level.
    pub(super) fn new(m: usize) -> Self {
        Graph {
            stride0: 1 + 2 * m,
            stride_up: 1 + m,
            levels: Vec::new(),
            level0: Vec::new(),
            upper_at: Vec::new(),
            upper: Vec::new(),
        }
    }

    /// Number of id slots (one more than the largest id ever added).
    pub(super) fn capacity(&self) -> usize {
        self.levels.len()
    }

    /// The node's top level, or None when `id` is not in the graph.
    #[inline]
    pub(super) fn level(&self, id: u32) -> Option<u8> {
        match self.levels.get(id as usize) {
            Some(&l) if l != ABSENT => Some(l),
            _ => None,
        }
    }

    /// Grows the arrays to exactly `capacity` id slots (no doubling slack).
    pub(super) fn reserve_ids(&mut self, capacity: usize) {
        if capacity > self.capacity() {
            self.levels.reserve_exact(capacity - self.levels.len());
            self.upper_at.reserve_exact(capacity - self.upper_at.len());
            self.level0
                .reserve_exact(capacity * self.stride0 - self.level0.len());
            self.levels.resize(capacity, ABSENT);
            self.upper_at.resize(capacity, NO_UPPER);
            self.level0
                .resize_with(capacity * self.stride0, || AtomicU32::new(0));
        }
    }

    /// Adds `id` with empty lists, growing the arrays if needed. `level` must
    /// be [`level_for`]`(id, m)`: upper blocks, once allocated, are reused.
    pub(super) fn add_node(&mut self, id: u32, level: u8) {
        let slot = id as usize;
        if slot >= self.capacity() {
            let cap = slot + 1;
            self.levels.resize(cap, ABSENT);
            self.upper_at.resize(cap, NO_UPPER);
            self.level0
                .resize_with(cap * self.stride0, || AtomicU32::new(0));
        }
        self.levels[slot] = level;
        if level > 0 && self.upper_at[slot] == NO_UPPER {
            let at = self.upper.len();
            self.upper
                .resize_with(at + level as usize * self.stride_up, || AtomicU32::new(0));
            self.upper_at[slot] = u32::try_from(at).expect("upper levels exceed 4G words");
        }
        for l in 0..=level {
            self.block(id, l)[0].store(0, Relaxed);
        }
    }

    /// Takes `id` out of the graph (its lists emptied, its upper blocks kept
    /// for a later re-insert). Lists of other nodes are the caller's job.
    pub(super) fn remove_node(&mut self, id: u32) {
        if let Some(level) = self.level(id) {
            for l in 0..=level {
                self.block(id, l)[0].store(0, Relaxed);
            }
            self.levels[id as usize] = ABSENT;
        }
    }

    #[inline]
    fn block(&self, id: u32, level: u8) -> &[AtomicU32] {
        if level == 0 {
            let at = id as usize * self.stride0;
            &self.level0[at..at + self.stride0]
        } else {
            let at = self.upper_at[id as usize] as usize + (level as usize - 1) * self.stride_up;
            &self.upper[at..at + self.stride_up]
        }
    }

    /// Appends `id`'s neighbours on `level` to `out`. The caller holds the
    /// node's lock whenever another thread may write.
    #[inline]
    pub(super) fn read_links(&self, id: u32, level: u8, out: &mut Vec<u32>) {
        self.read_links_where(id, level, out, |_| true);
    }

    /// Appends the neighbours of `id` on `level` for which `keep` is true.
    #[inline]
    pub(super) fn read_links_where(
        &self,
        id: u32,
        level: u8,
        out: &mut Vec<u32>,
        mut keep: impl FnMut(u32) -> bool,
    ) {
        let block = self.block(id, level);
        let n = (block[0].load(Relaxed) as usize).min(block.len() - 1);
        out.extend(
            block[1..=n]
                .iter()
                .map(|w| w.load(Relaxed))
                .filter(|&l| keep(l)),
        );
    }

    /// Hints that `id`'s list on `level` will be read soon (every cache
    /// line it spans: a level-0 list of m = 16 spans three).
    #[inline]
    pub(super) fn prefetch_links(&self, id: u32, level: u8) {
        #[cfg(target_arch = "x86_64")]
        {
            let block = self.block(id, level);
            for word in block.iter().step_by(16).chain(block.last()) {
                // SAFETY: prefetch never faults; the address is a word of
                // the block.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        (word as *const AtomicU32).cast(),
                        std::arch::x86_64::_MM_HINT_T0,
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (id, level);
    }

    /// (stored count, capacity) of `id`'s list on `level`.
    pub(super) fn link_count(&self, id: u32, level: u8) -> (usize, usize) {
        let block = self.block(id, level);
        (block[0].load(Relaxed) as usize, block.len() - 1)
    }

    /// Replaces `id`'s neighbours on `level` (at most the level's capacity
    /// are kept). The caller holds the node's lock.
    pub(super) fn write_links(&self, id: u32, level: u8, links: &[u32]) {
        let block = self.block(id, level);
        let n = links.len().min(block.len() - 1);
        for (slot, &l) in block[1..=n].iter().zip(links) {
            slot.store(l, Relaxed);
        }
        block[0].store(n as u32, Relaxed);
    }

    /// Appends one neighbour if the list has room; false when it is full.
    /// The caller holds the node's lock.
    pub(super) fn push_link(&self, id: u32, level: u8, link: u32) -> bool {
        let block = self.block(id, level);
        let n = block[0].load(Relaxed) as usize;
        if n + 1 >= block.len() {
            return false;
        }
        block[n + 1].store(link, Relaxed);
        block[0].store(n as u32 + 1, Relaxed);
        true
    }

    /// Ids in the graph, ascending.
    pub(super) fn nodes(&self) -> impl Iterator<Item = u32> + '_ {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l != ABSENT)
            .map(|(i, _)| i as u32)
    }

    /// Level-0 words (count and slots per id), for saving.
    pub(super) fn level0_words(&self) -> Vec<u32> {
        self.level0.iter().map(|w| w.load(Relaxed)).collect()
    }

    /// Upper blocks of the nodes in the graph, in id order, for saving.
    pub(super) fn upper_words(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for id in self.nodes() {
            let level = self.levels[id as usize];
            for l in 1..=level {
                out.extend(self.block(id, l).iter().map(|w| w.load(Relaxed)));
            }
        }
        out
    }

    /// The node levels, for saving.
    pub(super) fn level_bytes(&self) -> &[u8] {
        &self.levels
    }

    /// Reassembles a saved graph; None when the arrays' lengths disagree.
    /// Links are not checked here (see the loader).
    pub(super) fn from_words(
        m: usize,
        levels: Vec<u8>,
        level0: Vec<u32>,
        upper: Vec<u32>,
    ) -> Option<Graph> {
        let mut g = Graph::new(m);
        if level0.len() != levels.len().checked_mul(g.stride0)? {
            return None;
        }
        let mut upper_at = vec![NO_UPPER; levels.len()];
        let mut at = 0usize;
        for (slot, &l) in levels.iter().enumerate() {
            if l != ABSENT && l > 0 {
                upper_at[slot] = u32::try_from(at).ok()?;
                at = at.checked_add(l as usize * g.stride_up)?;
            }
        }
        if at != upper.len() {
            return None;
        }
        g.levels = levels;
        g.upper_at = upper_at;
        g.level0 = level0.into_iter().map(AtomicU32::new).collect();
        g.upper = upper.into_iter().map(AtomicU32::new).collect();
        Some(g)
    }

    /// Bytes held by the graph's arrays.
    pub(super) fn memory_bytes(&self) -> usize {
        self.levels.capacity()
            + 4 * (self.level0.capacity() + self.upper_at.capacity() + self.upper.capacity())
    }
}

/// Striped locks that guard neighbour lists while several threads insert.
/// A thread holds at most one of them at a time, so stripes cannot deadlock.
#[derive(Debug)]
pub(super) struct NodeLocks(Vec<Mutex<()>>);

impl NodeLocks {
    /// `stripes` locks (rounded up to a power of two).
    pub(super) fn new(stripes: usize) -> Self {
        NodeLocks(
            (0..stripes.next_power_of_two())
                .map(|_| Mutex::new(()))
                .collect(),
        )
    }

    /// Locks the stripe of node `id`.
    #[inline]
    pub(super) fn lock(&self, id: u32) -> MutexGuard<'_, ()> {
        let stripe = id as usize & (self.0.len() - 1);
        // A panicking builder thread fails the whole build anyway; the
        // lists it guarded hold valid ids at every moment.
        self.0[stripe].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_geometric_and_repeatable() {
        let m = 16;
        let levels: Vec<u8> = (0..100_000).map(|i| level_for(i, m)).collect();
        let above0 = levels.iter().filter(|&&l| l > 0).count() as f64 / 1e5;
        assert!((above0 - 1.0 / 16.0).abs() < 0.005, "{above0}");
        assert!(levels.iter().all(|&l| l <= MAX_LEVEL));
        assert_eq!(level_for(777, m), levels[777]);
    }

    #[test]
    fn lists_keep_their_capacity_and_survive_reinsert() {
        let mut g = Graph::new(2);
        let id = (0..1000).find(|&i| level_for(i, 2) >= 2).unwrap();
        g.add_node(id, level_for(id, 2));
        g.add_node(3, 0);
        let mut out = Vec::new();
        g.write_links(id, 0, &[1, 2, 3, 4, 5, 6]);
        g.read_links(id, 0, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(!g.push_link(id, 0, 9));
        g.write_links(id, 2, &[7]);
        assert!(g.push_link(id, 2, 8));
        assert!(!g.push_link(id, 2, 9));
        let words = g.memory_bytes();
        g.remove_node(id);
        assert_eq!(g.level(id), None);
        g.add_node(id, level_for(id, 2));
        assert_eq!(g.memory_bytes(), words, "upper blocks reused");
        out.clear();
        g.read_links(id, 2, &mut out);
        assert!(out.is_empty());
        let mut expect = vec![3, id];
        expect.sort_unstable();
        assert_eq!(g.nodes().collect::<Vec<_>>(), expect);
    }
}
