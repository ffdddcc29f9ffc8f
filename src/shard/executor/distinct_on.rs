//! `SELECT DISTINCT ON (e, …)`: the first row of each group of rows equal
//! on the expressions, in the query's order. As in PostgreSQL
//! (`transformDistinctOnClause`), the expressions must be the ORDER BY's
//! leading keys (in any order among themselves); those the ORDER BY
//! lacks are sorted after it, ascending, when the ORDER BY names no other
//! key before them. The rows are then sorted by that order and the first
//! of each run equal on its leading keys is kept.

use std::borrow::Cow;

use sqlparser::ast::{Expr, OrderByExpr, OrderByOptions, Value};

use crate::wire::PgError;

/// The order a DISTINCT ON query sorts by, and how many of its leading
/// keys make a group; 42P10 when the expressions are not the ORDER BY's
/// leading ones.
pub fn distinct_on_order(
    on: &[Expr],
    order: &[OrderByExpr],
    items: &[(String, Cow<'_, Expr>)],
) -> Result<(Vec<OrderByExpr>, usize), PgError> {
    let targets: Vec<String> = on.iter().map(|e| target(e, items)).collect();
    let mismatch = || {
        PgError::new(
            "42P10",
            "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
        )
    };
    let mut effective: Vec<OrderByExpr> = Vec::new();
    let mut grouped: Vec<String> = Vec::new();
    let mut skipped = false;
    for key in order {
        let t = target(&key.expr, items);
        if targets.contains(&t) {
            if skipped {
                return Err(mismatch());
            }
            if !grouped.contains(&t) {
                grouped.push(t);
            }
        } else {
            skipped = true;
        }
        effective.push(key.clone());
    }
    let mut appended = Vec::new();
    for (t, e) in targets.iter().zip(on) {
        if grouped.contains(t) || appended.iter().any(|(a, _)| a == t) {
            continue;
        }
        if skipped {
            return Err(mismatch());
        }
        appended.push((t.clone(), e.clone()));
    }
    let keys = grouped.len() + appended.len();
    // The ORDER BY's keys come first: without one skipped, they are all
    // DISTINCT ON expressions, so the appended ones still make a prefix.
    effective.extend(appended.into_iter().map(|(_, expr)| OrderByExpr {
        expr,
        options: OrderByOptions {
            sort: None,
            nulls_first: None,
        },
        with_fill: None,
    }));
    Ok((effective, keys))
}

/// What an ORDER BY or DISTINCT ON expression stands for: a select-list
/// position (`1`) or output name is that item's expression.
fn target(expr: &Expr, items: &[(String, Cow<'_, Expr>)]) -> String {
    let item = match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| items.get(i)),
            _ => None,
        },
        Expr::Identifier(i) => items.iter().find(|(name, _)| *name == i.value),
        _ => None,
    };
    item.map_or_else(|| expr.to_string(), |(_, e)| e.to_string())
}
