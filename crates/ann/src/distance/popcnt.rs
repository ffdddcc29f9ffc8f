//! Bit kernels with the `popcnt` instruction over 64-bit words.
//!
//! The baseline x86-64 target has no `popcnt`, so `count_ones` compiles to a
//! bit-twiddling sequence; inside a `#[target_feature(enable = "popcnt")]`
//! function it is one instruction per word. Four independent sums let the CPU
//! overlap the counts. Used by the AVX2 table, and by the AVX-512 table on
//! CPUs without VPOPCNTDQ.
//!
//! These functions are safe to call but run `popcnt`: they must only be put
//! in a table that is handed out after detecting the feature.

/// Number of differing bits.
pub(super) fn hamming(a: &[u8], b: &[u8]) -> u64 {
    // SAFETY: only installed in tables returned after detecting popcnt.
    unsafe { count_words(a, b, |x, y| x ^ y) }
}

/// Number of bits set in both.
pub(super) fn and_popcount(a: &[u8], b: &[u8]) -> u64 {
    // SAFETY: only installed in tables returned after detecting popcnt.
    unsafe { count_words(a, b, |x, y| x & y) }
}

/// Number of bits set.
pub(super) fn popcount(a: &[u8]) -> u64 {
    // SAFETY: only installed in tables returned after detecting popcnt.
    unsafe { count_words(a, a, |x, _| x) }
}

/// Sums the bits of `combine` over the words of the common prefix of `a`
/// and `b`; the last `len % 8` bytes are counted one by one.
#[inline]
#[target_feature(enable = "popcnt")]
unsafe fn count_words(a: &[u8], b: &[u8], combine: impl Fn(u64, u64) -> u64) -> u64 {
    let n = a.len().min(b.len());
    let (words_a, bytes_a) = a[..n].as_chunks::<8>();
    let (words_b, bytes_b) = b[..n].as_chunks::<8>();
    let (quads_a, rest_a) = words_a.as_chunks::<4>();
    let (quads_b, rest_b) = words_b.as_chunks::<4>();
    let count = |x: &[u8; 8], y: &[u8; 8]| {
        u64::from(combine(u64::from_ne_bytes(*x), u64::from_ne_bytes(*y)).count_ones())
    };
    let mut acc = [0u64; 4];
    for (x, y) in quads_a.iter().zip(quads_b) {
        for (k, slot) in acc.iter_mut().enumerate() {
            *slot += count(&x[k], &y[k]);
        }
    }
    for (x, y) in rest_a.iter().zip(rest_b) {
        acc[0] += count(x, y);
    }
    for (&x, &y) in bytes_a.iter().zip(bytes_b) {
        acc[1] += u64::from(combine(u64::from(x), u64::from(y)).count_ones());
    }
    acc.iter().sum()
}
