//! AVX2 kernels: 8 f32 lanes per register, FMA, F16C to widen halfvecs.
//!
//! Remainders shorter than a register: f32 uses `vmaskmovps` with a mask cut
//! from a sliding window of all-ones/all-zeros lanes; halfvec has no 16-bit
//! masked load before AVX-512, so its last few halves are copied into a zeroed
//! 8-lane buffer. Bit kernels come from [`super::popcnt`].

use super::batch::batch_kernels;
use super::unrolled::float_kernels;
use super::{popcnt, Kernels};
use core::arch::x86_64::*;
use half::f16;

/// The table, when the CPU has AVX2, FMA, F16C and popcnt.
pub(super) fn kernels() -> Option<&'static Kernels> {
    let supported = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
        && is_x86_feature_detected!("popcnt");
    supported.then_some(&AVX2)
}

static AVX2: Kernels = Kernels {
    isa: "avx2",
    l2_squared,
    dot,
    l1,
    l2_squared_x4,
    dot_x4,
    l2_squared_f16,
    dot_f16,
    l1_f16,
    l2_squared_f16_x4,
    dot_f16_x4,
    hamming: popcnt::hamming,
    and_popcount: popcnt::and_popcount,
    popcount: popcnt::popcount,
};

/// Eight all-ones lanes then eight zero lanes: the 8 lanes starting at
/// `8 - len` enable exactly the first `len`.
static TAIL_MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

#[inline]
#[target_feature(enable = "avx")]
unsafe fn load_f32(p: *const f32) -> __m256 {
    _mm256_loadu_ps(p)
}

#[inline]
#[target_feature(enable = "avx")]
unsafe fn load_f32_tail(p: *const f32, len: usize) -> __m256 {
    // SAFETY: len < 8, so the 8 mask lanes from 8 - len lie within the table;
    // the masked load touches only the first len elements at p.
    unsafe {
        let mask = _mm256_loadu_si256(TAIL_MASKS.as_ptr().add(8 - len).cast());
        _mm256_maskload_ps(p, mask)
    }
}

#[inline]
#[target_feature(enable = "avx,f16c")]
unsafe fn load_f16(p: *const f16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

#[inline]
#[target_feature(enable = "avx,f16c")]
unsafe fn load_f16_tail(p: *const f16, len: usize) -> __m256 {
    let mut buf = [f16::ZERO; 8];
    // SAFETY: the caller guarantees len < 8 readable elements at p.
    unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), len) };
    _mm256_cvtph_ps(_mm_loadu_si128(buf.as_ptr().cast()))
}

#[inline]
#[target_feature(enable = "avx")]
unsafe fn abs(v: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
}

#[inline]
#[target_feature(enable = "avx")]
unsafe fn reduce(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

float_kernels! {
    f32 => l2_squared, dot, l1;
    features: "avx2,fma,f16c", lanes: 8, zero: _mm256_setzero_ps(),
    load: load_f32, load_tail: load_f32_tail,
    add: _mm256_add_ps, sub: _mm256_sub_ps, fmadd: _mm256_fmadd_ps, abs: abs,
    reduce: reduce,
}

float_kernels! {
    f16 => l2_squared_f16, dot_f16, l1_f16;
    features: "avx2,fma,f16c", lanes: 8, zero: _mm256_setzero_ps(),
    load: load_f16, load_tail: load_f16_tail,
    add: _mm256_add_ps, sub: _mm256_sub_ps, fmadd: _mm256_fmadd_ps, abs: abs,
    reduce: reduce,
}

batch_kernels! {
    f32 => l2_squared_x4, dot_x4;
    single: l2_squared, dot;
    features: "avx2,fma,f16c", lanes: 8, vector: __m256, zero: _mm256_setzero_ps(),
    load: load_f32, load_tail: load_f32_tail,
    add: _mm256_add_ps, sub: _mm256_sub_ps, fmadd: _mm256_fmadd_ps,
    reduce: reduce,
}

batch_kernels! {
    f16 => l2_squared_f16_x4, dot_f16_x4;
    single: l2_squared_f16, dot_f16;
    features: "avx2,fma,f16c", lanes: 8, vector: __m256, zero: _mm256_setzero_ps(),
    load: load_f16, load_tail: load_f16_tail,
    add: _mm256_add_ps, sub: _mm256_sub_ps, fmadd: _mm256_fmadd_ps,
    reduce: reduce,
}
