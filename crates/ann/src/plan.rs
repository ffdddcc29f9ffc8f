//! Choosing, per filtered query, between a filtered index search and an exact
//! scan of the matching rows.
//!
//! An index search under a filter must look at roughly `1 / selectivity`
//! times the rows an unfiltered search looks at before it has enough matches
//! (and past that, its recall suffers: matches far from the query's cluster
//! are hard to reach); an exact scan costs one predicate call per row plus
//! one distance per matching row. Selective filters therefore favour the exact scan, which
//! is also exact. The selectivity comes from evaluating the predicate on a
//! fixed-size pseudo-random sample of ids.

use crate::rng::Rng;
use crate::search::Filter;

/// How to answer a filtered KNN query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilteredPlan {
    /// Search the ANN index with the filter (iterative scan).
    Index,
    /// Scan the matching rows exactly.
    Exact,
}

/// Ids sampled to estimate a filter's selectivity.
const SAMPLE: usize = 256;
/// Distances an HNSW search computes per candidate-list entry (measured at
/// m=16: about 30; e.g. 420 distances per query at ef_search=40 on 60k rows,
/// plus the upper layers).
const HNSW_DISTANCES_PER_CANDIDATE: f64 = 30.0;
/// Cost of one predicate call relative to one distance computation.
const PREDICATE_COST: f64 = 0.02;

/// Fraction of `ids` that pass `filter`, estimated from a sample (exact when
/// there are no more ids than the sample size).
pub fn estimate_selectivity(ids: &[u32], filter: Filter) -> f64 {
    if ids.is_empty() {
        return 0.0;
    }
    if ids.len() <= SAMPLE {
        return ids.iter().filter(|&&id| filter(id)).count() as f64 / ids.len() as f64;
    }
    let mut rng = Rng::new(0x5eed_f11e);
    let hits = (0..SAMPLE)
        .filter(|_| filter(ids[rng.below(ids.len() as u64) as usize]))
        .count();
    hits as f64 / SAMPLE as f64
}

/// Distances an unfiltered HNSW search computes for `k` rows at `ef_search`.
pub fn hnsw_search_cost(ef_search: usize, k: usize) -> f64 {
    HNSW_DISTANCES_PER_CANDIDATE * ef_search.max(k) as f64
}

/// Distances an unfiltered IVFFlat search computes: the centres plus the
/// probed lists' rows.
pub fn ivf_search_cost(rows: usize, lists: usize, probes: usize) -> f64 {
    let lists = lists.max(1);
    lists as f64 + probes.min(lists) as f64 * rows as f64 / lists as f64
}

/// Picks the cheaper plan for a table of `rows` rows and a filter passing
/// `selectivity` of them, given what an unfiltered index search costs
/// ([`hnsw_search_cost`], [`ivf_search_cost`]).
pub fn choose_filtered_plan(rows: usize, selectivity: f64, index_cost: f64) -> FilteredPlan {
    let rows = rows as f64;
    let exact = rows * PREDICATE_COST + rows * selectivity;
    // Half a sample hit is the floor, so a filter that matched nothing in the
    // sample still gets a finite index cost.
    let s = selectivity.max(0.5 / SAMPLE as f64);
    if exact <= index_cost / s {
        FilteredPlan::Exact
    } else {
        FilteredPlan::Index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectivity_estimate_is_close() {
        let ids: Vec<u32> = (0..100_000).collect();
        let s = estimate_selectivity(&ids, &|id| id % 10 == 3);
        assert!((s - 0.1).abs() < 0.05, "{s}");
        let small: Vec<u32> = (0..100).collect();
        assert_eq!(estimate_selectivity(&small, &|id| id < 25), 0.25);
        assert_eq!(estimate_selectivity(&[], &|_| true), 0.0);
    }

    #[test]
    fn selective_filters_scan_exactly_and_broad_ones_use_the_index() {
        let hnsw = hnsw_search_cost(40, 10);
        assert_eq!(choose_filtered_plan(60_000, 0.1, hnsw), FilteredPlan::Exact);
        assert_eq!(
            choose_filtered_plan(60_000, 0.001, hnsw),
            FilteredPlan::Exact
        );
        assert_eq!(
            choose_filtered_plan(1_000_000, 0.5, hnsw),
            FilteredPlan::Index
        );
        assert_eq!(choose_filtered_plan(60_000, 0.9, hnsw), FilteredPlan::Index);
        let ivf = ivf_search_cost(60_000, 60, 5);
        assert_eq!(choose_filtered_plan(60_000, 0.1, ivf), FilteredPlan::Exact);
        assert_eq!(choose_filtered_plan(60_000, 0.9, ivf), FilteredPlan::Index);
    }
}
