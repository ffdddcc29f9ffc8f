//! `UNION`, `INTERSECT` and `EXCEPT` (each `[ALL]`) outside a recursive
//! WITH: both sides run as queries of their own; the result has the left
//! side's column names, numeric columns widened to the wider side's type;
//! without ALL duplicate rows go (by PostgreSQL's equality of the output
//! values), with ALL `INTERSECT` keeps min(m, n) copies of a row and
//! `EXCEPT` max(m - n, 0); then the query's ORDER BY (output column names
//! or positions, as PostgreSQL allows here), OFFSET and LIMIT apply.

use super::coerce::to_described;
use super::select::{common_numeric, compare_keys, group_key, run_query, Ctx, Relation};
use crate::shard::datum::Datum;
use crate::wire::PgError;
use sqlparser::ast::{Expr, OrderByExpr, Query, SetExpr, SetOperator, SetQuantifier};
use std::collections::{HashMap, HashSet};

/// `q` with `body` alone, without its WITH, ORDER BY and LIMIT.
pub fn body_query(q: &Query, body: &SetExpr) -> Query {
    let mut part = q.clone();
    part.body = Box::new(body.clone());
    part.with = None;
    part.order_by = None;
    part.limit_clause = None;
    part
}

/// Where a UNION's sort key is among the output columns.
fn key_position(key: &Expr, rel: &Relation) -> Result<usize, PgError> {
    let found = match key {
        Expr::Identifier(i) => rel.columns.iter().position(|c| c.name == i.value),
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|&n| n < rel.columns.len()),
            _ => None,
        },
        _ => None,
    };
    found.ok_or_else(|| {
        PgError::feature_not_supported("invalid UNION/INTERSECT/EXCEPT ORDER BY clause")
            .with_detail("Only result column names can be used, not expressions or functions.")
    })
}

/// Runs `left op right` of query `q` (describes it when `ctx` is dry).
#[allow(clippy::too_many_arguments)]
pub fn run_set_operation(
    q: &Query,
    op: &SetOperator,
    quantifier: &SetQuantifier,
    left: &SetExpr,
    right: &SetExpr,
    order: &[OrderByExpr],
    limit: Option<usize>,
    offset: usize,
    ctx: &Ctx,
) -> Result<Relation, PgError> {
    let mut rel = run_query(&body_query(q, left), &ctx.for_built_query())?;
    let other = run_query(&body_query(q, right), &ctx.for_built_query())?;
    if other.columns.len() != rel.columns.len() {
        return Err(PgError::new(
            "42601",
            format!("each {op} query must have the same number of columns"),
        ));
    }
    for (c, o) in rel.columns.iter_mut().zip(&other.columns) {
        c.ty = common_numeric(c.ty, o.ty);
    }
    let convert = |rows: Vec<Vec<Datum>>| -> Result<Vec<Vec<Datum>>, PgError> {
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&rel.columns)
                    .map(|(v, c)| v.map(|v| to_described(v, c.ty.0)).transpose())
                    .collect()
            })
            .collect()
    };
    let left_rows = convert(std::mem::take(&mut rel.rows))?;
    let right_rows = convert(other.rows)?;
    let all = matches!(quantifier, SetQuantifier::All);
    let mut out = match op {
        SetOperator::Union => {
            let mut out = left_rows;
            out.extend(right_rows);
            out
        }
        SetOperator::Intersect | SetOperator::Except => {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for r in &right_rows {
                *counts.entry(group_key(r)).or_default() += 1;
            }
            let intersect = *op == SetOperator::Intersect;
            left_rows
                .into_iter()
                .filter(|r| {
                    let n = counts.get_mut(&group_key(r));
                    let present = n.as_ref().is_some_and(|n| **n > 0);
                    if all {
                        if let Some(n) = n.filter(|n| **n > 0) {
                            *n -= 1;
                        }
                    }
                    present == intersect
                })
                .collect()
        }
        other => {
            return Err(PgError::feature_not_supported(format!(
                "{other} queries are not supported"
            )))
        }
    };
    if !all {
        let mut seen = HashSet::new();
        out.retain(|r| seen.insert(group_key(r)));
    }
    if !order.is_empty() {
        let positions = order
            .iter()
            .map(|k| key_position(&k.expr, &rel))
            .collect::<Result<Vec<_>, _>>()?;
        let keyed = |r: &Vec<Datum>| positions.iter().map(|&p| r[p].clone()).collect::<Vec<_>>();
        let mut error = None;
        out.sort_by(|a, b| {
            compare_keys(&keyed(a), &keyed(b), order).unwrap_or_else(|e| {
                error.get_or_insert(e);
                std::cmp::Ordering::Equal
            })
        });
        if let Some(e) = error {
            return Err(e);
        }
    }
    rel.rows = out
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok(rel)
}
