//! Kernels over 8-bit codes: the dot product of unsigned byte codes with
//! signed byte weights of at most [`WEIGHT_LIMIT`] in magnitude, summed
//! exactly in i32. Quantized graph walks ([`crate::quant`]) spend their time
//! here.
//!
//! The AVX-512 VNNI kernel multiplies 64 byte pairs and adds them into 16
//! i32 lanes per `vpdpbusd`; without VNNI, the AVX2 kernel multiplies 32 byte
//! pairs and adds neighbours into 16 i16 lanes per `vpmaddubsw` — exact
//! because two products of a code (≤ 255) and a weight (≤ 64 in magnitude)
//! sum to at most 32,640 < 2^15 — then widens the pairs into 8 i32 lanes
//! (`vpmaddwd` by ones); without AVX2 the portable loop is used. Sums cannot
//! overflow below 130,000 coordinates (255 · 64 · 130,000 < 2^31).

/// Largest weight magnitude the kernels take (the AVX2 kernel's bound).
pub const WEIGHT_LIMIT: i8 = 64;

/// Dot product of codes with weights (equal lengths).
pub type CodeKernel = fn(&[u8], &[i8]) -> i32;
/// [`CodeKernel`] of one weight vector with four code rows in one pass.
pub type CodeBatchKernel = fn(&[i8], [&[u8]; 4]) -> [i32; 4];

/// The code kernels of one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct CodeKernels {
    /// Name of the instruction set ("scalar", "avx2", "avx512vnni").
    pub isa: &'static str,
    /// Codes · weights.
    pub dot: CodeKernel,
    /// Weights · four code rows.
    pub dot_x4: CodeBatchKernel,
}

const SCALAR: CodeKernels = CodeKernels {
    isa: "scalar",
    dot: scalar_dot,
    dot_x4: scalar_dot_x4,
};

/// The fastest code kernels this CPU supports, detected once.
pub fn code_kernels() -> &'static CodeKernels {
    static CHOSEN: std::sync::OnceLock<&'static CodeKernels> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(|| available_code_kernels()[0])
}

/// Every code kernel table this CPU can run, fastest first, the scalar
/// reference last.
pub fn available_code_kernels() -> Vec<&'static CodeKernels> {
    let mut tables = Vec::new();
    #[cfg(target_arch = "x86_64")]
    tables.extend(vnni::kernels().into_iter().chain(avx2::kernels()));
    tables.push(&SCALAR);
    tables
}

/// Portable codes · weights (over the common prefix, as every kernel).
pub fn scalar_dot(codes: &[u8], weights: &[i8]) -> i32 {
    codes
        .iter()
        .zip(weights)
        .map(|(&c, &w)| c as i32 * w as i32)
        .sum()
}

fn scalar_dot_x4(weights: &[i8], rows: [&[u8]; 4]) -> [i32; 4] {
    rows.map(|r| scalar_dot(r, weights))
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::CodeKernels;
    use core::arch::x86_64::*;

    static VNNI: CodeKernels = CodeKernels {
        isa: "avx512vnni",
        dot,
        dot_x4,
    };

    pub(super) fn kernels() -> Option<&'static CodeKernels> {
        let ok = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(&VNNI)
    }

    /// Bytes `i..len` of `p` (at most 64) as one register, zeros past the end.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn load(p: *const u8, i: usize, len: usize) -> __m512i {
        let left = len - i;
        if left >= 64 {
            _mm512_loadu_si512(p.add(i).cast())
        } else {
            _mm512_maskz_loadu_epi8((1u64 << left) - 1, p.add(i).cast())
        }
    }

    fn dot(codes: &[u8], weights: &[i8]) -> i32 {
        let len = codes.len().min(weights.len());
        // SAFETY: the CPU features were checked when this table was chosen;
        // every load stays within `len` bytes of both slices.
        unsafe { dot_impl(codes.as_ptr(), weights.as_ptr().cast(), len) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_impl(c: *const u8, w: *const u8, len: usize) -> i32 {
        let mut acc = [_mm512_setzero_si512(); 2];
        let mut i = 0;
        while i < len {
            let lane = (i / 64) & 1;
            acc[lane] = _mm512_dpbusd_epi32(acc[lane], load(c, i, len), load(w, i, len));
            i += 64;
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]))
    }

    fn dot_x4(weights: &[i8], rows: [&[u8]; 4]) -> [i32; 4] {
        if rows.iter().any(|r| r.len() != weights.len()) {
            return rows.map(|r| dot(r, weights));
        }
        // SAFETY: as in `dot`; all five slices have `weights.len()` bytes.
        unsafe {
            dot_x4_impl(
                weights.as_ptr().cast(),
                rows.map(<[u8]>::as_ptr),
                weights.len(),
            )
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_x4_impl(w: *const u8, rows: [*const u8; 4], len: usize) -> [i32; 4] {
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut i = 0;
        while i < len {
            let wv = load(w, i, len);
            for (a, &r) in acc.iter_mut().zip(&rows) {
                *a = _mm512_dpbusd_epi32(*a, load(r, i, len), wv);
            }
            i += 64;
        }
        acc.map(|a| _mm512_reduce_add_epi32(a))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::CodeKernels;
    use core::arch::x86_64::*;

    static AVX2: CodeKernels = CodeKernels {
        isa: "avx2",
        dot,
        dot_x4,
    };

    pub(super) fn kernels() -> Option<&'static CodeKernels> {
        is_x86_feature_detected!("avx2").then_some(&AVX2)
    }

    /// 32 bytes at `p + i`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(p: *const u8, i: usize) -> __m256i {
        _mm256_loadu_si256(p.add(i).cast())
    }

    /// Codes · weights of 32 bytes into 8 i32 lanes: pairs summed in i16
    /// (exact within the weight limit), pairs of pairs widened by `ones`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn products(codes: __m256i, weights: __m256i, ones: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(codes, weights), ones)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum(v: __m256i) -> i32 {
        let half = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let pair = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0b01_00_11_10));
        _mm_cvtsi128_si32(_mm_add_epi32(pair, _mm_shuffle_epi32(pair, 0b10_11_00_01)))
    }

    fn dot(codes: &[u8], weights: &[i8]) -> i32 {
        let len = codes.len().min(weights.len());
        let whole = len - len % 32;
        // SAFETY: the CPU has AVX2 (checked when this table was chosen);
        // the loads cover bytes below `whole` <= the length of both slices.
        let head = unsafe { dot_impl(codes.as_ptr(), weights.as_ptr().cast(), whole) };
        head + super::scalar_dot(&codes[whole..len], &weights[whole..len])
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_impl(c: *const u8, w: *const u8, whole: usize) -> i32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < whole {
            acc = _mm256_add_epi32(acc, products(load(c, i), load(w, i), ones));
            i += 32;
        }
        sum(acc)
    }

    fn dot_x4(weights: &[i8], rows: [&[u8]; 4]) -> [i32; 4] {
        let len = weights.len();
        let [a, b, c, d] = rows;
        if [a.len(), b.len(), c.len(), d.len()] != [len; 4] {
            return rows.map(|r| dot(r, weights));
        }
        let whole = len - len % 32;
        let starts = [a.as_ptr(), b.as_ptr(), c.as_ptr(), d.as_ptr()];
        // SAFETY: as in `dot`; all five slices have `len` bytes.
        let mut out = unsafe { dot_x4_impl(weights.as_ptr().cast(), starts, whole) };
        // Quantized rows are whole 64-byte lines: usually no tail.
        if whole < len {
            for (o, r) in out.iter_mut().zip(rows) {
                *o += super::scalar_dot(&r[whole..], &weights[whole..]);
            }
        }
        out
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_x4_impl(w: *const u8, rows: [*const u8; 4], whole: usize) -> [i32; 4] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < whole {
            let wv = load(w, i);
            for (a, &r) in acc.iter_mut().zip(&rows) {
                *a = _mm256_add_epi32(*a, products(load(r, i), wv, ones));
            }
            i += 32;
        }
        sum4(acc)
    }

    /// The lane sums of four vectors at once: three horizontal adds and
    /// one add of the halves instead of four separate reductions.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum4([a, b, c, d]: [__m256i; 4]) -> [i32; 4] {
        // Per 128-bit half: [a01+a23, b.., c.., d..] pairs, then quads.
        let quads = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
        let both = _mm_add_epi32(
            _mm256_castsi256_si128(quads),
            _mm256_extracti128_si256(quads, 1),
        );
        let mut out = [0i32; 4];
        // SAFETY: `out` is 16 writable bytes; the store is unaligned.
        _mm_storeu_si128(out.as_mut_ptr().cast(), both);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const LENGTHS: [usize; 14] = [0, 1, 15, 17, 63, 64, 65, 127, 128, 129, 384, 784, 832, 1539];

    #[test]
    fn every_table_equals_the_scalar_kernel_including_extremes() {
        let mut rng = Rng::new(7);
        for table in available_code_kernels() {
            for len in LENGTHS {
                let codes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let span = 2 * WEIGHT_LIMIT as u64 + 1;
                let weights: Vec<i8> = (0..len)
                    .map(|_| ((rng.next_u64() % span) as i64 - WEIGHT_LIMIT as i64) as i8)
                    .collect();
                let want = scalar_dot(&codes, &weights);
                assert_eq!(
                    (table.dot)(&codes, &weights),
                    want,
                    "{} len {len}",
                    table.isa
                );
                let max = vec![255u8; len];
                for w in [-WEIGHT_LIMIT, WEIGHT_LIMIT] {
                    let ws = vec![w; len];
                    assert_eq!((table.dot)(&max, &ws), 255 * w as i32 * len as i32);
                }
                let rows: Vec<Vec<u8>> = (0..4)
                    .map(|_| (0..len).map(|_| rng.next_u64() as u8).collect())
                    .collect();
                let four = [&rows[0][..], &rows[1], &rows[2], &rows[3]];
                let got = (table.dot_x4)(&weights, four);
                assert_eq!(
                    got,
                    four.map(|r| scalar_dot(r, &weights)),
                    "{} x4 len {len}",
                    table.isa
                );
            }
            let short = [1u8, 2, 3];
            let got = (table.dot_x4)(&[1, 1, 1, 1], [&short, &[1; 4], &[2; 4], &[3; 4]]);
            assert_eq!(
                got,
                [6, 4, 8, 12],
                "{}: a shorter row falls back",
                table.isa
            );
        }
    }

    #[test]
    fn dispatch_takes_the_widest_kernel_the_cpu_has() {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw") {
            assert_eq!(code_kernels().isa, "avx512vnni");
            return;
        } else if is_x86_feature_detected!("avx2") {
            assert_eq!(code_kernels().isa, "avx2");
            return;
        }
        assert_eq!(code_kernels().isa, "scalar");
    }
}
