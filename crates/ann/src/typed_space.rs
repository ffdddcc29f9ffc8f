//! [`Space`] implementations over columns of pgvector values, so HNSW,
//! IVFFlat and exact scans work on `vector`, `halfvec`, `sparsevec` and
//! `bit` columns held as slices of [`crate::types`] values.
//!
//! Ordering distances follow [`Metric`]'s conventions (squared L2, negative
//! dot, `1 - cos`, L1, Hamming count, Jaccard distance) and are computed with
//! the same kernels and formulas as [`crate::functions`], so an index orders
//! rows exactly as the SQL operators would. Per-row squared norms (cosine)
//! and popcounts (Jaccard) are computed once at construction.
//! [`DenseVectors`] is implemented where pgvector allows IVFFlat: dense
//! types, and bits read as 0.0/1.0 for `bit_hamming_ops`.

use crate::distance::{self, kernels};
use crate::error::{AnnError, Result};
use crate::functions::{bit::jaccard_from_counts, sparse};
use crate::space::{DenseVectors, Metric, Space};
use crate::types::element::ElementKernel;
use crate::types::{BitVector, DenseVector, Element, SparseVector};
use half::f16;
use std::borrow::Cow;

fn unsupported(metric: Metric, ty: &str) -> AnnError {
    AnnError::invalid_parameter(format!(
        "operator {} is not supported for type {ty}",
        metric.operator()
    ))
}

/// pgvector's `different vector dimensions a and b`.
fn dims_error<E: Element>(a: usize, b: usize) -> AnnError {
    AnnError::data(format!("different {} dimensions {a} and {b}", E::TYPE_NAME))
}

/// Finishes a raw kernel value into the metric's ordering distance.
fn finish(metric: Metric, raw: f32, norm_sq_a: f32, norm_sq_b: f32) -> f32 {
    match metric {
        Metric::InnerProduct => -raw,
        Metric::Cosine => distance::cosine_from_parts(raw, norm_sq_a, norm_sq_b) as f32,
        _ => raw,
    }
}

/// A query prepared for a typed space: the value and its squared norm.
#[derive(Debug, Clone)]
pub struct TypedQuery<V> {
    value: V,
    norm_sq: f32,
}

/// A `vector` or `halfvec` column (L2, inner product, cosine, L1).
#[derive(Debug)]
pub struct DenseTypedSpace<'a, E: Element> {
    rows: &'a [DenseVector<E>],
    dim: usize,
    metric: Metric,
    kernel: ElementKernel<E>,
    dot: ElementKernel<E>,
    norms_sq: Vec<f32>,
}

/// A `vector` column held as [`crate::types::Vector`] values.
pub type VectorSpace<'a> = DenseTypedSpace<'a, f32>;
/// A `halfvec` column.
pub type HalfSpace<'a> = DenseTypedSpace<'a, f16>;

impl<'a, E: Element> DenseTypedSpace<'a, E> {
    /// A space over `rows`, each with `dim` dimensions.
    pub fn new(rows: &'a [DenseVector<E>], dim: usize, metric: Metric) -> Result<Self> {
        let k = kernels();
        let kernel = match metric {
            Metric::L2 => E::l2_squared_kernel(k),
            Metric::InnerProduct | Metric::Cosine => E::dot_kernel(k),
            Metric::L1 => E::l1_kernel(k),
            Metric::Hamming | Metric::Jaccard => return Err(unsupported(metric, E::TYPE_NAME)),
        };
        let dot = E::dot_kernel(k);
        if let Some(r) = rows.iter().find(|r| r.dims() != dim) {
            return Err(dims_error::<E>(r.dims(), dim));
        }
        let norms_sq = if metric == Metric::Cosine {
            rows.iter()
                .map(|r| dot(r.as_slice(), r.as_slice()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(DenseTypedSpace {
            rows,
            dim,
            metric,
            kernel,
            dot,
            norms_sq,
        })
    }

    /// Prepares `v` as a query.
    pub fn query(&self, v: &DenseVector<E>) -> Result<TypedQuery<DenseVector<E>>> {
        if v.dims() != self.dim {
            return Err(dims_error::<E>(v.dims(), self.dim));
        }
        let norm_sq = (self.dot)(v.as_slice(), v.as_slice());
        Ok(TypedQuery {
            value: v.clone(),
            norm_sq,
        })
    }

    fn norm_sq(&self, id: u32) -> f32 {
        self.norms_sq.get(id as usize).copied().unwrap_or(0.0)
    }
}

impl<E: Element> Space for DenseTypedSpace<'_, E> {
    type Query = TypedQuery<DenseVector<E>>;

    fn metric(&self) -> Metric {
        self.metric
    }

    fn distance(&self, q: &Self::Query, id: u32) -> f32 {
        let raw = (self.kernel)(q.value.as_slice(), self.rows[id as usize].as_slice());
        finish(self.metric, raw, q.norm_sq, self.norm_sq(id))
    }

    fn distance_between(&self, a: u32, b: u32) -> f32 {
        let raw = (self.kernel)(
            self.rows[a as usize].as_slice(),
            self.rows[b as usize].as_slice(),
        );
        finish(self.metric, raw, self.norm_sq(a), self.norm_sq(b))
    }
}

impl<E: Element> DenseVectors for DenseTypedSpace<'_, E> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn read_f32(&self, id: u32, out: &mut [f32]) {
        for (o, x) in out.iter_mut().zip(self.rows[id as usize].as_slice()) {
            *o = x.to_f32();
        }
    }

    fn query_f32<'q>(&self, q: &'q Self::Query) -> Cow<'q, [f32]> {
        Cow::Owned(q.value.as_slice().iter().map(|x| x.to_f32()).collect())
    }
}

/// A `sparsevec` column (L2, inner product, cosine, L1). HNSW only:
/// pgvector has no IVFFlat operator class for sparsevec.
#[derive(Debug)]
pub struct SparseSpace<'a> {
    rows: &'a [SparseVector],
    dim: u32,
    metric: Metric,
    norms_sq: Vec<f32>,
}

impl<'a> SparseSpace<'a> {
    /// A space over `rows`, each with `dim` dimensions.
    pub fn new(rows: &'a [SparseVector], dim: u32, metric: Metric) -> Result<Self> {
        if matches!(metric, Metric::Hamming | Metric::Jaccard) {
            return Err(unsupported(metric, "sparsevec"));
        }
        if let Some(r) = rows.iter().find(|r| r.dims() != dim) {
            return Err(AnnError::data(format!(
                "different sparsevec dimensions {} and {dim}",
                r.dims()
            )));
        }
        let norms_sq = if metric == Metric::Cosine {
            rows.iter().map(sparse::norm_squared_f32).collect()
        } else {
            Vec::new()
        };
        Ok(SparseSpace {
            rows,
            dim,
            metric,
            norms_sq,
        })
    }

    /// Prepares `v` as a query.
    pub fn query(&self, v: &SparseVector) -> Result<TypedQuery<SparseVector>> {
        if v.dims() != self.dim {
            return Err(AnnError::data(format!(
                "different sparsevec dimensions {} and {}",
                v.dims(),
                self.dim
            )));
        }
        Ok(TypedQuery {
            value: v.clone(),
            norm_sq: sparse::norm_squared_f32(v),
        })
    }

    fn raw(&self, a: &SparseVector, b: &SparseVector) -> f32 {
        match self.metric {
            Metric::L2 => sparse::l2_squared_f32(a, b),
            Metric::L1 => sparse::l1_f32(a, b),
            _ => sparse::dot_f32(a, b),
        }
    }

    fn norm_sq(&self, id: u32) -> f32 {
        self.norms_sq.get(id as usize).copied().unwrap_or(0.0)
    }
}

impl Space for SparseSpace<'_> {
    type Query = TypedQuery<SparseVector>;

    fn metric(&self) -> Metric {
        self.metric
    }

    fn distance(&self, q: &Self::Query, id: u32) -> f32 {
        let raw = self.raw(&q.value, &self.rows[id as usize]);
        finish(self.metric, raw, q.norm_sq, self.norm_sq(id))
    }

    fn distance_between(&self, a: u32, b: u32) -> f32 {
        let raw = self.raw(&self.rows[a as usize], &self.rows[b as usize]);
        finish(self.metric, raw, self.norm_sq(a), self.norm_sq(b))
    }
}

/// A `bit(n)` column (Hamming, Jaccard).
#[derive(Debug)]
pub struct BitSpace<'a> {
    rows: &'a [BitVector],
    len: u32,
    metric: Metric,
    popcounts: Vec<u64>,
}

/// A query against a [`BitSpace`]: the bits and their popcount.
#[derive(Debug, Clone)]
pub struct BitQuery {
    value: BitVector,
    popcount: u64,
}

impl<'a> BitSpace<'a> {
    /// A space over `rows`, each `len` bits long.
    pub fn new(rows: &'a [BitVector], len: u32, metric: Metric) -> Result<Self> {
        if !matches!(metric, Metric::Hamming | Metric::Jaccard) {
            return Err(unsupported(metric, "bit"));
        }
        if let Some(r) = rows.iter().find(|r| r.len() != len) {
            return Err(AnnError::data(format!(
                "different bit lengths {} and {len}",
                r.len()
            )));
        }
        let popcount = kernels().popcount;
        let popcounts = if metric == Metric::Jaccard {
            rows.iter().map(|r| popcount(r.bytes())).collect()
        } else {
            Vec::new()
        };
        Ok(BitSpace {
            rows,
            len,
            metric,
            popcounts,
        })
    }

    /// Prepares `v` as a query.
    pub fn query(&self, v: &BitVector) -> Result<BitQuery> {
        if v.len() != self.len {
            return Err(AnnError::data(format!(
                "different bit lengths {} and {}",
                v.len(),
                self.len
            )));
        }
        Ok(BitQuery {
            value: v.clone(),
            popcount: (kernels().popcount)(v.bytes()),
        })
    }

    fn between(&self, a: &[u8], pop_a: u64, b: u32) -> f32 {
        let k = kernels();
        let row = self.rows[b as usize].bytes();
        match self.metric {
            Metric::Jaccard => {
                jaccard_from_counts((k.and_popcount)(a, row), pop_a, self.popcounts[b as usize])
                    as f32
            }
            _ => (k.hamming)(a, row) as f32,
        }
    }
}

impl Space for BitSpace<'_> {
    type Query = BitQuery;

    fn metric(&self) -> Metric {
        self.metric
    }

    fn distance(&self, q: &BitQuery, id: u32) -> f32 {
        self.between(q.value.bytes(), q.popcount, id)
    }

    fn distance_between(&self, a: u32, b: u32) -> f32 {
        let pop_a = self.popcounts.get(a as usize).copied().unwrap_or(0);
        self.between(self.rows[a as usize].bytes(), pop_a, b)
    }
}

fn bits_as_f32(v: &BitVector, out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = if v.get(i as u32) == Some(true) {
            1.0
        } else {
            0.0
        };
    }
}

impl DenseVectors for BitSpace<'_> {
    fn dim(&self) -> usize {
        self.len as usize
    }

    fn read_f32(&self, id: u32, out: &mut [f32]) {
        bits_as_f32(&self.rows[id as usize], out);
    }

    fn query_f32<'q>(&self, q: &'q BitQuery) -> Cow<'q, [f32]> {
        let mut out = vec![0.0; self.len as usize];
        bits_as_f32(&q.value, &mut out);
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::{bit, dense};
    use crate::rng::Rng;
    use crate::types::{HalfVector, Vector};

    fn clustered(rng: &mut Rng, n: usize, dim: usize) -> Vec<Vec<f32>> {
        let centres: Vec<Vec<f64>> = (0..3)
            .map(|_| (0..dim).map(|_| rng.normal() * 5.0).collect())
            .collect();
        (0..n)
            .map(|i| {
                centres[i % 3]
                    .iter()
                    .map(|c| (c + rng.normal()) as f32)
                    .collect()
            })
            .collect()
    }

    fn sql_value(metric: Metric, ordering: f32) -> f64 {
        metric.operator_value(ordering)
    }

    #[test]
    fn dense_spaces_agree_with_functions() {
        let mut rng = Rng::new(21);
        let raw = clustered(&mut rng, 30, 17);
        let vectors: Vec<Vector> = raw
            .iter()
            .map(|r| Vector::new(r.clone()).unwrap())
            .collect();
        let halves: Vec<HalfVector> = raw
            .iter()
            .map(|r| HalfVector::new(r.iter().map(|x| f16::from_f32(*x)).collect()).unwrap())
            .collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let f = |a: &Vector, b: &Vector| match metric {
                Metric::L2 => dense::l2_distance(a, b),
                Metric::InnerProduct => dense::negative_inner_product(a, b),
                Metric::Cosine => dense::cosine_distance(a, b),
                _ => dense::l1_distance(a, b),
            };
            let fh = |a: &HalfVector, b: &HalfVector| match metric {
                Metric::L2 => dense::l2_distance(a, b),
                Metric::InnerProduct => dense::negative_inner_product(a, b),
                Metric::Cosine => dense::cosine_distance(a, b),
                _ => dense::l1_distance(a, b),
            };
            let vs = VectorSpace::new(&vectors, 17, metric).unwrap();
            let hs = HalfSpace::new(&halves, 17, metric).unwrap();
            let (vq, hq) = (
                vs.query(&vectors[0]).unwrap(),
                hs.query(&halves[0]).unwrap(),
            );
            for id in 0..30u32 {
                let want = f(&vectors[0], &vectors[id as usize]).unwrap();
                let got = sql_value(metric, vs.distance(&vq, id));
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{metric:?} {id}: {got} vs {want}"
                );
                assert_eq!(vs.distance_between(0, id), vs.distance(&vq, id));
                let want = fh(&halves[0], &halves[id as usize]).unwrap();
                let got = sql_value(metric, hs.distance(&hq, id));
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "half {metric:?} {id}"
                );
            }
        }
        let hs = HalfSpace::new(&halves, 17, Metric::L2).unwrap();
        let mut out = vec![0.0; 17];
        hs.read_f32(3, &mut out);
        assert_eq!(
            out,
            halves[3]
                .as_slice()
                .iter()
                .map(|x| x.to_f32())
                .collect::<Vec<_>>()
        );
        assert_eq!(hs.dim(), 17);
        assert!(HalfSpace::new(&halves, 16, Metric::L2).is_err());
        assert!(hs.query(&HalfVector::parse("[1]", None).unwrap()).is_err());
        assert!(VectorSpace::new(&vectors, 17, Metric::Hamming).is_err());
    }

    #[test]
    fn sparse_space_agrees_with_functions() {
        let mut rng = Rng::new(4);
        let rows: Vec<SparseVector> = (0..25)
            .map(|i| {
                let idx: Vec<u32> = (0..200u32)
                    .filter(|j| (j + i) % 7 == 0 || rng.below(20) == 0)
                    .collect();
                let vals = idx.iter().map(|_| rng.normal() as f32 + 1.0).collect();
                SparseVector::new(200, idx, vals).unwrap()
            })
            .collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let s = SparseSpace::new(&rows, 200, metric).unwrap();
            let q = s.query(&rows[2]).unwrap();
            for id in 0..25u32 {
                let (a, b) = (&rows[2], &rows[id as usize]);
                let want = match metric {
                    Metric::L2 => sparse::l2_distance(a, b),
                    Metric::InnerProduct => sparse::negative_inner_product(a, b),
                    Metric::Cosine => sparse::cosine_distance(a, b),
                    _ => sparse::l1_distance(a, b),
                }
                .unwrap();
                let got = sql_value(metric, s.distance(&q, id));
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{metric:?} {id}"
                );
                assert_eq!(s.distance_between(2, id), s.distance(&q, id));
            }
        }
        assert!(SparseSpace::new(&rows, 201, Metric::L2).is_err());
    }

    #[test]
    fn bit_space_agrees_with_functions() {
        let mut rng = Rng::new(8);
        let rows: Vec<BitVector> = (0..20)
            .map(|i| {
                BitVector::from_bits(
                    (0..77).map(|j| (j * (i % 3 + 1)) % 5 == 0 || rng.below(6) == 0),
                )
            })
            .collect();
        for metric in [Metric::Hamming, Metric::Jaccard] {
            let s = BitSpace::new(&rows, 77, metric).unwrap();
            let q = s.query(&rows[1]).unwrap();
            for id in 0..20u32 {
                let (a, b) = (&rows[1], &rows[id as usize]);
                let want = if metric == Metric::Hamming {
                    bit::hamming_distance(a, b)
                } else {
                    bit::jaccard_distance(a, b)
                }
                .unwrap();
                assert_eq!(s.distance(&q, id), want as f32, "{metric:?} {id}");
                assert_eq!(s.distance_between(1, id), want as f32);
            }
        }
        let s = BitSpace::new(&rows, 77, Metric::Hamming).unwrap();
        let mut out = vec![0.0; 77];
        s.read_f32(5, &mut out);
        let mut other = vec![0.0; 77];
        s.read_f32(6, &mut other);
        // Hamming on bits equals L1 on their 0/1 coordinates (IVFFlat's view).
        assert_eq!(distance::scalar::l1(&out, &other), s.distance_between(5, 6));
        assert_eq!(
            s.query_f32(&s.query(&rows[5]).unwrap()).as_ref(),
            out.as_slice()
        );
        assert!(BitSpace::new(&rows, 77, Metric::L2).is_err());
    }
}
