//! Rewriting a sorted, limited SELECT into the query every shard runs, and
//! the plan the proxy follows to merge the shards' already-sorted streams.
//!
//! A shard returns its first `offset + limit` rows (no OFFSET: a row the
//! client skips may come from any shard), with every sort key as an output
//! column so that the proxy can k-way merge without recomputing anything.
//! Sort keys the client did not project are appended as hidden columns
//! under reserved aliases; the proxy drops them before answering.

use sqlparser::ast::{
    Distinct, Expr, Ident, LimitClause, OrderBy, OrderByExpr, OrderByKind, OrderByOptions,
    OrderBySort, Query, SelectItem, SetExpr,
};

use super::error::{Result, SqlError};
use super::knn::{limit_offset_parts, plain_select, resolve_order_key, Bound, KnnQuery};
use super::parse::Statement;

/// Alias of the hidden KNN distance column.
pub const HIDDEN_DISTANCE: &str = "__pgvshard_dist";
/// Alias of the hidden outer distance of a rerank query.
pub const HIDDEN_RERANK: &str = "__pgvshard_rerank";
/// Prefix of the hidden sort-key columns of other sorted queries.
pub const HIDDEN_SORT_PREFIX: &str = "__pgvshard_sort_";

/// The SQL each shard runs for a sorted query, and how to merge the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardQuery {
    /// The statement text for every shard.
    pub sql: String,
    /// Merge order: compare rows by these keys, in order.
    pub sort_keys: Vec<SortKey>,
    /// How many trailing output columns are hidden (drop before answering).
    pub hidden_columns: usize,
    /// The client's LIMIT, applied by the proxy after merging.
    pub limit: Option<Bound>,
    /// The client's OFFSET, applied by the proxy after merging.
    pub offset: Option<Bound>,
}

/// One merge key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// Which output column holds the key.
    pub column: OutputColumn,
    /// DESC.
    pub descending: bool,
    /// Where NULLs sort (PostgreSQL's default: last for ASC, first for DESC).
    pub nulls_first: bool,
}

/// An output column of the shard query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// The client's select item at this index (no wildcard precedes it).
    Item(usize),
    /// The n-th hidden column (0-based), counted from the first hidden one;
    /// hidden columns are the last `hidden_columns` output columns.
    Hidden(usize),
}

/// The shard statement for a KNN query: `LIMIT offset+limit`, no OFFSET,
/// and the distance as a hidden last column (`__pgvshard_dist`) unless the
/// client projects it. For a rerank query it is the inner (index) query,
/// with the outer distance as a further hidden column (`__pgvshard_rerank`),
/// so that the proxy can take the global inner top-N and then re-sort.
pub fn rewrite_knn_for_shard(statement: &Statement, knn: &KnnQuery) -> String {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(query) = &statement.ast else {
            return statement.text.clone();
        };
        let mut shard = match (&knn.rerank, query.body.as_ref()) {
            (Some(_), SetExpr::Select(select)) => match select.from.first().map(|f| &f.relation) {
                Some(sqlparser::ast::TableFactor::Derived { subquery, .. }) => (**subquery).clone(),
                _ => (**query).clone(),
            },
            _ => (**query).clone(),
        };
        push_down_limit(&mut shard);
        if let SetExpr::Select(select) = shard.body.as_mut() {
            if knn.projected_distance.is_none() || knn.rerank.is_some() {
                select
                    .projection
                    .push(hidden(knn.distance.clone(), HIDDEN_DISTANCE));
            }
            if let Some(rerank) = &knn.rerank {
                select
                    .projection
                    .push(hidden(rerank.distance.clone(), HIDDEN_RERANK));
            }
        }
        shard.to_string()
    })
}

/// The shard statement and merge plan for a non-aggregate SELECT with
/// ORDER BY (any keys, with or without LIMIT/OFFSET), or with LIMIT/OFFSET
/// and no ORDER BY (no keys: PostgreSQL promises no order, so any rows
/// do; the merge takes them shard by shard). None when the query is not
/// such a SELECT.
pub fn rewrite_sorted_for_shard(statement: &Statement) -> Option<ShardQuery> {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(query) = &statement.ast else {
            return None;
        };
        let select = plain_select(query)?;
        let (limit, offset) = limit_offset_parts(query)?;
        let keys = match &query.order_by {
            Some(order_by) => match &order_by.kind {
                OrderByKind::Expressions(keys) => keys.as_slice(),
                OrderByKind::All(_) => return None,
            },
            None if limit.is_none() && offset.is_none() => return None,
            None => &[],
        };
        sorted_shard_query(query, select, keys, false)
    })
}

/// The shard statement and merge plan for `SELECT DISTINCT ON (e, …)` over
/// one table, and how many leading merge keys make a group: each shard
/// keeps the first row of each of its groups (and at most `offset +
/// limit` groups), the proxy merges by the ORDER BY and keeps the first
/// row of each group. As in PostgreSQL, the expressions must be the ORDER
/// BY's leading keys (42P10 otherwise); those it lacks are sorted after
/// it. `Ok(None)` for any other statement, or one the merge cannot serve.
pub fn rewrite_distinct_on_for_shard(statement: &Statement) -> Result<Option<(ShardQuery, usize)>> {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(query) = &statement.ast else {
            return Ok(None);
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return Ok(None);
        };
        let Some(Distinct::On(on)) = &select.distinct else {
            return Ok(None);
        };
        let mut plain = select.clone();
        plain.distinct = None;
        let mut undistinct = (**query).clone();
        *undistinct.body = SetExpr::Select(plain);
        if plain_select(&undistinct).is_none() {
            return Ok(None);
        }
        let target = |e: &Expr| resolve_order_key(select, e).0.to_string();
        let groups: Vec<String> = on.iter().map(&target).collect();
        let mut keys = match &query.order_by {
            None => Vec::new(),
            Some(order_by) => match &order_by.kind {
                OrderByKind::Expressions(keys) => keys.clone(),
                OrderByKind::All(_) => return Ok(None),
            },
        };
        let mismatch = || SqlError {
            sqlstate: "42P10",
            message: "SELECT DISTINCT ON expressions must match initial ORDER BY expressions"
                .into(),
            position: None,
            hint: None,
        };
        let mut covered: Vec<String> = Vec::new();
        let mut leading = 0;
        let mut skipped = false;
        for k in &keys {
            let t = target(&k.expr);
            if !groups.contains(&t) {
                skipped = true;
            } else if skipped {
                return Err(mismatch());
            } else {
                leading += 1;
                if !covered.contains(&t) {
                    covered.push(t);
                }
            }
        }
        let mut appended = false;
        for (t, e) in groups.iter().zip(on) {
            if covered.contains(t) {
                continue;
            }
            if skipped {
                return Err(mismatch());
            }
            covered.push(t.clone());
            leading += 1;
            keys.push(OrderByExpr {
                expr: e.clone(),
                options: OrderByOptions {
                    sort: None,
                    nulls_first: None,
                },
                with_fill: None,
            });
            appended = true;
        }
        Ok(sorted_shard_query(query, select, &keys, appended).map(|q| (q, leading)))
    })
}

/// The shard query of `query` sorted by `keys` (set as its ORDER BY when
/// `set_order`), with hidden columns for keys it does not project.
fn sorted_shard_query(
    query: &Query,
    select: &sqlparser::ast::Select,
    keys: &[OrderByExpr],
    set_order: bool,
) -> Option<ShardQuery> {
    let (limit, offset) = limit_offset_parts(query)?;
    let mut hidden_items = Vec::new();
    let mut sort_keys = Vec::new();
    for key in keys {
        let (expr, projected) = resolve_order_key(select, &key.expr);
        let column = match projected {
            Some(i) => OutputColumn::Item(i),
            None => {
                let n = hidden_items.len();
                hidden_items.push(hidden(expr.clone(), &format!("{HIDDEN_SORT_PREFIX}{n}")));
                OutputColumn::Hidden(n)
            }
        };
        let descending = match &key.options.sort {
            None | Some(OrderBySort::Asc) => false,
            Some(OrderBySort::Desc) => true,
            Some(OrderBySort::Using(_)) => return None,
        };
        sort_keys.push(SortKey {
            column,
            descending,
            nulls_first: key.options.nulls_first.unwrap_or(descending),
        });
    }
    let mut shard = query.clone();
    if set_order {
        shard.order_by = Some(OrderBy {
            kind: OrderByKind::Expressions(keys.to_vec()),
            interpolate: None,
        });
    }
    push_down_limit(&mut shard);
    let hidden_columns = hidden_items.len();
    if let SetExpr::Select(select) = shard.body.as_mut() {
        select.projection.extend(hidden_items);
    }
    Some(ShardQuery {
        sql: shard.to_string(),
        sort_keys,
        hidden_columns,
        limit,
        offset,
    })
}

fn hidden(expr: Expr, alias: &str) -> SelectItem {
    SelectItem::ExprWithAlias {
        expr,
        alias: Ident::new(alias),
    }
}

/// `LIMIT l OFFSET o` → `LIMIT o + l` (folded when both are constants);
/// a lone OFFSET is dropped. Does nothing unless both are bounds.
fn push_down_limit(query: &mut Query) {
    match limit_offset_parts(query) {
        Some((Some(limit), Some(offset))) => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(offset.plus(&limit).to_expr()),
                offset: None,
                limit_by: Vec::new(),
            });
        }
        Some((None, Some(_))) => query.limit_clause = None,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::knn::knn_query;
    use crate::sql::parse::parse_single;

    fn knn_shard_sql(sql: &str) -> String {
        let stmt = parse_single(sql).unwrap();
        let knn = knn_query(&stmt).unwrap();
        let out = rewrite_knn_for_shard(&stmt, &knn);
        // The rewritten text must parse back and still be a KNN query.
        let again = parse_single(&out).unwrap();
        let k2 = knn_query(&again).unwrap();
        assert_eq!((k2.metric, k2.column), (knn.metric, knn.column));
        out
    }

    #[test]
    fn knn_gets_limit_plus_offset_and_hidden_distance() {
        assert_eq!(
            knn_shard_sql(
                "SELECT id FROM items ORDER BY embedding <+> '[1,2,3]' LIMIT 5 OFFSET 10"
            ),
            "SELECT id, embedding <+> '[1,2,3]' AS __pgvshard_dist FROM items \
             ORDER BY embedding <+> '[1,2,3]' LIMIT 15"
        );
        assert_eq!(
            knn_shard_sql(
                "SELECT id, embedding <=> $1 AS d FROM items WHERE category = 5 \
                 ORDER BY embedding <=> $1 LIMIT 10"
            ),
            "SELECT id, embedding <=> $1 AS d FROM items WHERE category = 5 \
             ORDER BY embedding <=> $1 LIMIT 10"
        );
        assert_eq!(
            knn_shard_sql("SELECT * FROM items ORDER BY embedding <-> $1 LIMIT $2 OFFSET $3"),
            "SELECT *, embedding <-> $1 AS __pgvshard_dist FROM items \
             ORDER BY embedding <-> $1 LIMIT $3 + $2"
        );
    }

    #[test]
    fn rerank_sends_the_inner_query_with_both_distances() {
        let sql = knn_shard_sql(
            "SELECT * FROM (SELECT * FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> \
             binary_quantize('[1,-2,3]') LIMIT 20) ORDER BY embedding <=> '[1,-2,3]' LIMIT 5",
        );
        assert_eq!(
            sql,
            "SELECT *, binary_quantize(embedding)::BIT(3) <~> binary_quantize('[1,-2,3]') AS __pgvshard_dist, \
             embedding <=> '[1,-2,3]' AS __pgvshard_rerank FROM items \
             ORDER BY binary_quantize(embedding)::BIT(3) <~> binary_quantize('[1,-2,3]') LIMIT 20"
        );
    }

    #[test]
    fn sorted_scatter_plan() {
        let stmt = parse_single(
            "SELECT id, name FROM items WHERE x > 1 ORDER BY name DESC, created LIMIT 3 OFFSET 1",
        )
        .unwrap();
        let plan = rewrite_sorted_for_shard(&stmt).unwrap();
        assert_eq!(
            plan.sql,
            "SELECT id, name, created AS __pgvshard_sort_0 FROM items WHERE x > 1 \
             ORDER BY name DESC, created LIMIT 4"
        );
        assert_eq!(
            plan.sort_keys,
            vec![
                SortKey {
                    column: OutputColumn::Item(1),
                    descending: true,
                    nulls_first: true
                },
                SortKey {
                    column: OutputColumn::Hidden(0),
                    descending: false,
                    nulls_first: false
                },
            ]
        );
        assert_eq!(plan.hidden_columns, 1);
        assert_eq!(
            (plan.limit, plan.offset),
            (Some(Bound::value(3)), Some(Bound::value(1)))
        );
        parse_single(&plan.sql).unwrap();

        let stmt = parse_single("SELECT id FROM items ORDER BY id OFFSET 2").unwrap();
        let plan = rewrite_sorted_for_shard(&stmt).unwrap();
        assert_eq!(plan.sql, "SELECT id FROM items ORDER BY id");
        assert_eq!(plan.offset, Some(Bound::value(2)));
        assert!(rewrite_sorted_for_shard(
            &parse_single("SELECT count(*) FROM t GROUP BY a ORDER BY 1").unwrap()
        )
        .is_none());
    }
}
