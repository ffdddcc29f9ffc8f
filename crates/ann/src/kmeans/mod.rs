//! k-means clustering for IVFFlat, following pgvector's recipe.
//!
//! * **Sample**: `max(50 · lists, 10 000)` rows drawn without replacement
//!   (pgvector's `ComputeCenters`), because the sample size, not the table
//!   size, sets the cost of k-means.
//! * **Geometry**: L2 (and Hamming over 0/1 coordinates) cluster in Euclidean
//!   space; inner product and cosine run *spherical* k-means: samples and
//!   centres are normalised to unit length and compared by angle, as
//!   pgvector's `vector_spherical_distance` does. Zero vectors have no
//!   direction and are left out of the sample.
//! * **Centres**: with no more samples than lists, the distinct samples plus
//!   random fill ([`quick_centres`]); otherwise k-means++ seeding and Elkan's
//!   triangle-inequality k-means ([`elkan`]), at most [`MAX_ITERATIONS`].
//!
//! Every pass over the samples runs on rayon and is built on one block
//! kernel, [`dots`]: a vector's dot products with many rows at once.
//! [`assign`] then puts every row in the list of its nearest centre.

mod dots;
mod elkan;

use crate::error::{AnnError, ErrorKind, Result};
use crate::rng::Rng;
use crate::search::BuildProgress;
use crate::space::{DenseVectors, Metric};
use rayon::prelude::*;
use std::collections::HashSet;

pub(crate) use dots::{dot, dots};

/// pgvector's iteration cap for Elkan's k-means.
pub const MAX_ITERATIONS: usize = 500;
/// pgvector samples this many rows per list…
pub const SAMPLES_PER_LIST: usize = 50;
/// …and never fewer than this many.
pub const MIN_SAMPLES: usize = 10_000;
/// Seed of the build's random choices, so builds are repeatable.
const SEED: u64 = 0x1bf5_a3d0_7c2e_9461;
/// Rows handed to one rayon task in the per-row passes.
const ROWS_PER_TASK: usize = 256;

/// How k-means measures distance for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// Euclidean distance (L2, and Hamming over 0/1 coordinates).
    Euclidean,
    /// Angle between unit vectors (inner product, cosine).
    Spherical,
}

impl Geometry {
    /// The geometry IVFFlat clusters `metric` in; L1 and Jaccard have no
    /// IVFFlat operator class in pgvector.
    pub fn of(metric: Metric) -> Result<Self> {
        match metric {
            Metric::L2 | Metric::Hamming => Ok(Geometry::Euclidean),
            Metric::InnerProduct | Metric::Cosine => Ok(Geometry::Spherical),
            Metric::L1 | Metric::Jaccard => Err(AnnError::new(
                ErrorKind::UndefinedObject,
                format!(
                    "no operator class for the {} operator exists for access method \"ivfflat\"",
                    metric.operator()
                ),
            )),
        }
    }

    /// The distance k-means works with, from a dot product and, for
    /// Euclidean, both squared norms.
    #[inline]
    fn distance_from_dot(self, dot: f32, norm_a: f32, norm_b: f32) -> f32 {
        match self {
            Geometry::Euclidean => (norm_a + norm_b - 2.0 * dot).max(0.0).sqrt(),
            Geometry::Spherical => dot.clamp(-1.0, 1.0).acos() * std::f32::consts::FRAC_1_PI,
        }
    }
}

/// Number of rows k-means samples for `lists` lists.
pub fn sample_size(lists: usize) -> usize {
    lists.saturating_mul(SAMPLES_PER_LIST).max(MIN_SAMPLES)
}

/// Computes `lists` centres for the rows `ids` of `space`, clustered for
/// `metric`; returns them as one flat array, centre `i` at `i * dim`.
/// Spherical centres have unit length. Checks `progress` for cancellation.
pub fn kmeans<S: DenseVectors>(
    space: &S,
    ids: &[u32],
    lists: usize,
    metric: Metric,
    progress: &BuildProgress,
) -> Result<Vec<f32>> {
    let geometry = Geometry::of(metric)?;
    let dim = space.dim();
    if lists == 0 || dim == 0 {
        return Err(AnnError::invalid_parameter(
            "k-means needs at least one list and one dimension",
        ));
    }
    if geometry == Geometry::Spherical && dim == 1 {
        return Err(AnnError::new(
            ErrorKind::Internal,
            "dimensions must be greater than one for this opclass",
        ));
    }
    let mut rng = Rng::new(SEED ^ lists as u64);
    let sample_ids = sample(ids, sample_size(lists), &mut rng);
    let samples = read_samples(space, &sample_ids, geometry);
    progress.check()?;
    let centres = if samples.len() / dim <= lists {
        quick_centres(&samples, dim, lists, geometry, &mut rng)
    } else {
        elkan::cluster(&samples, dim, lists, geometry, &mut rng, progress)?
    };
    if centres.iter().any(|c| !c.is_finite()) {
        return Err(AnnError::new(
            ErrorKind::Internal,
            "k-means produced a centre that is not finite",
        ));
    }
    Ok(centres)
}

/// The list (nearest centre) of each row in `ids`, in order; `None` for a
/// zero vector under spherical geometry, which pgvector leaves out of a
/// cosine index. Runs on rayon; advances `progress` per row and checks it
/// for cancellation.
pub fn assign<S: DenseVectors>(
    space: &S,
    ids: &[u32],
    centres: &[f32],
    geometry: Geometry,
    progress: &BuildProgress,
) -> Result<Vec<Option<u32>>> {
    let dim = space.dim();
    let norms = centre_norms(centres, dim);
    let mut out = vec![None; ids.len()];
    out.par_chunks_mut(ROWS_PER_TASK)
        .zip(ids.par_chunks(ROWS_PER_TASK))
        .try_for_each(|(out, ids)| {
            progress.check()?;
            let mut row = vec![0.0; dim];
            let mut scores = vec![0.0; norms.len()];
            for (slot, &id) in out.iter_mut().zip(ids) {
                space.read_f32(id, &mut row);
                *slot = nearest(&row, centres, &norms, geometry, &mut scores);
            }
            progress.advance(ids.len() as u64);
            Ok::<(), AnnError>(())
        })?;
    Ok(out)
}

/// The nearest centre to `row`, using `scores` (one per centre) as scratch.
pub(crate) fn nearest(
    row: &[f32],
    centres: &[f32],
    norms: &[f32],
    geometry: Geometry,
    scores: &mut [f32],
) -> Option<u32> {
    dots(row, centres, scores);
    match geometry {
        // Smallest |c|² − 2 x·c is the smallest |x − c|².
        Geometry::Euclidean => {
            for (s, n) in scores.iter_mut().zip(norms) {
                *s = n - 2.0 * *s;
            }
        }
        Geometry::Spherical => {
            if dot(row, row) == 0.0 {
                return None;
            }
            for s in scores.iter_mut() {
                *s = -*s;
            }
        }
    }
    let mut best = (0u32, f32::INFINITY);
    for (i, &s) in scores.iter().enumerate() {
        if s < best.1 {
            best = (i as u32, s);
        }
    }
    Some(best.0)
}

/// Squared norm of each `dim`-long centre.
pub(crate) fn centre_norms(centres: &[f32], dim: usize) -> Vec<f32> {
    centres.chunks_exact(dim).map(|c| dot(c, c)).collect()
}

/// Up to `target` of `ids` drawn without replacement (Floyd's algorithm),
/// in their original order.
fn sample(ids: &[u32], target: usize, rng: &mut Rng) -> Vec<u32> {
    let n = ids.len();
    if n <= target {
        return ids.to_vec();
    }
    let mut chosen = HashSet::with_capacity(target);
    for j in n - target..n {
        let r = rng.below(j as u64 + 1) as usize;
        if !chosen.insert(r) {
            chosen.insert(j);
        }
    }
    let mut positions: Vec<usize> = chosen.into_iter().collect();
    positions.sort_unstable();
    positions.into_iter().map(|p| ids[p]).collect()
}

/// Reads the sampled rows into one flat array; for spherical geometry each
/// row is normalised and zero rows are dropped.
fn read_samples<S: DenseVectors>(space: &S, ids: &[u32], geometry: Geometry) -> Vec<f32> {
    let dim = space.dim();
    let mut rows = vec![0.0; ids.len() * dim];
    rows.par_chunks_mut(dim)
        .zip(ids.par_iter())
        .for_each(|(row, &id)| {
            space.read_f32(id, row);
            if geometry == Geometry::Spherical {
                normalise(row);
            }
        });
    if geometry == Geometry::Spherical {
        let mut kept = 0;
        for i in 0..ids.len() {
            if rows[i * dim..(i + 1) * dim].iter().any(|&x| x != 0.0) {
                rows.copy_within(i * dim..(i + 1) * dim, kept * dim);
                kept += 1;
            }
        }
        rows.truncate(kept * dim);
    }
    rows
}

/// Scales `v` to unit length; returns false (and leaves it) when it is zero.
pub(crate) fn normalise(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
        true
    } else {
        false
    }
}

/// pgvector's answer to having no more samples than lists: every distinct
/// sample is a centre, the rest are random points in [0, 1)^dim (normalised
/// for spherical geometry).
fn quick_centres(
    samples: &[f32],
    dim: usize,
    lists: usize,
    geometry: Geometry,
    rng: &mut Rng,
) -> Vec<f32> {
    let mut rows: Vec<&[f32]> = samples.chunks_exact(dim).collect();
    rows.sort_by(|a, b| {
        a.iter()
            .zip(*b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows.dedup();
    let mut centres: Vec<f32> = rows.concat();
    while centres.len() < lists * dim {
        let start = centres.len();
        centres.extend((0..dim).map(|_| rng.next_f64() as f32));
        if geometry == Geometry::Spherical {
            normalise(&mut centres[start..]);
        }
    }
    centres
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::testdata::blobs;
    use crate::space::DenseSpace;

    /// Index of the blob (of `per` rows) that row `id` was drawn from.
    fn blob_of(id: u32, per: usize) -> usize {
        id as usize / per
    }

    #[test]
    fn finds_well_separated_clusters() {
        let (clusters, per, dim) = (8, 1500, 16);
        let data = blobs(11, clusters, per, dim);
        let space = DenseSpace::new(&data, dim, Metric::L2);
        let ids: Vec<u32> = (0..(clusters * per) as u32).collect();
        let progress = BuildProgress::new();
        let centres = kmeans(&space, &ids, clusters, Metric::L2, &progress).unwrap();
        assert_eq!(centres.len(), clusters * dim);
        let lists = assign(&space, &ids, &centres, Geometry::Euclidean, &progress).unwrap();
        assert_eq!(progress.get().0, ids.len() as u64);
        // Every blob lands in exactly one list and every list holds one blob.
        let mut list_of_blob = vec![None; clusters];
        for (&id, list) in ids.iter().zip(&lists) {
            let list = list.unwrap();
            let b = blob_of(id, per);
            assert_eq!(*list_of_blob[b].get_or_insert(list), list, "blob {b} split");
        }
        let distinct: HashSet<_> = list_of_blob.iter().collect();
        assert_eq!(distinct.len(), clusters);
    }

    #[test]
    fn spherical_centres_have_unit_length() {
        let (clusters, per, dim) = (6, 2000, 8);
        let data = blobs(12, clusters, per, dim);
        let ids: Vec<u32> = (0..(clusters * per) as u32).collect();
        for metric in [Metric::Cosine, Metric::InnerProduct] {
            let space = DenseSpace::new(&data, dim, metric);
            let centres = kmeans(&space, &ids, 10, metric, &BuildProgress::new()).unwrap();
            for c in centres.chunks_exact(dim) {
                let norm = dot(c, c).sqrt();
                assert!((norm - 1.0).abs() < 1e-4, "{metric:?}: norm {norm}");
            }
        }
    }

    #[test]
    fn few_rows_give_distinct_samples_then_random_centres() {
        let dim = 3;
        let data = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let space = DenseSpace::new(&data, dim, Metric::L2);
        let centres = kmeans(&space, &[0, 1, 2], 5, Metric::L2, &BuildProgress::new()).unwrap();
        assert_eq!(centres.len(), 5 * dim);
        assert_eq!(&centres[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(centres[6..].iter().all(|&x| (0.0..1.0).contains(&x)));
        let empty = kmeans(&space, &[], 2, Metric::Cosine, &BuildProgress::new()).unwrap();
        for c in empty.chunks_exact(dim) {
            assert!((dot(c, c) - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn rejects_metrics_without_an_opclass_and_honours_cancel() {
        let data = blobs(13, 2, 100, 4);
        let space = DenseSpace::new(&data, 4, Metric::L1);
        let ids: Vec<u32> = (0..200).collect();
        let err = kmeans(&space, &ids, 2, Metric::L1, &BuildProgress::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UndefinedObject);
        let progress = BuildProgress::new();
        progress.cancel();
        let err = kmeans(&space, &ids, 2, Metric::L2, &progress).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Canceled);
    }

    #[test]
    fn sample_draws_distinct_ids() {
        let ids: Vec<u32> = (0..50_000).map(|i| i * 3).collect();
        let s = sample(&ids, 10_000, &mut Rng::new(1));
        assert_eq!(s.len(), 10_000);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(s.iter().all(|x| x % 3 == 0));
        // Roughly uniform: about a fifth of the draws from each fifth.
        let low = s.iter().filter(|&&x| x < 30_000).count();
        assert!((1700..2300).contains(&low), "{low}");
    }
}
