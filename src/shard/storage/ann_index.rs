//! The ANN index of a vector column, kept in step with the table.
//!
//! Each variant is an index of the `ann` engine over the column's
//! [`ColumnSpace`]; it stores row slots only. HNSW joins as a second
//! variant when the engine's `ann::hnsw` lands: build, insert, delete,
//! search, save and load have the same shape.

use super::catalog::IndexMethod;
use super::error::{Result, StorageError};
use super::space::{ColumnQuery, ColumnSpace};
use ann::{BuildProgress, DenseVectors, Filter, IvfFlat, IvfParams, IvfSearch, Neighbor};
use std::path::Path;

/// An ANN index over one vector column.
#[derive(Debug, Clone)]
pub enum AnnIndex {
    /// pgvector's IVFFlat.
    IvfFlat(IvfFlat),
}

/// The session's search settings for every ANN method.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnSearch {
    /// `ivfflat.probes`, `ivfflat.iterative_scan`, `ivfflat.max_probes`.
    pub ivfflat: IvfSearch,
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
            IndexMethod::BTree => Err(StorageError::new("XX000", "a btree is not an ANN index")),
        }
    }

    /// Loads an index saved by [`AnnIndex::save`] and checks that it is
    /// the one `method` over a column of `dim` coordinates describes.
    pub fn load(method: IndexMethod, dim: usize, path: &Path) -> Result<AnnIndex> {
        match method {
            IndexMethod::IvfFlat { metric, lists } => {
                let index = IvfFlat::load(path)?;
                if index.metric() != metric
                    || index.dim() != dim
                    || index.params().lists != lists as usize
                {
                    return Err(StorageError::corrupted(
                        path,
                        "the index does not match its definition in the manifest",
                    ));
                }
                Ok(AnnIndex::IvfFlat(index))
            }
            IndexMethod::BTree => Err(StorageError::new("XX000", "a btree is not an ANN index")),
        }
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            AnnIndex::IvfFlat(i) => Ok(i.save(path)?),
        }
    }

    /// Adds slot `id` (its vector already stored in `space`).
    pub fn insert(&mut self, space: &ColumnSpace, id: u32) {
        match self {
            AnnIndex::IvfFlat(i) => i.insert(space, id),
        }
    }

    /// Removes slot `id` (its vector still stored in `space`).
    pub fn delete(&mut self, _space: &ColumnSpace, id: u32) {
        match self {
            AnnIndex::IvfFlat(i) => i.delete(&[id]),
        }
    }

    /// Number of indexed slots.
    pub fn len(&self) -> usize {
        match self {
            AnnIndex::IvfFlat(i) => i.len(),
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
        }
    }
}
