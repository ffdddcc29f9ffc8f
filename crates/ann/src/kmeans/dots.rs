//! Dot products of one vector with a block of rows: the hot loop of k-means
//! and of assigning rows to lists.
//!
//! Unlike the pairwise kernels in [`crate::distance`], this works on a block:
//! four rows share every load of `x` and each row keeps several independent
//! SIMD accumulators, so the loop runs at load throughput rather than at the
//! latency of one summation chain. The body is plain Rust over fixed-width
//! lane arrays that LLVM vectorises, compiled for AVX2+FMA and for the
//! baseline; AVX-512 has a hand-written version (masked tail loads, two
//! accumulators per row). The widest one the CPU runs is picked once.

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
        if std::arch::is_x86_feature_detected!("avx512f") {
            return x86::dots_avx512;
        }
        if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
        {
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
    use std::arch::x86_64::*;

    pub(super) fn dots_avx512(x: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * x.len());
        // SAFETY: chosen by `detect` only after avx512f was detected; the
        // assert above is the bound every pointer read in `avx512` relies on.
        unsafe { avx512(x, rows, out) }
    }

    pub(super) fn dots_avx2(x: &[f32], rows: &[f32], out: &mut [f32]) {
        // SAFETY: chosen by `detect` only after avx2 and fma were detected.
        unsafe { avx2(x, rows, out) }
    }

    /// Four rows at a time, two accumulators per row (so the loop waits on
    /// loads, not on FMA latency), and a masked load for the last < 16
    /// coordinates instead of a scalar tail.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(x: &[f32], rows: &[f32], out: &mut [f32]) {
        let dim = x.len();
        let xp = x.as_ptr();
        let tail = dim % 16;
        let mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
        let body = dim - tail;
        let mut blocks = out.chunks_exact_mut(4);
        let mut r = 0;
        for o in &mut blocks {
            let p = rows.as_ptr().add(r * dim);
            let p = [p, p.add(dim), p.add(2 * dim), p.add(3 * dim)];
            let mut even = [_mm512_setzero_ps(); 4];
            let mut odd = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= body {
                let x0 = _mm512_loadu_ps(xp.add(i));
                let x1 = _mm512_loadu_ps(xp.add(i + 16));
                for j in 0..4 {
                    even[j] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(p[j].add(i)), even[j]);
                    odd[j] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(p[j].add(i + 16)), odd[j]);
                }
                i += 32;
            }
            if i < body {
                let x0 = _mm512_loadu_ps(xp.add(i));
                for j in 0..4 {
                    even[j] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(p[j].add(i)), even[j]);
                }
            }
            if tail != 0 {
                let x0 = _mm512_maskz_loadu_ps(mask, xp.add(body));
                for j in 0..4 {
                    let v = _mm512_maskz_loadu_ps(mask, p[j].add(body));
                    odd[j] = _mm512_fmadd_ps(x0, v, odd[j]);
                }
            }
            for j in 0..4 {
                o[j] = _mm512_reduce_add_ps(_mm512_add_ps(even[j], odd[j]));
            }
            r += 4;
        }
        for o in blocks.into_remainder() {
            let p = rows.as_ptr().add(r * dim);
            let mut even = _mm512_setzero_ps();
            let mut odd = _mm512_setzero_ps();
            let mut i = 0;
            while i + 32 <= body {
                even = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(i)), _mm512_loadu_ps(p.add(i)), even);
                odd = _mm512_fmadd_ps(
                    _mm512_loadu_ps(xp.add(i + 16)),
                    _mm512_loadu_ps(p.add(i + 16)),
                    odd,
                );
                i += 32;
            }
            if i < body {
                even = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(i)), _mm512_loadu_ps(p.add(i)), even);
            }
            if tail != 0 {
                let x0 = _mm512_maskz_loadu_ps(mask, xp.add(body));
                odd = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mask, p.add(body)), odd);
            }
            *o = _mm512_reduce_add_ps(_mm512_add_ps(even, odd));
            r += 1;
        }
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
    let mut i = 0;
    while i < body {
        let xs = &x[i..i + LANES];
        let rs = &row[i..i + LANES];
        for l in 0..LANES {
            acc[l] = madd::<FMA>(xs[l], rs[l], acc[l]);
        }
        i += LANES;
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
        let mut variants: Vec<DotsFn> =
            vec![dots_baseline, |x, r, o| dots_body::<16, false>(x, r, o)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                variants.push(x86::dots_avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                variants.push(x86::dots_avx2);
            }
        }
        for dim in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 48, 100, 784] {
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
