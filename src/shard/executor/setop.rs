//! `UNION [ALL]` outside a recursive WITH: both sides run as queries of
//! their own; the result has the left side's column names, numeric columns
//! widened to the wider side's type; UNION drops duplicate rows (by
//! PostgreSQL's equality of the output values); then the query's ORDER BY
//! (output column names or positions, as PostgreSQL allows on a UNION),
//! OFFSET and LIMIT apply. INTERSECT and EXCEPT are refused (0A000).

use super::coerce::to_described;
use super::select::{common_numeric, compare_keys, group_key, run_query, Ctx, Relation};
use crate::shard::datum::Datum;
use crate::wire::PgError;
use sqlparser::ast::{Expr, OrderByExpr, Query, SetExpr, SetOperator, SetQuantifier};
use std::collections::HashSet;

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
    if *op != SetOperator::Union {
        return Err(PgError::feature_not_supported(format!(
            "{op} queries are not supported"
        )));
    }
    let mut rel = run_query(&body_query(q, left), &ctx.for_built_query())?;
    let other = run_query(&body_query(q, right), &ctx.for_built_query())?;
    if other.columns.len() != rel.columns.len() {
        return Err(PgError::new(
            "42601",
            "each UNION query must have the same number of columns",
        ));
    }
    for (c, o) in rel.columns.iter_mut().zip(&other.columns) {
        c.ty = common_numeric(c.ty, o.ty);
    }
    let rows = rel.rows.drain(..).chain(other.rows);
    let mut out: Vec<Vec<Datum>> = Vec::new();
    for row in rows {
        out.push(
            row.into_iter()
                .zip(&rel.columns)
                .map(|(v, c)| v.map(|v| to_described(v, c.ty.0)).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if !matches!(quantifier, SetQuantifier::All) {
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
