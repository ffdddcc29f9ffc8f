//! The shard: durable storage of tables and their vector indexes
//! ([`storage`]) and the datum type they hold ([`value`]).

pub mod storage;
pub mod value;
