//! Choosing how a query over one table finds its rows, as pgvector's
//! planner would: `ORDER BY col <op> constant LIMIT n` is a KNN query; an
//! ANN index whose opclass matches the operator serves it, otherwise an
//! exact scan over the column does. With a WHERE, an HNSW index is used
//! only when `ann::plan` finds the filtered graph search cheaper than an
//! exact scan of the matching rows (likewise for IVFFlat).

use super::expr::{eval, Env, NoRow};
use crate::shard::datum::{self, KeyValue};
use crate::shard::storage::{AnnSearch, IndexData, IndexMethod, Table, TableIndex};
use crate::sql::distance_operator;
use crate::wire::{PgError, Value};
use ann::plan::{
    choose_filtered_plan, estimate_selectivity, hnsw_search_cost, ivf_search_cost, FilteredPlan,
};
use ann::{Filter, Metric};
use sqlparser::ast::{BinaryOperator, Expr, OrderByExpr, SelectItem};
use std::ops::Bound;

/// A KNN query on one vector column.
#[derive(Debug, Clone)]
pub struct KnnPlan {
    /// The vector column's position.
    pub column: usize,
    /// The operator's metric.
    pub metric: Metric,
    /// The query vector, of the column's type.
    pub query: Value,
    /// Rows wanted: LIMIT + OFFSET.
    pub k: usize,
    /// The ANN index whose opclass matches, if any.
    pub index: Option<(String, IndexMethod)>,
    /// The vector column's name (the expression's text, for a plan on an
    /// index on an expression).
    pub column_name: String,
    /// The index is on an expression of the column: only that index can
    /// serve the plan (an exact answer is the general scan and sort).
    pub on_expression: bool,
    /// The index is partial, and the query's WHERE implies its predicate.
    pub partial: bool,
    /// The index's predicate implies the query's whole WHERE: rows found
    /// in the index need no filter (PostgreSQL shows none either).
    pub filter_implied: bool,
}

impl KnnPlan {
    /// The ordering expression as EXPLAIN prints it (formatted only there:
    /// printing a long query vector costs more than searching).
    pub fn order_by(&self) -> String {
        format!(
            "({} {} '{}'::{})",
            self.column_name,
            self.metric.operator(),
            self.query.to_text(),
            super::coerce::type_name(self.query.type_oid())
        )
    }
}

/// How the rows of a KNN query are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnnAccess {
    /// Search the ANN index.
    Index,
    /// Compare every (matching) row.
    Exact,
}

/// Resolves an ORDER BY key naming an output column (by alias or
/// position) to the select item's expression.
pub fn resolve_key<'a>(key: &'a Expr, projection: &'a [SelectItem]) -> &'a Expr {
    match key {
        Expr::Identifier(i) => projection
            .iter()
            .find_map(|item| match item {
                SelectItem::ExprWithAlias { expr, alias } if alias.value == i.value => Some(expr),
                _ => None,
            })
            .unwrap_or(key),
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| projection.get(n.checked_sub(1)?))
                .and_then(|item| match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        Some(e)
                    }
                    _ => None,
                })
                .unwrap_or(key),
            _ => key,
        },
        _ => key,
    }
}

fn column_of(expr: &Expr, table: &Table, alias: &str) -> Option<usize> {
    crate::stack::guard(|| {
        let name = match expr {
            Expr::Identifier(i) => &i.value,
            Expr::CompoundIdentifier(p) if p.len() == 2 && p[0].value == alias => &p[1].value,
            Expr::Nested(e) => return column_of(e, table, alias),
            _ => return None,
        };
        table.def().column_index(name)
    })
}

/// The KNN plan of a query ordered by `order` with `limit`/`offset` and
/// filtered by `filter`, if it is one: a single ascending key
/// `col <op> constant` on a vector column with dimensions, or
/// `expression <op> constant` where an ANN index is on that expression,
/// and a LIMIT.
#[allow(clippy::too_many_arguments)]
pub fn knn_plan(
    order: &[OrderByExpr],
    projection: &[SelectItem],
    limit: Option<usize>,
    offset: usize,
    table: &Table,
    alias: &str,
    filter: Option<&Expr>,
    env: &Env,
) -> Result<Option<KnnPlan>, PgError> {
    let ([key], Some(limit)) = (order, limit) else {
        return Ok(None);
    };
    if key
        .options
        .sort
        .as_ref()
        .is_some_and(|s| !matches!(s, sqlparser::ast::OrderBySort::Asc))
        || key.options.nulls_first == Some(true)
    {
        return Ok(None);
    }
    let Expr::BinaryOp { left, op, right } = resolve_key(&key.expr, projection) else {
        return Ok(None);
    };
    let Some(metric) = distance_operator(op) else {
        return Ok(None);
    };
    let (column, constant) = match (
        column_of(left, table, alias),
        column_of(right, table, alias),
    ) {
        (Some(c), None) => (c, right),
        (None, Some(c)) => (c, left),
        (None, None) => {
            return expression_plan(
                left,
                right,
                metric,
                limit.saturating_add(offset),
                table,
                filter,
                env,
            )
        }
        _ => return Ok(None),
    };
    let ty = table.def().columns[column].ty;
    let Some((_, Some(_))) = ty.vector_type() else {
        return Ok(None);
    };
    let Some(query) = query_value(constant, ty, env)? else {
        return Ok(None);
    };
    if table.space(column, metric).is_err() {
        return Ok(None);
    }
    // A partial index the WHERE implies first: it holds fewer rows.
    let usable = |i: &&TableIndex| {
        i.def.column == column
            && i.def.expression.is_none()
            && i.def.method.metric() == Some(metric)
            && i.def
                .predicate
                .as_deref()
                .is_none_or(|p| implies(filter, p))
    };
    let index = table
        .indexes()
        .iter()
        .filter(usable)
        .min_by_key(|i| i.def.predicate.is_none());
    let column_name = table.def().columns[column].name.clone();
    Ok(Some(KnnPlan {
        column,
        metric,
        query,
        k: limit.saturating_add(offset),
        partial: index.is_some_and(|i| i.def.predicate.is_some()),
        filter_implied: index.is_some_and(|i| filter_implied(i, filter)),
        index: index.map(|i| (i.def.name.clone(), i.def.method)),
        column_name,
        on_expression: false,
    }))
}

/// The query vector: `constant` as a value of the indexed type `ty`;
/// `None` when it is NULL or reads a column (no KNN plan then).
fn query_value(
    constant: &Expr,
    ty: crate::shard::storage::ColumnType,
    env: &Env,
) -> Result<Option<Value>, PgError> {
    let query = match eval(constant, &NoRow, env) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(None),
        Err(e) if e.code == "42703" => return Ok(None),
        Err(e) => return Err(e),
    };
    super::coerce::cast(
        query,
        super::types::type_oid(ty),
        super::types::value_typmod(ty),
        false,
    )
    .map(Some)
}

/// The AND-ed conditions of `e` in `pg_get_expr` form.
fn condition_texts(e: &Expr) -> Vec<String> {
    let mut conds = Vec::new();
    conjuncts(e, &mut conds);
    conds.into_iter().map(super::index_expr::deparse).collect()
}

/// [`condition_texts`], each `=` also with its sides swapped.
fn condition_forms(e: &Expr) -> Vec<String> {
    let mut conds = Vec::new();
    conjuncts(e, &mut conds);
    conds
        .into_iter()
        .flat_map(|c| {
            let swapped = match c {
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } => Some(super::index_expr::deparse(&Expr::BinaryOp {
                    left: right.clone(),
                    op: BinaryOperator::Eq,
                    right: left.clone(),
                })),
                _ => None,
            };
            std::iter::once(super::index_expr::deparse(c)).chain(swapped)
        })
        .collect()
}

/// True when each AND-ed condition of `needed` is one of `given`'s, as
/// written or, for `=`, with its sides swapped.
fn conditions_within(needed: &Expr, given: &Expr) -> bool {
    let have = condition_forms(given);
    condition_texts(needed).iter().all(|n| have.contains(n))
}

/// True when the WHERE `filter` implies the index predicate `predicate`
/// (`pg_get_expr` text): each of the predicate's conditions is one of the
/// filter's.
fn implies(filter: Option<&Expr>, predicate: &str) -> bool {
    match (filter, super::ddl::parse_expr(predicate)) {
        (Some(filter), Ok(predicate)) => conditions_within(&predicate, filter),
        _ => false,
    }
}

/// True when partial index `index`'s predicate implies the whole WHERE
/// `filter`: the rows it holds need no filtering.
fn filter_implied(index: &TableIndex, filter: Option<&Expr>) -> bool {
    match (
        filter,
        index.def.predicate.as_deref().map(super::ddl::parse_expr),
    ) {
        (Some(filter), Some(Ok(predicate))) => conditions_within(filter, &predicate),
        _ => false,
    }
}

/// The plan of `left <op> right` where one side is the expression an ANN
/// index of `metric` is on (as `pg_get_expr` prints it) and the other a
/// constant.
fn expression_plan(
    left: &Expr,
    right: &Expr,
    metric: Metric,
    k: usize,
    table: &Table,
    filter: Option<&Expr>,
    env: &Env,
) -> Result<Option<KnnPlan>, PgError> {
    let (left_text, right_text) = (
        super::index_expr::deparse(left),
        super::index_expr::deparse(right),
    );
    let found = table.indexes().iter().find_map(|i| {
        let e = i.def.expression.as_deref()?;
        let usable = i.def.method.metric() == Some(metric)
            && i.def
                .predicate
                .as_deref()
                .is_none_or(|p| implies(filter, p));
        match usable {
            true if e == left_text => Some((i, right)),
            true if e == right_text => Some((i, left)),
            _ => None,
        }
    });
    let Some((index, constant)) = found else {
        return Ok(None);
    };
    let Some(query) = query_value(constant, index.value_type(table.def()), env)? else {
        return Ok(None);
    };
    Ok(Some(KnnPlan {
        column: index.def.column,
        metric,
        query,
        k,
        index: Some((index.def.name.clone(), index.def.method)),
        column_name: index.def.expression.clone().unwrap_or_default(),
        on_expression: true,
        partial: index.def.predicate.is_some(),
        filter_implied: filter_implied(index, filter),
    }))
}

/// Whether the plan searches its index: always without a filter, else as
/// `ann::plan` decides from the filter's selectivity and the index's own
/// search cost.
/// `candidates` are the rows a btree lookup left for the filter.
pub fn choose_access(
    plan: &KnnPlan,
    table: &Table,
    filter: Option<Filter>,
    candidates: Option<&[u32]>,
    settings: &AnnSearch,
) -> KnnAccess {
    let Some((_, method)) = plan.index.as_ref().filter(|_| !settings.exact) else {
        return KnnAccess::Exact;
    };
    // A partial index holds only rows its predicate, which the WHERE
    // implies, admits: pgvector's way to filter.
    let Some(f) = filter.filter(|_| !plan.partial) else {
        return KnnAccess::Index;
    };
    let rows = table.len();
    let index_cost = match method {
        IndexMethod::IvfFlat { lists, .. } => {
            ivf_search_cost(rows, *lists as usize, settings.ivfflat.probes)
        }
        _ => hnsw_search_cost(settings.hnsw.ef_search, plan.k),
    };
    let selectivity = match candidates {
        Some(c) if rows > 0 => estimate_selectivity(c, f) * c.len() as f64 / rows as f64,
        _ => estimate_selectivity(&table.live_slots().collect::<Vec<_>>(), f),
    };
    match choose_filtered_plan(rows, selectivity, index_cost) {
        FilteredPlan::Index => KnnAccess::Index,
        FilteredPlan::Exact => KnnAccess::Exact,
    }
}

/// The row slots of a KNN query, nearest first.
/// The exact path compares only `candidates` when a btree lookup gave them.
pub fn knn_slots(
    plan: &KnnPlan,
    access: KnnAccess,
    table: &Table,
    filter: Option<Filter>,
    candidates: Option<&[u32]>,
    settings: &AnnSearch,
) -> Result<Vec<u32>, PgError> {
    let storage = |e: crate::shard::storage::StorageError| super::storage_error(e);
    let found = match (&plan.index, access) {
        (Some((name, _)), KnnAccess::Index) => table
            .ann_search(name, &plan.query, plan.k, settings, filter)
            .map_err(storage)?,
        _ => {
            let space = table.space(plan.column, plan.metric).map_err(storage)?;
            let q = space.query(&plan.query).map_err(storage)?;
            let ids: Vec<u32> = match candidates {
                Some(c) => c
                    .iter()
                    .copied()
                    .filter(|&s| table.has_value(s, plan.column))
                    .collect(),
                None => table
                    .live_slots()
                    .filter(|&s| table.has_value(s, plan.column))
                    .collect(),
            };
            ann::exact_search(&space, &ids, &q, plan.k, filter)
        }
    };
    Ok(found.into_iter().map(|n| n.id).collect())
}

/// Rows found through a btree index (or the primary key) for one
/// condition of a WHERE; the whole WHERE is still applied to them.
#[derive(Debug, Clone)]
pub struct IndexLookup {
    /// The index used.
    pub index: String,
    /// The condition it served, as EXPLAIN prints it.
    pub cond: String,
    /// The candidate slots.
    pub slots: Vec<u32>,
}

/// The AND-ed conditions of `e`.
pub fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    crate::stack::guard(|| match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    })
}

/// The key of constant `e` for column `column`, when it converts to the
/// column's type without changing value (else the index cannot serve it).
fn key_for(table: &Table, column: usize, e: &Expr, env: &Env) -> Option<KeyValue> {
    let v = match eval(e, &NoRow, env) {
        Ok(Some(v)) => v,
        _ => return None,
    };
    let ty = table.def().columns[column].ty;
    let cast = super::coerce::cast(v.clone(), super::types::type_oid(ty), None, false).ok()?;
    if !matches!(v, Value::Text(_))
        && super::expr::compare(&cast, &v).ok()? != std::cmp::Ordering::Equal
    {
        return None;
    }
    datum::key(&Some(cast))
}

fn flip(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Eq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        _ => return None,
    })
}

/// A condition an index can serve: column, bounds.
fn range_of(
    cond: &Expr,
    table: &Table,
    alias: &str,
    env: &Env,
) -> Option<(usize, Bound<KeyValue>, Bound<KeyValue>)> {
    match cond {
        Expr::BinaryOp { left, op, right } => {
            let (column, constant, op) = match (
                column_of(left, table, alias),
                column_of(right, table, alias),
            ) {
                (Some(c), None) => (c, right, op.clone()),
                (None, Some(c)) => (c, left, flip(op)?),
                _ => return None,
            };
            let k = key_for(table, column, constant, env)?;
            Some(match op {
                BinaryOperator::Eq => (column, Bound::Included(k.clone()), Bound::Included(k)),
                BinaryOperator::Lt => (column, Bound::Unbounded, Bound::Excluded(k)),
                BinaryOperator::LtEq => (column, Bound::Unbounded, Bound::Included(k)),
                BinaryOperator::Gt => (column, Bound::Excluded(k), Bound::Unbounded),
                BinaryOperator::GtEq => (column, Bound::Included(k), Bound::Unbounded),
                _ => return None,
            })
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            let column = column_of(expr, table, alias)?;
            let (lo, hi) = (
                key_for(table, column, low, env)?,
                key_for(table, column, high, env)?,
            );
            Some((column, Bound::Included(lo), Bound::Included(hi)))
        }
        _ => None,
    }
}

/// Candidate rows for `filter` from a btree index or the primary key, if
/// one of its AND-ed conditions compares an indexed column with a constant.
pub fn btree_lookup(
    table: &Table,
    alias: &str,
    filter: Option<&Expr>,
    env: &Env,
) -> Option<IndexLookup> {
    let mut conds = Vec::new();
    conjuncts(filter?, &mut conds);
    for cond in conds {
        let Some((column, low, high)) = range_of(cond, table, alias, env) else {
            continue;
        };
        let def = table.def();
        if def.primary_key == [column] {
            if let (Bound::Included(a), Bound::Included(b)) = (&low, &high) {
                if a == b {
                    let slots = table
                        .slot_of_key(std::slice::from_ref(a))
                        .into_iter()
                        .collect();
                    return Some(IndexLookup {
                        index: def.pkey_name(),
                        cond: format!("({cond})"),
                        slots,
                    });
                }
            }
        }
        let Some(index) = table
            .indexes()
            .iter()
            .find(|i| i.def.column == column && matches!(i.data, IndexData::BTree(_)))
        else {
            continue;
        };
        let slots = table.btree_range(&index.def.name, low, high).ok()?;
        return Some(IndexLookup {
            index: index.def.name.clone(),
            cond: format!("({cond})"),
            slots,
        });
    }
    None
}
