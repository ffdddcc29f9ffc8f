//! Column stores: each column of a table is one store indexed by row slot.
//!
//! Vector columns with dimensions are column-major and contiguous so that
//! indexes read them in place (see [`super::space`]); every vector is stored
//! exactly once.
//!
//! ```text
//! vector(n)    data: [f32; slots × n]  norms²: [f32; slots]  present: [bool; slots]
//! halfvec(n)   data: [f16; slots × n]  norms²: [f32; slots]  present: [bool; slots]
//! bit(n)       data: [u8; slots × ⌈n/8⌉] popcounts: [u32; slots] present
//! sparsevec(n) rows: [Option<SparseVector>; slots]  norms²: [f32; slots]
//! other        values: [Datum; slots]   (scalars, and vectors without dimensions)
//! ```
//!
//! A free or NULL slot is `present = false` (or `None`); its bytes
//! are zero and never read by an index.

use super::catalog::ColumnType;
use crate::shard::datum::Datum;
use crate::wire::Value;
use ann::distance::kernels;
use ann::types::{BitVector, DenseVector, Element, SparseVector};
use half::f16;

/// A dense element type a column can hold, with its `Value` variant.
pub trait StoredElement: Element {
    /// The dense vector inside `v`, if `v` is of this element type.
    fn as_dense(v: &Datum) -> Option<&DenseVector<Self>>;
    /// Wraps a vector of this element type as a `Value`.
    fn into_value(v: DenseVector<Self>) -> Value;
    /// Dot product kernel over this element type.
    fn dot(a: &[Self], b: &[Self]) -> f32;
}

impl StoredElement for f32 {
    fn as_dense(v: &Datum) -> Option<&DenseVector<f32>> {
        match v {
            Some(Value::Vector(v)) => Some(v),
            _ => None,
        }
    }
    fn into_value(v: DenseVector<f32>) -> Value {
        Value::Vector(v)
    }
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        (kernels().dot)(a, b)
    }
}

impl StoredElement for f16 {
    fn as_dense(v: &Datum) -> Option<&DenseVector<f16>> {
        match v {
            Some(Value::HalfVec(v)) => Some(v),
            _ => None,
        }
    }
    fn into_value(v: DenseVector<f16>) -> Value {
        Value::HalfVec(v)
    }
    fn dot(a: &[f16], b: &[f16]) -> f32 {
        (kernels().dot_f16)(a, b)
    }
}

/// `vector(n)` or `halfvec(n)`: one flat array of elements.
#[derive(Debug, Clone)]
pub struct DenseColumn<E> {
    dim: usize,
    data: Vec<E>,
    norms_sq: Vec<f32>,
    present: Vec<bool>,
}

impl<E: StoredElement> DenseColumn<E> {
    fn new(dim: usize) -> Self {
        DenseColumn {
            dim,
            data: Vec::new(),
            norms_sq: Vec::new(),
            present: Vec::new(),
        }
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Slot `slot`'s coordinates (zeros when the slot holds no vector).
    #[inline]
    pub fn row(&self, slot: u32) -> &[E] {
        let start = slot as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Slot `slot`'s squared norm.
    #[inline]
    pub fn norm_sq(&self, slot: u32) -> f32 {
        self.norms_sq[slot as usize]
    }

    /// The whole flat array, for prefetching.
    pub fn data(&self) -> &[E] {
        &self.data
    }

    fn reserve(&mut self, slots: usize) {
        let more = slots.saturating_sub(self.present.len());
        self.present.reserve(more);
        self.norms_sq.reserve(more);
        self.data.reserve(more * self.dim);
    }

    fn grow(&mut self, slots: usize) {
        if slots > self.present.len() {
            self.present.resize(slots, false);
            self.norms_sq.resize(slots, 0.0);
            self.data
                .resize(slots * self.dim, E::from_f32_unchecked(0.0));
        }
    }

    fn set(&mut self, slot: u32, v: Option<&DenseVector<E>>) {
        self.grow(slot as usize + 1);
        let start = slot as usize * self.dim;
        let row = &mut self.data[start..start + self.dim];
        match v {
            Some(v) => {
                row.copy_from_slice(v.as_slice());
                self.norms_sq[slot as usize] = E::dot(v.as_slice(), v.as_slice());
                self.present[slot as usize] = true;
            }
            None => {
                row.fill(E::from_f32_unchecked(0.0));
                self.norms_sq[slot as usize] = 0.0;
                self.present[slot as usize] = false;
            }
        }
    }

    fn get(&self, slot: u32) -> Datum {
        if !self.present.get(slot as usize).copied().unwrap_or(false) {
            return None;
        }
        DenseVector::new(self.row(slot).to_vec())
            .ok()
            .map(E::into_value)
    }
}

/// `bit(n)`: one flat array of packed bit strings.
#[derive(Debug, Clone)]
pub struct BitColumn {
    bits: u32,
    stride: usize,
    data: Vec<u8>,
    popcounts: Vec<u32>,
    present: Vec<bool>,
}

impl BitColumn {
    fn new(bits: u32) -> Self {
        BitColumn {
            bits,
            stride: bits.div_ceil(8) as usize,
            data: Vec::new(),
            popcounts: Vec::new(),
            present: Vec::new(),
        }
    }

    /// Length of each bit string.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Slot `slot`'s packed bytes.
    #[inline]
    pub fn row(&self, slot: u32) -> &[u8] {
        let start = slot as usize * self.stride;
        &self.data[start..start + self.stride]
    }

    /// Slot `slot`'s number of set bits.
    #[inline]
    pub fn popcount(&self, slot: u32) -> u64 {
        self.popcounts[slot as usize] as u64
    }

    fn set(&mut self, slot: u32, v: Option<&BitVector>) {
        let slots = slot as usize + 1;
        if slots > self.present.len() {
            self.present.resize(slots, false);
            self.popcounts.resize(slots, 0);
            self.data.resize(slots * self.stride, 0);
        }
        let start = slot as usize * self.stride;
        let row = &mut self.data[start..start + self.stride];
        match v {
            Some(v) => {
                row.copy_from_slice(v.bytes());
                self.popcounts[slot as usize] = (kernels().popcount)(v.bytes()) as u32;
                self.present[slot as usize] = true;
            }
            None => {
                row.fill(0);
                self.popcounts[slot as usize] = 0;
                self.present[slot as usize] = false;
            }
        }
    }

    fn get(&self, slot: u32) -> Datum {
        if !self.present.get(slot as usize).copied().unwrap_or(false) {
            return None;
        }
        BitVector::new(self.bits, self.row(slot).to_vec())
            .ok()
            .map(Value::Bit)
    }
}

/// `sparsevec(n)`: one value per slot, with squared norms for cosine.
#[derive(Debug, Clone)]
pub struct SparseColumn {
    dim: u32,
    rows: Vec<Option<SparseVector>>,
    norms_sq: Vec<f32>,
}

impl SparseColumn {
    /// Number of dimensions.
    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// Slot `slot`'s vector, if it holds one.
    pub fn row(&self, slot: u32) -> Option<&SparseVector> {
        self.rows.get(slot as usize).and_then(Option::as_ref)
    }

    /// Slot `slot`'s squared norm.
    pub fn norm_sq(&self, slot: u32) -> f32 {
        self.norms_sq.get(slot as usize).copied().unwrap_or(0.0)
    }

    fn set(&mut self, slot: u32, v: Option<&SparseVector>) {
        let slots = slot as usize + 1;
        if slots > self.rows.len() {
            self.rows.resize(slots, None);
            self.norms_sq.resize(slots, 0.0);
        }
        let norm = v.map_or(0.0, |v| v.values().iter().map(|x| x * x).sum());
        self.norms_sq[slot as usize] = norm;
        self.rows[slot as usize] = v.cloned();
    }
}

/// One column's values, by slot.
#[derive(Debug, Clone)]
pub enum ColumnStore {
    /// Scalars and vectors without declared dimensions.
    Values(Vec<Datum>),
    /// `vector(n)`.
    Vector(DenseColumn<f32>),
    /// `halfvec(n)`.
    HalfVec(DenseColumn<f16>),
    /// `bit(n)`.
    Bit(BitColumn),
    /// `sparsevec(n)`.
    SparseVec(SparseColumn),
}

impl ColumnStore {
    /// An empty store for a column of type `ty`.
    pub fn for_type(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Vector(Some(n)) => ColumnStore::Vector(DenseColumn::new(n as usize)),
            ColumnType::HalfVec(Some(n)) => ColumnStore::HalfVec(DenseColumn::new(n as usize)),
            ColumnType::Bit(Some(n)) => ColumnStore::Bit(BitColumn::new(n)),
            ColumnType::SparseVec(Some(n)) => ColumnStore::SparseVec(SparseColumn {
                dim: n,
                rows: Vec::new(),
                norms_sq: Vec::new(),
            }),
            _ => ColumnStore::Values(Vec::new()),
        }
    }

    /// The value at `slot` (NULL for free slots).
    pub fn get(&self, slot: u32) -> Datum {
        match self {
            ColumnStore::Values(v) => v.get(slot as usize).cloned().flatten(),
            ColumnStore::Vector(c) => c.get(slot),
            ColumnStore::HalfVec(c) => c.get(slot),
            ColumnStore::Bit(c) => c.get(slot),
            ColumnStore::SparseVec(c) => c.row(slot).cloned().map(Value::SparseVec),
        }
    }

    /// True when `slot` holds NULL (or is free).
    pub fn is_null(&self, slot: u32) -> bool {
        let i = slot as usize;
        match self {
            ColumnStore::Values(v) => v.get(i).is_none_or(Option::is_none),
            ColumnStore::Vector(c) => !c.present.get(i).copied().unwrap_or(false),
            ColumnStore::HalfVec(c) => !c.present.get(i).copied().unwrap_or(false),
            ColumnStore::Bit(c) => !c.present.get(i).copied().unwrap_or(false),
            ColumnStore::SparseVec(c) => c.row(slot).is_none(),
        }
    }

    /// Stores `value` (already checked against the column type) at `slot`.
    pub fn set(&mut self, slot: u32, value: &Datum) {
        match self {
            ColumnStore::Values(v) => {
                if slot as usize >= v.len() {
                    v.resize(slot as usize + 1, None);
                }
                v[slot as usize] = value.clone();
            }
            ColumnStore::Vector(c) => c.set(slot, f32::as_dense(value)),
            ColumnStore::HalfVec(c) => c.set(slot, f16::as_dense(value)),
            ColumnStore::Bit(c) => c.set(
                slot,
                match value {
                    Some(Value::Bit(b)) => Some(b),
                    _ => None,
                },
            ),
            ColumnStore::SparseVec(c) => c.set(
                slot,
                match value {
                    Some(Value::SparseVec(s)) => Some(s),
                    _ => None,
                },
            ),
        }
    }

    /// Allocates room for `slots` slots at once (a bulk load's rows), so
    /// storing them does not grow the store row by row.
    pub fn reserve(&mut self, slots: usize) {
        match self {
            ColumnStore::Values(v) => v.reserve(slots.saturating_sub(v.len())),
            ColumnStore::Vector(c) => c.reserve(slots),
            ColumnStore::HalfVec(c) => c.reserve(slots),
            ColumnStore::Bit(c) => {
                let more = slots.saturating_sub(c.present.len());
                c.present.reserve(more);
                c.popcounts.reserve(more);
                c.data.reserve(more * c.stride);
            }
            ColumnStore::SparseVec(c) => {
                let more = slots.saturating_sub(c.rows.len());
                c.rows.reserve(more);
                c.norms_sq.reserve(more);
            }
        }
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        match self {
            ColumnStore::Values(v) => v.capacity() * std::mem::size_of::<Datum>(),
            ColumnStore::Vector(c) => c.data.capacity() * 4 + c.present.capacity() * 5,
            ColumnStore::HalfVec(c) => c.data.capacity() * 2 + c.present.capacity() * 5,
            ColumnStore::Bit(c) => c.data.capacity() + c.present.capacity() * 5,
            ColumnStore::SparseVec(c) => {
                c.rows.iter().flatten().map(|r| r.nnz() * 8).sum::<usize>()
                    + c.rows.capacity() * std::mem::size_of::<Option<SparseVector>>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ann::types::Vector;

    #[test]
    fn stores_keep_values_by_slot_and_clear_them() {
        let mut s = ColumnStore::for_type(ColumnType::Vector(Some(2)));
        let v = Some(Value::Vector(Vector::new(vec![3.0, 4.0]).unwrap()));
        s.set(3, &v);
        assert_eq!(s.get(3), v);
        assert!(s.is_null(0) && s.is_null(9) && !s.is_null(3));
        let ColumnStore::Vector(c) = &s else {
            unreachable!()
        };
        assert_eq!(c.norm_sq(3), 25.0);
        assert_eq!(c.row(0), &[0.0, 0.0]);
        s.set(3, &None);
        assert_eq!(s.get(3), None);

        let mut b = ColumnStore::for_type(ColumnType::Bit(Some(10)));
        let bits = Some(Value::Bit(BitVector::from_bits(
            (0..10).map(|i| i % 3 == 0),
        )));
        b.set(1, &bits);
        assert_eq!(b.get(1), bits);
        let mut t = ColumnStore::for_type(ColumnType::Text);
        t.set(2, &Some(Value::Text("x".into())));
        assert_eq!(t.get(2), Some(Value::Text("x".into())));
        assert_eq!(t.get(7), None);
    }
}
