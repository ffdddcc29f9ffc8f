//! The route of an INSERT into a spread table: one with no primary key
//! and no configured shard key (nor named a reference table). Nothing
//! says where its rows belong, so each INSERT goes whole to one shard,
//! the shards taking turns ([`Cluster::spread_shard`]); reads, UPDATE and
//! DELETE run on every shard like any statement without a key value.

use std::collections::BTreeSet;

use super::{is_catalog, Combine, Route};
use crate::proxy::cluster::Cluster;
use crate::sql::{self, TableName};
use crate::wire::PgError;

/// The whole INSERT on the shard whose turn it is. Refused when it reads
/// a sharded or spread table: the one shard running it holds only its
/// own rows of it.
pub(super) fn insert_route<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    table: &TableName,
) -> Result<Route<'s>, PgError> {
    if cluster.shards.len() > 1 {
        let read = sql::tables_named(statement)
            .into_iter()
            .find(|t| !is_catalog(t) && !cluster.is_reference(t));
        if let Some(read) = read {
            return Err(PgError::feature_not_supported(format!(
                "INSERT into {table}, a table without a shard key, that reads sharded table {read} is not supported across shards"
            ))
            .with_hint("One shard runs it and would read only its own rows: read them first and insert the values, or give the table a primary key."));
        }
    }
    Ok(Route::on(
        "spread (round-robin shard)",
        BTreeSet::from([cluster.spread_shard()]),
        statement.text.as_str(),
        Combine::Concat,
        true,
    ))
}
