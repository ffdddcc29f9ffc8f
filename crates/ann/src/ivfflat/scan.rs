//! IVFFlat search: rank the centres, scan the nearest lists, keep the best
//! `k`; with an iterative scan, probe on while too few rows pass the filter.
//!
//! pgvector's executor filters the rows an index scan returns; here the
//! filter is applied while scanning, so the top-k only ever holds matching
//! rows. With `iterative_scan = off` that gives the same rows pgvector
//! returns (the scanned lists' matching rows, nearest first); with an
//! iterative scan, lists are added one at a time in centre order after the
//! first `probes`, until `k` rows matched or `max(probes, max_probes)` lists
//! were scanned. Results always come out nearest first.

use super::{IvfFlat, IvfSearch};
use crate::exact::{neighbor_order, TopK};
use crate::search::{Filter, IterativeScan};
use crate::space::{DenseVectors, Metric, Neighbor};

/// How many ids ahead of the current one a list scan prefetches.
const PREFETCH_AHEAD: usize = 4;

impl IvfFlat {
    /// The `k` indexed rows nearest to `query` among the lists probed under
    /// `opts`, restricted to ids passing `filter`, nearest first. `space`
    /// must be the one the index was built over; a space of another
    /// dimension gives no rows.
    pub fn search<S: DenseVectors>(
        &self,
        space: &S,
        query: &S::Query,
        k: usize,
        opts: &IvfSearch,
        filter: Option<Filter>,
    ) -> Vec<Neighbor> {
        if k == 0 || space.dim() != self.dim || self.lists.is_empty() {
            return Vec::new();
        }
        let order = self.probe_order(&space.query_f32(query));
        let probes = opts.probes.clamp(1, order.len());
        let limit = match opts.iterative_scan {
            IterativeScan::Off => probes,
            IterativeScan::StrictOrder | IterativeScan::RelaxedOrder => {
                opts.max_probes.max(probes).min(order.len())
            }
        };
        let mut top = TopK::new(k);
        for (scanned, list) in order.iter().enumerate() {
            if scanned >= probes && (scanned >= limit || top.is_full()) {
                break;
            }
            let ids = &self.lists[list.id as usize];
            for (i, &id) in ids.iter().enumerate() {
                if let Some(&ahead) = ids.get(i + PREFETCH_AHEAD) {
                    space.prefetch(ahead);
                }
                if filter.is_none_or(|f| f(id)) {
                    top.push(Neighbor {
                        id,
                        distance: space.distance(query, id),
                    });
                }
            }
        }
        top.into_sorted_vec()
    }

    /// Every list as a [`Neighbor`] (list number, centre distance), nearest
    /// centre first. Centres of inner product and cosine indexes are unit
    /// length, so comparing the query with them orders lists by angle, as
    /// pgvector does; Hamming indexes cluster in Euclidean space.
    fn probe_order(&self, query: &[f32]) -> Vec<Neighbor> {
        let metric = match self.metric {
            Metric::Hamming => Metric::L2,
            m => m,
        };
        let mut order: Vec<Neighbor> = self
            .centres
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(list, centre)| Neighbor {
                id: list as u32,
                distance: metric.dense_f32(query, centre),
            })
            .collect();
        order.sort_unstable_by(neighbor_order);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{build, dataset, DIM};
    use super::*;
    use crate::exact::exact_search;
    use crate::space::DenseSpace;

    #[test]
    fn filtered_iterative_scan_returns_k_matching_rows_in_order() {
        let (data, queries) = dataset();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let ids: Vec<u32> = (0..10_000).collect();
        let index = build(&space, &ids, 40);
        // Only one blob (ids 3000..3500) passes: far from most queries.
        let in_blob = |id: u32| (3000..3500).contains(&id);
        let off = IvfSearch::new(2, IterativeScan::Off, 2).unwrap();
        let relaxed = IvfSearch::new(2, IterativeScan::RelaxedOrder, 40).unwrap();
        let strict = IvfSearch::new(2, IterativeScan::StrictOrder, 40).unwrap();
        let mut short_without_iteration = 0;
        for q in &queries {
            let q = space.query(q);
            let plain = index.search(&space, &q, 10, &off, Some(&in_blob));
            short_without_iteration += usize::from(plain.len() < 10);
            for opts in [&relaxed, &strict] {
                let got = index.search(&space, &q, 10, opts, Some(&in_blob));
                assert_eq!(got.len(), 10);
                assert!(got.iter().all(|n| in_blob(n.id)));
                assert!(got.windows(2).all(|w| neighbor_order(&w[0], &w[1]).is_lt()));
            }
        }
        assert!(short_without_iteration > 50, "{short_without_iteration}");

        // max_probes bounds the scan: with 2 of 40 lists and a filter no row
        // passes, nothing comes back, and max_probes below probes is ignored.
        let none = |_: u32| false;
        let q = space.query(&queries[0]);
        assert!(index
            .search(&space, &q, 10, &relaxed, Some(&none))
            .is_empty());
        let low_max = IvfSearch::new(3, IterativeScan::RelaxedOrder, 1).unwrap();
        let three = IvfSearch::new(3, IterativeScan::Off, 1).unwrap();
        assert_eq!(
            index.search(&space, &q, 10, &low_max, None),
            index.search(&space, &q, 10, &three, None)
        );
    }

    #[test]
    fn probing_every_list_with_a_filter_is_exact() {
        let (data, queries) = dataset();
        let space = DenseSpace::new(&data, DIM, Metric::Cosine);
        let ids: Vec<u32> = (0..10_000).collect();
        let index = build(&space, &ids, 25);
        let odd = |id: u32| id % 2 == 1;
        let every = IvfSearch::new(25, IterativeScan::Off, 25).unwrap();
        let odd_ids: Vec<u32> = ids.iter().copied().filter(|&i| odd(i)).collect();
        for q in queries.iter().take(10) {
            let q = space.query(q);
            assert_eq!(
                index.search(&space, &q, 7, &every, Some(&odd)),
                exact_search(&space, &odd_ids, &q, 7, None)
            );
        }
    }
}
