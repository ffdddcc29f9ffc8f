//! Exact (brute-force) k-nearest-neighbour search.
//!
//! It is the recall reference for the approximate indexes and the right plan
//! for small tables and very selective filters, where an index would visit
//! more rows than the filter lets through. Results follow one total order,
//! [`neighbor_order`]: nearest first, ties by lower id, NaN distances (cosine
//! against a zero vector) last, so two runs, two shards or two plans over the
//! same rows agree row for row.
//!
//! Large id sets are split into chunks scanned in parallel on rayon, each
//! keeping its own bounded [`TopK`]; the chunk results are then merged.

use crate::search::Filter;
use crate::space::{Neighbor, Space};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Below this many ids the scan stays on the calling thread: splitting it
/// would cost more than the distances it shares out.
const PARALLEL_MIN_IDS: usize = 4096;
/// Smallest chunk handed to one rayon task.
const MIN_CHUNK: usize = 1024;

/// The result order: smaller distance first, NaN after every number, equal
/// distances by lower id.
pub fn neighbor_order(a: &Neighbor, b: &Neighbor) -> Ordering {
    let by_distance = match (a.distance.is_nan(), b.distance.is_nan()) {
        (false, false) => a
            .distance
            .partial_cmp(&b.distance)
            .unwrap_or(Ordering::Equal),
        (nan_a, nan_b) => nan_a.cmp(&nan_b),
    };
    by_distance.then(a.id.cmp(&b.id))
}

/// A [`Neighbor`] ordered by [`neighbor_order`], so a max-heap keeps the
/// worst kept result on top.
#[derive(Debug, Clone, Copy)]
struct Ranked(Neighbor);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        neighbor_order(&self.0, &other.0)
    }
}

/// The `k` best neighbours seen so far, by [`neighbor_order`].
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Ranked>,
}

impl TopK {
    /// An empty set that will keep at most `k` neighbours.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    /// Offers a candidate; it is kept if it beats the current worst.
    #[inline]
    pub fn push(&mut self, n: Neighbor) {
        if self.heap.len() < self.k {
            self.heap.push(Ranked(n));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if neighbor_order(&n, &worst.0) == Ordering::Less {
                *worst = Ranked(n);
            }
        }
    }

    /// Number of neighbours kept.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// True once `k` neighbours are kept.
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Adds every neighbour kept by `other`.
    pub fn merge(&mut self, other: TopK) {
        for r in other.heap {
            self.push(r.0);
        }
    }

    /// The kept neighbours, nearest first.
    pub fn into_sorted_vec(self) -> Vec<Neighbor> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

/// The `k` ids of `ids` nearest to `query` that pass `filter`, nearest first
/// (see [`neighbor_order`]). Exact: every id is compared.
pub fn exact_search<S: Space>(
    space: &S,
    ids: &[u32],
    query: &S::Query,
    k: usize,
    filter: Option<Filter>,
) -> Vec<Neighbor> {
    if k == 0 || ids.is_empty() {
        return Vec::new();
    }
    let scan = |chunk: &[u32]| {
        let mut top = TopK::new(k);
        for &id in chunk {
            if filter.is_none_or(|f| f(id)) {
                top.push(Neighbor {
                    id,
                    distance: space.distance(query, id),
                });
            }
        }
        top
    };
    if ids.len() < PARALLEL_MIN_IDS {
        return scan(ids).into_sorted_vec();
    }
    let chunk = (ids.len() / (rayon::current_num_threads() * 4)).max(MIN_CHUNK);
    ids.par_chunks(chunk)
        .map(scan)
        .reduce(
            || TopK::new(k),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .into_sorted_vec()
}

/// Generated data shared by the tests of the search modules.
#[cfg(test)]
pub(crate) mod testdata {
    use crate::rng::Rng;

    /// `clusters` Gaussian blobs (centres spread 10x wider than each blob)
    /// of `per` points each in `dim` dimensions, blob after blob.
    pub(crate) fn blobs(seed: u64, clusters: usize, per: usize, dim: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut data = Vec::with_capacity(clusters * per * dim);
        for _ in 0..clusters {
            let centre: Vec<f32> = (0..dim).map(|_| rng.normal() as f32 * 10.0).collect();
            for _ in 0..per {
                data.extend(centre.iter().map(|c| c + rng.normal() as f32));
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::blobs;
    use super::*;
    use crate::space::{DenseSpace, Metric};

    fn naive(space: &DenseSpace, ids: &[u32], q: &crate::DenseQuery, k: usize) -> Vec<Neighbor> {
        let mut all: Vec<Neighbor> = ids
            .iter()
            .map(|&id| Neighbor {
                id,
                distance: space.distance(q, id),
            })
            .collect();
        all.sort_by(neighbor_order);
        all.truncate(k);
        all
    }

    #[test]
    fn matches_a_full_sort_sequential_and_parallel() {
        let dim = 8;
        let data = blobs(1, 10, 1000, dim);
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let space = DenseSpace::new(&data, dim, metric);
            for n in [100usize, 10_000] {
                let ids: Vec<u32> = (0..n as u32).collect();
                let q = space.query(&data[5 * dim..6 * dim]);
                for k in [1, 10, 150] {
                    let got = exact_search(&space, &ids, &q, k, None);
                    assert_eq!(got, naive(&space, &ids, &q, k), "{metric:?} n={n} k={k}");
                }
            }
        }
    }

    #[test]
    fn ties_break_by_lower_id_and_nan_sorts_last() {
        // Rows 0..5000 repeat four distinct vectors; row 7 is zero (NaN cosine).
        let dim = 2;
        let mut data = Vec::new();
        for i in 0..5000 {
            data.extend_from_slice(&[(i % 4) as f32 + 1.0, 1.0]);
        }
        data[14] = 0.0;
        data[15] = 0.0;
        let space = DenseSpace::new(&data, dim, Metric::L2);
        let ids: Vec<u32> = (0..5000).rev().collect();
        let got = exact_search(&space, &ids, &space.query(&[1.0, 1.0]), 5, None);
        let got_ids: Vec<u32> = got.iter().map(|n| n.id).collect();
        assert_eq!(got_ids, vec![0, 4, 8, 12, 16]);

        let cos = DenseSpace::new(&data, dim, Metric::Cosine);
        let all = exact_search(&cos, &ids, &cos.query(&[1.0, 1.0]), 5000, None);
        assert_eq!(all.len(), 5000);
        assert_eq!(all.last().unwrap().id, 7);
        assert!(all.last().unwrap().distance.is_nan());
    }

    #[test]
    fn filter_is_honoured() {
        let dim = 4;
        let data = blobs(2, 5, 2000, dim);
        let space = DenseSpace::new(&data, dim, Metric::L2);
        let ids: Vec<u32> = (0..10_000).collect();
        let q = space.query(&data[..dim]);
        let odd = |id: u32| id % 2 == 1;
        let got = exact_search(&space, &ids, &q, 20, Some(&odd));
        let odd_ids: Vec<u32> = ids.iter().copied().filter(|&i| odd(i)).collect();
        assert_eq!(got, naive(&space, &odd_ids, &q, 20));
        assert!(exact_search(&space, &ids, &q, 0, None).is_empty());
        let none = |_: u32| false;
        assert!(exact_search(&space, &ids, &q, 5, Some(&none)).is_empty());
    }
}
