//! pgvshard's ANN engine.
//!
//! Pure Rust, no async runtime, no SQL: pgvector's vector types with their text
//! and binary formats ([`types`]), SIMD distance kernels ([`distance`]), an
//! exact scan, HNSW and IVFFlat indexes with filtered iterative search, and
//! index persistence. Indexes never own vectors: they keep ids and read the
//! vectors through a [`Space`] that the table (or a benchmark store) provides.

pub mod distance;
pub mod error;
pub mod hnsw;
pub mod persist;
pub mod rng;
pub mod search;
pub mod space;

pub use error::{AnnError, ErrorKind, Result};
pub use hnsw::{Hnsw, HnswParams, HnswSearch};
pub use search::{BuildProgress, Filter, IterativeScan};
pub use space::{DenseQuery, DenseSpace, DenseVectors, Metric, Neighbor, Space};
