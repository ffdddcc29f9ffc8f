//! The shard: durable storage of tables and their vector indexes
//! ([`storage`]) and the datum type they hold ([`datum`]).

pub mod datum;
pub mod storage;
