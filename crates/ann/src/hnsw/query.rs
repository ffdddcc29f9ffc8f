//! Answering a query with pgvector 0.8's semantics.
//!
//! * Iterative scan off: one search with `ef_search` candidates; at most
//!   `ef_search` rows come back, and a filter is applied to those rows
//!   afterwards (post-filtering, so a selective filter returns few rows —
//!   as pgvector does).
//! * Iterative scan on (strict or relaxed order): the search keeps going
//!   until `max(ef_search, k)` rows *passing the filter* are held and no
//!   unexplored node is closer than the farthest of them, or until
//!   `max_scan_tuples` tuples were visited or the heaps reach the
//!   `scan_mem_multiplier` budget. Nodes failing the filter still steer the
//!   search; only passing ones are results. Rows come back as one sorted
//!   batch, so both orders give exactly non-decreasing distances.

use super::layer::{Layers, Limits, Scratch};
use super::order::{distance_of, id_of, scored};
use super::params::HnswSearch;
use super::Hnsw;
use crate::search::{Filter, IterativeScan};
use crate::space::{Neighbor, Space};
use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers (fresh ones if a filter
/// callback searches re-entrantly).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// The `k` nearest rows to `query` under `opts` and `filter`.
pub(super) fn search<S: Space>(
    index: &Hnsw,
    space: &S,
    query: &S::Query,
    k: usize,
    opts: &HnswSearch,
    filter: Option<Filter>,
) -> Vec<Neighbor> {
    let Some(entry) = index.entry else {
        return Vec::new();
    };
    if k == 0 {
        return Vec::new();
    }
    let dist = |id: u32| space.distance(query, id);
    let prefetch = |id: u32| space.prefetch(id);
    let layers = Layers {
        graph: &index.graph,
        locks: None,
    };
    let iterative = opts.iterative_scan != IterativeScan::Off;
    let (ef, mut limits) = if iterative {
        let limits = Limits {
            tuples: 0,
            max_tuples: opts.max_scan_tuples,
            max_entries: opts.max_heap_entries(),
        };
        (opts.ef_search.max(k), limits)
    } else {
        (opts.ef_search, Limits::unbounded())
    };
    with_scratch(|scratch| {
        let start = scored(dist(entry.node), entry.node);
        limits.tuples += 1;
        let start = layers.descend(&dist, start, entry.level, 1, &mut limits, scratch);
        scratch.visited.begin(index.graph.capacity());
        scratch.visited.insert(id_of(start));
        let found = match filter {
            Some(f) if iterative => {
                layers.search(&dist, &prefetch, &f, start, 0, ef, &mut limits, scratch)
            }
            _ => layers.search(
                &dist,
                &prefetch,
                &|_| true,
                start,
                0,
                ef,
                &mut limits,
                scratch,
            ),
        };
        found
            .into_iter()
            .filter(|&s| filter.is_none_or(|f| f(id_of(s))))
            .take(k)
            .map(|s| Neighbor {
                id: id_of(s),
                distance: distance_of(s),
            })
            .collect()
    })
}
