//! AVX-512 kernels: 16 f32 lanes per register, masked loads for remainders.
//!
//! f32 and halfvec kernels need AVX-512 F (arithmetic, `vcvtph2ps` to widen
//! 16 halves), BW + VL (masked 16-bit loads for halfvec remainders) and F16C.
//! Bit kernels need VPOPCNTDQ (`vpopcntq` counts eight words at once); on
//! AVX-512 CPUs without it (Skylake-X, Cascade Lake) the table takes the
//! `popcnt` bit kernels instead. On Zen 4 a 512-bit operation issues as two
//! 256-bit halves, so the gain over AVX2 comes from fewer instructions and the
//! masked tails rather than from wider arithmetic.

use super::batch::batch_kernels;
use super::unrolled::{float_kernels, unrolled_kernel};
use super::{popcnt, Kernels};
use core::arch::x86_64::*;
use half::f16;

/// The table, when the CPU has AVX-512 F/BW/VL and F16C.
pub(super) fn kernels() -> Option<&'static Kernels> {
    let base = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("f16c");
    if !base {
        None
    } else if is_x86_feature_detected!("avx512vpopcntdq") {
        Some(&WITH_VPOPCNTDQ)
    } else if is_x86_feature_detected!("popcnt") {
        Some(&WITH_POPCNT)
    } else {
        None
    }
}

static WITH_VPOPCNTDQ: Kernels = Kernels {
    isa: "avx512",
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
    hamming,
    and_popcount,
    popcount,
};

static WITH_POPCNT: Kernels = Kernels {
    hamming: popcnt::hamming,
    and_popcount: popcnt::and_popcount,
    popcount: popcnt::popcount,
    ..WITH_VPOPCNTDQ
};

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_f32(p: *const f32) -> __m512 {
    _mm512_loadu_ps(p)
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_f32_tail(p: *const f32, len: usize) -> __m512 {
    _mm512_maskz_loadu_ps(((1u32 << len) - 1) as __mmask16, p)
}

#[inline]
#[target_feature(enable = "avx512f,f16c")]
unsafe fn load_f16(p: *const f16) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn load_f16_tail(p: *const f16, len: usize) -> __m512 {
    _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
        ((1u32 << len) - 1) as __mmask16,
        p.cast(),
    ))
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_bytes(p: *const u8) -> __m512i {
    _mm512_loadu_si512(p.cast())
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load_bytes_tail(p: *const u8, len: usize) -> __m512i {
    _mm512_maskz_loadu_epi8((1u64 << len) - 1, p.cast())
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_u64(v: __m512i) -> u64 {
    _mm512_reduce_add_epi64(v) as u64
}

float_kernels! {
    f32 => l2_squared, dot, l1;
    features: "avx512f,avx512bw,avx512vl,f16c", lanes: 16, zero: _mm512_setzero_ps(),
    load: load_f32, load_tail: load_f32_tail,
    add: _mm512_add_ps, sub: _mm512_sub_ps, fmadd: _mm512_fmadd_ps, abs: _mm512_abs_ps,
    reduce: _mm512_reduce_add_ps,
}

float_kernels! {
    f16 => l2_squared_f16, dot_f16, l1_f16;
    features: "avx512f,avx512bw,avx512vl,f16c", lanes: 16, zero: _mm512_setzero_ps(),
    load: load_f16, load_tail: load_f16_tail,
    add: _mm512_add_ps, sub: _mm512_sub_ps, fmadd: _mm512_fmadd_ps, abs: _mm512_abs_ps,
    reduce: _mm512_reduce_add_ps,
}

/// Defines a bit kernel: `combine` makes the words whose bits are counted.
macro_rules! bit_kernel {
    ($(#[$doc:meta])* $name:ident, |$x:ident, $y:ident| $combine:expr) => {
        unrolled_kernel! {
            $(#[$doc])*
            fn $name(&[u8]) -> u64;
            features: "avx512f,avx512bw,avx512vpopcntdq", lanes: 64,
            zero: _mm512_setzero_si512(),
            load: load_bytes, load_tail: load_bytes_tail, add: _mm512_add_epi64,
            reduce: reduce_u64,
            step: |acc, $x, $y| _mm512_add_epi64(acc, _mm512_popcnt_epi64($combine)),
        }
    };
}

bit_kernel!(
    /// Number of differing bits.
    hamming,
    |x, y| _mm512_xor_si512(x, y)
);
bit_kernel!(
    /// Number of bits set in both.
    and_popcount,
    |x, y| _mm512_and_si512(x, y)
);
bit_kernel!(
    /// Bits set in `a`, counted by the two-slice loop over (`a`, `a`); the
    /// second operand is never used, so its loads are dropped.
    popcount_pair,
    |x, _y| x
);

/// Number of bits set.
fn popcount(a: &[u8]) -> u64 {
    popcount_pair(a, a)
}

batch_kernels! {
    f32 => l2_squared_x4, dot_x4;
    single: l2_squared, dot;
    features: "avx512f,avx512bw,avx512vl,f16c", lanes: 16, vector: __m512, zero: _mm512_setzero_ps(),
    load: load_f32, load_tail: load_f32_tail,
    add: _mm512_add_ps, sub: _mm512_sub_ps, fmadd: _mm512_fmadd_ps,
    reduce: _mm512_reduce_add_ps,
}

batch_kernels! {
    f16 => l2_squared_f16_x4, dot_f16_x4;
    single: l2_squared_f16, dot_f16;
    features: "avx512f,avx512bw,avx512vl,f16c", lanes: 16, vector: __m512, zero: _mm512_setzero_ps(),
    load: load_f16, load_tail: load_f16_tail,
    add: _mm512_add_ps, sub: _mm512_sub_ps, fmadd: _mm512_fmadd_ps,
    reduce: _mm512_reduce_add_ps,
}
