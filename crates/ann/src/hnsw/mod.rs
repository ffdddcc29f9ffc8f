//! HNSW (hierarchical navigable small world) index, with pgvector 0.8's
//! options, search settings and filtered/iterative scan semantics.
//!
//! Why it is fast: level 0, where a search spends nearly all its time, is
//! one flat array of fixed-stride u32 lists (`graph`); candidates are
//! (distance, id) pairs packed into one u64 so heaps compare integers
//! (`order`); the visited set is a generation-tagged array reused across
//! queries (`visited`); a node's fresh neighbours' vectors and the next
//! candidate's list are prefetched before they are read (`layer`). The
//! build inserts from several threads with striped per-node locks
//! (`build`); deletes repair the graph at once so searches never meet
//! tombstones (`delete`).
//!
//! The index owns no vectors: it stores ids and reads vectors through a
//! [`Space`]. Ids are the owner's row slots; the arrays are sized by the
//! largest id, so ids should be dense.

mod build;
mod delete;
mod fill;
mod graph;
mod layer;
mod order;
mod params;
mod persist;
mod query;
mod visited;

#[cfg(test)]
pub(crate) mod testdata;

pub use params::{HnswParams, HnswSearch};

use crate::error::Result;
use crate::search::{BuildProgress, Filter};
use crate::space::{Neighbor, Space};
use graph::{level_for, Graph, NodeLocks};
use std::path::Path;
use std::sync::Mutex;

/// Where searches start: the node with the highest level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    node: u32,
    level: u8,
}

/// An HNSW graph over ids of a [`Space`].
#[derive(Debug)]
pub struct Hnsw {
    graph: Graph,
    params: HnswParams,
    entry: Option<Entry>,
    len: usize,
}

impl Hnsw {
    /// Builds an index over `ids` (duplicates count once) using `threads`
    /// threads; checks `progress` for cancellation (57014) and advances it
    /// once per inserted vector.
    pub fn build<S: Space>(
        space: &S,
        ids: &[u32],
        params: HnswParams,
        threads: usize,
        progress: &BuildProgress,
    ) -> Result<Hnsw> {
        build::build(space, ids, params, threads, progress)
    }

    /// Adds `id` after the build. Inserting an id that is already in the
    /// index does nothing. The index grows to `id + 1` slots.
    pub fn insert<S: Space>(&mut self, space: &S, id: u32) {
        if self.graph.level(id).is_some() {
            return;
        }
        self.graph.add_node(id, level_for(id, self.params.m));
        let locks = NodeLocks::new(1);
        let entry = Mutex::new(self.entry);
        let inserter = build::Inserter {
            space,
            graph: &self.graph,
            locks: &locks,
            params: self.params,
            entry: &entry,
            passed_over: None,
        };
        query::with_scratch(|scratch| inserter.insert(id, scratch));
        self.entry = entry.into_inner().unwrap_or_else(|e| e.into_inner());
        self.len += 1;
    }

    /// Removes `ids` (ids not in the index are ignored) and repairs the
    /// graph around them; a deleted id may be inserted again later.
    pub fn delete<S: Space>(&mut self, space: &S, ids: &[u32]) {
        delete::delete(self, space, ids)
    }

    /// Up to `k` rows nearest to `query`, nearest first, with ordering
    /// distances, as pgvector 0.8 answers them. With iterative scan off, at
    /// most `ef_search` rows, and a filter only drops rows from those
    /// (post-filtering). With iterative scan on, the search goes on until
    /// `max(ef_search, k)` rows pass the filter and no closer node is left
    /// unexplored, or `max_scan_tuples` / `scan_mem_multiplier` are used up;
    /// rows failing the filter still steer it.
    pub fn search<S: Space>(
        &self,
        space: &S,
        query: &S::Query,
        k: usize,
        opts: &HnswSearch,
        filter: Option<Filter>,
    ) -> Vec<Neighbor> {
        query::search(self, space, query, k, opts, filter)
    }

    /// Number of ids in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The ids in the index, ascending.
    pub fn ids(&self) -> Vec<u32> {
        self.graph.nodes().collect()
    }

    /// True when the index holds no ids.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The options the index was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Bytes of graph and bookkeeping (vectors are not the index's).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.graph.memory_bytes()
    }

    /// Writes the index to `path` (atomically replacing it).
    pub fn save(&self, path: &Path) -> Result<()> {
        persist::save(self, path)
    }

    /// Reads an index written by [`Hnsw::save`], checking every id, level
    /// and count; a damaged file is a DataCorrupted (XX001) error.
    pub fn load(path: &Path) -> Result<Hnsw> {
        persist::load(path)
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::{clustered, exact, ids, mean_recall, recall, rows_and_queries};
    use super::*;
    use crate::error::ErrorKind;
    use crate::quant::{QuantizedSpace, Sq8Codes};
    use crate::space::{DenseSpace, Metric};

    const N: usize = 3_000;
    const DIM: usize = 32;

    fn opts(ef: usize) -> HnswSearch {
        HnswSearch {
            ef_search: ef,
            ..HnswSearch::default()
        }
    }

    #[test]
    fn threads_searching_at_once_get_the_same_answers() {
        let (data, queries) = rows_and_queries(N, 40, DIM, 6);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = Hnsw::build(
            &space,
            &ids(N),
            HnswParams::default(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        let answer = |q: &[f32]| index.search(&space, &space.query(q), 10, &opts(40), None);
        let alone: Vec<_> = queries.chunks_exact(DIM).map(answer).collect();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| s.spawn(|| queries.chunks_exact(DIM).map(answer).collect::<Vec<_>>()))
                .collect();
            for w in workers {
                assert_eq!(w.join().unwrap(), alone);
            }
        });
    }

    #[test]
    fn recall_against_exact_search_for_each_metric() {
        let (data, queries) = rows_and_queries(N, 100, DIM, 1);
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let space = DenseSpace::new(&data, DIM, metric);
            let progress = BuildProgress::new();
            let index = Hnsw::build(&space, &ids(N), HnswParams::default(), 2, &progress).unwrap();
            assert_eq!(progress.get(), (N as u64, N as u64));
            assert_eq!(index.len(), N);
            let r = mean_recall(&index, &space, &queries, &ids(N), 10, &opts(64));
            assert!(r >= 0.95, "{metric:?}: recall {r}");
        }
    }

    #[test]
    fn walking_on_byte_codes_keeps_recall_and_answers_exact_distances() {
        let (data, queries) = rows_and_queries(N, 100, DIM, 8);
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let space = DenseSpace::new(&data, DIM, metric);
            let index = Hnsw::build(
                &space,
                &ids(N),
                HnswParams::default(),
                2,
                &BuildProgress::new(),
            )
            .unwrap();
            let codes = Sq8Codes::train(&space, &ids(N)).unwrap();
            let coded = QuantizedSpace::new(&space, &codes);
            let (mut exact_hits, mut coded_hits) = (0.0, 0.0);
            for q in queries.chunks_exact(DIM) {
                let truth = exact(&space, q, &ids(N), 10);
                let plain = index.search(&space, &space.query(q), 10, &opts(40), None);
                let walked =
                    index.search(&coded, &coded.query(space.query(q)), 10, &opts(40), None);
                for n in &walked {
                    assert_eq!(n.distance, space.distance(&space.query(q), n.id));
                }
                assert!(walked.windows(2).all(|w| w[0].distance <= w[1].distance));
                let ids_of = |v: &[Neighbor]| v.iter().map(|n| n.id).collect::<Vec<_>>();
                exact_hits += recall(&ids_of(&plain), &truth);
                coded_hits += recall(&ids_of(&walked), &truth);
            }
            let (r_exact, r_coded) = (exact_hits / 100.0, coded_hits / 100.0);
            assert!(
                r_coded >= 0.95 && r_coded >= r_exact - 0.01,
                "{metric:?}: codes {r_coded}, exact {r_exact}"
            );
        }
    }

    #[test]
    fn parallel_build_is_as_good_as_sequential_and_sequential_repeats() {
        let (data, queries) = rows_and_queries(N, 100, DIM, 2);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let p = BuildProgress::new();
        let one = Hnsw::build(&space, &ids(N), HnswParams::default(), 1, &p).unwrap();
        let again = Hnsw::build(&space, &ids(N), HnswParams::default(), 1, &p).unwrap();
        let two = Hnsw::build(&space, &ids(N), HnswParams::default(), 2, &p).unwrap();
        let r1 = mean_recall(&one, &space, &queries, &ids(N), 10, &opts(40));
        let r2 = mean_recall(&two, &space, &queries, &ids(N), 10, &opts(40));
        // The parallel build's graph depends on thread timing: its recall
        // here is 1.0 in most runs but was 0.977 in one of 25 (sequential:
        // 1.0), so the margin is 0.03, not the 0.02 that failed about one
        // run in thirty.
        assert!(
            r1 >= 0.95 && r2 >= r1 - 0.03,
            "sequential {r1}, parallel {r2}"
        );
        let q = space.query(&queries[..DIM]);
        assert_eq!(
            one.search(&space, &q, 10, &opts(40), None),
            again.search(&space, &q, 10, &opts(40), None)
        );
    }

    #[test]
    fn inserts_after_build_are_found_and_duplicates_ignored() {
        let (data, queries) = rows_and_queries(N, 100, DIM, 3);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let first: Vec<u32> = ids(2_000);
        let mut index = Hnsw::build(
            &space,
            &first,
            HnswParams::new(8, 32).unwrap(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        for id in 2_000..N as u32 {
            index.insert(&space, id);
        }
        index.insert(&space, 5);
        assert_eq!(index.len(), N);
        let r = mean_recall(&index, &space, &queries, &ids(N), 10, &opts(64));
        assert!(r >= 0.95, "recall {r}");
        let q = space.query(space.vector(2_500));
        assert_eq!(index.search(&space, &q, 1, &opts(40), None)[0].id, 2_500);
    }

    #[test]
    fn empty_index_canceled_build_and_memory_figure() {
        let data = clustered(N, DIM, 30, 4);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let p = BuildProgress::new();
        let empty = Hnsw::build(&space, &[], HnswParams::default(), 2, &p).unwrap();
        assert!(empty.is_empty());
        let q = space.query(space.vector(0));
        assert!(empty.search(&space, &q, 10, &opts(40), None).is_empty());

        let canceled = BuildProgress::new();
        canceled.cancel();
        let err = Hnsw::build(&space, &ids(N), HnswParams::default(), 2, &canceled).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Canceled);

        let index = Hnsw::build(&space, &ids(N), HnswParams::default(), 2, &p).unwrap();
        let per_vector = index.memory_bytes() / N;
        assert!((132..=153).contains(&per_vector), "{per_vector} B/vector");
        assert_eq!(index.params(), HnswParams::default());
        assert!(index.search(&space, &q, 0, &opts(40), None).is_empty());
    }

    #[test]
    fn sparse_and_repeated_ids_index_only_those_rows() {
        let (data, queries) = rows_and_queries(N, 20, DIM, 7);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let mut chosen: Vec<u32> = (0..N as u32).filter(|i| i % 3 == 1).collect();
        chosen.extend_from_slice(&[1, 4, 7]);
        let index = Hnsw::build(
            &space,
            &chosen,
            HnswParams::default(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        assert_eq!(index.len(), N / 3);
        let live: Vec<u32> = (0..N as u32).filter(|i| i % 3 == 1).collect();
        let r = mean_recall(&index, &space, &queries, &live, 10, &opts(40));
        assert!(r >= 0.95, "recall {r}");
    }

    #[test]
    fn zero_vectors_under_cosine_neither_panic_nor_crowd_out_real_rows() {
        let mut data = clustered(1_000, 8, 10, 5);
        for id in (0..1_000).step_by(50) {
            data[id * 8..id * 8 + 8].fill(0.0);
        }
        let space = DenseSpace::new(&data, 8, Metric::Cosine);
        let index = Hnsw::build(
            &space,
            &ids(1_000),
            HnswParams::default(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        let q = space.query(space.vector(1));
        let got = index.search(&space, &q, 10, &opts(40), None);
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].id, 1);
        assert!(got.iter().all(|n| !n.distance.is_nan()));
        let zero = space.query(&[0.0; 8]);
        let got = index.search(&space, &zero, 5, &opts(40), None);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|n| n.distance.is_nan()));
    }
}
