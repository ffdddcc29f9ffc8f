//! Distance kernels.
//!
//! Every kernel has a portable scalar reference in [`scalar`]; the dispatch
//! table returned by [`kernels`] is filled once, at first use, with the
//! fastest implementation the running CPU supports. Callers that compare many
//! vectors should take the function pointers once (as [`crate::DenseSpace`]
//! does) rather than look them up per call.
//!
//! Kernels return f32 accumulations with pgvector's formulas: squared L2, the
//! dot product, L1, and for bits the popcounts. The pgvector operator values
//! (sqrt for `<->`, negation for `<#>`, `1 - cos` for `<=>`) are applied by
//! callers.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod batch;
pub mod codes;
#[cfg(target_arch = "x86_64")]
mod popcnt;
pub mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod unrolled;

use half::f16;
use std::sync::OnceLock;

/// A kernel over two f32 slices of equal length.
pub type F32Kernel = fn(&[f32], &[f32]) -> f32;
/// A kernel from one f32 query to four f32 rows; result `k` is the single
/// kernel on (query, `rows[k]`). One pass over rows of the query's length,
/// single calls for any other row.
pub type F32BatchKernel = fn(&[f32], [&[f32]; 4]) -> [f32; 4];
/// A kernel over two f16 slices of equal length.
pub type F16Kernel = fn(&[f16], &[f16]) -> f32;
/// A kernel from one f16 query to four f16 rows, accumulated in f32; the
/// f16 twin of [`F32BatchKernel`].
pub type F16BatchKernel = fn(&[f16], [&[f16]; 4]) -> [f32; 4];

/// The kernels chosen for this CPU.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// Name of the instruction set in use ("scalar", "avx2", "avx512").
    pub isa: &'static str,
    /// Sum of squared differences.
    pub l2_squared: F32Kernel,
    /// Dot product.
    pub dot: F32Kernel,
    /// Sum of absolute differences.
    pub l1: F32Kernel,
    /// [`Kernels::l2_squared`] from one query to four rows in one pass;
    /// faster per row than four single calls.
    pub l2_squared_x4: F32BatchKernel,
    /// [`Kernels::dot`] of one query with four rows in one pass.
    pub dot_x4: F32BatchKernel,
    /// Squared L2 over halfvec elements, accumulated in f32.
    pub l2_squared_f16: F16Kernel,
    /// Dot product over halfvec elements, accumulated in f32.
    pub dot_f16: F16Kernel,
    /// L1 over halfvec elements, accumulated in f32.
    pub l1_f16: F16Kernel,
    /// [`Kernels::l2_squared_f16`] from one query to four rows in one pass.
    pub l2_squared_f16_x4: F16BatchKernel,
    /// [`Kernels::dot_f16`] of one query with four rows in one pass.
    pub dot_f16_x4: F16BatchKernel,
    /// Number of differing bits.
    pub hamming: fn(&[u8], &[u8]) -> u64,
    /// Number of bits set in both.
    pub and_popcount: fn(&[u8], &[u8]) -> u64,
    /// Number of bits set.
    pub popcount: fn(&[u8]) -> u64,
}

const SCALAR: Kernels = Kernels {
    isa: "scalar",
    l2_squared: scalar::l2_squared,
    dot: scalar::dot,
    l1: scalar::l1,
    l2_squared_x4: scalar::l2_squared_x4,
    dot_x4: scalar::dot_x4,
    l2_squared_f16: scalar::l2_squared_f16,
    dot_f16: scalar::dot_f16,
    l1_f16: scalar::l1_f16,
    l2_squared_f16_x4: scalar::l2_squared_f16_x4,
    dot_f16_x4: scalar::dot_f16_x4,
    hamming: scalar::hamming,
    and_popcount: scalar::and_popcount,
    popcount: scalar::popcount,
};

/// The portable kernels, the reference every SIMD kernel is tested against.
pub fn scalar_kernels() -> &'static Kernels {
    &SCALAR
}

/// The fastest kernels this CPU supports, detected once.
pub fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<Kernels> = OnceLock::new();
    CHOSEN.get_or_init(detect)
}

/// Every kernel table the running CPU can execute, fastest first; the last
/// is always the scalar reference. Tests and benchmarks compare them all.
pub fn available() -> Vec<&'static Kernels> {
    let mut tables = Vec::new();
    #[cfg(target_arch = "x86_64")]
    tables.extend([avx512::kernels(), avx2::kernels()].into_iter().flatten());
    tables.push(&SCALAR);
    tables
}

fn detect() -> Kernels {
    *available()[0]
}

/// Squared L2 distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2_squared)(a, b)
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// L1 (taxicab) distance.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l1)(a, b)
}

/// pgvector's cosine distance: `1 - dot / sqrt(|a|² |b|²)`, clamped to
/// [0, 2]; NaN when either vector is zero, as pgvector returns.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let k = kernels();
    cosine_from_parts((k.dot)(a, b), (k.dot)(a, a), (k.dot)(b, b))
}

/// Cosine distance from a dot product and the two squared norms, computed
/// in f64 as pgvector does.
pub fn cosine_from_parts(dot: f32, norm_a_sq: f32, norm_b_sq: f32) -> f64 {
    let sim = dot as f64 / ((norm_a_sq as f64) * (norm_b_sq as f64)).sqrt();
    if sim.is_nan() {
        return f64::NAN;
    }
    1.0 - sim.clamp(-1.0, 1.0)
}
