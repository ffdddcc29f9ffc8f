//! KNN statements planned once per prepared statement.
//!
//! A prepared `SELECT cols FROM t ORDER BY col <op> $n LIMIT k` (what
//! vector clients send, and what the proxy sends a shard, with
//! `col <op> $n` among the outputs) is analysed at an Execute into what
//! every Execute needs: the table, the vector column, the metric, the ANN
//! index, the outputs and their types. Later Executes check the schema
//! epoch ([`Tables::schema_epoch`]) and search the index directly instead
//! of interpreting the statement again. The analysis uses the
//! interpreter's own planning functions, and any case it does not cover
//! (another shape, a NULL query vector, an exact scan by setting, the
//! session's own uncommitted writes, a changed schema) goes to the
//! interpreter, so both answer the same.

use super::coerce::{cast, to_described};
use super::functions::distance;
use super::plan::{knn_plan, resolve_key, KnnPlan};
use super::select::{
    input, limit_offset, matches_alias, order_keys, run_query, Column, Ctx, Input,
};
use super::types;
use crate::metrics::sampled_cpu_time;
use crate::shard::datum::Datum;
use crate::shard::storage::{AnnSearch, IndexMethod, Table, Tables};
use crate::sql::{distance_operator, placeholder_index};
use crate::wire::{oid, FieldDescription, PgError, Value};
use ann::{IterativeScan, Metric};
use sqlparser::ast::{
    Expr, GroupByExpr, LimitClause, Query, SelectItem, SetExpr, Value as SqlValue,
};
use std::time::Duration;

/// A value of one result row: a column of the table or a parameter.
#[derive(Debug, Clone, Copy)]
enum Operand {
    Column(usize),
    Param(usize),
}

/// One output of the select list.
#[derive(Debug, Clone, Copy)]
enum Output {
    Value(Operand),
    Distance(Metric, Operand, Operand),
}

/// A prepared KNN statement, planned against the schema of one epoch.
#[derive(Debug)]
pub struct PreparedKnn {
    epoch: u64,
    table: u32,
    table_name: String,
    /// The vector column, and the parameter (0-based) holding the query.
    column: usize,
    query_param: usize,
    index: String,
    method: IndexMethod,
    limit: usize,
    offset: usize,
    outputs: Vec<Output>,
    columns: Vec<Column>,
    fields: Vec<FieldDescription>,
}

/// What a search of a [`PreparedKnn`] found.
pub enum Searched {
    /// The result rows, one after the other (each
    /// [`PreparedKnn::width`] values), and the CPU time of the index
    /// search.
    Found(Vec<Datum>, Duration),
    /// The search may take long (or train a cold index): not on the
    /// session's task.
    TooLong,
    /// The plan does not apply (schema changed, NULL query vector): the
    /// interpreter answers.
    Stale,
}

/// Whether `q` has a clause this module does not plan.
fn has_other_clauses(q: &Query) -> bool {
    q.with.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
}

/// LIMIT and OFFSET written as numbers (a parameter's value would differ
/// between Executes).
fn literal_limits(q: &Query) -> bool {
    let literal = |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, SqlValue::Number(..)));
    match &q.limit_clause {
        Some(LimitClause::LimitOffset {
            limit: Some(limit),
            offset,
            limit_by,
        }) => {
            literal(limit)
                && offset.as_ref().is_none_or(|o| literal(&o.value))
                && limit_by.is_empty()
        }
        _ => false,
    }
}

fn operand(e: &Expr, table: &Table, alias: &str, params: usize) -> Option<Operand> {
    let column = |name: &str| table.def().column_index(name).map(Operand::Column);
    match e {
        Expr::Identifier(i) => column(&i.value),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, c] if matches_alias(Some(&q.value), alias) => column(&c.value),
            _ => None,
        },
        Expr::Value(v) => match &v.value {
            SqlValue::Placeholder(p) => placeholder_index(p)
                .filter(|&n| n >= 1 && n <= params)
                .map(|n| Operand::Param(n - 1)),
            _ => None,
        },
        Expr::Nested(inner) => operand(inner, table, alias, params),
        _ => None,
    }
}

fn output(e: &Expr, table: &Table, alias: &str, params: usize) -> Option<Output> {
    match e {
        Expr::BinaryOp { left, op, right } => Some(Output::Distance(
            distance_operator(op)?,
            operand(left, table, alias, params)?,
            operand(right, table, alias, params)?,
        )),
        Expr::Nested(inner) => output(inner, table, alias, params),
        other => operand(other, table, alias, params).map(Output::Value),
    }
}

impl PreparedKnn {
    /// Plans `q` if it is a KNN statement this module answers: one stored
    /// table, no WHERE, grouping or DISTINCT, outputs that are columns,
    /// parameters or distances between them, ORDER BY one distance
    /// between the vector column and a parameter that an ANN index
    /// serves, and a literal LIMIT (and OFFSET).
    pub fn plan(q: &Query, ctx: &Ctx) -> Option<PreparedKnn> {
        let SetExpr::Select(s) = q.body.as_ref() else {
            return None;
        };
        let plain = !has_other_clauses(q)
            && literal_limits(q)
            && s.selection.is_none()
            && s.having.is_none()
            && s.distinct.is_none()
            && s.top.is_none()
            && s.into.is_none()
            && s.qualify.is_none()
            && s.named_window.is_empty()
            && s.lateral_views.is_empty()
            && s.cluster_by.is_empty()
            && s.distribute_by.is_empty()
            && s.sort_by.is_empty()
            && s.prewhere.is_none()
            && matches!(&s.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
        if !plain {
            return None;
        }
        let order = order_keys(q).ok()?;
        let (Some(limit), offset) = limit_offset(q, ctx).ok()? else {
            return None;
        };
        let Input::Table { table, alias } = input(s, ctx).ok()? else {
            return None;
        };
        let params = ctx.env.params.len();
        let Some(KnnPlan {
            column,
            index: Some((index, method)),
            on_expression: false,
            ..
        }) = knn_plan(
            order,
            &s.projection,
            Some(limit),
            offset,
            table,
            &alias,
            None,
            &ctx.env,
        )
        .ok()?
        else {
            return None;
        };
        let Expr::BinaryOp { left, right, .. } = resolve_key(&order[0].expr, &s.projection) else {
            return None;
        };
        let query_param = match (
            operand(left, table, &alias, params)?,
            operand(right, table, &alias, params)?,
        ) {
            (Operand::Column(c), Operand::Param(p)) | (Operand::Param(p), Operand::Column(c))
                if c == column =>
            {
                p
            }
            _ => return None,
        };
        if s.projection.is_empty() {
            return None;
        }
        let outputs = s
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    output(e, table, &alias, params)
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let described = run_query(
            q,
            &Ctx {
                dry: true,
                ..ctx.clone()
            },
        )
        .ok()?;
        if described.columns.len() != outputs.len() {
            return None;
        }
        Some(PreparedKnn {
            epoch: ctx.tables.schema_epoch(),
            table: table.def().oid,
            table_name: table.def().name.clone(),
            column,
            query_param,
            index,
            method,
            limit,
            offset,
            outputs,
            fields: described.fields(),
            columns: described.columns,
        })
    }

    /// The ORDER BY's parameter (0-based): the query vector.
    pub fn query_param(&self) -> usize {
        self.query_param
    }

    /// Values per result row.
    pub fn width(&self) -> usize {
        self.outputs.len()
    }

    /// The result's RowDescription.
    pub fn fields(&self) -> &[FieldDescription] {
        &self.fields
    }

    /// The (table, index) searched, for the recall monitor.
    pub fn searched(&self) -> (&str, &str) {
        (&self.table_name, &self.index)
    }

    /// Whether the search is short enough for the session's task: an HNSW
    /// search bounded by `ef_search` (as the interpreter decides, see
    /// [`super::select::is_short_knn`]).
    pub fn is_short(&self, ann: &AnnSearch) -> bool {
        let hnsw = &ann.hnsw;
        matches!(self.method, IndexMethod::Hnsw { .. })
            && hnsw.ef_search <= super::select::SHORT_KNN_EF_SEARCH
            && hnsw.iterative_scan == IterativeScan::Off
            && self.limit.saturating_add(self.offset) <= hnsw.ef_search
    }

    /// Searches the index for `params` and makes the result rows.
    /// `on_task`: the caller runs on the session's task, where a cold
    /// index is not searched.
    pub fn search(
        &self,
        tables: &Tables,
        params: &[Datum],
        ann: &AnnSearch,
        on_task: bool,
    ) -> Result<Searched, PgError> {
        if tables.schema_epoch() != self.epoch {
            return Ok(Searched::Stale);
        }
        let Some(table) = tables.by_oid(self.table) else {
            return Ok(Searched::Stale);
        };
        let Some(Some(query)) = params.get(self.query_param) else {
            return Ok(Searched::Stale);
        };
        if on_task && !table.ann_index_is_warm(&self.index) {
            return Ok(Searched::TooLong);
        }
        let Some(ty) = table.def().columns.get(self.column).map(|c| c.ty) else {
            return Ok(Searched::Stale);
        };
        let (to, typmod) = (types::type_oid(ty), types::value_typmod(ty));
        // A vector of the column's type and dimensions (what clients bind)
        // is searched as it is; anything else is cast, as the interpreter
        // would, into a copy.
        let fits = match query {
            Value::Vector(v) => to == oid::VECTOR && typmod.is_none_or(|n| v.check_dims(n).is_ok()),
            _ => false,
        };
        let cast_query = match fits {
            true => None,
            false => Some(cast(query.clone(), to, typmod, false)?),
        };
        let query = cast_query.as_ref().unwrap_or(query);
        let k = self.limit.saturating_add(self.offset);
        let (found, cpu) = sampled_cpu_time(|| table.ann_search(&self.index, query, k, ann, None));
        let found = found.map_err(super::storage_error)?;
        let value = |o: Operand, slot: u32| match o {
            Operand::Column(c) => table.value(slot, c),
            Operand::Param(p) => params.get(p).cloned().flatten(),
        };
        let mut rows = Vec::with_capacity(found.len().min(self.limit) * self.width());
        for (n, hit) in found.iter().enumerate() {
            for (out, column) in self.outputs.iter().zip(&self.columns) {
                let v = match *out {
                    Output::Value(o) => value(o, hit.id),
                    Output::Distance(metric, a, b) => match (value(a, hit.id), value(b, hit.id)) {
                        (Some(a), Some(b)) => Some(distance(metric, a, b)?),
                        _ => None,
                    },
                };
                if n >= self.offset && n - self.offset < self.limit {
                    rows.push(v.map(|v| to_described(v, column.ty.0)).transpose()?);
                }
            }
        }
        Ok(Searched::Found(rows, cpu))
    }
}
