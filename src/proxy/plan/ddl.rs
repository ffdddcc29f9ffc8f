//! The route of DDL: every shard, after refusing what sharding would
//! break — a constraint each shard could only check against its own rows
//! (see [`crate::sql::unshardable_constraint`]), or a reference table's
//! column whose value each shard would compute for itself.

use super::{Combine, Route};
use crate::proxy::cluster::Cluster;
use crate::sql::{self, DdlAction, TableName};
use crate::wire::PgError;

/// Routes DDL on `tables` to every shard (the proxy forgets what it
/// learned about them).
pub(super) async fn route<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    tables: &[TableName],
    action: DdlAction,
) -> Result<Route<'s>, PgError> {
    let all = cluster.all();
    if all.len() > 1 {
        refuse_unshardable(cluster, statement, tables, action).await?;
    }
    for t in tables {
        cluster.forget(t);
    }
    Ok(Route::on(
        "broadcast",
        all,
        statement.text.as_str(),
        Combine::Broadcast,
        true,
    ))
}

/// 0A000 for DDL that would not hold across shards.
async fn refuse_unshardable(
    cluster: &Cluster,
    statement: &sql::Statement,
    tables: &[TableName],
    action: DdlAction,
) -> Result<(), PgError> {
    let Some(table) = tables.first() else {
        return Ok(());
    };
    // The key of a table altered or indexed is its own (an unknown table
    // is left to the shards' error); a table created has its configured
    // key or its primary key.
    let key = match action {
        DdlAction::AlterTable | DdlAction::CreateIndex => {
            cluster.table(table).await.ok().map(|i| i.key.clone())
        }
        _ => Some(
            cluster
                .configured_key(&table.to_string())
                .map(str::to_string),
        ),
    };
    let is_reference = |t: &TableName| cluster.is_reference(t);
    let refused =
        key.and_then(|key| sql::unshardable_constraint(statement, key.as_deref(), &is_reference));
    if let Some(feature) = refused {
        return Err(PgError::feature_not_supported(format!(
            "{feature} is not supported across shards"
        ))
        .with_hint("Each shard would check it against its own rows only. A table named in reference_tables (proxy configuration) is whole on every shard: UNIQUE constraints on it and FOREIGN KEYs to it hold."));
    }
    let per_shard = cluster
        .is_reference(table)
        .then(|| sql::per_shard_default(statement))
        .flatten();
    if let Some(column) = per_shard {
        return Err(PgError::feature_not_supported(format!(
            "{column} in reference table {table} is not supported: each shard would compute its own value"
        ))
        .with_hint("Give the value in every INSERT (a client-generated key, a literal or a parameter)."));
    }
    Ok(())
}
