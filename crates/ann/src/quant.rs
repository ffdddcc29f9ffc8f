//! 8-bit scalar quantization: walk the graph on byte codes, answer with
//! exact distances.
//!
//! [`Sq8Codes`] keeps every vector a second time as one byte per coordinate
//! (`x_i ≈ lower_i + step_i · c_i`, with `lower`/`step` the per-coordinate
//! range of the rows it was trained on). A query becomes signed byte weights
//! once (at most [`WEIGHT_LIMIT`] in magnitude: AVX2 then multiplies 32 byte
//! pairs per instruction, and recall@10 on the fashion and pypi sets is the
//! same as with ±127), so each comparison during a search is one integer dot product over
//! a quarter of the f32 bytes (AVX-512 VNNI where the CPU has it, see
//! [`crate::distance::codes`]), plus a per-row term:
//!
//! ```text
//! L2:      |q - x|²  ≈ Σ(q_i - lower_i)² - 2·s·(w · c) + Σ(step_i·c_i)²   w_i ≈ (q_i - lower_i)·step_i / s
//! dot:      q · x    ≈ Σ q_i·lower_i + s·(w · c)                          w_i ≈ q_i·step_i / s
//! cosine:  1 - q·x / (|q|·|x|), |x| exact
//! ```
//!
//! [`QuantizedSpace`] wraps the exact space: its [`Space::distance`] is the
//! approximation above and [`Space::exact_distance`] the wrapped space's, so
//! an index search walks on codes and re-ranks its `ef_search` candidates
//! exactly before answering. Rows are padded to whole 64-byte lines and
//! aligned to them, so a row is read in `ceil(dim / 64)` cache lines.
//!
//! Memory: `ceil(dim / 64) · 64 + 4` bytes per id slot, counted by
//! [`Sq8Codes::memory_bytes`].

use crate::distance::codes::{code_kernels, CodeKernels, WEIGHT_LIMIT};
use crate::space::{DenseVectors, Metric, Space};
use rayon::prelude::*;

/// Lanes of [`Sq8Codes::weigh`]'s sums.
const LANES: usize = 8;
/// One value per lane.
type Run = [f32; LANES];

/// [`Sq8Codes::weigh`]'s sums, lane by lane.
#[derive(Default)]
struct Sums {
    offset: Run,
    norm: Run,
    largest: Run,
}

impl Sums {
    /// Adds one coordinate (query `x`, lower corner `lo`, step `s`) to lane `j`.
    #[inline(always)]
    fn add(&mut self, l2: bool, j: usize, x: f32, lo: f32, s: f32) {
        let m = moved(l2, x, lo);
        self.offset[j] += if l2 { m * m } else { x * lo };
        self.norm[j] += x * x;
        self.largest[j] = self.largest[j].max((m * s).abs());
    }
}

/// The coordinate the weights multiply: L2 weighs the query's offset from
/// the lower corner, the dot products the query itself (`x - 0.0` is `x`,
/// bit for bit, and takes no branch).
#[inline(always)]
fn moved(l2: bool, x: f32, lo: f32) -> f32 {
    x - if l2 { lo } else { 0.0 }
}

/// One cache line of codes.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const ZERO_LINE: Line = Line([0; 64]);

/// Rows encoded per task while training.
const ENCODE_RUN: usize = 1024;

/// Byte codes of a dense space's rows, indexed by id.
#[derive(Debug)]
pub struct Sq8Codes {
    metric: Metric,
    dim: usize,
    /// 64-byte lines per row.
    lines: usize,
    /// Rows the coordinate ranges were taken from.
    trained_on: usize,
    lower: Vec<f32>,
    step: Vec<f32>,
    /// `1 / step` (0 where the step is 0), so encoding multiplies.
    inverse: Vec<f32>,
    codes: Vec<Line>,
    /// Per row: Σ(step_i·c_i)² for L2, the exact norm for cosine.
    row_terms: Vec<f32>,
}

impl Sq8Codes {
    /// Codes for `ids` of `space`, with the coordinate ranges of those rows.
    /// None for metrics other than L2, inner product and cosine.
    pub fn train<S: DenseVectors>(space: &S, ids: &[u32]) -> Option<Sq8Codes> {
        let metric = space.metric();
        if !matches!(metric, Metric::L2 | Metric::InnerProduct | Metric::Cosine) {
            return None;
        }
        let dim = space.dim();
        let widest = || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        let (mut lower, mut upper) = ids
            .par_chunks(ENCODE_RUN)
            .map(|run| {
                let (mut lower, mut upper) = widest();
                let mut row = vec![0.0; dim];
                for &id in run {
                    space.read_f32(id, &mut row);
                    for ((lo, hi), &x) in lower.iter_mut().zip(&mut upper).zip(&row) {
                        *lo = lo.min(x);
                        *hi = hi.max(x);
                    }
                }
                (lower, upper)
            })
            .reduce(widest, |(mut lower, mut upper), (lo, hi)| {
                for (a, b) in lower.iter_mut().zip(lo) {
                    *a = a.min(b);
                }
                for (a, b) in upper.iter_mut().zip(hi) {
                    *a = a.max(b);
                }
                (lower, upper)
            });
        if ids.is_empty() {
            lower.fill(0.0);
            upper.fill(0.0);
        }
        let step: Vec<f32> = lower
            .iter()
            .zip(&upper)
            .map(|(lo, hi)| (hi - lo) / 255.0)
            .collect();
        let inverse = step
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        let mut codes = Sq8Codes {
            metric,
            dim,
            lines: dim.div_ceil(64),
            trained_on: ids.len(),
            lower,
            step,
            inverse,
            codes: Vec::new(),
            row_terms: Vec::new(),
        };
        if let Some(&max) = ids.iter().max() {
            codes.grow(max);
        }
        // Rows are encoded in runs, each into one buffer, then stored.
        let encoded: Vec<(Vec<Line>, Vec<f32>)> = ids
            .par_chunks(ENCODE_RUN)
            .map(|run| {
                let mut row = vec![0.0; dim];
                let mut lines = vec![ZERO_LINE; run.len() * codes.lines];
                let terms = run
                    .iter()
                    .zip(lines.chunks_exact_mut(codes.lines))
                    .map(|(&id, dest)| {
                        space.read_f32(id, &mut row);
                        codes.encode(&row, dest)
                    })
                    .collect();
                (lines, terms)
            })
            .collect();
        for (run, (lines, terms)) in ids.chunks(ENCODE_RUN).zip(encoded) {
            for ((&id, row), term) in run.iter().zip(lines.chunks_exact(codes.lines)).zip(terms) {
                codes.store(id, row, term);
            }
        }
        Some(codes)
    }

    /// Makes room for ids up to `id`.
    fn grow(&mut self, id: u32) {
        let slots = id as usize + 1;
        if slots > self.row_terms.len() {
            self.row_terms.resize(slots, 0.0);
            self.codes.resize(slots * self.lines, ZERO_LINE);
        }
    }

    /// Writes row `id`'s codes and term (the slot must exist).
    fn store(&mut self, id: u32, lines: &[Line], term: f32) {
        let slot = id as usize;
        self.codes[slot * self.lines..(slot + 1) * self.lines].copy_from_slice(lines);
        self.row_terms[slot] = term;
    }

    /// Codes of `row` into `dest`; returns the row's term.
    fn encode(&self, row: &[f32], dest: &mut [Line]) -> f32 {
        let ranges = self.lower.chunks(64).zip(self.inverse.chunks(64));
        for ((line, xs), (lower, inverse)) in dest.iter_mut().zip(row.chunks(64)).zip(ranges) {
            for (((c, &x), &lo), &inv) in line.0.iter_mut().zip(xs).zip(lower).zip(inverse) {
                // Not `clamp`, which keeps NaN: `max` turns it into 0.
                // Rounded half up by truncating.
                #[allow(clippy::manual_clamp)]
                let v = ((x - lo) * inv).max(0.0).min(255.0) + 0.5;
                // SAFETY: v is a finite value in [0.5, 255.5].
                *c = unsafe { v.to_int_unchecked::<i32>() } as u8;
            }
        }
        match self.metric {
            Metric::L2 => {
                let codes = dest.iter().flat_map(|l| l.0);
                let sum: f64 = codes
                    .zip(&self.step)
                    .map(|(c, &s)| {
                        let r = (s * c as f32) as f64;
                        r * r
                    })
                    .sum();
                sum as f32
            }
            Metric::Cosine => row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32,
            _ => 0.0,
        }
    }

    /// Encodes row `id` of `space` (again, if it was encoded before), growing
    /// to `id + 1` slots. Coordinates outside the trained range are clamped:
    /// only the walk gets coarser, answers are re-ranked exactly.
    pub fn insert<S: DenseVectors>(&mut self, space: &S, id: u32) {
        self.grow(id);
        let mut row = vec![0.0; self.dim];
        space.read_f32(id, &mut row);
        let mut lines = vec![ZERO_LINE; self.lines];
        let term = self.encode(&row, &mut lines);
        self.store(id, &lines, term);
    }

    /// Number of rows the coordinate ranges were taken from: once many more
    /// rows were inserted, training again may fit them better.
    pub fn trained_on(&self) -> usize {
        self.trained_on
    }

    /// Bytes held: codes, per-row terms and the coordinate ranges.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.codes.len() * 64
            + (self.row_terms.len() + self.lower.len() + 2 * self.step.len()) * 4
    }

    /// Row `id`'s codes, padded with zeros to whole lines; empty when the id
    /// was never encoded.
    #[inline]
    fn row(&self, id: u32) -> &[u8] {
        let start = id as usize * self.lines;
        match self.codes.get(start..start + self.lines) {
            // SAFETY: `Line` is 64 plain bytes with no padding (repr(C)), so
            // a run of lines is a valid byte slice of 64 bytes per line.
            Some(lines) => unsafe {
                std::slice::from_raw_parts(lines.as_ptr().cast::<u8>(), lines.len() * 64)
            },
            None => &[],
        }
    }

    /// The byte weights of query `q` (as f32 coordinates) in two passes
    /// that the compiler vectorizes, with no buffer besides the weights:
    /// sums and the largest weight in eight independent lanes (an in-order
    /// sum is a chain of dependent adds), then rounding by truncation, not
    /// libm.
    fn weigh(&self, q: &[f32]) -> Weights {
        let l2 = self.metric == Metric::L2;
        let dim = q.len().min(self.lower.len()).min(self.step.len());
        let (q, lower, step) = (&q[..dim], &self.lower[..dim], &self.step[..dim]);
        let mut sums = Sums::default();
        let ((q_runs, q_tail), (lower_runs, lower_tail), (step_runs, step_tail)) = (
            q.as_chunks::<LANES>(),
            lower.as_chunks::<LANES>(),
            step.as_chunks::<LANES>(),
        );
        for ((x, lo), s) in q_runs.iter().zip(lower_runs).zip(step_runs) {
            for j in 0..LANES {
                sums.add(l2, j, x[j], lo[j], s[j]);
            }
        }
        let tail = q_tail.iter().zip(lower_tail).zip(step_tail);
        for (j, ((&x, &lo), &s)) in tail.enumerate() {
            sums.add(l2, j, x, lo, s);
        }
        let total = |sum: Run| sum.iter().map(|&s| s as f64).sum::<f64>();
        let largest = sums.largest.iter().fold(0.0f32, |m, &w| m.max(w));
        let limit = WEIGHT_LIMIT as f32;
        let scale = if largest > 0.0 { largest / limit } else { 1.0 };
        let inverse = 1.0 / scale;
        let weight = |x: f32, lo: f32, s: f32| {
            // Not `clamp`, which keeps NaN: `max` turns it into -limit.
            #[allow(clippy::manual_clamp)]
            let v = (moved(l2, x, lo) * s * inverse).max(-limit).min(limit);
            // Rounded half away from zero by truncating.
            // SAFETY: v + ±0.5 is finite and within ±64.5.
            unsafe { (v + 0.5f32.copysign(v)).to_int_unchecked::<i32>() as i8 }
        };
        let mut bytes = vec![0i8; self.lines * 64];
        let (out_runs, _) = bytes[..dim].as_chunks_mut::<LANES>();
        let runs = q_runs.iter().zip(lower_runs).zip(step_runs);
        for (out, ((x, lo), s)) in out_runs.iter_mut().zip(runs) {
            for j in 0..LANES {
                out[j] = weight(x[j], lo[j], s[j]);
            }
        }
        let tail = q_tail.iter().zip(lower_tail).zip(step_tail);
        for (out, ((&x, &lo), &s)) in bytes[dim - q_tail.len()..dim].iter_mut().zip(tail) {
            *out = weight(x, lo, s);
        }
        Weights {
            bytes,
            scale,
            offset: total(sums.offset) as f32,
            norm: total(sums.norm).sqrt() as f32,
        }
    }

    /// The approximate ordering distances of `N` rows from their integer
    /// dot products (the metric chosen once for all of them).
    #[inline]
    fn finish<const N: usize>(&self, w: &Weights, dots: [i32; N], ids: [u32; N]) -> [f32; N] {
        let term = |i: usize| self.row_terms.get(ids[i] as usize).copied().unwrap_or(0.0);
        let dot = |i: usize| w.scale * dots[i] as f32;
        let mut out = [0.0; N];
        match self.metric {
            Metric::L2 => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = w.offset - 2.0 * dot(i) + term(i);
                }
            }
            Metric::Cosine => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = 1.0 - ((w.offset + dot(i)) / (w.norm * term(i))).clamp(-1.0, 1.0);
                }
            }
            _ => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = -(w.offset + dot(i));
                }
            }
        }
        out
    }
}

/// A query turned into byte weights.
#[derive(Debug, Clone)]
struct Weights {
    bytes: Vec<i8>,
    scale: f32,
    offset: f32,
    norm: f32,
}

/// A query against a [`QuantizedSpace`]: the exact query and its weights.
#[derive(Debug, Clone)]
pub struct QuantizedQuery<Q> {
    exact: Q,
    weights: Weights,
}

/// An exact dense space seen through its [`Sq8Codes`]: approximate
/// distances for the walk, the exact space's for re-ranking.
#[derive(Debug)]
pub struct QuantizedSpace<'a, S> {
    exact: &'a S,
    codes: &'a Sq8Codes,
    kernels: &'static CodeKernels,
}

impl<'a, S: DenseVectors> QuantizedSpace<'a, S> {
    /// `exact` searched through `codes` (trained on it).
    pub fn new(exact: &'a S, codes: &'a Sq8Codes) -> Self {
        QuantizedSpace {
            exact,
            codes,
            kernels: code_kernels(),
        }
    }

    /// Prepares a query of the exact space.
    pub fn query(&self, exact: S::Query) -> QuantizedQuery<S::Query> {
        let weights = self.codes.weigh(&self.exact.query_f32(&exact));
        QuantizedQuery { exact, weights }
    }
}

impl<S: DenseVectors> Space for QuantizedSpace<'_, S> {
    type Query = QuantizedQuery<S::Query>;

    fn metric(&self) -> Metric {
        self.exact.metric()
    }

    #[inline]
    fn distance(&self, q: &Self::Query, id: u32) -> f32 {
        let dot = (self.kernels.dot)(self.codes.row(id), &q.weights.bytes);
        self.codes.finish(&q.weights, [dot], [id])[0]
    }

    #[inline]
    fn distance_x4(&self, q: &Self::Query, ids: [u32; 4]) -> [f32; 4] {
        // Written out: `ids.map` costs more than the lookups themselves here.
        let row = |i: usize| self.codes.row(ids[i]);
        let dots = (self.kernels.dot_x4)(&q.weights.bytes, [row(0), row(1), row(2), row(3)]);
        self.codes.finish(&q.weights, dots, ids)
    }

    fn distance_between(&self, a: u32, b: u32) -> f32 {
        self.exact.distance_between(a, b)
    }

    fn distance_between_x4(&self, a: u32, bs: [u32; 4]) -> [f32; 4] {
        self.exact.distance_between_x4(a, bs)
    }

    #[inline]
    fn prefetch(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        for line in self.codes.row(id).chunks_exact(64) {
            // SAFETY: prefetch never faults; the address is inside the row.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    line.as_ptr().cast(),
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }

    fn approximate(&self) -> bool {
        true
    }

    fn exact_distance(&self, q: &Self::Query, id: u32) -> f32 {
        self.exact.distance(&q.exact, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hnsw::testdata::{clustered, ids};
    use crate::space::DenseSpace;

    #[test]
    fn approximate_distances_track_exact_ones_for_each_metric() {
        let (n, dim) = (500, 77);
        let data = clustered(n, dim, 8, 3);
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let exact = DenseSpace::new(&data, dim, metric);
            let codes = Sq8Codes::train(&exact, &ids(n)).unwrap();
            let space = QuantizedSpace::new(&exact, &codes);
            let q = space.query(exact.query(exact.vector(3)));
            let spread = (0..n as u32)
                .map(|id| exact.distance(&q.exact, id))
                .fold(0.0f32, |m, d| m.max(d.abs()));
            for id in 0..n as u32 {
                let want = exact.distance(&q.exact, id);
                let got = space.distance(&q, id);
                assert!(
                    (got - want).abs() <= 0.02 * spread,
                    "{metric:?} id {id}: {got} vs {want}"
                );
                assert_eq!(space.exact_distance(&q, id), want);
            }
            let batch = space.distance_x4(&q, [4, 0, 9, 4]);
            for (i, id) in [4, 0, 9, 4].into_iter().enumerate() {
                assert_eq!(batch[i], space.distance(&q, id), "{metric:?}");
            }
        }
    }

    #[test]
    fn byte_valued_rows_spanning_0_to_255_are_encoded_without_loss() {
        let (n, dim) = (20, 70);
        let mut data: Vec<f32> = (0..n * dim).map(|i| ((i * 37) % 256) as f32).collect();
        data[..dim].fill(0.0);
        data[dim..2 * dim].fill(255.0);
        let exact = DenseSpace::new(&data, dim, Metric::L2);
        let codes = Sq8Codes::train(&exact, &ids(n)).unwrap();
        for id in 0..n as u32 {
            let row = codes.row(id);
            assert_eq!(row.len(), 128, "two whole lines");
            for (i, &x) in exact.vector(id).iter().enumerate() {
                assert_eq!(codes.lower[i] + codes.step[i] * row[i] as f32, x);
            }
            assert!(row[dim..].iter().all(|&c| c == 0), "padding stays zero");
        }
        let space = QuantizedSpace::new(&exact, &codes);
        for id in 0..n as u32 {
            let q = space.query(exact.query(exact.vector(id)));
            let nearest = (0..n as u32)
                .min_by(|&a, &b| space.distance(&q, a).total_cmp(&space.distance(&q, b)));
            assert_eq!(nearest, Some(id), "a row is its own nearest");
        }
    }

    #[test]
    fn other_metrics_have_no_codes_and_inserts_grow_the_slots() {
        let data = clustered(50, 8, 2, 1);
        assert!(Sq8Codes::train(&DenseSpace::new(&data, 8, Metric::L1), &ids(50)).is_none());
        let exact = DenseSpace::new(&data, 8, Metric::L2);
        let mut codes = Sq8Codes::train(&exact, &ids(10)).unwrap();
        let before = codes.memory_bytes();
        codes.insert(&exact, 49);
        assert_eq!(codes.memory_bytes(), before + 40 * (64 + 4));
        let space = QuantizedSpace::new(&exact, &codes);
        let q = space.query(exact.query(exact.vector(49)));
        assert!(
            space.distance(&q, 49) < space.distance(&q, 20),
            "49 encoded, 20 not"
        );
    }
}
