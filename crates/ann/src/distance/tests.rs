//! Every kernel table available on this CPU against the scalar reference, at
//! lengths that hit each path of the unrolled loop (empty, shorter than a
//! register, one over a multiple of the unroll, the datasets' 384 and 784).
//!
//! Small integers make every f32 sum exact whatever the summation order, so
//! those tests demand equality and catch any lost or doubled lane; real-valued
//! data then checks rounding stays within a relative tolerance.

use super::{available, kernels, scalar_kernels, Kernels};
use crate::rng::Rng;
use half::f16;

const LENGTHS: [usize; 22] = [
    0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 384, 784, 1000, 1539, 16000,
];

fn simd_tables() -> Vec<&'static Kernels> {
    available()
        .into_iter()
        .filter(|k| k.isa != "scalar")
        .collect()
}

/// Two vectors of `len` drawn around shared cluster centres: `b` is a
/// neighbour of `a`, as in a real search, with `scale` setting magnitudes.
fn clustered_pair(rng: &mut Rng, len: usize, scale: f64) -> (Vec<f32>, Vec<f32>) {
    let centre: Vec<f64> = (0..len).map(|_| rng.normal() * scale).collect();
    let mut near = |spread: f64| -> Vec<f32> {
        centre
            .iter()
            .map(|c| (c + rng.normal() * scale * spread) as f32)
            .collect()
    };
    let a = near(0.1);
    let b = near(0.3);
    (a, b)
}

/// Integers in [-16, 16]: exact in f16 and f32, and so are all their sums
/// for these lengths (below 2^24).
fn small_integers(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.below(33) as f32 - 16.0).collect()
}

fn to_f16(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

/// Random finite halves over the whole range, subnormals included.
fn random_f16(rng: &mut Rng, len: usize) -> Vec<f16> {
    (0..len)
        .map(|_| loop {
            let h = f16::from_bits(rng.next_u64() as u16);
            if h.is_finite() {
                break h;
            }
        })
        .collect()
}

/// Asserts `got` is within rounding of `want` for a sum of `len` terms:
/// `magnitude` is the sum of the terms' absolute values. The scalar loop
/// adds sequentially, so its error grows with the length (about
/// `sqrt(len)` epsilons of the magnitude for random rounding).
fn assert_close(got: f32, want: f32, len: usize, magnitude: f64, what: &str) {
    let relative = 4.0 * f32::EPSILON as f64 * (len as f64 + 1.0).sqrt();
    let tolerance = relative * magnitude + 1e-30;
    assert!(
        (got as f64 - want as f64).abs() <= tolerance,
        "{what}: {got} vs scalar {want} (tolerance {tolerance})"
    );
}

#[test]
fn float_kernels_are_exact_on_small_integers() {
    let s = scalar_kernels();
    let tables = simd_tables();
    let mut rng = Rng::new(11);
    for len in LENGTHS {
        let (a, b) = (small_integers(&mut rng, len), small_integers(&mut rng, len));
        let (ha, hb) = (to_f16(&a), to_f16(&b));
        for k in &tables {
            let what = format!("{} len {len}", k.isa);
            assert_eq!((k.l2_squared)(&a, &b), (s.l2_squared)(&a, &b), "l2 {what}");
            assert_eq!((k.dot)(&a, &b), (s.dot)(&a, &b), "dot {what}");
            assert_eq!((k.l1)(&a, &b), (s.l1)(&a, &b), "l1 {what}");
            assert_eq!(
                (k.l2_squared_f16)(&ha, &hb),
                (s.l2_squared)(&a, &b),
                "l2_f16 {what}"
            );
            assert_eq!((k.dot_f16)(&ha, &hb), (s.dot)(&a, &b), "dot_f16 {what}");
            assert_eq!((k.l1_f16)(&ha, &hb), (s.l1)(&a, &b), "l1_f16 {what}");
        }
    }
}

#[test]
fn f32_kernels_match_scalar_within_rounding() {
    let s = scalar_kernels();
    let tables = simd_tables();
    let mut rng = Rng::new(12);
    for scale in [1e-3, 1.0, 1e5] {
        for len in LENGTHS {
            // Start one element in, so loads are not 64-byte aligned.
            let (a, b) = clustered_pair(&mut rng, len + 1, scale);
            let (a, b) = (&a[1..], &b[1..]);
            let l2_mag: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y) as f64)
                .map(|d| d * d)
                .sum();
            let dot_mag: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs() as f64).sum();
            let l1_mag: f64 = a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).sum();
            for k in &tables {
                let what = format!("{} len {len} scale {scale}", k.isa);
                let l2 = (k.l2_squared)(a, b);
                assert_close(l2, (s.l2_squared)(a, b), len, l2_mag, &format!("l2 {what}"));
                let dot = (k.dot)(a, b);
                assert_close(dot, (s.dot)(a, b), len, dot_mag, &format!("dot {what}"));
                let l1 = (k.l1)(a, b);
                assert_close(l1, (s.l1)(a, b), len, l1_mag, &format!("l1 {what}"));
            }
        }
    }
}

#[test]
fn batch_kernels_equal_four_single_calls() {
    let s = scalar_kernels();
    let tables = simd_tables();
    let mut rng = Rng::new(16);
    for len in LENGTHS {
        let q = small_integers(&mut rng, len);
        let rows: Vec<Vec<f32>> = (0..4).map(|_| small_integers(&mut rng, len)).collect();
        let rows = [&rows[0][..], &rows[1], &rows[2], &rows[3]];
        let (q16, rows16) = (to_f16(&q), rows.map(to_f16));
        let rows16 = [&rows16[0][..], &rows16[1], &rows16[2], &rows16[3]];
        let l2 = rows.map(|r| (s.l2_squared)(&q, r));
        let dot = rows.map(|r| (s.dot)(&q, r));
        assert_eq!((s.l2_squared_x4)(&q, rows), l2, "scalar len {len}");
        assert_eq!((s.dot_f16_x4)(&q16, rows16), dot, "scalar len {len}");
        for k in &tables {
            let what = format!("{} len {len}", k.isa);
            assert_eq!((k.l2_squared_x4)(&q, rows), l2, "l2 {what}");
            assert_eq!((k.dot_x4)(&q, rows), dot, "dot {what}");
            assert_eq!((k.l2_squared_f16_x4)(&q16, rows16), l2, "l2_f16 {what}");
            assert_eq!((k.dot_f16_x4)(&q16, rows16), dot, "dot_f16 {what}");
        }

        let (q, a) = clustered_pair(&mut rng, len, 10.0);
        let (b, c) = clustered_pair(&mut rng, len, 10.0);
        let rows = [&a[..], &b, &c, &q];
        let (q16, rows16) = (to_f16(&q), rows.map(to_f16));
        for k in &tables {
            let l2 = (k.l2_squared_x4)(&q, rows);
            let dot = (k.dot_x4)(&q, rows);
            let l2_16 = (k.l2_squared_f16_x4)(&q16, [0, 1, 2, 3].map(|i| &rows16[i][..]));
            let dot_16 = (k.dot_f16_x4)(&q16, [0, 1, 2, 3].map(|i| &rows16[i][..]));
            for (i, r) in rows.iter().enumerate() {
                let l2_mag: f64 = q
                    .iter()
                    .zip(*r)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum();
                let dot_mag: f64 = q.iter().zip(*r).map(|(x, y)| (x * y).abs() as f64).sum();
                let what = format!("{} len {len} row {i}", k.isa);
                assert_close(
                    l2[i],
                    (s.l2_squared)(&q, r),
                    len,
                    l2_mag,
                    &format!("l2 {what}"),
                );
                assert_close(dot[i], (s.dot)(&q, r), len, dot_mag, &format!("dot {what}"));
                let (want_l2, want_dot) = (
                    (s.l2_squared_f16)(&q16, &rows16[i]),
                    (s.dot_f16)(&q16, &rows16[i]),
                );
                // Rounding to f16 moves the magnitudes by at most 0.1%.
                assert_close(
                    l2_16[i],
                    want_l2,
                    len,
                    1.01 * l2_mag,
                    &format!("l2_f16 {what}"),
                );
                assert_close(
                    dot_16[i],
                    want_dot,
                    len,
                    1.01 * dot_mag,
                    &format!("dot_f16 {what}"),
                );
            }
        }
    }
}

#[test]
fn batch_kernels_fall_back_when_a_row_length_differs() {
    let mut rng = Rng::new(17);
    let q = small_integers(&mut rng, 40);
    let long = small_integers(&mut rng, 50);
    let short = small_integers(&mut rng, 21);
    let rows = [&q[..], &long, &short, &q];
    let (q16, rows16) = (to_f16(&q), rows.map(to_f16));
    let rows16 = [&rows16[0][..], &rows16[1], &rows16[2], &rows16[3]];
    for k in simd_tables() {
        let want = rows.map(|r| (k.l2_squared)(&q, r));
        assert_eq!(want[0], 0.0);
        assert_eq!((k.l2_squared_x4)(&q, rows), want, "{}", k.isa);
        assert_eq!((k.l2_squared_f16_x4)(&q16, rows16), want, "{}", k.isa);
        let want = rows.map(|r| (k.dot)(&q, r));
        assert_eq!((k.dot_x4)(&q, rows), want, "{}", k.isa);
        assert_eq!((k.dot_f16_x4)(&q16, rows16), want, "{}", k.isa);
    }
}

#[test]
fn f16_kernels_match_scalar_within_rounding() {
    let s = scalar_kernels();
    let tables = simd_tables();
    let mut rng = Rng::new(13);
    for len in LENGTHS {
        let (a, b) = (random_f16(&mut rng, len + 1), random_f16(&mut rng, len + 1));
        let (a, b) = (&a[1..], &b[1..]);
        let pairs = || a.iter().zip(b).map(|(x, y)| (x.to_f64(), y.to_f64()));
        let l2_mag: f64 = pairs().map(|(x, y)| (x - y) * (x - y)).sum();
        let dot_mag: f64 = pairs().map(|(x, y)| (x * y).abs()).sum();
        let l1_mag: f64 = pairs().map(|(x, y)| (x - y).abs()).sum();
        for k in &tables {
            let what = format!("{} len {len}", k.isa);
            let l2 = (k.l2_squared_f16)(a, b);
            assert_close(
                l2,
                (s.l2_squared_f16)(a, b),
                len,
                l2_mag,
                &format!("l2 {what}"),
            );
            let dot = (k.dot_f16)(a, b);
            assert_close(dot, (s.dot_f16)(a, b), len, dot_mag, &format!("dot {what}"));
            let l1 = (k.l1_f16)(a, b);
            assert_close(l1, (s.l1_f16)(a, b), len, l1_mag, &format!("l1 {what}"));
        }
    }
}

#[test]
fn bit_kernels_count_exactly() {
    let s = scalar_kernels();
    let tables = simd_tables();
    let mut rng = Rng::new(14);
    for len in LENGTHS.iter().chain(&[255, 256, 257, 2000]) {
        let bytes =
            |rng: &mut Rng| -> Vec<u8> { (0..len + 3).map(|_| rng.next_u64() as u8).collect() };
        let (a, b) = (bytes(&mut rng), bytes(&mut rng));
        let (a, b) = (&a[3..], &b[3..]);
        for k in &tables {
            let what = format!("{} len {len}", k.isa);
            assert_eq!((k.hamming)(a, b), (s.hamming)(a, b), "hamming {what}");
            assert_eq!((k.and_popcount)(a, b), (s.and_popcount)(a, b), "and {what}");
            assert_eq!((k.popcount)(a), (s.popcount)(a), "popcount {what}");
        }
    }
    for k in &tables {
        let ones = [0xFFu8; 1000];
        assert_eq!((k.popcount)(&ones), 8000, "{}", k.isa);
        assert_eq!((k.hamming)(&ones, &[0; 1000]), 8000, "{}", k.isa);
    }
}

#[test]
fn unequal_lengths_use_the_common_prefix_like_scalar() {
    let s = scalar_kernels();
    let mut rng = Rng::new(15);
    let (a, b) = (small_integers(&mut rng, 100), small_integers(&mut rng, 37));
    let (ha, hb) = (to_f16(&a), to_f16(&b));
    let bits: Vec<u8> = (0..100).map(|_| rng.next_u64() as u8).collect();
    let prefix = &a[..37];
    for k in simd_tables() {
        assert_eq!(
            (k.l2_squared)(&a, &b),
            (s.l2_squared)(prefix, &b),
            "{}",
            k.isa
        );
        assert_eq!((k.dot)(&b, &a), (s.dot)(&b, prefix), "{}", k.isa);
        assert_eq!((k.l1_f16)(&ha, &hb), (s.l1)(prefix, &b), "{}", k.isa);
        assert_eq!(
            (k.hamming)(&bits, &bits[1..38]),
            (s.hamming)(&bits[..37], &bits[1..38]),
            "{}",
            k.isa
        );
    }
}

#[test]
fn dispatch_picks_the_best_table_this_cpu_supports() {
    let all = available();
    assert_eq!(all.last().map(|k| k.isa), Some("scalar"));
    assert_eq!(kernels().isa, all[0].isa);
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &[bool]| f.iter().all(|&x| x);
        let avx2 = has(&[
            is_x86_feature_detected!("avx2"),
            is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("f16c"),
            is_x86_feature_detected!("popcnt"),
        ]);
        let avx512 = has(&[
            is_x86_feature_detected!("avx512f"),
            is_x86_feature_detected!("avx512bw"),
            is_x86_feature_detected!("avx512vl"),
            is_x86_feature_detected!("f16c"),
            is_x86_feature_detected!("popcnt"),
        ]);
        if avx2 {
            assert_ne!(kernels().isa, "scalar");
            assert!(all.iter().any(|k| k.isa == "avx2"));
        }
        if avx512 {
            assert_eq!(kernels().isa, "avx512");
        }
    }
}
