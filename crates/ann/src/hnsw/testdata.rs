//! Generated data for the HNSW tests: clustered vectors and exact answers.

use crate::rng::Rng;
use crate::space::{DenseSpace, DenseVectors, Space};

/// `n` vectors of `dim` coordinates around `clusters` random centres.
pub(crate) fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.normal() as f32 * 4.0)
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        for d in 0..dim {
            data.push(centres[c * dim + d] + rng.normal() as f32);
        }
    }
    data
}

/// The exact `k` nearest ids to `query` among `ids` (ties by id).
pub(crate) fn exact(space: &DenseSpace, query: &[f32], ids: &[u32], k: usize) -> Vec<u32> {
    let q = space.query(query);
    let mut all: Vec<(f32, u32)> = ids.iter().map(|&i| (space.distance(&q, i), i)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter().map(|(_, i)| i).collect()
}

/// Fraction of `truth` found in `got`.
pub(crate) fn recall(got: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    got.iter().filter(|g| truth.contains(g)).count() as f64 / truth.len() as f64
}

/// `n` clustered rows to index and `queries` more rows from the same
/// clusters to search with.
pub(crate) fn rows_and_queries(
    n: usize,
    queries: usize,
    dim: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut data = clustered(n + queries, dim, 30, seed);
    let q = data.split_off(n * dim);
    (data, q)
}

/// Ids `0..n`.
pub(crate) fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

/// Mean recall@`k` of `index` over `queries` (rows of `dim`) against exact
/// search among `live` ids.
pub(crate) fn mean_recall(
    index: &super::Hnsw,
    space: &DenseSpace,
    queries: &[f32],
    live: &[u32],
    k: usize,
    opts: &super::HnswSearch,
) -> f64 {
    let rows: Vec<&[f32]> = queries.chunks_exact(space.dim()).collect();
    let total: f64 = rows
        .iter()
        .map(|q| {
            let got: Vec<u32> = index
                .search(space, &space.query(q), k, opts, None)
                .iter()
                .map(|n| n.id)
                .collect();
            recall(&got, &exact(space, q, live, k))
        })
        .sum();
    total / rows.len() as f64
}
