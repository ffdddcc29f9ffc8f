//! The element types of the dense vectors: f32 for `vector`, f16 for
//! `halfvec`. Everything pgvector does differently between `vector.c` and
//! `halfvec.c` is here; the rest is shared in [`super::DenseVector`].

use super::{check_f32_element, float_text, out_of_range};
use crate::distance::Kernels;
use crate::error::Result;
use half::f16;
use std::fmt::Debug;

/// A kernel over two element slices of equal length, accumulating in f32.
pub type ElementKernel<E> = fn(&[E], &[E]) -> f32;

/// An element type of a dense pgvector type.
pub trait Element: Copy + PartialEq + Debug + Send + Sync + 'static {
    /// The SQL type name used in messages (`vector`, `halfvec`).
    const TYPE_NAME: &'static str;
    /// Bytes per element in the binary format.
    const WIRE_SIZE: usize;

    /// The element as f32 (exact).
    fn to_f32(self) -> f32;
    /// Rounds an f32 to this type without range checks
    /// (`Float4ToHalfUnchecked`).
    fn from_f32_unchecked(v: f32) -> Self;
    /// Rounds an f32 to this type, failing when a finite value overflows
    /// (`Float4ToHalf`); the message prints the f32.
    fn from_f32_checked(v: f32) -> Result<Self> {
        let e = Self::from_f32_unchecked(v);
        if e.to_f32().is_infinite() && v.is_finite() {
            return Err(out_of_range(&float_text::shortest(v), Self::TYPE_NAME));
        }
        Ok(e)
    }
    /// pgvector's `CheckElement`: no NaN, no infinity.
    fn check(self) -> Result<()> {
        check_f32_element(self.to_f32(), Self::TYPE_NAME)
    }
    /// Reads one element from its big-endian wire bytes
    /// ([`Self::WIRE_SIZE`] of them).
    fn from_wire(bytes: &[u8]) -> Self;
    /// Reads the whole elements of big-endian wire bytes at once (a pass
    /// the compiler vectorizes; a trailing partial element is ignored).
    fn read_wire(bytes: &[u8]) -> Vec<Self>;
    /// Appends the element's big-endian wire bytes.
    fn push_wire(self, out: &mut Vec<u8>);
    /// Squared L2 kernel from the dispatch table.
    fn l2_squared_kernel(k: &Kernels) -> ElementKernel<Self>;
    /// Dot product kernel from the dispatch table.
    fn dot_kernel(k: &Kernels) -> ElementKernel<Self>;
    /// L1 kernel from the dispatch table.
    fn l1_kernel(k: &Kernels) -> ElementKernel<Self>;
}

/// Each whole `N`-byte chunk of `bytes` read by `read` (a trailing partial
/// chunk is ignored): fixed-size chunks let the compiler vectorize.
fn read_chunks<const N: usize, E>(bytes: &[u8], read: impl Fn([u8; N]) -> E) -> Vec<E> {
    let (whole, _) = bytes.as_chunks::<N>();
    whole.iter().map(|&b| read(b)).collect()
}

impl Element for f32 {
    const TYPE_NAME: &'static str = "vector";
    const WIRE_SIZE: usize = 4;

    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32_unchecked(v: f32) -> Self {
        v
    }
    fn from_wire(b: &[u8]) -> Self {
        f32::from_bits(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn read_wire(bytes: &[u8]) -> Vec<Self> {
        read_chunks(bytes, |b| f32::from_bits(u32::from_be_bytes(b)))
    }
    fn push_wire(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_be_bytes());
    }
    fn l2_squared_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.l2_squared
    }
    fn dot_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.dot
    }
    fn l1_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.l1
    }
}

impl Element for f16 {
    const TYPE_NAME: &'static str = "halfvec";
    const WIRE_SIZE: usize = 2;

    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32_unchecked(v: f32) -> Self {
        // Round to nearest even, as F16C and pgvector's portable path do.
        f16::from_f32(v)
    }
    fn from_wire(b: &[u8]) -> Self {
        f16::from_bits(u16::from_be_bytes([b[0], b[1]]))
    }
    fn read_wire(bytes: &[u8]) -> Vec<Self> {
        read_chunks(bytes, |b| f16::from_bits(u16::from_be_bytes(b)))
    }
    fn push_wire(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_be_bytes());
    }
    fn l2_squared_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.l2_squared_f16
    }
    fn dot_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.dot_f16
    }
    fn l1_kernel(k: &Kernels) -> ElementKernel<Self> {
        k.l1_f16
    }
}
