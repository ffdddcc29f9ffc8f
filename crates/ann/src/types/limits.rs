//! What pgvector's index access methods accept, with their messages: the
//! checks `CREATE INDEX … USING hnsw|ivfflat` makes before building, and the
//! per-row check HNSW makes on `sparsevec` values.
//!
//! | type      | hnsw                 | ivfflat        |
//! |-----------|----------------------|----------------|
//! | vector    | 2,000 dims           | 2,000 dims     |
//! | halfvec   | 4,000 dims           | 4,000 dims     |
//! | bit       | 64,000 bits          | 64,000 bits    |
//! | sparsevec | 1e9 dims, 1,000 nnz  | no operator class |

use super::{SparseVector, VectorType, SPARSEVEC_MAX_DIM};
use crate::error::{AnnError, ErrorKind, Result};
use crate::space::Metric;

/// pgvector's `HNSW_MAX_DIM` / `IVFFLAT_MAX_DIM` for `vector`.
const VECTOR_INDEX_MAX_DIM: usize = 2_000;
/// pgvector's `HNSW_MAX_NNZ`: non-zeros a sparsevec may have in an HNSW index.
pub const HNSW_MAX_NNZ: usize = 1_000;

/// pgvector's index access methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// `USING hnsw`.
    Hnsw,
    /// `USING ivfflat`.
    IvfFlat,
}

impl IndexKind {
    /// The access method's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Hnsw => "hnsw",
            IndexKind::IvfFlat => "ivfflat",
        }
    }
}

/// The largest dimension count `kind` indexes for `ty` (`typeInfo->maxDimensions`),
/// or `None` when there is no operator class at all.
fn max_dims(kind: IndexKind, ty: VectorType) -> Option<usize> {
    match (kind, ty) {
        (_, VectorType::Vector) => Some(VECTOR_INDEX_MAX_DIM),
        (_, VectorType::HalfVec) => Some(VECTOR_INDEX_MAX_DIM * 2),
        (_, VectorType::Bit) => Some(VECTOR_INDEX_MAX_DIM * 32),
        (IndexKind::Hnsw, VectorType::SparseVec) => Some(SPARSEVEC_MAX_DIM as usize),
        (IndexKind::IvfFlat, VectorType::SparseVec) => None,
    }
}

/// The check pgvector's `InitBuildState` makes on the indexed column:
/// `dims` is the column's typmod (`None` for a column declared without
/// dimensions, e.g. plain `vector`).
pub fn check_index_dims(kind: IndexKind, ty: VectorType, dims: Option<usize>) -> Result<()> {
    let Some(max) = max_dims(kind, ty) else {
        // PostgreSQL's own message when no operator class matches (42704).
        return Err(AnnError::new(
            ErrorKind::UndefinedObject,
            format!(
                "data type {} has no default operator class for access method \"{}\"",
                ty.name(),
                kind.name()
            ),
        ));
    };
    let Some(dims) = dims else {
        return Err(AnnError::invalid_parameter(
            "column does not have dimensions",
        ));
    };
    if dims > max {
        return Err(AnnError::limit(format!(
            "column cannot have more than {max} dimensions for {} index",
            kind.name()
        )));
    }
    Ok(())
}

/// IVFFlat's extra check for opclasses that use spherical k-means
/// (`vector_cosine_ops`, `halfvec_cosine_ops`): one dimension is too few.
pub fn check_ivfflat_opclass_dims(metric: Metric, dims: usize) -> Result<()> {
    if metric == Metric::Cosine && dims == 1 {
        return Err(AnnError::invalid_parameter(
            "dimensions must be greater than one for this opclass",
        ));
    }
    Ok(())
}

/// HNSW's per-value check on `sparsevec` rows (`SparsevecCheckValue`).
pub fn check_hnsw_sparse_nnz(v: &SparseVector) -> Result<()> {
    if v.nnz() > HNSW_MAX_NNZ {
        return Err(AnnError::limit(format!(
            "sparsevec cannot have more than {HNSW_MAX_NNZ} non-zero elements for hnsw index"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_messages_match_pgvector() {
        use IndexKind::*;
        use VectorType::*;
        let ok = [
            (Hnsw, Vector, 2000),
            (IvfFlat, Vector, 2000),
            (Hnsw, HalfVec, 4000),
            (IvfFlat, Bit, 64_000),
            (Hnsw, SparseVec, 1_000_000_000),
        ];
        for (k, t, d) in ok {
            assert!(check_index_dims(k, t, Some(d)).is_ok(), "{k:?} {t:?}");
            let e = check_index_dims(k, t, Some(d + 1)).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "54000");
            assert_eq!(
                e.message,
                format!(
                    "column cannot have more than {d} dimensions for {} index",
                    k.name()
                )
            );
        }
        let e = check_index_dims(Hnsw, Vector, Some(2001)).unwrap_err();
        assert_eq!(
            e.message,
            "column cannot have more than 2000 dimensions for hnsw index"
        );
        let e = check_index_dims(IvfFlat, HalfVec, None).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("22023", "column does not have dimensions")
        );
        assert!(check_index_dims(IvfFlat, SparseVec, Some(10)).is_err());
        assert_eq!(
            check_ivfflat_opclass_dims(Metric::Cosine, 1)
                .unwrap_err()
                .message,
            "dimensions must be greater than one for this opclass"
        );
        assert!(check_ivfflat_opclass_dims(Metric::L2, 1).is_ok());
        let many = SparseVector::new(2000, (0..1001).collect(), vec![1.0; 1001]).unwrap();
        let e = check_hnsw_sparse_nnz(&many).unwrap_err();
        assert_eq!(
            e.message,
            "sparsevec cannot have more than 1000 non-zero elements for hnsw index"
        );
        assert!(
            check_hnsw_sparse_nnz(&SparseVector::new(2000, vec![1], vec![1.0]).unwrap()).is_ok()
        );
    }
}
