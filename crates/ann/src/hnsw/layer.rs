//! Searching one level of the graph: the greedy descent through the upper
//! levels and the best-first search with a bounded result list (Malkov &
//! Yashunin, Algorithms 2 and 5). Building, repairing and querying all use
//! these two routines; they differ only in the closures passed in.

use super::graph::{Graph, NodeLocks};
use super::order::{id_of, scored, Scored};
use super::visited::VisitedSet;
use crate::space::Space;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Neighbours compared per batch. The vectors of all the fresh neighbours
/// of a node are prefetched before the first batch: on pypi-minilm-384's
/// sq8 walk that measured 15 % more queries per second than one batch ahead.
const BATCH: usize = 4;

/// What a level search needs from the vectors: distances from the search's
/// target (a query, or a node being inserted) to nodes, and prefetch hints.
pub(super) trait Probe {
    /// Ordering distance from the target to node `n`.
    fn dist(&self, n: u32) -> f32;
    /// Distances to four nodes at once.
    fn dist4(&self, ns: [u32; BATCH]) -> [f32; BATCH] {
        ns.map(|n| self.dist(n))
    }
    /// Hints that node `n`'s vector will be read soon.
    fn prefetch(&self, n: u32);
    /// Distances to `ns`, handed to `each` in order: in batches of four,
    /// a last batch of three padded with a repeat (one batched call costs
    /// less than three single ones), one or two alone.
    #[inline]
    fn dists(&self, ns: &[u32], mut each: impl FnMut(u32, f32)) {
        let mut batches = ns.chunks_exact(BATCH);
        for b in &mut batches {
            let four = [b[0], b[1], b[2], b[3]];
            for (n, d) in four.into_iter().zip(self.dist4(four)) {
                each(n, d);
            }
        }
        match *batches.remainder() {
            [a, b, c] => {
                let d = self.dist4([a, b, c, c]);
                each(a, d[0]);
                each(b, d[1]);
                each(c, d[2]);
            }
            ref rest => {
                for &n in rest {
                    each(n, self.dist(n));
                }
            }
        }
    }
}

/// A prepared query as the search target.
pub(super) struct QueryProbe<'a, S: Space> {
    /// Where the vectors live.
    pub space: &'a S,
    /// The query.
    pub query: &'a S::Query,
}

impl<S: Space> Probe for QueryProbe<'_, S> {
    #[inline]
    fn dist(&self, n: u32) -> f32 {
        self.space.distance(self.query, n)
    }
    #[inline]
    fn dist4(&self, ns: [u32; BATCH]) -> [f32; BATCH] {
        self.space.distance_x4(self.query, ns)
    }
    #[inline]
    fn prefetch(&self, n: u32) {
        self.space.prefetch(n)
    }
}

/// A stored node as the search target (building and repairing the graph).
pub(super) struct NodeProbe<'a, S: Space> {
    /// Where the vectors live.
    pub space: &'a S,
    /// The node whose neighbours are sought.
    pub node: u32,
}

impl<S: Space> Probe for NodeProbe<'_, S> {
    #[inline]
    fn dist(&self, n: u32) -> f32 {
        self.space.distance_between(self.node, n)
    }
    #[inline]
    fn dist4(&self, ns: [u32; BATCH]) -> [f32; BATCH] {
        self.space.distance_between_x4(self.node, ns)
    }
    #[inline]
    fn prefetch(&self, n: u32) {
        self.space.prefetch(n)
    }
}

/// Reusable buffers of one searching thread.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Nodes seen by the current search.
    pub visited: VisitedSet,
    candidates: BinaryHeap<Reverse<Scored>>,
    results: BinaryHeap<Scored>,
    links: Vec<u32>,
    fresh: Vec<u32>,
}

/// When a search must stop early (iterative scans); unbounded otherwise.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Distances computed so far ("tuples visited").
    pub tuples: usize,
    /// Stop once `tuples` reaches this.
    pub max_tuples: usize,
    /// Stop once the heaps hold more entries than this.
    pub max_entries: usize,
}

impl Limits {
    /// No limit.
    pub(super) fn unbounded() -> Self {
        Limits {
            tuples: 0,
            max_tuples: usize::MAX,
            max_entries: usize::MAX,
        }
    }
}

/// A view of the graph for searching; with `locks`, every list is read
/// under its node's lock (while builder threads write).
#[derive(Debug, Clone, Copy)]
pub(super) struct Layers<'a> {
    /// The graph searched.
    pub graph: &'a Graph,
    /// Locks to take around list reads, when others may write.
    pub locks: Option<&'a NodeLocks>,
}

impl Layers<'_> {
    /// Replaces `out` with the neighbours of `id` on `level` that `keep`
    /// admits.
    #[inline]
    fn links(&self, id: u32, level: u8, out: &mut Vec<u32>, keep: impl FnMut(u32) -> bool) {
        out.clear();
        let _guard = self.locks.map(|locks| locks.lock(id));
        self.graph.read_links_where(id, level, out, keep);
    }

    /// Greedy descent from `start` through levels `top` down to `bottom`
    /// (both included): on each level, move to the closest neighbour until
    /// none is closer. Returns the closest node found.
    pub(super) fn descend(
        &self,
        probe: &impl Probe,
        start: Scored,
        top: u8,
        bottom: u8,
        limits: &mut Limits,
        scratch: &mut Scratch,
    ) -> Scored {
        let mut best = start;
        for level in (bottom..=top).rev() {
            loop {
                let here = best;
                self.links(id_of(here), level, &mut scratch.links, |_| true);
                probe.dists(&scratch.links, |n, d| best = best.min(scored(d, n)));
                limits.tuples += scratch.links.len();
                if best == here {
                    break;
                }
            }
        }
        best
    }

    /// Best-first search of `level` from `start` (already marked visited by
    /// the caller): keeps the `ef` closest nodes that `accept` admits while
    /// every node, admitted or not, steers the search. Returns them nearest
    /// first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search(
        &self,
        probe: &impl Probe,
        accept: &impl Fn(u32) -> bool,
        start: Scored,
        level: u8,
        ef: usize,
        limits: &mut Limits,
        scratch: &mut Scratch,
    ) -> Vec<Scored> {
        let s = scratch;
        s.candidates.clear();
        s.results.clear();
        s.candidates.push(Reverse(start));
        if accept(id_of(start)) {
            s.results.push(start);
        }
        let mut fresh = std::mem::take(&mut s.fresh);
        while let Some(Reverse(c)) = s.candidates.pop() {
            if s.results.len() >= ef && s.results.peek().is_some_and(|&w| c > w) {
                break;
            }
            // The next candidate's list is read next round: fetch it while
            // this round computes (profiled on pypi-minilm-384's sq8 walk,
            // the first read of each list was the walk's costliest load).
            if let Some(&Reverse(next)) = s.candidates.peek() {
                self.graph.prefetch_links(id_of(next), level);
            }
            let visited = &mut s.visited;
            self.links(id_of(c), level, &mut fresh, |n| visited.insert(n));
            for &n in &fresh {
                probe.prefetch(n);
            }
            let (candidates, results) = (&mut s.candidates, &mut s.results);
            probe.dists(&fresh, |n, d| {
                let sc = scored(d, n);
                let worst = results.peek().copied().unwrap_or(Scored::MAX);
                if results.len() < ef || sc < worst {
                    candidates.push(Reverse(sc));
                    if accept(n) {
                        results.push(sc);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            });
            limits.tuples += fresh.len();
            if limits.tuples >= limits.max_tuples
                || s.candidates.len() + s.results.len() > limits.max_entries
            {
                break;
            }
        }
        s.fresh = fresh;
        let mut out: Vec<Scored> = s.results.drain().collect();
        out.sort_unstable();
        out
    }
}
