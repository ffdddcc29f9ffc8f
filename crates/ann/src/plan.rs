//! Choosing, per filtered query, between a filtered index search and an exact
//! scan of the matching rows.
//!
//! A graph search under a filter must visit roughly `ef / selectivity` nodes,
//! each costing a neighbour list's worth of distances, before it has enough
//! matches; an exact scan costs one predicate call per row plus one distance
//! per matching row. Selective filters therefore favour the exact scan, which
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
/// Distances a filtered graph search computes per wanted match, relative to
/// `ef / selectivity` (measured: an HNSW search at m=16 computes about 30
/// distances per candidate-list entry).
const GRAPH_COST_PER_CANDIDATE: f64 = 30.0;
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

/// Picks the cheaper plan for a table of `rows` rows, a filter passing
/// `selectivity` of them, `k` wanted rows and a candidate list of `ef`.
pub fn choose_filtered_plan(rows: usize, selectivity: f64, k: usize, ef: usize) -> FilteredPlan {
    let rows = rows as f64;
    let exact = rows * PREDICATE_COST + rows * selectivity;
    // Half a sample hit is the floor, so a filter that matched nothing in the
    // sample still gets a finite graph cost.
    let s = selectivity.max(0.5 / SAMPLE as f64);
    let graph = GRAPH_COST_PER_CANDIDATE * ef.max(k) as f64 / s;
    if exact <= graph {
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
        assert_eq!(
            choose_filtered_plan(60_000, 0.1, 10, 40),
            FilteredPlan::Exact
        );
        assert_eq!(
            choose_filtered_plan(60_000, 0.001, 10, 40),
            FilteredPlan::Exact
        );
        assert_eq!(
            choose_filtered_plan(1_000_000, 0.5, 10, 40),
            FilteredPlan::Index
        );
        assert_eq!(
            choose_filtered_plan(60_000, 0.9, 10, 40),
            FilteredPlan::Index
        );
    }
}
