//! pgvshard's ANN engine.
//!
//! Pure Rust, no async runtime, no SQL: pgvector's vector types with their text
//! and binary formats ([`types`]), SIMD distance kernels ([`distance`]), an
//! exact scan, HNSW and IVFFlat indexes with filtered iterative search, and
//! index persistence. Indexes never own vectors: they keep ids and read the
//! vectors through a [`Space`] that the table (or a benchmark store) provides.

pub mod distance;
pub mod error;
pub mod exact;
pub mod functions;
pub mod hnsw;
pub mod ivfflat;
pub mod kmeans;
pub mod persist;
pub mod plan;
pub mod quant;
pub mod rng;
pub mod search;
pub mod space;
#[cfg(test)]
mod test_file;
pub mod typed_space;
pub mod types;

pub use error::{AnnError, ErrorKind, Result};
pub use exact::exact_search;
pub use hnsw::{Hnsw, HnswParams, HnswSearch};
pub use ivfflat::{IvfFlat, IvfParams, IvfSearch};
pub use quant::{QuantizedSpace, Sq8Codes};
pub use search::{BuildProgress, Filter, IterativeScan};
pub use space::{DenseQuery, DenseSpace, DenseVectors, Metric, Neighbor, Space};
pub use types::{BitVector, DenseVector, HalfVector, SparseVector, Vector, VectorType};
