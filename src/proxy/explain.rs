//! `EXPLAIN` through the proxy: the route (kind, shards, the SQL each
//! shard runs) above each shard's own plan for that SQL.

use super::cluster::Cluster;
use super::execute::shard_stream::{sync_settings, ShardStream};
use super::plan;
use crate::sql::{self, StatementKind};
use crate::wire::{oid, FieldDescription, Params, PgError, Responder, Value};

/// Answers `EXPLAIN [ANALYZE] <statement>`.
pub async fn explain(
    cluster: &Cluster,
    statement: &sql::Statement,
    inner_kind: &StatementKind,
    analyze: bool,
    params: Option<&Params>,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let sqlparser::ast::Statement::Explain {
        statement: inner, ..
    } = &statement.ast
    else {
        return Err(PgError::feature_not_supported(
            "this EXPLAIN form is not supported",
        ));
    };
    let inner = sql::parse_single(&inner.to_string()).map_err(PgError::from)?;
    let advisory = sql::advisory_hold(&inner);
    let route = plan::plan(cluster, &inner, inner_kind, advisory, params).await?;
    let names: Vec<&str> = route
        .parts
        .iter()
        .map(|(s, _)| cluster.shards[*s].name())
        .collect();
    let mut lines = vec![format!(
        "pgvshard route: {} on {}",
        route.label,
        names.join(", ")
    )];
    let prefix = if analyze {
        "EXPLAIN ANALYZE "
    } else {
        "EXPLAIN "
    };
    for (shard, shard_sql) in &route.parts {
        let backend = &cluster.shards[*shard];
        let mut chan = backend.checkout().await?;
        sync_settings(chan.as_mut(), out.session()).await?;
        let text = format!("{prefix}{shard_sql}");
        let oids = backend.oids();
        let request = super::execute::request(&text, params, &oids, &[]);
        chan.send(&request).await?;
        let mut stream = ShardStream::new(*shard, chan, oids);
        lines.push(format!("  Shard {}: {shard_sql}", backend.name()));
        for row in stream.collect().await? {
            if let Some(Some(line)) = super::backend::messages::fields(&row)?.first() {
                lines.push(format!("    {}", String::from_utf8_lossy(line)));
            }
        }
    }
    let column = FieldDescription::builtin("QUERY PLAN", oid::TEXT);
    out.row_description(&[column]);
    for line in lines {
        out.row(&[Some(Value::Text(line))]).await?;
    }
    out.complete("EXPLAIN");
    Ok(())
}
