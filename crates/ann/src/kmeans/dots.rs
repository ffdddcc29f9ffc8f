//! Dot products of one vector with a block of rows: the hot loop of k-means
//! and of assigning rows to lists.
//!
//! Unlike the pairwise kernels in [`crate::distance`], this works on a block:
//! four rows share every load of `x` and each row keeps several independent
//! SIMD accumulators, so the loop runs at load throughput rather than at the
//! latency of one summation chain. The body is plain Rust over fixed-width
//! lane arrays that LLVM vectorises; it is compiled three times (AVX-512,
//! AVX2+FMA, baseline) and the widest one the CPU runs is picked once.

use std::sync::OnceLock;

/// `out[r] = x · rows[r*dim..(r+1)*dim]` with `dim = x.len()`.
type DotsFn = fn(&[f32], &[f32], &mut [f32]);

/// Writes `x · row` for each `x.len()`-long row of `rows` into `out`
/// (`rows.len()` must be `out.len() * x.len()`).
pub(crate) fn dots(x: &[f32], rows: &[f32], out: &mut [f32]) {
    assert_eq!(rows.len(), out.len() * x.len(), "rows do not match out");
    static CHOSEN: OnceLock<DotsFn> = OnceLock::new();
    (CHOSEN.get_or_init(detect))(x, rows, out)
}

/// The dot product of two equal-length vectors.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut out = [0.0];
    dots(a, b, &mut out);
    out[0]
}

fn detect() -> DotsFn {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            return x86::dots_avx512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return x86::dots_avx2;
        }
    }
    dots_baseline
}

fn dots_baseline(x: &[f32], rows: &[f32], out: &mut [f32]) {
    dots_body::<8, false>(x, rows, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::dots_body;

    pub(super) fn dots_avx512(x: &[f32], rows: &[f32], out: &mut [f32]) {
        // SAFETY: chosen by `detect` only after avx512f and fma were detected.
        unsafe { avx512(x, rows, out) }
    }

    pub(super) fn dots_avx2(x: &[f32], rows: &[f32], out: &mut [f32]) {
        // SAFETY: chosen by `detect` only after avx2 and fma were detected.
        unsafe { avx2(x, rows, out) }
    }

    #[target_feature(enable = "avx512f,fma")]
    unsafe fn avx512(x: &[f32], rows: &[f32], out: &mut [f32]) {
        dots_body::<32, true>(x, rows, out)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(x: &[f32], rows: &[f32], out: &mut [f32]) {
        dots_body::<16, true>(x, rows, out)
    }
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FMA {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}

#[inline(always)]
fn dots_body<const LANES: usize, const FMA: bool>(x: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = x.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let mut blocks = rows.chunks_exact(4 * dim);
    let mut outs = out.chunks_exact_mut(4);
    for (block, o) in (&mut blocks).zip(&mut outs) {
        let (r0, rest) = block.split_at(dim);
        let (r1, rest) = rest.split_at(dim);
        let (r2, r3) = rest.split_at(dim);
        o.copy_from_slice(&dot4::<LANES, FMA>(x, [r0, r1, r2, r3]));
    }
    for (row, o) in blocks
        .remainder()
        .chunks_exact(dim)
        .zip(outs.into_remainder())
    {
        *o = dot1::<LANES, FMA>(x, row);
    }
}

#[inline(always)]
fn dot4<const LANES: usize, const FMA: bool>(x: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let dim = x.len();
    let [r0, r1, r2, r3] = r;
    let (r0, r1, r2, r3) = (&r0[..dim], &r1[..dim], &r2[..dim], &r3[..dim]);
    let body = dim - dim % LANES;
    let mut acc = [[0.0f32; LANES]; 4];
    let mut i = 0;
    while i < body {
        let xs = &x[i..i + LANES];
        let rs = [
            &r0[i..i + LANES],
            &r1[i..i + LANES],
            &r2[i..i + LANES],
            &r3[i..i + LANES],
        ];
        for (a, row) in acc.iter_mut().zip(rs) {
            for l in 0..LANES {
                a[l] = madd::<FMA>(xs[l], row[l], a[l]);
            }
        }
        i += LANES;
    }
    let mut sums = acc.map(|a| a.iter().sum::<f32>());
    for j in body..dim {
        sums[0] = madd::<FMA>(x[j], r0[j], sums[0]);
        sums[1] = madd::<FMA>(x[j], r1[j], sums[1]);
        sums[2] = madd::<FMA>(x[j], r2[j], sums[2]);
        sums[3] = madd::<FMA>(x[j], r3[j], sums[3]);
    }
    sums
}

#[inline(always)]
fn dot1<const LANES: usize, const FMA: bool>(x: &[f32], row: &[f32]) -> f32 {
    let dim = x.len();
    let row = &row[..dim];
    let body = dim - dim % LANES;
    let mut acc = [0.0f32; LANES];
    for (xs, rs) in x[..body]
        .chunks_exact(LANES)
        .zip(row[..body].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] = madd::<FMA>(xs[l], rs[l], acc[l]);
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for j in body..dim {
        sum = madd::<FMA>(x[j], row[j], sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn every_variant_matches_a_plain_sum_at_awkward_lengths() {
        let mut rng = Rng::new(3);
        let variants: Vec<DotsFn> = vec![dots_baseline, detect(), |x, r, o| {
            dots_body::<16, false>(x, r, o)
        }];
        for dim in [0usize, 1, 7, 15, 16, 17, 33, 100, 784] {
            for nrows in [0usize, 1, 3, 4, 5, 9] {
                let x: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
                let rows: Vec<f32> = (0..dim * nrows).map(|_| rng.normal() as f32).collect();
                let expect: Vec<f64> = (0..nrows)
                    .map(|r| {
                        (0..dim)
                            .map(|j| x[j] as f64 * rows[r * dim + j] as f64)
                            .sum()
                    })
                    .collect();
                for f in &variants {
                    let mut out = vec![f32::NAN; nrows];
                    f(&x, &rows, &mut out);
                    for (got, want) in out.iter().zip(&expect) {
                        assert!(
                            (*got as f64 - want).abs() < 1e-4 * (1.0 + dim as f64),
                            "dim {dim} rows {nrows}: {got} vs {want}"
                        );
                    }
                }
            }
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }
}
