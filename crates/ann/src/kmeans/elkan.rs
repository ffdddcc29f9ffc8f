//! k-means++ seeding and Elkan's k-means (ICML 2003), as pgvector runs them.
//!
//! Elkan keeps, per sample, an upper bound on the distance to its own centre
//! and a lower bound on the distance to every other centre; with half the
//! centre-to-centre distances the triangle inequality rules out most
//! distance computations after the first iterations. The bounds need a true
//! metric, so Euclidean geometry uses L2 (not its square) and spherical
//! geometry the angle between unit vectors. The k-means++ pass computes every
//! sample-to-centre distance once, so the bounds start exact.
//!
//! A centre that loses all its samples (or, spherically, whose mean is zero)
//! is moved onto the sample farthest from its own centre, instead of
//! pgvector's random point: that splits the worst-served cluster and keeps
//! every list useful.

use super::{centre_norms, dot, dots, normalise, Geometry, MAX_ITERATIONS};
use crate::error::{AnnError, Result};
use crate::rng::Rng;
use crate::search::BuildProgress;
use rayon::prelude::*;

/// Samples handed to one rayon task.
const SAMPLES_PER_TASK: usize = 256;
/// Most memory the per-sample lower bounds may take (pgvector bounds k-means
/// by maintenance_work_mem; this engine has no such setting).
const MAX_BOUNDS_BYTES: usize = 4 << 30;

/// The state Elkan's algorithm carries between iterations.
struct Elkan<'a> {
    samples: &'a [f32],
    dim: usize,
    k: usize,
    geometry: Geometry,
    /// Squared norm of each sample (Euclidean only).
    sample_norms: Vec<f32>,
    centres: Vec<f32>,
    /// `lower[j * k + c]` ≤ distance from sample `j` to centre `c`.
    lower: Vec<f32>,
    /// `upper[j]` ≥ distance from sample `j` to its centre.
    upper: Vec<f32>,
    assigned: Vec<u32>,
    /// Per centre, the sum of its samples' coordinates, kept up to date
    /// move by move so a centre update costs `k × dim`, not `n × dim`.
    sums: Vec<f64>,
    /// Per centre, how many samples it has.
    counts: Vec<usize>,
}

/// A sample that changed centre during one reassignment pass.
struct Move {
    sample: u32,
    from: u32,
    to: u32,
}

/// Clusters the flat `samples` (more of them than `k`) into `k` centres.
pub(super) fn cluster(
    samples: &[f32],
    dim: usize,
    k: usize,
    geometry: Geometry,
    rng: &mut Rng,
    progress: &BuildProgress,
) -> Result<Vec<f32>> {
    let n = samples.len() / dim;
    let bytes = n.saturating_mul(k).saturating_mul(4);
    if bytes > MAX_BOUNDS_BYTES {
        return Err(AnnError::limit(format!(
            "memory required is {} MB, the k-means limit is {} MB",
            bytes / (1024 * 1024) + 1,
            MAX_BOUNDS_BYTES / (1024 * 1024)
        )));
    }
    let mut state = Elkan::new(samples, dim, k, geometry);
    state.seed(rng, progress)?;
    for iteration in 0..MAX_ITERATIONS {
        progress.check()?;
        let moves = state.reassign(iteration != 0);
        let reseeded = state.update_centres(&moves);
        if moves.is_empty() && reseeded == 0 && iteration != 0 {
            break;
        }
    }
    Ok(state.centres)
}

impl<'a> Elkan<'a> {
    fn new(samples: &'a [f32], dim: usize, k: usize, geometry: Geometry) -> Self {
        let n = samples.len() / dim;
        let sample_norms = match geometry {
            Geometry::Euclidean => centre_norms(samples, dim),
            Geometry::Spherical => vec![0.0; n],
        };
        Elkan {
            samples,
            dim,
            k,
            geometry,
            sample_norms,
            centres: vec![0.0; k * dim],
            lower: vec![0.0; n * k],
            upper: vec![0.0; n],
            assigned: vec![0; n],
            sums: vec![0.0; k * dim],
            counts: vec![0; k],
        }
    }

    fn sample(&self, j: usize) -> &[f32] {
        &self.samples[j * self.dim..(j + 1) * self.dim]
    }

    fn centre(&self, c: usize) -> &[f32] {
        &self.centres[c * self.dim..(c + 1) * self.dim]
    }

    /// k-means++: each next centre is a sample drawn with probability
    /// proportional to its squared distance to the nearest centre so far.
    /// Fills every lower bound exactly and assigns each sample.
    fn seed(&mut self, rng: &mut Rng, progress: &BuildProgress) -> Result<()> {
        let (n, k, dim, geometry) = (self.upper.len(), self.k, self.dim, self.geometry);
        let mut weight = vec![f32::MAX; n];
        let first = rng.below(n as u64) as usize;
        self.centres[..dim].copy_from_slice(&self.samples[first * dim..(first + 1) * dim]);
        for i in 0..k {
            progress.check()?;
            let centre = &self.centres[i * dim..(i + 1) * dim];
            let centre_norm = dot(centre, centre);
            self.lower
                .par_chunks_mut(SAMPLES_PER_TASK * k)
                .zip(weight.par_chunks_mut(SAMPLES_PER_TASK))
                .zip(self.samples.par_chunks(SAMPLES_PER_TASK * dim))
                .zip(self.sample_norms.par_chunks(SAMPLES_PER_TASK))
                .for_each(|(((lower, weight), rows), norms)| {
                    let mut d = [0.0; SAMPLES_PER_TASK];
                    let d = &mut d[..weight.len()];
                    dots(centre, rows, d);
                    for (j, dist) in d.iter_mut().enumerate() {
                        *dist = geometry.distance_from_dot(*dist, norms[j], centre_norm);
                        lower[j * k + i] = *dist;
                        weight[j] = weight[j].min(*dist * *dist);
                    }
                });
            if i + 1 == k {
                break;
            }
            let sum: f64 = weight.iter().map(|&w| w as f64).sum();
            let mut choice = sum * rng.next_f64();
            let mut pick = n - 1;
            for (j, &w) in weight.iter().enumerate() {
                choice -= w as f64;
                if choice <= 0.0 {
                    pick = j;
                    break;
                }
            }
            self.centres[(i + 1) * dim..(i + 2) * dim]
                .copy_from_slice(&self.samples[pick * dim..(pick + 1) * dim]);
        }
        for (j, (upper, assigned)) in self.upper.iter_mut().zip(&mut self.assigned).enumerate() {
            let row = &self.lower[j * k..(j + 1) * k];
            let mut best = 0;
            for c in 1..k {
                if row[c] < row[best] {
                    best = c;
                }
            }
            *upper = row[best];
            *assigned = best as u32;
        }
        (self.sums, self.counts) = self.full_sums();
        Ok(())
    }

    /// Steps 1–3 of Elkan's algorithm: moves samples to nearer centres,
    /// computing only distances the bounds cannot rule out. `stale` says the
    /// upper bounds may be loose (every iteration after the seeding).
    /// Returns the samples that changed centre.
    fn reassign(&mut self, stale: bool) -> Vec<Move> {
        let (k, dim, geometry) = (self.k, self.dim, self.geometry);
        let centre_norms = match geometry {
            Geometry::Euclidean => centre_norms(&self.centres, dim),
            Geometry::Spherical => vec![0.0; k],
        };
        // half[a * k + b] = d(a, b) / 2; nearest[a] = min over b ≠ a.
        let mut half = vec![0.0; k * k];
        half.par_chunks_mut(k).enumerate().for_each(|(a, row)| {
            dots(self.centre(a), &self.centres, row);
            for (b, h) in row.iter_mut().enumerate() {
                *h = 0.5 * geometry.distance_from_dot(*h, centre_norms[a], centre_norms[b]);
            }
        });
        let nearest: Vec<f32> = (0..k)
            .map(|a| {
                (0..k)
                    .filter(|&b| b != a)
                    .map(|b| half[a * k + b])
                    .fold(f32::MAX, f32::min)
            })
            .collect();
        let (samples, centres, sample_norms) = (self.samples, &self.centres, &self.sample_norms);
        let distance = |j: usize, c: usize| {
            let d = dot(
                &samples[j * dim..(j + 1) * dim],
                &centres[c * dim..(c + 1) * dim],
            );
            geometry.distance_from_dot(d, sample_norms[j], centre_norms[c])
        };
        let moves: Vec<Vec<Move>> = self
            .lower
            .par_chunks_mut(SAMPLES_PER_TASK * k)
            .zip(self.upper.par_chunks_mut(SAMPLES_PER_TASK))
            .zip(self.assigned.par_chunks_mut(SAMPLES_PER_TASK))
            .enumerate()
            .map(|(task, ((lower, upper), assigned))| {
                let mut moves = Vec::new();
                for (i, (u, a)) in upper.iter_mut().zip(assigned.iter_mut()).enumerate() {
                    if *u <= nearest[*a as usize] {
                        continue;
                    }
                    let j = task * SAMPLES_PER_TASK + i;
                    let from = *a;
                    let lower = &mut lower[i * k..(i + 1) * k];
                    let mut loose = stale;
                    for c in 0..k {
                        let own = *a as usize;
                        if c == own || *u <= lower[c] || *u <= half[own * k + c] {
                            continue;
                        }
                        if loose {
                            *u = distance(j, own);
                            lower[own] = *u;
                            loose = false;
                            if *u <= lower[c] || *u <= half[own * k + c] {
                                continue;
                            }
                        }
                        let d = distance(j, c);
                        lower[c] = d;
                        if d < *u {
                            *u = d;
                            *a = c as u32;
                        }
                    }
                    if *a != from {
                        moves.push(Move {
                            sample: j as u32,
                            from,
                            to: *a,
                        });
                    }
                }
                moves
            })
            .collect();
        moves.into_iter().flatten().collect()
    }

    /// Sums and counts of the samples of each centre, from scratch.
    fn full_sums(&self) -> (Vec<f64>, Vec<usize>) {
        let (k, dim, n) = (self.k, self.dim, self.upper.len());
        let per_task = n.div_ceil(rayon::current_num_threads()).max(1);
        self.samples
            .par_chunks(per_task * dim)
            .zip(self.assigned.par_chunks(per_task))
            .map(|(rows, assigned)| {
                let mut sums = vec![0.0f64; k * dim];
                let mut counts = vec![0usize; k];
                for (row, &a) in rows.chunks_exact(dim).zip(assigned) {
                    add_row(&mut sums, &mut counts, a, row, 1.0);
                }
                (sums, counts)
            })
            .reduce(
                || (vec![0.0; k * dim], vec![0; k]),
                |(mut s1, mut c1), (s2, c2)| {
                    s1.iter_mut().zip(&s2).for_each(|(a, b)| *a += b);
                    c1.iter_mut().zip(&c2).for_each(|(a, b)| *a += b);
                    (s1, c1)
                },
            )
    }

    /// Steps 4–7: moves each centre to the mean of its samples (normalised
    /// for spherical geometry), re-seeds centres left without samples, and
    /// loosens the bounds by how far each centre moved. `moves` are the
    /// changes since the last call. Returns how many centres were re-seeded.
    fn update_centres(&mut self, moves: &[Move]) -> usize {
        let (k, dim) = (self.k, self.dim);
        for m in moves {
            let row = &self.samples[m.sample as usize * dim..(m.sample as usize + 1) * dim];
            add_row(&mut self.sums, &mut self.counts, m.from, row, -1.0);
            add_row(&mut self.sums, &mut self.counts, m.to, row, 1.0);
        }
        let (sums, counts) = (&self.sums, &self.counts);
        let mut new_centres = vec![0.0f32; k * dim];
        let mut empty = Vec::new();
        for c in 0..k {
            let centre = &mut new_centres[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                empty.push(c);
                continue;
            }
            let inv = 1.0 / counts[c] as f64;
            for (x, s) in centre.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                *x = (s * inv) as f32;
            }
            if self.geometry == Geometry::Spherical && !normalise(centre) {
                empty.push(c);
            }
        }
        self.reseed(&empty, &mut new_centres);

        let drift: Vec<f32> = (0..k)
            .map(|c| self.drift(self.centre(c), &new_centres[c * dim..(c + 1) * dim]))
            .collect();
        self.lower.par_chunks_mut(k).for_each(|lower| {
            for (l, d) in lower.iter_mut().zip(&drift) {
                *l = (*l - d).max(0.0);
            }
        });
        for (u, &a) in self.upper.iter_mut().zip(&self.assigned) {
            *u += drift[a as usize];
        }
        self.centres = new_centres;
        empty.len()
    }

    /// Moves each centre in `empty` onto a sample far from its own centre,
    /// taking samples only from centres that keep at least one other.
    fn reseed(&self, empty: &[usize], centres: &mut [f32]) {
        if empty.is_empty() {
            return;
        }
        let dim = self.dim;
        let mut counts = self.counts.clone();
        let mut order: Vec<usize> = (0..self.upper.len()).collect();
        order.sort_unstable_by(|&a, &b| self.upper[b].total_cmp(&self.upper[a]));
        let mut donors = order.into_iter();
        for &c in empty {
            let Some(j) = donors.find(|&j| counts[self.assigned[j] as usize] > 1) else {
                return;
            };
            counts[self.assigned[j] as usize] -= 1;
            centres[c * dim..(c + 1) * dim].copy_from_slice(self.sample(j));
        }
    }

    /// How far a centre moved, in the geometry's distance.
    fn drift(&self, old: &[f32], new: &[f32]) -> f32 {
        match self.geometry {
            Geometry::Euclidean => old
                .iter()
                .zip(new)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt(),
            Geometry::Spherical => self.geometry.distance_from_dot(dot(old, new), 0.0, 0.0),
        }
    }
}

/// Adds `sign ×` `row` to centre `c`'s sum and `sign` to its count.
fn add_row(sums: &mut [f64], counts: &mut [usize], c: u32, row: &[f32], sign: f64) {
    let c = c as usize;
    let dim = row.len();
    if sign > 0.0 {
        counts[c] += 1;
    } else {
        counts[c] -= 1;
    }
    for (s, &x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
        *s += sign * x as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::testdata::blobs;

    /// Index of the centre nearest to `x` by exact squared L2.
    fn nearest(x: &[f32], centres: &[f32], dim: usize) -> usize {
        let d = |c: &[f32]| x.iter().zip(c).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
        (0..centres.len() / dim)
            .min_by(|&a, &b| d(&centres[a * dim..]).total_cmp(&d(&centres[b * dim..])))
            .unwrap()
    }

    #[test]
    fn elkan_ends_where_lloyd_ends_from_the_same_seeds() {
        // Elkan only skips distances the triangle inequality rules out, so
        // from the same k-means++ seeds it must end where plain Lloyd
        // iterations end.
        let (dim, k) = (10, 12);
        let samples = blobs(21, 9, 300, dim);
        let mut seeded = Elkan::new(&samples, dim, k, Geometry::Euclidean);
        seeded
            .seed(&mut Rng::new(5), &BuildProgress::new())
            .unwrap();
        let mut lloyd = seeded.centres.clone();
        for _ in 0..MAX_ITERATIONS {
            let mut sums = vec![0.0f64; k * dim];
            let mut counts = vec![0usize; k];
            for x in samples.chunks_exact(dim) {
                let c = nearest(x, &lloyd, dim);
                counts[c] += 1;
                for (s, v) in sums[c * dim..].iter_mut().zip(x) {
                    *s += *v as f64;
                }
            }
            assert!(counts.iter().all(|&c| c > 0), "seeding left a centre empty");
            let next: Vec<f32> = (0..k * dim)
                .map(|i| (sums[i] / counts[i / dim] as f64) as f32)
                .collect();
            if next == lloyd {
                break;
            }
            lloyd = next;
        }
        let elkan = cluster(
            &samples,
            dim,
            k,
            Geometry::Euclidean,
            &mut Rng::new(5),
            &BuildProgress::new(),
        )
        .unwrap();
        for (a, b) in elkan.iter().zip(&lloyd) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn empty_clusters_are_reseeded_onto_far_samples() {
        // Two far blobs and 4 centres: no centre may stay without samples.
        let dim = 4;
        let samples = blobs(22, 2, 300, dim);
        let centres = cluster(
            &samples,
            dim,
            4,
            Geometry::Euclidean,
            &mut Rng::new(9),
            &BuildProgress::new(),
        )
        .unwrap();
        let mut used = [0usize; 4];
        for x in samples.chunks_exact(dim) {
            let best = (0..4)
                .min_by(|&a, &b| {
                    let da: f32 = x
                        .iter()
                        .zip(&centres[a * dim..])
                        .map(|(p, q)| (p - q).powi(2))
                        .sum();
                    let db: f32 = x
                        .iter()
                        .zip(&centres[b * dim..])
                        .map(|(p, q)| (p - q).powi(2))
                        .sum();
                    da.total_cmp(&db)
                })
                .unwrap();
            used[best] += 1;
        }
        assert!(used.iter().all(|&u| u > 0), "{used:?}");
    }
}
