//! Ranking window functions — `row_number()`, `rank()`, `dense_rank()`
//! `OVER ([PARTITION BY …] [ORDER BY …])` — computed over the rows a
//! SELECT keeps after WHERE, before its own ORDER BY and LIMIT, as in
//! PostgreSQL (pgvector's hybrid search ranks its KNN and keyword results
//! this way). Each row's values reach its select list through
//! [`super::expr::Env::aggregates`], keyed by the call's text. Other
//! window functions, aggregates over a window and named windows are
//! refused with 0A000.

use super::expr::{eval, Env, Row};
use super::select::compare_keys;
use crate::shard::datum::Datum;
use crate::wire::{PgError, Value};
use sqlparser::ast::{Expr, Function, FunctionArguments, OrderByExpr, WindowType};
use std::cmp::Ordering;
use std::collections::HashMap;

/// One window function call of a select list.
pub struct WindowCall {
    /// The call's text: the key its value is found by.
    key: String,
    kind: Ranking,
    partition: Vec<Expr>,
    order: Vec<OrderByExpr>,
}

#[derive(Clone, Copy, PartialEq)]
enum Ranking {
    RowNumber,
    Rank,
    DenseRank,
}

/// Every window function call in `exprs` (not inside their subqueries),
/// once each.
pub fn calls<'q>(exprs: impl IntoIterator<Item = &'q Expr>) -> Result<Vec<WindowCall>, PgError> {
    let window = |f: &Function, whole: &Expr| f.over.is_some().then(|| call_of(f, whole));
    super::aggregate::distinct_calls(exprs, window, |c| &c.key)
}

fn call_of(f: &Function, whole: &Expr) -> Result<WindowCall, PgError> {
    let name = super::expr::function_name(f);
    let kind = match name.as_str() {
        "row_number" => Ranking::RowNumber,
        "rank" => Ranking::Rank,
        "dense_rank" => Ranking::DenseRank,
        _ => {
            return Err(PgError::feature_not_supported(format!(
                "window function {name}() is not supported (row_number, rank and dense_rank are)"
            )))
        }
    };
    let no_args = match &f.args {
        FunctionArguments::None => true,
        FunctionArguments::List(l) => l.args.is_empty(),
        FunctionArguments::Subquery(_) => false,
    };
    if !no_args {
        return Err(PgError::new(
            "42883",
            format!("function {name} with arguments does not exist"),
        ));
    }
    let Some(WindowType::WindowSpec(spec)) = &f.over else {
        return Err(PgError::feature_not_supported(
            "named windows (WINDOW w AS …) are not supported",
        ));
    };
    if spec.window_frame.is_some() || spec.window_name.is_some() {
        return Err(PgError::feature_not_supported(
            "window frames and named windows are not supported",
        ));
    }
    Ok(WindowCall {
        key: whole.to_string(),
        kind,
        partition: spec.partition_by.clone(),
        order: spec.order_by.clone(),
    })
}

/// Whether every call ranks by exactly `order` over all rows (no
/// PARTITION BY): then ranking the first rows in that order needs no
/// other row, and a KNN query may still stop at its LIMIT.
pub fn ranks_in_order(calls: &[WindowCall], order: &[OrderByExpr]) -> bool {
    let text = |o: &[OrderByExpr]| o.iter().map(ToString::to_string).collect::<Vec<_>>();
    calls
        .iter()
        .all(|c| c.partition.is_empty() && text(&c.order) == text(order))
}

/// Each row's window values, by call text, for `rows` in their order.
pub fn values(
    calls: &[WindowCall],
    rows: &[&dyn Row],
    env: &Env,
) -> Result<Vec<HashMap<String, Datum>>, PgError> {
    let mut out = vec![HashMap::new(); rows.len()];
    for call in calls {
        let keys = |row: &dyn Row| -> Result<(Vec<Datum>, Vec<Datum>), PgError> {
            let part = call.partition.iter().map(|e| eval(e, row, env));
            let ord = call.order.iter().map(|k| eval(&k.expr, row, env));
            Ok((
                part.collect::<Result<_, _>>()?,
                ord.collect::<Result<_, _>>()?,
            ))
        };
        let keyed = rows
            .iter()
            .map(|r| keys(*r))
            .collect::<Result<Vec<_>, _>>()?;
        let partition_order: Vec<OrderByExpr> = call
            .partition
            .iter()
            .map(|e| OrderByExpr {
                expr: e.clone(),
                options: Default::default(),
                with_fill: None,
            })
            .collect();
        // Stable: peers keep the rows' order, as a sort of PostgreSQL's would
        // over a KNN scan's output.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut failed = None;
        order.sort_by(|&a, &b| {
            let by =
                compare_keys(&keyed[a].0, &keyed[b].0, &partition_order).and_then(|o| match o {
                    Ordering::Equal => compare_keys(&keyed[a].1, &keyed[b].1, &call.order),
                    other => Ok(other),
                });
            by.unwrap_or_else(|e| {
                failed.get_or_insert(e);
                Ordering::Equal
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let (mut number, mut rank, mut dense) = (0i64, 0i64, 0i64);
        let mut previous: Option<usize> = None;
        for &i in &order {
            let same_partition = previous.is_some_and(|p| {
                compare_keys(&keyed[p].0, &keyed[i].0, &partition_order).ok()
                    == Some(Ordering::Equal)
            });
            let peer = same_partition
                && previous.is_some_and(|p| {
                    compare_keys(&keyed[p].1, &keyed[i].1, &call.order).ok()
                        == Some(Ordering::Equal)
                });
            if !same_partition {
                (number, rank, dense) = (0, 0, 0);
            }
            number += 1;
            if !peer {
                rank = number;
                dense += 1;
            }
            let value = match call.kind {
                Ranking::RowNumber => number,
                Ranking::Rank => rank,
                Ranking::DenseRank => dense,
            };
            out[i].insert(call.key.clone(), Some(Value::Int8(value)));
            previous = Some(i);
        }
    }
    Ok(out)
}
