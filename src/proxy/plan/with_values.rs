//! WITH queries over a sharded table that need every shard's rows at once
//! (pgvector's iterative-scan forms: `WITH nearest AS MATERIALIZED (SELECT
//! id, embedding <-> '[1,2,3]' AS distance FROM items ORDER BY distance
//! LIMIT 5) SELECT * FROM nearest WHERE distance < 5 ORDER BY distance`).
//! Each such WITH query runs first as a query of its own (its merge across
//! the shards included) and its rows replace it as a `VALUES` list of typed
//! literals, so the rest of the statement runs as if the client had
//! written those rows.

use sqlparser::ast::{self, SetExpr};

use super::{plan, Combine};
use crate::proxy::backend::Request;
use crate::proxy::cluster::Cluster;
use crate::proxy::execute::merge::{Merged, Window};
use crate::proxy::execute::shard_stream::ShardStream;
use crate::sql::{self, quote_ident, Bound, StatementKind};
use crate::wire::{backend_messages, types, DataRow, FieldDescription, PgError};

/// Rows a WITH query may bring back to the proxy to be inlined.
const MAX_ROWS: usize = 10_000;

/// The statement with each WITH query over sharded tables whose rows come
/// from a merge across shards (ORDER BY with LIMIT, DISTINCT ON) replaced
/// by those rows, or `None` when it has none.
pub async fn inline(
    cluster: &Cluster,
    statement: &sql::Statement,
) -> Result<Option<sql::Statement>, PgError> {
    let texts = crate::stack::with_tree(statement.depth, || cte_texts(statement));
    let mut replaced = Vec::new();
    for (i, text) in texts {
        let sub = sql::parse_single(&text).map_err(PgError::from)?;
        let kind = sql::classify(&sub);
        let StatementKind::Select(info) = &kind else {
            continue;
        };
        if info.tables.is_empty() || info.tables.iter().all(|t| cluster.is_reference(t)) {
            continue;
        }
        let route = plan(cluster, &sub, &kind, sql::advisory_hold(&sub), None).await?;
        let Combine::Merge {
            keys,
            hidden,
            groups,
            offset,
            limit,
        } = &route.combine
        else {
            continue;
        };
        let window = Window {
            offset: constant(offset.as_ref()).unwrap_or(0),
            limit: constant(limit.as_ref()),
        };
        let mut streams = Vec::with_capacity(route.parts.len());
        for (shard, sql) in &route.parts {
            let mut chan = cluster.shards[*shard].checkout().await?;
            chan.send(&Request::Simple(sql.to_string())).await?;
            streams.push(ShardStream::new(
                *shard,
                chan,
                cluster.shards[*shard].oids(),
            ));
        }
        let mut merged = Merged::start(&mut streams, keys, *hidden, *groups, window).await?;
        let mut rows = Vec::new();
        while let Some(row) = merged.next(&mut streams).await? {
            if rows.len() == MAX_ROWS {
                return Err(PgError::feature_not_supported(format!(
                    "a WITH query with LIMIT, DISTINCT, GROUP BY, aggregates or window functions returning more than {MAX_ROWS} rows is not supported across shards"
                )));
            }
            rows.push(row);
        }
        for s in streams.iter_mut() {
            s.finish().await?;
        }
        let Some(values) = values_query(merged.columns(), &rows)? else {
            continue;
        };
        replaced.push((i, values));
    }
    if replaced.is_empty() {
        return Ok(None);
    }
    crate::stack::with_tree(statement.depth, || {
        let mut ast = statement.ast.clone();
        if let ast::Statement::Query(q) = &mut ast {
            if let Some(with) = &mut q.with {
                for (i, values) in replaced {
                    let ast::Statement::Query(v) = sql::parse_single(&values)
                        .map_err(PgError::from)?
                        .into_ast()
                    else {
                        continue;
                    };
                    with.cte_tables[i].query = v;
                }
            }
        }
        super::reparsed(statement, &ast).map(Some)
    })
}

/// The text of each WITH query (by position) of a non-recursive WITH that
/// is one SELECT without parameters or nested subqueries.
fn cte_texts(statement: &sql::Statement) -> Vec<(usize, String)> {
    let ast::Statement::Query(q) = &statement.ast else {
        return Vec::new();
    };
    match &q.with {
        Some(with) if !with.recursive => with
            .cte_tables
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(c.query.body.as_ref(), SetExpr::Select(_))
                    && !super::scalar_subquery::nests_or_binds(&c.query)
            })
            .map(|(i, c)| (i, c.query.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

fn constant(bound: Option<&Bound>) -> Option<u64> {
    bound?.resolve(|_| None)
}

/// `SELECT * FROM (VALUES ('1'::int8, …), …) AS v(id, …)` for the rows
/// (`SELECT NULL::int8 AS id, … WHERE false` for none); `None` when a
/// column's type has no name here.
fn values_query(columns: &[FieldDescription], rows: &[DataRow]) -> Result<Option<String>, PgError> {
    let mut names = Vec::with_capacity(columns.len());
    for c in columns {
        let Some(ty) = types::by_oid(c.type_oid) else {
            return Ok(None);
        };
        names.push(ty.name);
    }
    let literal = |value: Option<&[u8]>, ty: &str| match value {
        Some(v) => format!("'{}'::{ty}", String::from_utf8_lossy(v).replace('\'', "''")),
        None => format!("NULL::{ty}"),
    };
    let aliases: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    if rows.is_empty() {
        let nulls: Vec<String> = names
            .iter()
            .zip(&aliases)
            .map(|(ty, a)| format!("{} AS {a}", literal(None, ty)))
            .collect();
        return Ok(Some(format!("SELECT {} WHERE false", nulls.join(", "))));
    }
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let fields = backend_messages::fields(row)?;
        let items: Vec<String> = fields
            .iter()
            .zip(&names)
            .map(|(f, ty)| literal(*f, ty))
            .collect();
        tuples.push(format!("({})", items.join(", ")));
    }
    Ok(Some(format!(
        "SELECT * FROM (VALUES {}) AS v({})",
        tuples.join(", "),
        aliases.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{oid, DataRowBuilder};

    #[test]
    fn rows_become_typed_values() {
        let columns: Vec<FieldDescription> = [(oid::INT8, "id"), (oid::FLOAT8, "Dist")]
            .iter()
            .map(|&(t, n)| FieldDescription::new(n, types::by_oid(t).unwrap()))
            .collect();
        let mut b = DataRowBuilder::default();
        b.push(b"7");
        b.push(b"0.5");
        let sql = values_query(&columns, &[b.finish()]).unwrap().unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM (VALUES ('7'::int8, '0.5'::float8)) AS v(id, \"Dist\")"
        );
        assert_eq!(
            values_query(&columns, &[]).unwrap().unwrap(),
            "SELECT NULL::int8 AS id, NULL::float8 AS \"Dist\" WHERE false"
        );
    }
}
