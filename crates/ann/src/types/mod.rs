//! pgvector's column types — `vector`, `halfvec`, `sparsevec` and `bit` —
//! with their text and binary formats, typmod checks and limits.
//!
//! Every value here is valid by construction: parsing, binary receive and
//! the checked constructors apply the same checks pgvector does (dimension
//! range, no NaN or infinity, sorted sparse indices, …) and report the same
//! message and SQLSTATE. Functions and index spaces can therefore rely on
//! the invariants without checking again. Nothing here panics on input.
//!
//! `vector` and `halfvec` are one generic [`DenseVector`] over an
//! [`Element`] (f32 or f16), because pgvector's two C files differ only in
//! the element type and the type name inside messages.

mod bit;
mod dense;
pub(crate) mod element;
pub mod float_text;
mod limits;
mod sparsevec;
mod wire;

pub use bit::BitVector;
pub(crate) use dense::check_dim as check_dense_dim;
pub use dense::{DenseVector, HalfVector, Vector};
pub use element::Element;
pub use limits::{check_hnsw_sparse_nnz, check_index_dims, check_ivfflat_opclass_dims, IndexKind};
pub(crate) use sparsevec::check_dim as check_sparse_dim;
pub use sparsevec::SparseVector;

use crate::error::{AnnError, ErrorKind, Result};

/// pgvector's `VECTOR_MAX_DIM` and `HALFVEC_MAX_DIM`.
pub const DENSE_MAX_DIM: usize = 16_000;
/// pgvector's `SPARSEVEC_MAX_DIM`.
pub const SPARSEVEC_MAX_DIM: u32 = 1_000_000_000;
/// pgvector's `SPARSEVEC_MAX_NNZ`.
pub const SPARSEVEC_MAX_NNZ: usize = 16_000;
/// PostgreSQL's `VARBITMAXLEN`: the longest bit string, in bits.
pub const BIT_MAX_LEN: u32 = i32::MAX as u32 - 7;
/// PostgreSQL's `MaxAttrSize * BITS_PER_BYTE`: the largest `bit(n)` typmod.
const BIT_MAX_TYPMOD: i32 = 10 * 1024 * 1024 * 8;

/// The four pgvector column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorType {
    /// `vector`: f32 elements.
    Vector,
    /// `halfvec`: f16 elements.
    HalfVec,
    /// `sparsevec`: non-zero f32 elements with their indices.
    SparseVec,
    /// `bit`: PostgreSQL's fixed-length bit string.
    Bit,
}

impl VectorType {
    /// The SQL type name.
    pub fn name(self) -> &'static str {
        match self {
            VectorType::Vector => "vector",
            VectorType::HalfVec => "halfvec",
            VectorType::SparseVec => "sparsevec",
            VectorType::Bit => "bit",
        }
    }

    /// The type's `typmod_in`: validates `vector(n)`-style modifiers and
    /// returns the typmod (dimensions, or bits for `bit`).
    pub fn typmod_in(self, modifiers: &[i32]) -> Result<u32> {
        let [n] = modifiers else {
            return Err(AnnError::invalid_parameter("invalid type modifier"));
        };
        let n = *n;
        let max = match self {
            VectorType::Vector | VectorType::HalfVec => DENSE_MAX_DIM as i32,
            VectorType::SparseVec => SPARSEVEC_MAX_DIM as i32,
            VectorType::Bit => BIT_MAX_TYPMOD,
        };
        let (what, unit) = match self {
            VectorType::Bit => ("length", "bit"),
            _ => ("dimensions", self.name()),
        };
        if n < 1 {
            return Err(AnnError::invalid_parameter(format!(
                "{what} for type {unit} must be at least 1"
            )));
        }
        if n > max {
            return Err(AnnError::invalid_parameter(format!(
                "{what} for type {unit} cannot exceed {max}"
            )));
        }
        Ok(n as u32)
    }
}

/// pgvector's `CheckExpectedDim`: a typmod, when given, must equal `dim`.
pub(crate) fn check_expected_dim(typmod: Option<u32>, dim: usize) -> Result<()> {
    match typmod {
        Some(t) if t as usize != dim => Err(AnnError::data(format!(
            "expected {t} dimensions, not {dim}"
        ))),
        _ => Ok(()),
    }
}

/// `invalid input syntax for type <name>: "<lit>"` (22P02).
pub(crate) fn invalid_syntax(type_name: &str, lit: &str) -> AnnError {
    AnnError::new(
        ErrorKind::InvalidTextRepresentation,
        format!("invalid input syntax for type {type_name}: \"{lit}\""),
    )
}

/// `"<token>" is out of range for type <name>` (22003).
pub(crate) fn out_of_range(token: &str, type_name: &str) -> AnnError {
    AnnError::new(
        ErrorKind::NumericValueOutOfRange,
        format!("\"{token}\" is out of range for type {type_name}"),
    )
}

/// PostgreSQL's `float_overflow_error` (22003).
pub(crate) fn overflow_error() -> AnnError {
    AnnError::new(
        ErrorKind::NumericValueOutOfRange,
        "value out of range: overflow",
    )
}

/// PostgreSQL's `float_underflow_error` (22003).
pub(crate) fn underflow_error() -> AnnError {
    AnnError::new(
        ErrorKind::NumericValueOutOfRange,
        "value out of range: underflow",
    )
}

/// pgvector's `CheckElement` for f32-valued types.
pub(crate) fn check_f32_element(value: f32, type_name: &str) -> Result<()> {
    if value.is_nan() {
        return Err(AnnError::data(format!("NaN not allowed in {type_name}")));
    }
    if value.is_infinite() {
        return Err(AnnError::data(format!(
            "infinite value not allowed in {type_name}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typmod_in_matches_pgvector() {
        assert_eq!(VectorType::Vector.typmod_in(&[3]), Ok(3));
        let e = VectorType::Vector.typmod_in(&[0]).unwrap_err();
        assert_eq!(e.message, "dimensions for type vector must be at least 1");
        assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
        let e = VectorType::HalfVec.typmod_in(&[16_001]).unwrap_err();
        assert_eq!(e.message, "dimensions for type halfvec cannot exceed 16000");
        let e = VectorType::SparseVec.typmod_in(&[1, 2]).unwrap_err();
        assert_eq!(e.message, "invalid type modifier");
        assert_eq!(
            VectorType::SparseVec
                .typmod_in(&[1_000_000_001])
                .unwrap_err()
                .message,
            "dimensions for type sparsevec cannot exceed 1000000000"
        );
        assert_eq!(
            VectorType::Bit.typmod_in(&[-1]).unwrap_err().message,
            "length for type bit must be at least 1"
        );
        assert_eq!(VectorType::Bit.typmod_in(&[64_000]), Ok(64_000));
    }

    #[test]
    fn expected_dim_message() {
        assert!(check_expected_dim(None, 2).is_ok());
        assert!(check_expected_dim(Some(2), 2).is_ok());
        let e = check_expected_dim(Some(3), 2).unwrap_err();
        assert_eq!(e.message, "expected 3 dimensions, not 2");
        assert_eq!(e.kind.sqlstate(), "22000");
    }
}
