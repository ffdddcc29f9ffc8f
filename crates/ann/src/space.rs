//! How indexes reach vectors without owning them.
//!
//! An index stores ids (u32 row slots chosen by the owner of the vectors) and
//! asks a [`Space`] for distances. The table that holds the vectors
//! implements `Space`; [`DenseSpace`] is the implementation over a flat f32
//! array, used by benchmarks and tests.
//!
//! Distances returned by a `Space` are *ordering* distances: monotone in the
//! pgvector operator value, cheaper to compute (squared L2 instead of L2).
//! [`Metric::operator_value`] turns one into the value the SQL operator gives.

use crate::distance::{self, F32BatchKernel, F32Kernel};
use std::borrow::Cow;

/// A distance as pgvector's operators define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `<->` Euclidean distance.
    L2,
    /// `<#>` negative inner product.
    InnerProduct,
    /// `<=>` cosine distance.
    Cosine,
    /// `<+>` taxicab distance.
    L1,
    /// `<~>` Hamming distance between bit strings.
    Hamming,
    /// `<%>` Jaccard distance between bit strings.
    Jaccard,
}

impl Metric {
    /// Every metric, in the order of their stable one-byte tags.
    pub const ALL: [Metric; 6] = [
        Metric::L2,
        Metric::InnerProduct,
        Metric::Cosine,
        Metric::L1,
        Metric::Hamming,
        Metric::Jaccard,
    ];

    /// The metric's one-byte tag in files (0 L2, 1 inner product, 2
    /// cosine, 3 L1, 4 Hamming, 5 Jaccard); never changes.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The metric with tag `tag`, if any.
    pub fn from_tag(tag: u8) -> Option<Metric> {
        Self::ALL.get(tag as usize).copied()
    }

    /// The SQL operator for this metric.
    pub fn operator(self) -> &'static str {
        match self {
            Metric::L2 => "<->",
            Metric::InnerProduct => "<#>",
            Metric::Cosine => "<=>",
            Metric::L1 => "<+>",
            Metric::Hamming => "<~>",
            Metric::Jaccard => "<%>",
        }
    }

    /// Turns an ordering distance into the operator's value (sqrt for L2;
    /// every other metric orders by its own value).
    pub fn operator_value(self, ordering: f32) -> f64 {
        match self {
            Metric::L2 => (ordering as f64).sqrt(),
            _ => ordering as f64,
        }
    }

    /// Ordering distance between two f32 vectors (used for k-means centres
    /// and dense spaces). Cosine here is `1 - cos`, NaN for zero vectors.
    pub fn dense_f32(self, a: &[f32], b: &[f32]) -> f32 {
        let k = distance::kernels();
        match self {
            Metric::L2 => (k.l2_squared)(a, b),
            Metric::InnerProduct => -(k.dot)(a, b),
            Metric::Cosine => distance::cosine_distance(a, b) as f32,
            Metric::L1 | Metric::Hamming => (k.l1)(a, b),
            Metric::Jaccard => {
                let inter = (k.dot)(a, b);
                let union = (k.dot)(a, a) + (k.dot)(b, b) - inter;
                if union == 0.0 {
                    1.0
                } else {
                    1.0 - inter / union
                }
            }
        }
    }
}

/// Vectors an index can be built over and searched in.
pub trait Space: Sync {
    /// A query prepared for repeated comparisons against stored vectors.
    type Query: Sync;

    /// The metric the ordering distances follow.
    fn metric(&self) -> Metric;

    /// Ordering distance from a prepared query to stored vector `id`.
    fn distance(&self, query: &Self::Query, id: u32) -> f32;

    /// Ordering distances from a prepared query to four stored vectors at
    /// once; implementations with batch kernels override it (one pass over
    /// the query for four rows, four rows' memory loads in flight).
    fn distance_x4(&self, query: &Self::Query, ids: [u32; 4]) -> [f32; 4] {
        ids.map(|id| self.distance(query, id))
    }

    /// Ordering distance between stored vectors `a` and `b`.
    fn distance_between(&self, a: u32, b: u32) -> f32;

    /// Ordering distances from stored vector `a` to four stored vectors at
    /// once (the index build's neighbour selection compares one candidate
    /// with the neighbours kept so far); implementations with batch kernels
    /// override it.
    fn distance_between_x4(&self, a: u32, bs: [u32; 4]) -> [f32; 4] {
        bs.map(|b| self.distance_between(a, b))
    }

    /// Stored vector `id` prepared as a query, where that is cheap. Index
    /// builds then compare a new node with the others through
    /// [`Space::distance_x4`] (four rows per pass) instead of one
    /// [`Space::distance_between`] at a time.
    fn node_query(&self, _id: u32) -> Option<Self::Query> {
        None
    }

    /// Hints that vector `id` will be read soon.
    fn prefetch(&self, _id: u32) {}

    /// True when [`Space::distance`] only approximates the ordering distance
    /// (quantized codes); searches then re-rank their candidates with
    /// [`Space::exact_distance`] before answering.
    fn approximate(&self) -> bool {
        false
    }

    /// The exact ordering distance from a prepared query to vector `id`.
    fn exact_distance(&self, query: &Self::Query, id: u32) -> f32 {
        self.distance(query, id)
    }
}

/// A [`Space`] whose vectors can be read as f32 coordinates, as k-means
/// (IVFFlat) needs.
pub trait DenseVectors: Space {
    /// Number of coordinates.
    fn dim(&self) -> usize;
    /// Writes vector `id` as f32 coordinates into `out` (length [`Self::dim`]).
    fn read_f32(&self, id: u32, out: &mut [f32]);
    /// The query as f32 coordinates.
    fn query_f32<'q>(&self, query: &'q Self::Query) -> Cow<'q, [f32]>;
}

/// Cache lines of a row [`DenseSpace::prefetch`] asks for.
const PREFETCH_LINES: usize = 4;

/// A `vector` column held as one flat f32 array, row `i` at `i * dim`.
#[derive(Debug)]
pub struct DenseSpace<'a> {
    data: &'a [f32],
    dim: usize,
    metric: Metric,
    kernel: F32Kernel,
    /// The same kernel over four rows, where one exists (not for L1).
    kernel_x4: Option<F32BatchKernel>,
    /// Per-row norms, kept for cosine so each comparison is one dot product.
    norms: Vec<f32>,
}

/// A query against a [`DenseSpace`].
#[derive(Debug, Clone)]
pub struct DenseQuery {
    vector: Vec<f32>,
    norm: f32,
}

impl<'a> DenseSpace<'a> {
    /// A space over `data` (`data.len()` a multiple of `dim`) for `metric`
    /// (L2, InnerProduct, Cosine or L1).
    pub fn new(data: &'a [f32], dim: usize, metric: Metric) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "data is not rows of {dim}"
        );
        let k = distance::kernels();
        let (kernel, kernel_x4) = match metric {
            Metric::L2 => (k.l2_squared, Some(k.l2_squared_x4)),
            Metric::L1 => (k.l1, None),
            _ => (k.dot, Some(k.dot_x4)),
        };
        let norms = if metric == Metric::Cosine {
            data.chunks_exact(dim)
                .map(|v| (k.dot)(v, v).sqrt())
                .collect()
        } else {
            Vec::new()
        };
        DenseSpace {
            data,
            dim,
            metric,
            kernel,
            kernel_x4,
            norms,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `id`'s coordinates.
    #[inline]
    pub fn vector(&self, id: u32) -> &'a [f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Prepares `v` (length `dim`) as a query.
    pub fn query(&self, v: &[f32]) -> DenseQuery {
        assert_eq!(v.len(), self.dim);
        let norm = (distance::kernels().dot)(v, v).sqrt();
        DenseQuery {
            vector: v.to_vec(),
            norm,
        }
    }

    /// Row `id`'s norm (cosine only; 0 otherwise).
    #[inline]
    fn norm(&self, id: u32) -> f32 {
        self.norms.get(id as usize).copied().unwrap_or(0.0)
    }

    #[inline]
    fn finish(&self, raw: f32, norm_a: f32, id_b: u32) -> f32 {
        match self.metric {
            Metric::InnerProduct => -raw,
            Metric::Cosine => {
                let sim = raw / (norm_a * self.norms[id_b as usize]);
                if sim.is_nan() {
                    f32::NAN
                } else {
                    1.0 - sim.clamp(-1.0, 1.0)
                }
            }
            _ => raw,
        }
    }
}

impl Space for DenseSpace<'_> {
    type Query = DenseQuery;

    fn metric(&self) -> Metric {
        self.metric
    }

    #[inline]
    fn distance(&self, q: &DenseQuery, id: u32) -> f32 {
        let raw = (self.kernel)(&q.vector, self.vector(id));
        self.finish(raw, q.norm, id)
    }

    #[inline]
    fn distance_x4(&self, q: &DenseQuery, ids: [u32; 4]) -> [f32; 4] {
        match self.kernel_x4 {
            Some(k4) => {
                let raw = k4(&q.vector, ids.map(|id| self.vector(id)));
                [0, 1, 2, 3].map(|i| self.finish(raw[i], q.norm, ids[i]))
            }
            None => ids.map(|id| self.distance(q, id)),
        }
    }

    fn node_query(&self, id: u32) -> Option<DenseQuery> {
        Some(self.query(self.vector(id)))
    }

    #[inline]
    fn distance_between(&self, a: u32, b: u32) -> f32 {
        let raw = (self.kernel)(self.vector(a), self.vector(b));
        self.finish(raw, self.norm(a), b)
    }

    #[inline]
    fn distance_between_x4(&self, a: u32, bs: [u32; 4]) -> [f32; 4] {
        match self.kernel_x4 {
            Some(k4) => {
                let raw = k4(self.vector(a), bs.map(|b| self.vector(b)));
                let norm_a = self.norm(a);
                [0, 1, 2, 3].map(|i| self.finish(raw[i], norm_a, bs[i]))
            }
            None => bs.map(|b| self.distance_between(a, b)),
        }
    }

    #[inline]
    fn prefetch(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let start = id as usize * self.dim;
            if start < self.data.len() {
                let p = self.data[start..].as_ptr() as *const i8;
                // The first 4 lines, as the shard's column space: the
                // hardware streams the rest of the row. Whole rows (49 lines
                // on fashion-mnist-784) for every fresh neighbour at once
                // overflow L1; on an AVX2 EPYC 4 lines took fashion's build 9 %
                // and its exact walk 11-13 % less time (pypi-minilm-384: equal).
                for line in 0..(self.dim * 4).div_ceil(64).min(PREFETCH_LINES) {
                    // SAFETY: prefetch never faults, and the address is
                    // within the row we just bounds-checked.
                    unsafe {
                        std::arch::x86_64::_mm_prefetch(
                            p.wrapping_add(line * 64),
                            std::arch::x86_64::_MM_HINT_T0,
                        )
                    };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }
}

impl DenseVectors for DenseSpace<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn read_f32(&self, id: u32, out: &mut [f32]) {
        out.copy_from_slice(self.vector(id));
    }

    fn query_f32<'q>(&self, query: &'q DenseQuery) -> Cow<'q, [f32]> {
        Cow::Borrowed(&query.vector)
    }
}

/// One search result: a stored id and its ordering distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The stored vector's id.
    pub id: u32,
    /// Ordering distance to the query (see [`Metric::operator_value`]).
    pub distance: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_tags_round_trip_and_are_stable() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(m.tag() as usize, i);
            assert_eq!(Metric::from_tag(m.tag()), Some(*m));
        }
        assert_eq!(Metric::Cosine.tag(), 2);
        assert_eq!(Metric::from_tag(6), None);
    }

    #[test]
    fn dense_space_orders_like_pgvector_operators() {
        let data = [1.0, 0.0, 0.0, 2.0, 3.0, 4.0, 0.0, 0.0];
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let s = DenseSpace::new(&data, 2, metric);
            let q = s.query(&[1.0, 1.0]);
            for id in 0..3 {
                let v = s.vector(id);
                let expect = match metric {
                    Metric::L2 => distance::scalar::l2_squared(&[1.0, 1.0], v),
                    Metric::InnerProduct => -distance::scalar::dot(&[1.0, 1.0], v),
                    Metric::Cosine => distance::cosine_distance(&[1.0, 1.0], v) as f32,
                    _ => distance::scalar::l1(&[1.0, 1.0], v),
                };
                assert!(
                    (s.distance(&q, id) - expect).abs() < 1e-6,
                    "{metric:?} {id}"
                );
            }
        }
        let s = DenseSpace::new(&data, 2, Metric::Cosine);
        assert!(
            s.distance(&s.query(&[1.0, 1.0]), 3).is_nan(),
            "zero vector gives NaN"
        );
    }

    #[test]
    fn batched_distances_equal_single_ones() {
        let data: Vec<f32> = (0..8 * 37)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let s = DenseSpace::new(&data, 37, metric);
            let q = s.query(s.vector(5));
            let ids = [7, 0, 3, 3];
            let four = s.distance_x4(&q, ids);
            let between = s.distance_between_x4(5, ids);
            for (i, &id) in ids.iter().enumerate() {
                let one = s.distance(&q, id);
                assert!(
                    (four[i] - one).abs() <= 1e-4 * one.abs().max(1.0),
                    "{metric:?}"
                );
                let one = s.distance_between(5, id);
                assert!(
                    (between[i] - one).abs() <= 1e-4 * one.abs().max(1.0),
                    "{metric:?} between"
                );
            }
        }
    }
}
