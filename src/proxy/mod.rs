//! The proxy: one PostgreSQL endpoint in front of N shards. A client's
//! statement is parsed with the pgvector dialect ([`crate::sql`]), planned
//! into a route (one shard, a scatter with a merge, a broadcast), run on
//! the shards through [`backend::Backend`] channels, and answered through
//! the wire layer with the shards' row bytes passed on undecoded.
//!
//! All state lives in values handed to [`serve`]: there are no process
//! globals, so tests run many proxies in one process in parallel.

pub mod backend;
pub mod config;
pub mod exec;
pub mod merge;
pub mod route;
pub mod slots;
