//! The ANN index of a vector column, kept in step with the table.
//!
//! Each variant is an index of the `ann` engine over the column's
//! [`ColumnSpace`]; it stores row slots only, so build, insert, delete,
//! search, save and load have the same shape for both methods.

use super::catalog::IndexMethod;
use super::error::{Result, StorageError};
use super::space::{ColumnQuery, ColumnSpace};
use ann::{
    BuildProgress, DenseVectors, Filter, Hnsw, HnswParams, HnswSearch, IvfFlat, IvfParams,
    IvfSearch, Neighbor,
};
use std::path::Path;

/// Threads an HNSW build uses (the shard shares its cores with queries).
const HNSW_BUILD_THREADS: usize = 2;

/// An ANN index over one vector column.
#[derive(Debug)]
pub enum AnnIndex {
    /// pgvector's IVFFlat.
    IvfFlat(IvfFlat),
    /// pgvector's HNSW.
    Hnsw(Hnsw),
}

/// The session's search settings for every ANN method.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnSearch {
    /// `ivfflat.probes`, `ivfflat.iterative_scan`, `ivfflat.max_probes`.
    pub ivfflat: IvfSearch,
    /// `hnsw.ef_search`, `hnsw.iterative_scan`, `hnsw.max_scan_tuples`,
    /// `hnsw.scan_mem_multiplier`.
    pub hnsw: HnswSearch,
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
            } => Ok(AnnIndex::Hnsw(Hnsw::build(
                space,
                ids,
                hnsw_params(m, ef_construction)?,
                HNSW_BUILD_THREADS,
                progress,
            )?)),
            IndexMethod::BTree => Err(not_ann()),
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
                Ok(AnnIndex::Hnsw(index))
            }
            IndexMethod::BTree => Err(not_ann()),
        }
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            AnnIndex::IvfFlat(i) => Ok(i.save(path)?),
            AnnIndex::Hnsw(i) => Ok(i.save(path)?),
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
            AnnIndex::Hnsw(i) => i.delete(space, &[id]),
        }
    }

    /// Number of indexed slots.
    pub fn len(&self) -> usize {
        match self {
            AnnIndex::IvfFlat(i) => i.len(),
            AnnIndex::Hnsw(i) => i.len(),
        }
    }

    /// True when no slot is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
