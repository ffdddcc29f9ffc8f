//! Portable reference kernels. Loops are written so the compiler can
//! auto-vectorise them a little, but exactness, not speed, is their job.

use half::f16;

/// Sum of squared differences.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Sum of absolute differences.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Squared L2 from one query to four rows.
pub fn l2_squared_x4(q: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    rows.map(|r| l2_squared(q, r))
}

/// Dot products of one query with four rows.
pub fn dot_x4(q: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    rows.map(|r| dot(q, r))
}

/// Squared L2 over f16, accumulated in f32.
pub fn l2_squared_f16(a: &[f16], b: &[f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x.to_f32() - y.to_f32();
            d * d
        })
        .sum()
}

/// Dot product over f16, accumulated in f32.
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

/// L1 over f16, accumulated in f32.
pub fn l1_f16(a: &[f16], b: &[f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.to_f32() - y.to_f32()).abs())
        .sum()
}

/// Squared L2 over f16 from one query to four rows.
pub fn l2_squared_f16_x4(q: &[f16], rows: [&[f16]; 4]) -> [f32; 4] {
    rows.map(|r| l2_squared_f16(q, r))
}

/// Dot products over f16 of one query with four rows.
pub fn dot_f16_x4(q: &[f16], rows: [&[f16]; 4]) -> [f32; 4] {
    rows.map(|r| dot_f16(q, r))
}

/// Number of differing bits.
pub fn hamming(a: &[u8], b: &[u8]) -> u64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x ^ y).count_ones() as u64)
        .sum()
}

/// Number of bits set in both.
pub fn and_popcount(a: &[u8], b: &[u8]) -> u64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x & y).count_ones() as u64)
        .sum()
}

/// Number of bits set.
pub fn popcount(a: &[u8]) -> u64 {
    a.iter().map(|x| x.count_ones() as u64).sum()
}
