//! [`ann::Space`] over a table's vector column, so ANN indexes and exact
//! scans read vectors where the table keeps them (no copies).
//!
//! Ordering distances follow [`Metric`]'s conventions: squared L2,
//! negative dot, `1 - cos` from the per-slot squared norms the column keeps,
//! L1, Hamming and Jaccard from the per-slot popcounts.

use super::columns::{ColumnStore, DenseColumn, StoredElement};
use super::error::{Result, StorageError};
use crate::wire::Value;
use ann::distance::{cosine_from_parts, kernels, F16Kernel, F32BatchKernel, F32Kernel};
use ann::functions::sparse;
use ann::types::SparseVector;
use ann::{DenseVectors, Metric, Space};
use half::f16;
use std::borrow::Cow;

/// A vector column seen through one metric.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpace<'a> {
    store: &'a ColumnStore,
    metric: Metric,
    f32_kernel: F32Kernel,
    /// The f32 kernel over four rows at once, where one exists (not L1).
    f32_kernel_x4: Option<F32BatchKernel>,
    f16_kernel: F16Kernel,
}

/// A query value prepared for a [`ColumnSpace`].
#[derive(Debug, Clone)]
pub struct ColumnQuery {
    data: QueryData,
    norm_sq: f32,
    popcount: u64,
}

#[derive(Debug, Clone)]
enum QueryData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Bits(Vec<u8>),
    Sparse(SparseVector),
}

fn bad_metric(metric: Metric, ty: &str) -> StorageError {
    StorageError::new(
        "42883",
        format!(
            "operator {} is not supported for type {ty}",
            metric.operator()
        ),
    )
}

impl<'a> ColumnSpace<'a> {
    /// The column `store` under `metric`; fails for a metric the column's
    /// type has no operator for, or a column without dimensions.
    pub fn new(store: &'a ColumnStore, metric: Metric) -> Result<Self> {
        let bit_metric = matches!(metric, Metric::Hamming | Metric::Jaccard);
        match store {
            ColumnStore::Values(_) => {
                return Err(StorageError::new(
                    "22023",
                    "column does not have dimensions",
                ))
            }
            ColumnStore::Bit(_) if !bit_metric => return Err(bad_metric(metric, "bit")),
            ColumnStore::Vector(_) | ColumnStore::HalfVec(_) | ColumnStore::SparseVec(_)
                if bit_metric =>
            {
                return Err(bad_metric(metric, "vector"))
            }
            _ => {}
        }
        let k = kernels();
        let (f32_kernel, f32_kernel_x4, f16_kernel) = match metric {
            Metric::L2 => (k.l2_squared, Some(k.l2_squared_x4), k.l2_squared_f16),
            Metric::L1 => (k.l1, None, k.l1_f16),
            _ => (k.dot, Some(k.dot_x4), k.dot_f16),
        };
        Ok(ColumnSpace {
            store,
            metric,
            f32_kernel,
            f32_kernel_x4,
            f16_kernel,
        })
    }

    /// True for a `vector` (f32) column, the kind an HNSW walk on byte codes
    /// serves.
    pub fn is_f32_vector(&self) -> bool {
        matches!(self.store, ColumnStore::Vector(_))
    }

    /// Prepares `value` (of the column's type and dimensions) as a query.
    pub fn query(&self, value: &Value) -> Result<ColumnQuery> {
        let k = kernels();
        let mismatch = |a: usize, b: usize, ty: &str| {
            StorageError::new("22000", format!("different {ty} dimensions {a} and {b}"))
        };
        let (data, norm_sq, popcount) = match (self.store, value) {
            (ColumnStore::Vector(c), Value::Vector(v)) => {
                if v.dims() != c.dim() {
                    return Err(mismatch(v.dims(), c.dim(), "vector"));
                }
                let s = v.as_slice();
                (QueryData::F32(s.to_vec()), (k.dot)(s, s), 0)
            }
            (ColumnStore::HalfVec(c), Value::HalfVec(v)) => {
                if v.dims() != c.dim() {
                    return Err(mismatch(v.dims(), c.dim(), "halfvec"));
                }
                let s = v.as_slice();
                (QueryData::F16(s.to_vec()), (k.dot_f16)(s, s), 0)
            }
            (ColumnStore::Bit(c), Value::Bit(v)) => {
                if v.len() != c.bits() {
                    return Err(StorageError::new(
                        "22026",
                        format!("different bit lengths {} and {}", v.len(), c.bits()),
                    ));
                }
                (
                    QueryData::Bits(v.bytes().to_vec()),
                    0.0,
                    (k.popcount)(v.bytes()),
                )
            }
            (ColumnStore::SparseVec(c), Value::SparseVec(v)) => {
                if v.dims() != c.dim() {
                    return Err(mismatch(v.dims() as usize, c.dim() as usize, "sparsevec"));
                }
                let norm = v.values().iter().map(|x| x * x).sum();
                (QueryData::Sparse(v.clone()), norm, 0)
            }
            (_, v) => {
                return Err(StorageError::new(
                    "42883",
                    format!(
                        "operator does not exist: {} {} column",
                        crate::shard::datum::type_name(v),
                        self.metric.operator()
                    ),
                ))
            }
        };
        Ok(ColumnQuery {
            data,
            norm_sq,
            popcount,
        })
    }

    fn finish(&self, raw: f32, norm_a: f32, norm_b: f32) -> f32 {
        match self.metric {
            Metric::InnerProduct => -raw,
            Metric::Cosine => cosine_from_parts(raw, norm_a, norm_b) as f32,
            _ => raw,
        }
    }

    fn dense<E: StoredElement>(
        &self,
        c: &DenseColumn<E>,
        kernel: fn(&[E], &[E]) -> f32,
        a: &[E],
        norm_a: f32,
        b: u32,
    ) -> f32 {
        self.finish(kernel(a, c.row(b)), norm_a, c.norm_sq(b))
    }

    fn bits(&self, a: &[u8], pop_a: u64, b: u32) -> f32 {
        let ColumnStore::Bit(c) = self.store else {
            return f32::NAN;
        };
        let k = kernels();
        let row = c.row(b);
        match self.metric {
            Metric::Jaccard => {
                let ab = (k.and_popcount)(a, row);
                if ab == 0 {
                    1.0
                } else {
                    (1.0 - ab as f64 / (pop_a + c.popcount(b) - ab) as f64) as f32
                }
            }
            _ => (k.hamming)(a, row) as f32,
        }
    }

    fn sparse(&self, a: &SparseVector, b: u32) -> f32 {
        let ColumnStore::SparseVec(c) = self.store else {
            return f32::NAN;
        };
        let Some(row) = c.row(b) else {
            return f32::NAN;
        };
        let d = match self.metric {
            Metric::L2 => sparse::l2_squared_distance(a, row),
            Metric::InnerProduct => sparse::negative_inner_product(a, row),
            Metric::Cosine => sparse::cosine_distance(a, row),
            _ => sparse::l1_distance(a, row),
        };
        d.map_or(f32::NAN, |d| d as f32)
    }
}

impl Space for ColumnSpace<'_> {
    type Query = ColumnQuery;

    fn metric(&self) -> Metric {
        self.metric
    }

    #[inline]
    fn distance(&self, q: &ColumnQuery, id: u32) -> f32 {
        match (self.store, &q.data) {
            (ColumnStore::Vector(c), QueryData::F32(a)) => {
                self.dense(c, self.f32_kernel, a, q.norm_sq, id)
            }
            (ColumnStore::HalfVec(c), QueryData::F16(a)) => {
                self.dense(c, self.f16_kernel, a, q.norm_sq, id)
            }
            (_, QueryData::Bits(a)) => self.bits(a, q.popcount, id),
            (_, QueryData::Sparse(a)) => self.sparse(a, id),
            _ => f32::NAN,
        }
    }

    #[inline]
    fn distance_x4(&self, q: &ColumnQuery, ids: [u32; 4]) -> [f32; 4] {
        match (self.store, &q.data, self.f32_kernel_x4) {
            (ColumnStore::Vector(c), QueryData::F32(a), Some(k4)) => {
                let raw = k4(a, ids.map(|id| c.row(id)));
                [0, 1, 2, 3].map(|i| self.finish(raw[i], q.norm_sq, c.norm_sq(ids[i])))
            }
            _ => ids.map(|id| self.distance(q, id)),
        }
    }

    fn node_query(&self, id: u32) -> Option<ColumnQuery> {
        match self.store {
            ColumnStore::Vector(c) => Some(ColumnQuery {
                data: QueryData::F32(c.row(id).to_vec()),
                norm_sq: c.norm_sq(id),
                popcount: 0,
            }),
            _ => None,
        }
    }

    #[inline]
    fn distance_between(&self, a: u32, b: u32) -> f32 {
        match self.store {
            ColumnStore::Vector(c) => self.dense(c, self.f32_kernel, c.row(a), c.norm_sq(a), b),
            ColumnStore::HalfVec(c) => self.dense(c, self.f16_kernel, c.row(a), c.norm_sq(a), b),
            ColumnStore::Bit(c) => self.bits(c.row(a), c.popcount(a), b),
            ColumnStore::SparseVec(c) => match c.row(a) {
                Some(row) => self.sparse(row, b),
                None => f32::NAN,
            },
            ColumnStore::Values(_) => f32::NAN,
        }
    }

    #[inline]
    fn distance_between_x4(&self, a: u32, bs: [u32; 4]) -> [f32; 4] {
        match (self.store, self.f32_kernel_x4) {
            (ColumnStore::Vector(c), Some(k4)) => {
                let raw = k4(c.row(a), bs.map(|b| c.row(b)));
                let norm_a = c.norm_sq(a);
                [0, 1, 2, 3].map(|i| self.finish(raw[i], norm_a, c.norm_sq(bs[i])))
            }
            _ => bs.map(|b| self.distance_between(a, b)),
        }
    }

    #[inline]
    fn prefetch(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        if let ColumnStore::Vector(c) = self.store {
            let start = id as usize * c.dim();
            if let Some(row) = c.data().get(start..) {
                for line in 0..(c.dim() * 4).div_ceil(64).min(4) {
                    // SAFETY: prefetch never faults; the address points into
                    // (or just past the start of) the bounds-checked row.
                    unsafe {
                        std::arch::x86_64::_mm_prefetch(
                            (row.as_ptr() as *const i8).wrapping_add(line * 64),
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

fn bits_to_f32(bytes: &[u8], out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = ((bytes[i / 8] >> (7 - i % 8)) & 1) as f32;
    }
}

impl DenseVectors for ColumnSpace<'_> {
    fn dim(&self) -> usize {
        match self.store {
            ColumnStore::Vector(c) => c.dim(),
            ColumnStore::HalfVec(c) => c.dim(),
            ColumnStore::Bit(c) => c.bits() as usize,
            ColumnStore::SparseVec(c) => c.dim() as usize,
            ColumnStore::Values(_) => 0,
        }
    }

    fn read_f32(&self, id: u32, out: &mut [f32]) {
        match self.store {
            ColumnStore::Vector(c) => out.copy_from_slice(c.row(id)),
            ColumnStore::HalfVec(c) => {
                for (o, x) in out.iter_mut().zip(c.row(id)) {
                    *o = x.to_f32();
                }
            }
            ColumnStore::Bit(c) => bits_to_f32(c.row(id), out),
            ColumnStore::SparseVec(c) => {
                out.fill(0.0);
                if let Some(row) = c.row(id) {
                    for (&i, &v) in row.indices().iter().zip(row.values()) {
                        out[i as usize] = v;
                    }
                }
            }
            ColumnStore::Values(_) => out.fill(0.0),
        }
    }

    fn query_f32<'q>(&self, q: &'q ColumnQuery) -> Cow<'q, [f32]> {
        match &q.data {
            QueryData::F32(v) => Cow::Borrowed(v),
            QueryData::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
            QueryData::Bits(b) => {
                let mut out = vec![0.0; self.dim()];
                bits_to_f32(b, &mut out);
                Cow::Owned(out)
            }
            QueryData::Sparse(s) => {
                let mut out = vec![0.0; self.dim()];
                for (&i, &v) in s.indices().iter().zip(s.values()) {
                    out[i as usize] = v;
                }
                Cow::Owned(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::catalog::ColumnType;
    use ann::functions::dense;
    use ann::types::{BitVector, Vector};

    #[test]
    fn distances_match_pgvector_functions() {
        let rows = [[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 0.0, 1.0]];
        let mut store = ColumnStore::for_type(ColumnType::Vector(Some(3)));
        let vectors: Vec<Vector> = rows
            .iter()
            .map(|r| Vector::new(r.to_vec()).unwrap())
            .collect();
        for (i, v) in vectors.iter().enumerate() {
            store.set(i as u32, &Some(Value::Vector(v.clone())));
        }
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let space = ColumnSpace::new(&store, metric).unwrap();
            let q = space.query(&Value::Vector(vectors[0].clone())).unwrap();
            for id in 0..3u32 {
                let (a, b) = (&vectors[0], &vectors[id as usize]);
                let want = match metric {
                    Metric::L2 => dense::l2_distance(a, b),
                    Metric::InnerProduct => dense::negative_inner_product(a, b),
                    Metric::Cosine => dense::cosine_distance(a, b),
                    _ => dense::l1_distance(a, b),
                }
                .unwrap();
                let got = metric.operator_value(space.distance(&q, id));
                assert!((got - want).abs() < 1e-5, "{metric:?} {id}: {got} {want}");
                assert_eq!(space.distance_between(0, id), space.distance(&q, id));
            }
            // Four rows per pass and a stored row as the query give the
            // same distances (builds compare through them).
            let node = space.node_query(0).unwrap();
            let four = space.distance_x4(&node, [2, 0, 1, 2]);
            let between = space.distance_between_x4(0, [2, 0, 1, 2]);
            for ((d, b), id) in four.into_iter().zip(between).zip([2, 0, 1, 2]) {
                let one = space.distance(&q, id);
                assert!(
                    (d - one).abs() <= 1e-4 * one.abs().max(1.0),
                    "{metric:?} {id}"
                );
                assert!(
                    (b - one).abs() <= 1e-4 * one.abs().max(1.0),
                    "{metric:?} {id} between"
                );
            }
        }
        assert!(ColumnSpace::new(&store, Metric::Hamming).is_err());
        let space = ColumnSpace::new(&store, Metric::L2).unwrap();
        assert!(space
            .query(&Value::Vector(Vector::new(vec![1.0]).unwrap()))
            .is_err());
    }

    #[test]
    fn bit_distances_and_dense_reads() {
        let mut store = ColumnStore::for_type(ColumnType::Bit(Some(4)));
        let a = BitVector::from_bits([true, true, false, false]);
        let b = BitVector::from_bits([true, false, true, false]);
        store.set(0, &Some(Value::Bit(a.clone())));
        store.set(1, &Some(Value::Bit(b)));
        let h = ColumnSpace::new(&store, Metric::Hamming).unwrap();
        assert_eq!(h.distance_between(0, 1), 2.0);
        let j = ColumnSpace::new(&store, Metric::Jaccard).unwrap();
        let q = j.query(&Value::Bit(a)).unwrap();
        assert!((j.distance(&q, 1) - (1.0 - 1.0 / 3.0)).abs() < 1e-6);
        let mut out = [9.0; 4];
        h.read_f32(1, &mut out);
        assert_eq!(out, [1.0, 0.0, 1.0, 0.0]);
    }
}
