//! pgvshard: a PostgreSQL wire-protocol proxy and shard router for vector
//! search. The layers (see ../shared/DESIGN.md) are modules of this crate;
//! the ANN engine is the separate crate `ann`.

pub mod huge_pages;
pub mod logs;
pub mod metrics;
pub mod proxy;
pub mod shard;
pub mod signals;
pub mod sql;
pub mod stack;
pub mod wire;
