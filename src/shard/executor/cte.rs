//! WITH queries: each is run once, in order, and kept as a relation that
//! later ones and the main query read by name.
//!
//! A recursive one (`WITH RECURSIVE t(cols) AS (anchor UNION [ALL]
//! step)`, `step` reading `t`) is evaluated as PostgreSQL does: the
//! anchor's rows start the result and the working table; the step runs
//! against the working table only, its rows (converted to the anchor's
//! column types; with UNION, without rows seen before) join the result
//! and become the next working table, until a step yields nothing. A step
//! that never ends runs until cancel or `statement_timeout`, as in
//! PostgreSQL.

use super::coerce::to_described;
use super::select::{group_key, rename_columns, run_query, Ctx, Relation};
use super::setop::body_query;
use crate::shard::datum::Datum;
use crate::wire::PgError;
use sqlparser::ast::{visit_relations, Cte, SetExpr, SetOperator, SetQuantifier, With};
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Runs every query of `with` into `ctx`'s WITH relations.
pub fn run_with(with: &With, ctx: &mut Ctx) -> Result<(), PgError> {
    for cte in &with.cte_tables {
        let name = cte.alias.name.value.clone();
        let rel = match (with.recursive, cte.query.body.as_ref()) {
            (
                true,
                SetExpr::SetOperation {
                    op: SetOperator::Union,
                    set_quantifier,
                    left,
                    right,
                },
            ) if reads(right, &name) => {
                let distinct = !matches!(set_quantifier, SetQuantifier::All);
                recursive(cte, left, right, distinct, ctx)?
            }
            _ => {
                let mut rel = run_query(&cte.query, ctx)?;
                rename_columns(&mut rel, &cte.alias.columns, "WITH query", &name)?;
                rel
            }
        };
        ctx.ctes.insert(name, Arc::new(rel));
    }
    Ok(())
}

/// True when `body` reads the relation `name`.
fn reads(body: &SetExpr, name: &str) -> bool {
    visit_relations(body, |rel| match rel.0.last().and_then(|p| p.as_ident()) {
        Some(i) if i.value == name => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn recursive(
    cte: &Cte,
    anchor: &SetExpr,
    step: &SetExpr,
    distinct: bool,
    ctx: &Ctx,
) -> Result<Relation, PgError> {
    let name = cte.alias.name.value.as_str();
    if cte.query.order_by.is_some() || cte.query.limit_clause.is_some() {
        return Err(PgError::feature_not_supported(
            "ORDER BY and LIMIT in a recursive query are not supported",
        ));
    }
    let mut all = run_query(&body_query(&cte.query, anchor), &ctx.for_built_query())?;
    rename_columns(&mut all, &cte.alias.columns, "WITH query", name)?;
    let mut seen = HashSet::new();
    if distinct {
        all.rows.retain(|r| seen.insert(group_key(r)));
    }
    let step = body_query(&cte.query, step);
    let mut inner = ctx.for_built_query();
    let mut working = all.rows.clone();
    loop {
        let table = Relation {
            columns: all.columns.clone(),
            rows: std::mem::take(&mut working),
        };
        inner.ctes.insert(name.to_string(), Arc::new(table));
        let next = run_query(&step, &inner)?;
        if next.columns.len() != all.columns.len() {
            return Err(PgError::new(
                "42601",
                "each UNION query must have the same number of columns",
            ));
        }
        if ctx.dry {
            return Ok(all);
        }
        ctx.check_cancel()?;
        for row in next.rows {
            let row = row
                .into_iter()
                .zip(&all.columns)
                .map(|(v, c)| v.map(|v| to_described(v, c.ty.0)).transpose())
                .collect::<Result<Vec<Datum>, _>>()?;
            if !distinct || seen.insert(group_key(&row)) {
                working.push(row);
            }
        }
        if working.is_empty() {
            return Ok(all);
        }
        all.rows.extend(working.iter().cloned());
    }
}
