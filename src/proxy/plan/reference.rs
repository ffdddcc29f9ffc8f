//! The route of a write to a reference table (kept whole on every shard).

use super::{is_catalog, Combine, Route};
use crate::proxy::cluster::Cluster;
use crate::sql::{self, TableName};
use crate::wire::PgError;

/// A write to a reference table: the same statement on every shard, as
/// one transaction (two-phase commit), the first shard's reply the
/// answer. Refused when a shard's copy would come out different: the
/// statement reads a sharded table (each shard holds other rows of it) or
/// calls a function each shard computes for itself.
pub(super) fn write_route<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    table: &TableName,
) -> Result<Route<'s>, PgError> {
    let all = cluster.all();
    if all.len() > 1 {
        let sharded = sql::tables_named(statement)
            .into_iter()
            .find(|t| t != table && !is_catalog(t) && !cluster.is_reference(t));
        if let Some(sharded) = sharded {
            return Err(PgError::feature_not_supported(format!(
                "a write to reference table {table} that reads sharded table {sharded} is not supported across shards"
            ))
            .with_hint("Each shard would compute it from its own rows of the sharded table: read them first and write the values."));
        }
        if let Some(function) = sql::per_shard_function(statement) {
            return Err(PgError::feature_not_supported(format!(
                "{function}() in a write to reference table {table} is not supported across shards"
            ))
            .with_hint("Each shard would compute its own value: compute it in the client and pass it as a literal or parameter."));
        }
    }
    Ok(Route::on(
        "reference table (every shard)",
        all,
        statement.text.as_str(),
        Combine::Replicated,
        true,
    ))
}
