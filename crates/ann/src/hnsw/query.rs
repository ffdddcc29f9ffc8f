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
//! * A space with approximate distances (quantized codes) steers the walk;
//!   the nearest candidates by code distance are then re-ranked by exact
//!   distance ([`reranked`] of them), so the rows and distances returned are
//!   exact ones.

use super::layer::{Layers, Limits, Probe, QueryProbe, Scratch};
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

/// How many of `found` candidates (nearest first by code distance) an
/// approximate walk re-ranks exactly for `k` rows: 30 % of them, at least
/// `2k`. The codes order candidates well enough that the exact top `k` lie
/// in that share (recall@10 unchanged at ef_search 14–240 on the fashion and
/// pypi sets); the rest would cost an f32 distance each for nothing.
fn reranked(found: usize, k: usize) -> usize {
    (found * 3).div_ceil(10).max(2 * k).min(found)
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
    let probe = QueryProbe { space, query };
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
        let start = scored(probe.dist(entry.node), entry.node);
        limits.tuples += 1;
        let start = layers.descend(&probe, start, entry.level, 1, &mut limits, scratch);
        scratch.visited.begin(index.graph.capacity());
        scratch.visited.insert(id_of(start));
        let mut found = match filter {
            Some(f) if iterative => layers.search(&probe, &f, start, 0, ef, &mut limits, scratch),
            _ => layers.search(&probe, &|_| true, start, 0, ef, &mut limits, scratch),
        };
        if space.approximate() {
            // A post-filter (iterative scan off) still sees every candidate.
            if filter.is_none() || iterative {
                found.truncate(reranked(found.len(), k));
            }
            for s in &mut found {
                *s = scored(space.exact_distance(query, id_of(*s)), id_of(*s));
            }
            found.sort_unstable();
        }
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

#[cfg(test)]
mod tests {
    use super::super::testdata::{exact, ids, recall, rows_and_queries};
    use super::super::{HnswParams, HnswSearch};
    use super::*;
    use crate::search::BuildProgress;
    use crate::space::{DenseSpace, Metric};

    const N: usize = 3_000;
    const DIM: usize = 16;

    fn settings(ef: usize, scan: IterativeScan, max_tuples: usize) -> HnswSearch {
        HnswSearch::new(ef, scan, max_tuples, 1.0).unwrap()
    }

    fn fixture() -> (Vec<f32>, Vec<f32>) {
        rows_and_queries(N, 20, DIM, 11)
    }

    fn index(space: &DenseSpace) -> Hnsw {
        Hnsw::build(
            space,
            &ids(N),
            HnswParams::default(),
            2,
            &BuildProgress::new(),
        )
        .unwrap()
    }

    #[test]
    fn without_iterative_scan_at_most_ef_search_rows_come_back() {
        let (data, queries) = fixture();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = index(&space);
        let q = space.query(&queries[..DIM]);
        let off = settings(20, IterativeScan::Off, 20_000);
        assert_eq!(index.search(&space, &q, 50, &off, None).len(), 20);
        assert_eq!(index.search(&space, &q, 5, &off, None).len(), 5);
        let on = settings(20, IterativeScan::RelaxedOrder, 20_000);
        let rows = index.search(&space, &q, 50, &on, None);
        assert_eq!(rows.len(), 50);
        let got: Vec<u32> = rows.iter().map(|n| n.id).collect();
        assert!(recall(&got, &exact(&space, &queries[..DIM], &ids(N), 50)) >= 0.9);
    }

    #[test]
    fn post_filter_keeps_only_matching_rows_of_the_ef_search_candidates() {
        let (data, queries) = fixture();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = index(&space);
        let q = space.query(&queries[..DIM]);
        let even = |id: u32| id.is_multiple_of(2);
        let rows = index.search(
            &space,
            &q,
            10,
            &settings(40, IterativeScan::Off, 20_000),
            Some(&even),
        );
        assert!(!rows.is_empty() && rows.len() <= 10);
        assert!(rows.iter().all(|n| even(n.id)));
        let rare = |id: u32| id % 100 == 7;
        let rows = index.search(
            &space,
            &q,
            10,
            &settings(40, IterativeScan::Off, 20_000),
            Some(&rare),
        );
        assert!(
            rows.len() < 10,
            "post-filtering a 1% filter leaves few rows"
        );
    }

    #[test]
    fn iterative_scan_returns_k_matching_rows_in_order_at_low_selectivity() {
        let (data, queries) = fixture();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = index(&space);
        let rare = |id: u32| id % 50 == 3;
        let matching: Vec<u32> = ids(N).into_iter().filter(|&i| rare(i)).collect();
        for scan in [IterativeScan::StrictOrder, IterativeScan::RelaxedOrder] {
            let mut total = 0.0;
            for qv in queries.chunks_exact(DIM) {
                let q = space.query(qv);
                let rows = index.search(&space, &q, 10, &settings(40, scan, 20_000), Some(&rare));
                assert_eq!(rows.len(), 10, "{scan:?}");
                assert!(rows.iter().all(|n| rare(n.id)));
                assert!(rows.windows(2).all(|w| w[0].distance <= w[1].distance));
                let got: Vec<u32> = rows.iter().map(|n| n.id).collect();
                total += recall(&got, &exact(&space, qv, &matching, 10));
            }
            let r = total / 20.0;
            assert!(r >= 0.9, "{scan:?}: filtered recall {r}");
        }
    }

    #[test]
    fn max_scan_tuples_bounds_the_iterative_scan() {
        let (data, queries) = fixture();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = index(&space);
        let q = space.query(&queries[..DIM]);
        let never = |_: u32| false;
        let rows = index.search(
            &space,
            &q,
            10,
            &settings(40, IterativeScan::StrictOrder, 20_000),
            Some(&never),
        );
        assert!(rows.is_empty());
        let rare = |id: u32| id % 50 == 3;
        let rows = index.search(
            &space,
            &q,
            10,
            &settings(40, IterativeScan::StrictOrder, 30),
            Some(&rare),
        );
        assert!(
            rows.len() < 10,
            "30 tuples cannot hold 10 rows of a 2% filter"
        );
    }
}
