//! Uncorrelated scalar subqueries over sharded tables, such as pgvector's
//! "nearest neighbors to a row" (`ORDER BY embedding <-> (SELECT embedding
//! FROM items WHERE id = 1)`). Each shard would see only its own rows, so
//! the proxy runs such a subquery first as a query of its own (on the
//! shard its key names, or on every shard with the rows concatenated) and
//! puts its value in its place as a typed literal; the statement is then
//! planned as if the client had written that value. As in PostgreSQL, no
//! row gives NULL and more than one row is 21000.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, Expr, Query, SelectItem, SetExpr, TableFactor, Value, Visit, VisitMut, Visitor,
    VisitorMut,
};

use super::{plan, Combine};
use crate::proxy::backend::Request;
use crate::proxy::cluster::Cluster;
use crate::proxy::execute::shard_stream::ShardStream;
use crate::sql::{self, fold, StatementKind, TableName};
use crate::wire::{backend_messages, types, PgError};

/// The statement with each uncorrelated scalar subquery over a sharded
/// table replaced by its value, or `None` when it has none (or only ones
/// the proxy cannot evaluate first: those keep their 0A000 refusal).
pub async fn inline(
    cluster: &Cluster,
    statement: &sql::Statement,
) -> Result<Option<sql::Statement>, PgError> {
    let candidates = crate::stack::with_tree(statement.depth, || candidates(statement));
    let mut values = Vec::new();
    for (text, table) in candidates {
        if cluster.is_reference(&table) {
            continue;
        }
        let info = cluster.table(&table).await?;
        let sub = sql::parse_single(&text).map_err(PgError::from)?;
        let own_columns = crate::stack::with_tree(sub.depth, || {
            let sqlparser::ast::Statement::Query(q) = &sub.ast else {
                return false;
            };
            reads_only_its_table(q, &table, &info.columns)
        });
        if !own_columns {
            continue;
        }
        if let Some(value) = evaluate(cluster, &sub).await? {
            values.push((text, value));
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    crate::stack::with_tree(statement.depth, || {
        let mut ast = statement.ast.clone();
        let _ = VisitMut::visit(&mut ast, &mut Replacer { values: &values });
        super::reparsed(statement, &ast).map(Some)
    })
}

/// Each scalar subquery (its text) that is one plain SELECT from one
/// table, without parameters or nested subqueries, with that table.
fn candidates(statement: &sql::Statement) -> Vec<(String, TableName)> {
    struct Finder(Vec<(String, TableName)>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Subquery(q) = e {
                if let Some(table) = single_table(q).filter(|_| !nests_or_binds(q)) {
                    self.0.push((q.to_string(), table));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let ast::Statement::Query(query) = &statement.ast else {
        return Vec::new();
    };
    let mut finder = Finder(Vec::new());
    let _ = Visit::visit(query.as_ref(), &mut finder);
    finder.0
}

/// The table of `SELECT … FROM table [alias] …` (no joins, no set
/// operation, no WITH).
fn single_table(q: &Query) -> Option<TableName> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if q.with.is_some() {
        return None;
    }
    let [from] = select.from.as_slice() else {
        return None;
    };
    match (&from.relation, from.joins.is_empty()) {
        (
            TableFactor::Table {
                name, args: None, ..
            },
            true,
        ) => TableName::from_object_name(name),
        _ => None,
    }
}

/// Whether the query holds a subquery of its own or a `$n` parameter
/// (it runs first without the client's parameters).
pub(super) fn nests_or_binds(q: &Query) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(q, |e: &Expr| {
        found |= matches!(
            e,
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
        ) || matches!(e, Expr::Value(v) if matches!(v.value, Value::Placeholder(_)));
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Whether every column the subquery reads is a column of its own table
/// (unqualified, or qualified by the table's name or alias): a name it
/// does not have would be the outer query's, a correlation.
fn reads_only_its_table(q: &Query, table: &TableName, columns: &[String]) -> bool {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return false;
    };
    let alias = match select.from.first().map(|f| &f.relation) {
        Some(TableFactor::Table { alias, .. }) => alias.as_ref().map(|a| fold(&a.name)),
        _ => None,
    };
    let qualifier = alias.unwrap_or_else(|| table.name.clone());
    let mut ok = !select.projection.iter().any(|item| {
        !matches!(
            item,
            SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
        )
    });
    let _ = ast::visit_expressions(q, |e: &Expr| {
        ok &= match e {
            Expr::Identifier(i) => columns.contains(&fold(i)),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => fold(t) == qualifier && columns.contains(&fold(c)),
                _ => false,
            },
            _ => true,
        };
        ControlFlow::<()>::Continue(())
    });
    ok
}

/// The subquery's value as a typed literal (`'[1,2,3]'::vector`, `NULL::int8`),
/// or `None` when its route would need more than concatenating the
/// shards' rows (a merge or an aggregate) or its type has no name here.
async fn evaluate(cluster: &Cluster, sub: &sql::Statement) -> Result<Option<Expr>, PgError> {
    let kind = sql::classify(sub);
    if !matches!(kind, StatementKind::Select(_)) {
        return Ok(None);
    }
    let route = plan(cluster, sub, &kind, sql::advisory_hold(sub), None).await?;
    if !matches!(route.combine, Combine::Concat) || route.writes {
        return Ok(None);
    }
    let mut rows = Vec::new();
    let mut columns = None;
    for (shard, text) in &route.parts {
        let mut chan = cluster.shards[*shard].checkout().await?;
        chan.send(&Request::Simple(text.to_string())).await?;
        let mut stream = ShardStream::new(*shard, chan, cluster.shards[*shard].oids());
        rows.extend(stream.collect().await?);
        columns = columns.or(stream.columns);
    }
    let columns = columns.unwrap_or_default();
    let [column] = columns.as_slice() else {
        return Err(PgError::new(
            "42601",
            "subquery must return only one column",
        ));
    };
    let Some(ty) = types::by_oid(column.type_oid) else {
        return Ok(None);
    };
    let text = match rows.as_slice() {
        [] => None,
        [row] => backend_messages::fields(row)?
            .first()
            .copied()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned()),
        _ => {
            return Err(PgError::new(
                "21000",
                "more than one row returned by a subquery used as an expression",
            ))
        }
    };
    let value = match text {
        Some(t) => Value::SingleQuotedString(t),
        None => Value::Null,
    };
    Ok(Some(Expr::Nested(Box::new(Expr::Cast {
        kind: ast::CastKind::DoubleColon,
        expr: Box::new(Expr::value(value)),
        data_type: ast::DataType::Custom(
            ast::ObjectName::from(vec![ast::Ident::new(ty.name)]),
            Vec::new(),
        ),
        format: None,
    }))))
}

/// Puts each evaluated subquery's value in its place.
struct Replacer<'a> {
    values: &'a [(String, Expr)],
}

impl VisitorMut for Replacer<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(q) = expr {
            let text = q.to_string();
            if let Some((_, value)) = self.values.iter().find(|(t, _)| *t == text) {
                *expr = value.clone();
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(sql: &str) -> Vec<String> {
        candidates(&sql::parse_single(sql).unwrap())
            .into_iter()
            .map(|(t, table)| format!("{table}: {t}"))
            .collect()
    }

    #[test]
    fn scalar_subqueries_of_one_table_are_candidates() {
        assert_eq!(
            found("SELECT * FROM items WHERE id != 1 ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 1) LIMIT 5"),
            ["items: SELECT embedding FROM items WHERE id = 1"]
        );
        assert!(
            found("SELECT * FROM items WHERE id = (SELECT max(id) FROM t JOIN u ON true)")
                .is_empty()
        );
        assert!(found("SELECT (SELECT v FROM t WHERE id = $1)").is_empty());
        assert!(found("SELECT (SELECT v FROM t ORDER BY v LIMIT $1)").is_empty());
        assert!(found("SELECT (SELECT v FROM t WHERE id IN (SELECT 1))").is_empty());
        assert!(found("SELECT * FROM items WHERE id IN (SELECT id FROM t)").is_empty());
    }

    #[test]
    fn names_outside_the_subquery_s_table_are_a_correlation() {
        let columns = ["id".to_string(), "embedding".to_string()];
        let items = TableName {
            schema: None,
            name: "items".into(),
        };
        let check = |sql: &str| {
            let s = sql::parse_single(sql).unwrap();
            let sqlparser::ast::Statement::Query(q) = &s.ast else {
                unreachable!()
            };
            reads_only_its_table(q, &items, &columns)
        };
        assert!(check("SELECT embedding FROM items WHERE id = 1"));
        assert!(check("SELECT i.embedding FROM items i WHERE i.id = 1"));
        assert!(!check("SELECT embedding FROM items WHERE id = category"));
        assert!(!check("SELECT embedding FROM items i WHERE id = o.id"));
        assert!(!check("SELECT * FROM items WHERE id = 1"));
    }
}
