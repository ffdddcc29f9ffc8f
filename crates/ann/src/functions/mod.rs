//! pgvector's SQL functions and operators over the types in
//! [`crate::types`], with pgvector's formulas, precision and messages.
//!
//! Distances return f64 (`double precision`) computed the way pgvector
//! computes them: dense kernels accumulate in f32 (through
//! [`crate::distance::kernels`], so they speed up with the SIMD table), the
//! final sqrt/division happens in f64. Modules follow pgvector's C files:
//! [`dense`] (`vector.c` and `halfvec.c`, generic over the element type),
//! [`sparse`] (`sparsevec.c`), [`bit`] (`bitvec.c`), [`casts`] and
//! [`aggregate`] (`avg`/`sum` state that merges across shards).

pub mod aggregate;
pub mod bit;
pub mod casts;
pub mod dense;
pub mod sparse;

pub use aggregate::{AvgAccumulator, SumAccumulator};
