//! IVFFlat: pgvector's inverted-file index with flat (uncompressed) lists.
//!
//! Building clusters a sample of the rows with k-means ([`crate::kmeans`])
//! into `lists` centres and puts every row's id in the list of its nearest
//! centre. A search ranks the centres by distance to the query, scans the
//! `probes` nearest lists through the [`DenseVectors`] space (the index holds
//! ids only, never vectors) and keeps the best `k`. With an iterative scan
//! it goes on to further lists, nearest centre first, until `k` rows pass the
//! filter or `max_probes` lists were scanned.
//!
//! As in pgvector, inner product and cosine use unit-length centres, and a
//! zero vector is not indexed under cosine (it has no direction, and its
//! distance to everything is NaN).
//!
//! Layout: `centres` is one flat array (`lists × dim`), `lists[i]` the ids
//! of list `i` in insertion order. Saved files are described in [`file`].

mod file;
mod params;
mod scan;

pub use params::{IvfParams, IvfSearch, DEFAULT_LISTS, DEFAULT_PROBES, MAX_LISTS, MIN_LISTS};

use crate::error::Result;
use crate::kmeans::{self, Geometry};
use crate::search::BuildProgress;
use crate::space::{DenseVectors, Metric};
use std::collections::HashSet;

/// An IVFFlat index over ids of a [`DenseVectors`] space.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfFlat {
    params: IvfParams,
    metric: Metric,
    dim: usize,
    /// `lists × dim` centre coordinates.
    centres: Vec<f32>,
    /// Squared norm of each centre, for assigning rows.
    centre_norms: Vec<f32>,
    lists: Vec<Vec<u32>>,
    len: usize,
}

impl IvfFlat {
    /// Builds the index over `ids` of `space` on rayon (k-means, then one
    /// pass assigning every row). Sets `progress`'s total to the row count,
    /// advances it per assigned row and stops with 57014 when it is
    /// canceled. Fewer rows than lists is allowed (recall suffers, as
    /// pgvector warns).
    pub fn build<S: DenseVectors>(
        space: &S,
        ids: &[u32],
        params: IvfParams,
        progress: &BuildProgress,
    ) -> Result<IvfFlat> {
        let params = IvfParams::new(params.lists)?;
        let metric = space.metric();
        let geometry = Geometry::of(metric)?;
        progress.set_total(ids.len() as u64);
        let centres = kmeans::kmeans(space, ids, params.lists, metric, progress)?;
        let assignment = kmeans::assign(space, ids, &centres, geometry, progress)?;
        let mut sizes = vec![0usize; params.lists];
        for list in assignment.iter().flatten() {
            sizes[*list as usize] += 1;
        }
        let mut lists: Vec<Vec<u32>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
        for (&id, list) in ids.iter().zip(&assignment) {
            if let Some(list) = list {
                lists[*list as usize].push(id);
            }
        }
        Ok(Self::from_parts(
            params,
            metric,
            space.dim(),
            centres,
            lists,
        ))
    }

    /// Assembles an index from its parts (built or loaded, already checked).
    fn from_parts(
        params: IvfParams,
        metric: Metric,
        dim: usize,
        centres: Vec<f32>,
        lists: Vec<Vec<u32>>,
    ) -> IvfFlat {
        let centre_norms = kmeans::centre_norms(&centres, dim);
        let len = lists.iter().map(Vec::len).sum();
        IvfFlat {
            params,
            metric,
            dim,
            centres,
            centre_norms,
            lists,
            len,
        }
    }

    /// Adds row `id` to the list of its nearest centre (a zero vector under
    /// cosine is not indexed). `space` must be the one the index was built
    /// over; a space of another dimension is ignored.
    pub fn insert<S: DenseVectors>(&mut self, space: &S, id: u32) {
        if space.dim() != self.dim {
            return;
        }
        let mut row = vec![0.0; self.dim];
        space.read_f32(id, &mut row);
        let mut scores = vec![0.0; self.lists.len()];
        let geometry = self.geometry();
        if let Some(list) = kmeans::nearest(
            &row,
            &self.centres,
            &self.centre_norms,
            geometry,
            &mut scores,
        ) {
            self.lists[list as usize].push(id);
            self.len += 1;
        }
    }

    /// Removes every occurrence of `ids` from the lists.
    pub fn delete(&mut self, ids: &[u32]) {
        if ids.is_empty() {
            return;
        }
        let gone: HashSet<u32> = ids.iter().copied().collect();
        for list in &mut self.lists {
            list.retain(|id| !gone.contains(id));
        }
        self.len = self.lists.iter().map(Vec::len).sum();
    }

    /// Number of indexed ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no id is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The build options.
    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// The metric the index was built for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of coordinates of the indexed vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Heap bytes held: centres, their norms and the id lists (the index
    /// never holds vectors).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.centres.capacity() + self.centre_norms.capacity()) * 4
            + self.lists.capacity() * std::mem::size_of::<Vec<u32>>()
            + self.lists.iter().map(|l| l.capacity() * 4).sum::<usize>()
    }

    fn geometry(&self) -> Geometry {
        match self.metric {
            Metric::InnerProduct | Metric::Cosine => Geometry::Spherical,
            _ => Geometry::Euclidean,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exact::{exact_search, testdata::blobs};
    use crate::space::DenseSpace;
    use crate::IterativeScan;

    pub(crate) const DIM: usize = 16;

    /// 20 blobs of 500 rows (ids blob-major) and 100 queries near rows.
    pub(crate) fn dataset() -> (Vec<f32>, Vec<Vec<f32>>) {
        let data = blobs(31, 20, 500, DIM);
        let mut rng = crate::rng::Rng::new(32);
        let queries = (0..100)
            .map(|_| {
                let row = rng.below(10_000) as usize;
                data[row * DIM..(row + 1) * DIM]
                    .iter()
                    .map(|x| x + rng.normal() as f32 * 0.5)
                    .collect()
            })
            .collect();
        (data, queries)
    }

    pub(crate) fn build(space: &DenseSpace, ids: &[u32], lists: usize) -> IvfFlat {
        IvfFlat::build(
            space,
            ids,
            IvfParams::new(lists).unwrap(),
            &BuildProgress::new(),
        )
        .unwrap()
    }

    #[test]
    fn recall_at_ten_percent_probes_and_exact_with_all_lists() {
        let (data, queries) = dataset();
        let ids: Vec<u32> = (0..10_000).collect();
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            let space = DenseSpace::new(&data, DIM, metric);
            let index = build(&space, &ids, 40);
            assert_eq!(index.len(), 10_000);
            let few = IvfSearch::new(4, IterativeScan::Off, 4).unwrap();
            let all = IvfSearch::new(40, IterativeScan::Off, 40).unwrap();
            let mut hits = 0;
            for q in &queries {
                let q = space.query(q);
                let truth = exact_search(&space, &ids, &q, 10, None);
                let got = index.search(&space, &q, 10, &few, None);
                hits += got.iter().filter(|n| truth.contains(n)).count();
                assert_eq!(index.search(&space, &q, 10, &all, None), truth);
            }
            let recall = hits as f64 / (10 * queries.len()) as f64;
            assert!(recall >= 0.95, "{metric:?}: recall {recall}");
        }
    }

    #[test]
    fn insert_and_delete_keep_lists_in_step() {
        let (data, queries) = dataset();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let first: Vec<u32> = (0..6000).collect();
        let mut index = build(&space, &first, 20);
        for id in 6000..10_000 {
            index.insert(&space, id);
        }
        assert_eq!(index.len(), 10_000);
        let all_ids: Vec<u32> = (0..10_000).collect();
        let every = IvfSearch::new(20, IterativeScan::Off, 20).unwrap();
        let q = space.query(&queries[0]);
        assert_eq!(
            index.search(&space, &q, 10, &every, None),
            exact_search(&space, &all_ids, &q, 10, None)
        );
        // A row inserted later is found by its own vector with one probe.
        let own = space.query(space.vector(9_999));
        let one = IvfSearch::default();
        assert_eq!(index.search(&space, &own, 1, &one, None)[0].id, 9_999);

        let gone: Vec<u32> = (0..10_000).filter(|i| i % 3 == 0).collect();
        index.delete(&gone);
        assert_eq!(index.len(), 10_000 - gone.len());
        let kept: Vec<u32> = (0..10_000).filter(|i| i % 3 != 0).collect();
        assert_eq!(
            index.search(&space, &q, 10, &every, None),
            exact_search(&space, &kept, &q, 10, None)
        );
        assert!(index.memory_bytes() >= index.len() * 4 + 20 * DIM * 4);
    }

    #[test]
    fn cosine_leaves_zero_vectors_out_and_build_can_be_canceled() {
        let mut data = blobs(33, 2, 50, DIM);
        data[..DIM].fill(0.0);
        let space = DenseSpace::new(&data, DIM, Metric::Cosine);
        let ids: Vec<u32> = (0..100).collect();
        let mut index = build(&space, &ids, 3);
        assert_eq!(index.len(), 99);
        index.insert(&space, 0);
        assert_eq!(index.len(), 99);

        let progress = BuildProgress::new();
        progress.cancel();
        let err = IvfFlat::build(&space, &ids, IvfParams::default(), &progress).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Canceled);
        let l1 = DenseSpace::new(&data, DIM, Metric::L1);
        assert!(IvfFlat::build(&l1, &ids, IvfParams::default(), &BuildProgress::new()).is_err());
    }
}
