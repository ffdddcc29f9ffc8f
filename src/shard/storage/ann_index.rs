//! The ANN index of a vector column, kept in step with the table.
//!
//! Each variant is an index of the `ann` engine over the column's
//! [`ColumnSpace`]; it stores row slots only, so build, insert, delete,
//! search, save and load have the same shape for both methods.
//!
//! An HNSW index over a `vector` column walks its graph on 8-bit codes of the
//! vectors ([`ann::Sq8Codes`]) and re-ranks the `ef_search` candidates by
//! exact distance, so answers are exact distances of the rows found. The
//! codes are derived data: made at the first search (not saved), kept up to
//! date by inserts, and made again once the index has doubled since, so the
//! coordinate ranges they were trained on stay representative.

use super::catalog::IndexMethod;
use super::error::{Result, StorageError};
use super::space::{ColumnQuery, ColumnSpace};
use ann::{
    BuildProgress, DenseVectors, Filter, Hnsw, HnswParams, HnswSearch, IvfFlat, IvfParams,
    IvfSearch, Neighbor, QuantizedSpace, Sq8Codes,
};
use std::path::Path;
use std::sync::OnceLock;

/// Threads an HNSW build uses (the shard shares its cores with queries).
const HNSW_BUILD_THREADS: usize = 2;

/// An ANN index over one vector column.
#[derive(Debug)]
pub enum AnnIndex {
    /// pgvector's IVFFlat.
    IvfFlat(IvfFlat),
    /// pgvector's HNSW.
    Hnsw(HnswIndex),
}

/// An HNSW graph and the byte codes its searches walk on.
#[derive(Debug)]
pub struct HnswIndex {
    graph: Hnsw,
    /// None inside: the column is not `vector`, or the metric has no codes.
    codes: OnceLock<Option<Box<Sq8Codes>>>,
}

impl HnswIndex {
    fn new(graph: Hnsw) -> Self {
        HnswIndex {
            graph,
            codes: OnceLock::new(),
        }
    }

    /// The codes, trained on the indexed rows at the first call.
    fn codes(&self, space: &ColumnSpace) -> Option<&Sq8Codes> {
        self.codes
            .get_or_init(|| {
                space
                    .is_f32_vector()
                    .then(|| Sq8Codes::train(space, &self.graph.ids()).map(Box::new))
                    .flatten()
            })
            .as_deref()
    }

    fn insert(&mut self, space: &ColumnSpace, id: u32) {
        self.graph.insert(space, id);
        let len = self.graph.len();
        if let Some(Some(codes)) = self.codes.get_mut() {
            if len > 2 * codes.trained_on().max(1) {
                self.codes = OnceLock::new();
            } else {
                codes.insert(space, id);
            }
        }
    }

    fn search(
        &self,
        space: &ColumnSpace,
        query: &ColumnQuery,
        k: usize,
        settings: &HnswSearch,
        filter: Option<Filter>,
    ) -> Vec<Neighbor> {
        match self.codes(space) {
            Some(codes) => {
                let coded = QuantizedSpace::new(space, codes);
                let query = coded.query(query.clone());
                self.graph.search(&coded, &query, k, settings, filter)
            }
            None => self.graph.search(space, query, k, settings, filter),
        }
    }
}

/// The session's search settings for every ANN method.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnSearch {
    /// `ivfflat.probes`, `ivfflat.iterative_scan`, `ivfflat.max_probes`.
    pub ivfflat: IvfSearch,
    /// `hnsw.ef_search`, `hnsw.iterative_scan`, `hnsw.max_scan_tuples`,
    /// `hnsw.scan_mem_multiplier`.
    pub hnsw: HnswSearch,
    /// Exact scans only (`enable_indexscan = off`).
    pub exact: bool,
}

fn not_ann() -> StorageError {
    StorageError::new("XX000", "a btree is not an ANN index")
}

fn hnsw_params(m: u32, ef_construction: u32) -> Result<HnswParams> {
    Ok(HnswParams::new(m as usize, ef_construction as usize)?)
}

impl AnnIndex {
    /// Builds an index of `method` over `ids` of `space`.
    pub fn build(
        method: IndexMethod,
        space: &ColumnSpace,
        ids: &[u32],
        progress: &BuildProgress,
    ) -> Result<AnnIndex> {
        match method {
            IndexMethod::IvfFlat { lists, .. } => {
                let params = IvfParams::new(lists as usize)?;
                Ok(AnnIndex::IvfFlat(IvfFlat::build(
                    space, ids, params, progress,
                )?))
            }
            IndexMethod::Hnsw {
                m, ef_construction, ..
            } => Ok(AnnIndex::Hnsw(HnswIndex::new(Hnsw::build(
                space,
                ids,
                hnsw_params(m, ef_construction)?,
                HNSW_BUILD_THREADS,
                progress,
            )?))),
            IndexMethod::BTree | IndexMethod::Gin { .. } => Err(not_ann()),
        }
    }

    /// Loads an index saved by [`AnnIndex::save`] and checks that it is
    /// the one `method` over a column of `dim` coordinates describes.
    pub fn load(method: IndexMethod, dim: usize, path: &Path) -> Result<AnnIndex> {
        let mismatch = || {
            StorageError::corrupted(
                path,
                "the index does not match its definition in the manifest",
            )
        };
        match method {
            IndexMethod::IvfFlat { metric, lists } => {
                let index = IvfFlat::load(path)?;
                if index.metric() != metric
                    || index.dim() != dim
                    || index.params().lists != lists as usize
                {
                    return Err(mismatch());
                }
                Ok(AnnIndex::IvfFlat(index))
            }
            IndexMethod::Hnsw {
                m, ef_construction, ..
            } => {
                let index = Hnsw::load(path)?;
                if index.params() != hnsw_params(m, ef_construction).map_err(|_| mismatch())? {
                    return Err(mismatch());
                }
                Ok(AnnIndex::Hnsw(HnswIndex::new(index)))
            }
            IndexMethod::BTree | IndexMethod::Gin { .. } => Err(not_ann()),
        }
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            AnnIndex::IvfFlat(i) => Ok(i.save(path)?),
            AnnIndex::Hnsw(i) => Ok(i.graph.save(path)?),
        }
    }

    /// Heap bytes held: the graph or lists, and an HNSW index's byte codes
    /// once made (the vectors are the table's).
    pub fn memory_bytes(&self) -> usize {
        match self {
            AnnIndex::IvfFlat(i) => i.memory_bytes(),
            AnnIndex::Hnsw(i) => {
                let codes = i.codes.get().and_then(Option::as_ref);
                i.graph.memory_bytes() + codes.map_or(0, |c| c.memory_bytes())
            }
        }
    }

    /// Adds slot `id` (its vector already stored in `space`).
    pub fn insert(&mut self, space: &ColumnSpace, id: u32) {
        match self {
            AnnIndex::IvfFlat(i) => i.insert(space, id),
            AnnIndex::Hnsw(i) => i.insert(space, id),
        }
    }

    /// Removes slot `id` (its vector still stored in `space`).
    pub fn delete(&mut self, space: &ColumnSpace, id: u32) {
        match self {
            AnnIndex::IvfFlat(i) => i.delete(&[id]),
            AnnIndex::Hnsw(i) => i.graph.delete(space, &[id]),
        }
    }

    /// Number of indexed slots.
    pub fn len(&self) -> usize {
        match self {
            AnnIndex::IvfFlat(i) => i.len(),
            AnnIndex::Hnsw(i) => i.graph.len(),
        }
    }

    /// True when no slot is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a search needs no one-time work first (an HNSW index
    /// trains its byte codes at its first search, which can take a second).
    pub fn is_warm(&self) -> bool {
        match self {
            AnnIndex::IvfFlat(_) => true,
            AnnIndex::Hnsw(i) => i.codes.get().is_some(),
        }
    }

    /// Up to `k` slots nearest to `query` under the session's `settings`,
    /// restricted to slots passing `filter`, nearest first.
    pub fn search(
        &self,
        space: &ColumnSpace,
        query: &ColumnQuery,
        k: usize,
        settings: &AnnSearch,
        filter: Option<Filter>,
    ) -> Vec<Neighbor> {
        match self {
            AnnIndex::IvfFlat(i) if i.dim() == space.dim() => {
                i.search(space, query, k, &settings.ivfflat, filter)
            }
            AnnIndex::IvfFlat(_) => Vec::new(),
            AnnIndex::Hnsw(i) => i.search(space, query, k, &settings.hnsw, filter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::catalog::ColumnType;
    use crate::shard::storage::columns::ColumnStore;
    use crate::wire::Value;
    use ann::rng::Rng;
    use ann::{Metric, Space, Vector};

    const DIM: usize = 24;

    fn random_rows(store: &mut ColumnStore, range: std::ops::Range<u32>, rng: &mut Rng) {
        for slot in range {
            let v: Vec<f32> = (0..DIM).map(|_| rng.normal() as f32).collect();
            store.set(slot, &Some(Value::Vector(Vector::new(v).unwrap())));
        }
    }

    /// Exact top 10 and the index's answer for a stored row as the query.
    fn answers(
        index: &AnnIndex,
        space: &ColumnSpace,
        n: u32,
        row: u32,
    ) -> (Vec<u32>, Vec<Neighbor>) {
        let mut v = vec![0.0; DIM];
        space.read_f32(row, &mut v);
        let q = space
            .query(&Value::Vector(Vector::new(v).unwrap()))
            .unwrap();
        let mut all: Vec<u32> = (0..n).collect();
        all.sort_by(|&a, &b| space.distance(&q, a).total_cmp(&space.distance(&q, b)));
        all.truncate(10);
        let settings = AnnSearch::default();
        let got = index.search(space, &q, 10, &settings, None);
        for nb in &got {
            assert_eq!(nb.distance, space.distance(&q, nb.id), "exact distances");
        }
        (all, got)
    }

    #[test]
    fn hnsw_on_a_vector_column_walks_codes_and_answers_exactly_after_inserts() {
        let mut rng = Rng::new(5);
        let mut store = ColumnStore::for_type(ColumnType::Vector(Some(DIM as u32)));
        random_rows(&mut store, 0..600, &mut rng);
        let method = IndexMethod::Hnsw {
            metric: Metric::Cosine,
            m: 16,
            ef_construction: 64,
        };
        let ids: Vec<u32> = (0..600).collect();
        let space = ColumnSpace::new(&store, Metric::Cosine).unwrap();
        let mut index = AnnIndex::build(method, &space, &ids, &BuildProgress::new()).unwrap();
        let AnnIndex::Hnsw(h) = &index else { panic!() };
        answers(&index, &space, 600, 1);
        assert_eq!(
            h.codes
                .get()
                .and_then(|c| c.as_ref())
                .map(|c| c.trained_on()),
            Some(600)
        );

        // Inserts far outside the trained ranges: past twice the trained
        // rows the codes are dropped and trained again at the next search.
        for slot in 600..1_500 {
            let v: Vec<f32> = (0..DIM).map(|_| 10.0 * rng.normal() as f32).collect();
            store.set(slot, &Some(Value::Vector(Vector::new(v).unwrap())));
            let space = ColumnSpace::new(&store, Metric::Cosine).unwrap();
            index.insert(&space, slot);
        }
        let space = ColumnSpace::new(&store, Metric::Cosine).unwrap();
        let mut hits = 0;
        for row in (0..1_500).step_by(30) {
            let (truth, got) = answers(&index, &space, 1_500, row);
            hits += got.iter().filter(|n| truth.contains(&n.id)).count();
        }
        assert!(
            hits as f64 / 500.0 >= 0.95,
            "recall {}",
            hits as f64 / 500.0
        );
        let AnnIndex::Hnsw(h) = &index else { panic!() };
        assert_eq!(
            h.codes
                .get()
                .and_then(|c| c.as_ref())
                .map(|c| c.trained_on()),
            Some(1_500)
        );
    }
}
