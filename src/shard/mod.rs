//! The shard: durable storage of tables and their vector indexes
//! ([`storage`]), the datum type they hold ([`datum`]), and the SQL
//! executor that serves them over the PostgreSQL protocol ([`executor`]),
//! streaming replication to standbys ([`replication`]), and the
//! Prometheus families it reports ([`metrics`]).

pub mod datum;
pub mod disk;
pub mod executor;
pub mod metrics;
pub mod recall;
pub mod replication;
pub mod server;
pub mod storage;
