//! Splitting an aggregate SELECT into per-shard partial aggregates and the
//! plan that combines them, for count/sum/min/max/avg with GROUP BY.
//!
//! Every shard runs the query without ORDER BY, LIMIT and OFFSET, with each
//! `avg(x)` replaced by `sum(x), count(x)` and every GROUP BY key as an
//! output column; the proxy groups the partial rows by those keys, combines
//! (count and sum add, min and max compare, avg divides the summed sum by
//! the summed count), then sorts and limits. An aggregate over DISTINCT
//! values (`count(DISTINCT x)`) has each shard return its distinct `x` per
//! group (`x` joins the shard's GROUP BY, which the other partials combine
//! over just as well) and runs over the values of all shards in the final
//! query. Anything whose partial results
//! cannot be combined exactly is refused with 0A000 naming it, never
//! answered approximately.

use sqlparser::ast::{
    self, Expr, FunctionArguments, GroupByExpr, Ident, OrderByKind, OrderBySort, SelectItem,
    SetExpr,
};

use super::error::{Result, SqlError};
use super::knn::{limit_offset_parts, resolve_order_key, Bound};
use super::names::fold;
use super::parse::Statement;

/// How to combine the shards' partial results into the client's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatePlan {
    /// The statement every shard runs.
    pub shard_sql: String,
    /// Shard output columns that form the group key.
    pub group_columns: Vec<usize>,
    /// One entry per client output column, in order.
    pub outputs: Vec<CombinedColumn>,
    /// ORDER BY over client output columns, applied after combining.
    pub order: Vec<OrderKey>,
    /// LIMIT, applied after combining and sorting.
    pub limit: Option<Bound>,
    /// OFFSET, applied after combining and sorting.
    pub offset: Option<Bound>,
}

/// A client output column and the shard output column(s) it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CombinedColumn {
    /// A group key, taken as is.
    Group(usize),
    /// count: the sum of the partial counts.
    Count(usize),
    /// sum: the sum of the partial sums (NULL when all are NULL).
    Sum(usize),
    /// min of the partial minimums.
    Min(usize),
    /// max of the partial maximums.
    Max(usize),
    /// An aggregate over the DISTINCT values of a shard column.
    Distinct {
        /// The aggregate.
        function: DistinctAggregate,
        /// The column of the values.
        column: usize,
    },
    /// avg: summed sums divided by summed counts (vectors too).
    Avg {
        /// The column of the partial `sum(x)`.
        sum: usize,
        /// The column of the partial `count(x)`.
        count: usize,
    },
}

/// An aggregate taken over DISTINCT values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctAggregate {
    /// `count(DISTINCT x)`.
    Count,
    /// `sum(DISTINCT x)`.
    Sum,
    /// `avg(DISTINCT x)`.
    Avg,
    /// `min(DISTINCT x)`.
    Min,
    /// `max(DISTINCT x)`.
    Max,
}

impl DistinctAggregate {
    /// The function's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            DistinctAggregate::Count => "count",
            DistinctAggregate::Sum => "sum",
            DistinctAggregate::Avg => "avg",
            DistinctAggregate::Min => "min",
            DistinctAggregate::Max => "max",
        }
    }
}

/// One sort key of the combined rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderKey {
    /// Client output column index.
    pub output: usize,
    /// DESC.
    pub descending: bool,
    /// NULLs first.
    pub nulls_first: bool,
}

/// Aggregates that exist but whose shard results cannot be combined here.
const UNCOMBINABLE: &[&str] = &[
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "corr",
    "covar_pop",
    "covar_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "xmlagg",
];

/// The combination plan for an aggregate SELECT; None when the statement
/// aggregates nothing. 0A000 for what cannot be combined across shards.
pub fn aggregate_plan(statement: &Statement) -> Result<Option<AggregatePlan>> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Query(query) = &statement.ast else {
            return Ok(None);
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return Ok(None);
        };
        let group_by = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
                &positions_resolved(exprs, &select.projection)
            }
            _ => {
                return Err(SqlError::unsupported(
                    "GROUP BY ALL, ROLLUP, CUBE or GROUPING SETS across shards",
                ))
            }
        };
        let aggregates = select
            .projection
            .iter()
            .any(|item| item_expr(item).is_some_and(contains_aggregate));
        if !aggregates && group_by.is_empty() {
            return Ok(None);
        }
        if select.having.is_some() {
            return Err(SqlError::unsupported("HAVING across shards"));
        }
        if select.distinct.is_some() {
            return Err(SqlError::unsupported(
                "DISTINCT with aggregates across shards",
            ));
        }
        let mut shard_items = Vec::new();
        let mut outputs = Vec::new();
        let mut distinct_args: Vec<Expr> = Vec::new();
        for item in &select.projection {
            let expr = item_expr(item)
                .ok_or_else(|| SqlError::unsupported("* in an aggregate query across shards"))?;
            let mut push = |e: Expr| {
                shard_items.push(SelectItem::UnnamedExpr(e));
                shard_items.len() - 1
            };
            let combined = match partial(expr)? {
                Some(Partial::Count) => CombinedColumn::Count(push(expr.clone())),
                Some(Partial::Sum) => CombinedColumn::Sum(push(expr.clone())),
                Some(Partial::Min) => CombinedColumn::Min(push(expr.clone())),
                Some(Partial::Max) => CombinedColumn::Max(push(expr.clone())),
                Some(Partial::Distinct(function, arg)) => {
                    let arg = *arg;
                    if !group_by.contains(&arg) && !distinct_args.contains(&arg) {
                        distinct_args.push(arg.clone());
                    }
                    CombinedColumn::Distinct {
                        function,
                        column: push(arg),
                    }
                }
                Some(Partial::Avg(parts)) => {
                    let (sum, count) = *parts;
                    CombinedColumn::Avg {
                        sum: push(sum),
                        count: push(count),
                    }
                }
                None if contains_aggregate(expr) => {
                    return Err(SqlError::unsupported(format!(
                        "expression over an aggregate ({expr}) across shards"
                    )))
                }
                None if group_by.contains(expr) => CombinedColumn::Group(push(expr.clone())),
                None => {
                    return Err(SqlError::unsupported(format!(
                        "{expr} outside GROUP BY in an aggregate query across shards"
                    )))
                }
            };
            outputs.push(combined);
        }
        let mut group_columns = Vec::new();
        for key in group_by {
            let at = shard_items
                .iter()
                .position(|item| matches!(item, SelectItem::UnnamedExpr(e) if e == key));
            group_columns.push(at.unwrap_or_else(|| {
                shard_items.push(SelectItem::UnnamedExpr(key.clone()));
                shard_items.len() - 1
            }));
        }
        let order = order_keys(query, select)?;
        let (limit, offset) = limit_offset_parts(query).ok_or_else(|| {
            SqlError::unsupported("LIMIT or OFFSET expressions in an aggregate query across shards")
        })?;
        let mut shard = (**query).clone();
        shard.order_by = None;
        shard.limit_clause = None;
        if let SetExpr::Select(s) = shard.body.as_mut() {
            s.projection = shard_items;
            // The keys as expressions: a position (`GROUP BY 1`) would
            // name another column of the shard's select list.
            if !group_by.is_empty() || !distinct_args.is_empty() {
                let mut keys = group_by.clone();
                keys.extend(distinct_args);
                s.group_by = GroupByExpr::Expressions(keys, Vec::new());
            }
        }
        Ok(Some(AggregatePlan {
            shard_sql: shard.to_string(),
            group_columns,
            outputs,
            order,
            limit,
            offset,
        }))
    })
}

/// GROUP BY keys with each position (`GROUP BY 1`) replaced by the
/// select item it names; a position outside the list stays (the shard
/// reports it).
fn positions_resolved(keys: &[Expr], projection: &[SelectItem]) -> Vec<Expr> {
    keys.iter()
        .map(|key| {
            let position = match key {
                Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<usize>().ok(),
                    _ => None,
                },
                _ => None,
            };
            position
                .and_then(|n| projection.get(n.checked_sub(1)?))
                .and_then(item_expr)
                .map_or_else(|| key.clone(), Clone::clone)
        })
        .collect()
}

/// What a shard computes for one aggregate select item: the item itself,
/// or for avg the `sum(x)` and `count(x)` calls.
enum Partial {
    Count,
    Sum,
    Min,
    Max,
    Avg(Box<(Expr, Expr)>),
    /// Over DISTINCT values of the argument.
    Distinct(DistinctAggregate, Box<Expr>),
}

/// The partial aggregate(s) for a select item that is one aggregate call.
fn partial(expr: &Expr) -> Result<Option<Partial>> {
    let Expr::Function(f) = expr else {
        return Ok(None);
    };
    let name = aggregate_name(f);
    let Some(name) = name.filter(|n| is_aggregate_name(n)) else {
        return Ok(None);
    };
    if UNCOMBINABLE.contains(&name.as_str()) {
        return Err(SqlError::unsupported(format!(
            "aggregate {name}() across shards"
        )));
    }
    if !f.within_group.is_empty() {
        return Err(SqlError::unsupported(format!(
            "ordered-set aggregate {name}() across shards"
        )));
    }
    if f.over.is_some() {
        return Err(SqlError::unsupported(format!(
            "window function {name}() across shards"
        )));
    }
    if let FunctionArguments::List(list) = &f.args {
        if list.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct) {
            let function = match name.as_str() {
                "count" => DistinctAggregate::Count,
                "sum" => DistinctAggregate::Sum,
                "avg" => DistinctAggregate::Avg,
                "min" => DistinctAggregate::Min,
                _ => DistinctAggregate::Max,
            };
            let arg = match list.args.as_slice() {
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))]
                    if f.filter.is_none() && list.clauses.is_empty() =>
                {
                    e.clone()
                }
                _ => {
                    return Err(SqlError::unsupported(format!(
                    "{name}(DISTINCT …) with several arguments, FILTER or ORDER BY across shards"
                )))
                }
            };
            return Ok(Some(Partial::Distinct(function, Box::new(arg))));
        }
        if !list.clauses.is_empty() {
            return Err(SqlError::unsupported(format!(
                "ORDER BY inside {name}() across shards"
            )));
        }
    }
    let renamed = |new: &str| {
        let mut g = f.clone();
        g.name = ast::ObjectName::from(vec![Ident::new(new)]);
        Expr::Function(g)
    };
    Ok(Some(match name.as_str() {
        "count" => Partial::Count,
        "sum" => Partial::Sum,
        "min" => Partial::Min,
        "max" => Partial::Max,
        _ => Partial::Avg(Box::new((renamed("sum"), renamed("count")))),
    }))
}

fn aggregate_name(f: &ast::Function) -> Option<String> {
    match f.name.0.as_slice() {
        [part] => part.as_ident().map(fold),
        _ => None,
    }
}

fn is_aggregate_name(name: &str) -> bool {
    matches!(name, "count" | "sum" | "min" | "max" | "avg") || UNCOMBINABLE.contains(&name)
}

pub(crate) fn contains_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            if f.over.is_none() && aggregate_name(f).is_some_and(|n| is_aggregate_name(&n)) {
                found = true;
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

pub(crate) fn order_keys(query: &ast::Query, select: &ast::Select) -> Result<Vec<OrderKey>> {
    let Some(order_by) = &query.order_by else {
        return Ok(Vec::new());
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return Err(SqlError::unsupported("ORDER BY ALL across shards"));
    };
    keys.iter()
        .map(|key| {
            let (_, index) = resolve_order_key(select, &key.expr);
            let output = index.ok_or_else(|| {
                SqlError::unsupported(format!(
                    "ORDER BY {} that is not an output column of an aggregate query across shards",
                    key.expr
                ))
            })?;
            let descending = match &key.options.sort {
                None | Some(OrderBySort::Asc) => false,
                Some(OrderBySort::Desc) => true,
                Some(OrderBySort::Using(_)) => {
                    return Err(SqlError::unsupported("ORDER BY … USING across shards"))
                }
            };
            Ok(OrderKey {
                output,
                descending,
                nulls_first: key.options.nulls_first.unwrap_or(descending),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    fn plan(sql: &str) -> Result<Option<AggregatePlan>> {
        aggregate_plan(&parse_single(sql).unwrap())
    }

    #[test]
    fn avg_becomes_sum_and_count() {
        let p = plan(
            "SELECT category, count(*), avg(embedding) AS centre, max(price) FROM items \
             WHERE price > 0 GROUP BY category ORDER BY 2 DESC, category LIMIT 10 OFFSET 1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p.shard_sql,
            "SELECT category, count(*), sum(embedding), count(embedding), max(price) FROM items \
             WHERE price > 0 GROUP BY category"
        );
        assert_eq!(
            p.outputs,
            vec![
                CombinedColumn::Group(0),
                CombinedColumn::Count(1),
                CombinedColumn::Avg { sum: 2, count: 3 },
                CombinedColumn::Max(4)
            ]
        );
        assert_eq!(p.group_columns, vec![0]);
        assert_eq!(
            p.order,
            vec![
                OrderKey {
                    output: 1,
                    descending: true,
                    nulls_first: true
                },
                OrderKey {
                    output: 0,
                    descending: false,
                    nulls_first: false
                }
            ]
        );
        assert_eq!(
            (p.limit, p.offset),
            (Some(Bound::value(10)), Some(Bound::value(1)))
        );
        parse_single(&p.shard_sql).unwrap();
    }

    #[test]
    fn group_by_positions_name_select_items() {
        let p = plan("SELECT avg(x), to_char(at, 'YYYY') AS y FROM t GROUP BY 2")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.shard_sql,
            "SELECT sum(x), count(x), to_char(at, 'YYYY') FROM t GROUP BY to_char(at, 'YYYY')"
        );
        assert_eq!(p.group_columns, vec![2]);
    }

    #[test]
    fn unprojected_group_keys_are_appended() {
        let p = plan("SELECT sum(x) FILTER (WHERE x > 0) FROM t GROUP BY a")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.shard_sql,
            "SELECT sum(x) FILTER (WHERE x > 0), a FROM t GROUP BY a"
        );
        assert_eq!(p.group_columns, vec![1]);
        assert_eq!(p.outputs, vec![CombinedColumn::Sum(0)]);
    }

    #[test]
    fn distinct_arguments_join_the_shards_group_by() {
        let p = plan(
            "SELECT a, count(DISTINCT b), count(*), avg(DISTINCT c) FROM t GROUP BY a ORDER BY a",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p.shard_sql,
            "SELECT a, b, count(*), c FROM t GROUP BY a, b, c"
        );
        assert_eq!(p.group_columns, vec![0]);
        assert_eq!(
            p.outputs[1],
            CombinedColumn::Distinct {
                function: DistinctAggregate::Count,
                column: 1
            }
        );
        let p = plan("SELECT count(DISTINCT embedding) FROM t")
            .unwrap()
            .unwrap();
        assert_eq!(p.shard_sql, "SELECT embedding FROM t GROUP BY embedding");
    }

    #[test]
    fn not_aggregates() {
        assert_eq!(plan("SELECT id FROM t ORDER BY id LIMIT 3").unwrap(), None);
        assert_eq!(plan("INSERT INTO t VALUES (1)").unwrap(), None);
    }

    #[test]
    fn refuses_what_cannot_be_combined() {
        for (sql, needle) in [
            (
                "SELECT count(DISTINCT a) FILTER (WHERE a > 1) FROM t",
                "count(DISTINCT …)",
            ),
            (
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM t",
                "percentile_cont",
            ),
            (
                "SELECT a, avg(b) FROM t GROUP BY a HAVING avg(b) > 1",
                "HAVING",
            ),
            ("SELECT string_agg(a, ',') FROM t", "string_agg"),
            ("SELECT count(*) + 1 FROM t", "expression over an aggregate"),
            ("SELECT b, count(*) FROM t GROUP BY a", "outside GROUP BY"),
            (
                "SELECT a, count(*) FROM t GROUP BY a ORDER BY max(b)",
                "ORDER BY",
            ),
        ] {
            let e = plan(sql).unwrap_err();
            assert_eq!(e.sqlstate, "0A000", "{sql}");
            assert!(e.message.contains(needle), "{sql}: {}", e.message);
        }
    }
}
