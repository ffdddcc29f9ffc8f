//! Set-returning functions in FROM: `generate_series(start, stop [, step])`
//! over integers and `unnest(array)`, each read as a relation of one column
//! (plus `ordinality` WITH ORDINALITY). As in PostgreSQL the column is
//! named after the function, or after the alias (`AS g` names the column
//! `g` too; `AS g(x)` names it `x`).

use super::arrays;
use super::coerce::{self, as_i64};
use super::expr::{eval, NoRow};
use super::infer::{infer, Columns, TypeOf};
use super::select::{type_env, Column, Ctx, Relation};
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, TableAlias};

/// The rows of set-returning function `name` called with `args`, its
/// columns named as PostgreSQL names them; the relation's alias second.
pub fn function_relation(
    name: &str,
    args: &[FunctionArg],
    with_ordinality: bool,
    alias: Option<&TableAlias>,
    ctx: &Ctx,
) -> Result<(Relation, String), PgError> {
    let args = args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(PgError::feature_not_supported(format!(
                "function argument {other} is not supported in FROM"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let ("pg_control_checkpoint", []) = (name, args.as_slice()) {
        return Ok(control_checkpoint(alias, ctx));
    }
    if let (Some(columns), [arg]) = (super::json_sets::columns(name), args.as_slice()) {
        let rows = match ctx.dry {
            true => Vec::new(),
            false => super::json_sets::rows(name, &eval(arg, &NoRow, &ctx.eval_env())?)?,
        };
        let columns: Vec<(&str, TypeOf)> = columns.iter().map(|&(n, t)| (n, (t, -1))).collect();
        let unnamed = super::json_sets::alias_names_column(name);
        return with_columns(name, &columns, unnamed, rows, with_ordinality, alias);
    }
    let (ty, values) = match (name, args.as_slice()) {
        ("generate_series", [start, stop]) => series(start, stop, None, ctx)?,
        ("generate_series", [start, stop, step]) => series(start, stop, Some(step), ctx)?,
        ("unnest", [array]) => unnest(array, ctx)?,
        ("pg_partition_ancestors", [rel]) => partition_ancestors(rel, ctx)?,
        _ => {
            return Err(PgError::feature_not_supported(format!(
                "function {name} with {} arguments in FROM is not supported",
                args.len()
            )))
        }
    };
    named(name, ty, values, with_ordinality, alias)
}

/// `FROM unnest(…)`, which sqlparser reads as its own FROM item.
pub fn unnest_relation(
    arrays: &[Expr],
    with_ordinality: bool,
    alias: Option<&TableAlias>,
    ctx: &Ctx,
) -> Result<(Relation, String), PgError> {
    let [array] = arrays else {
        return Err(PgError::feature_not_supported(
            "unnest of several arrays is not supported",
        ));
    };
    let (ty, values) = unnest(array, ctx)?;
    named("unnest", ty, values, with_ordinality, alias)
}

/// `pg_control_checkpoint()`: the last checkpoint's position and
/// timeline (a standby's: its current one). PostgreSQL's transaction-id
/// columns have no counterpart in a shard and are left out.
fn control_checkpoint(alias: Option<&TableAlias>, ctx: &Ctx) -> (Relation, String) {
    let db = &ctx.env.globals.db;
    let lsn = db.last_checkpoint_lsn();
    let timeline = db.timeline();
    let previous = timeline
        .history
        .last()
        .map_or(timeline.current, |(id, _)| *id);
    let tli = |t: u32| Some(Value::Int4(i32::try_from(t).unwrap_or(i32::MAX)));
    let columns = [
        ("checkpoint_lsn", oid::TEXT),
        ("redo_lsn", oid::TEXT),
        ("redo_wal_file", oid::TEXT),
        ("timeline_id", oid::INT4),
        ("prev_timeline_id", oid::INT4),
        ("full_page_writes", oid::BOOL),
    ]
    .into_iter()
    .map(|(name, ty)| Column {
        name: name.to_string(),
        ty: (ty, -1),
    })
    .collect();
    let row = vec![
        Some(Value::Text(lsn.to_string())),
        Some(Value::Text(lsn.to_string())),
        Some(Value::Text(super::expr::walfile_name(
            timeline.current,
            lsn.0,
        ))),
        tli(timeline.current),
        tli(previous),
        Some(Value::Bool(true)),
    ];
    let relation = alias.map_or("pg_control_checkpoint", |a| a.name.value.as_str());
    (
        Relation {
            columns,
            rows: vec![row],
        },
        relation.to_string(),
    )
}

/// One column `ty` holding `values` (and `ordinality`), named after the
/// alias or `function`.
fn named(
    function: &str,
    ty: TypeOf,
    values: Vec<Datum>,
    with_ordinality: bool,
    alias: Option<&TableAlias>,
) -> Result<(Relation, String), PgError> {
    let rows = values.into_iter().map(|v| vec![v]).collect();
    with_columns(
        function,
        &[(function, ty)],
        true,
        rows,
        with_ordinality,
        alias,
    )
}

/// The relation of `function`'s result `columns` holding `rows`, plus
/// `ordinality`: a table alias renames the relation, and the one column
/// too where the function's result is not named (`alias_names_column`).
fn with_columns(
    function: &str,
    columns: &[(&str, TypeOf)],
    alias_names_column: bool,
    rows: Vec<Vec<Datum>>,
    with_ordinality: bool,
    alias: Option<&TableAlias>,
) -> Result<(Relation, String), PgError> {
    let relation = alias.map_or(function, |a| a.name.value.as_str());
    let mut columns: Vec<Column> = columns
        .iter()
        .map(|&(name, ty)| Column {
            name: match alias_names_column {
                true => relation.to_string(),
                false => name.to_string(),
            },
            ty,
        })
        .collect();
    if with_ordinality {
        columns.push(Column {
            name: "ordinality".to_string(),
            ty: (oid::INT8, -1),
        });
    }
    let aliases = alias.map_or(&[][..], |a| a.columns.as_slice());
    if aliases.len() > columns.len() {
        return Err(PgError::new(
            "42601",
            format!("too many column aliases specified for function {function}"),
        ));
    }
    for (c, a) in columns.iter_mut().zip(aliases) {
        c.name = a.name.value.clone();
    }
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, mut row)| {
            if with_ordinality {
                row.push(Some(Value::Int8(i as i64 + 1)));
            }
            row
        })
        .collect();
    Ok((Relation { columns, rows }, relation.to_string()))
}

/// `FROM pg_partition_ancestors(rel)`: the relation itself, as the
/// scalar call answers.
fn partition_ancestors(rel: &Expr, ctx: &Ctx) -> Result<(TypeOf, Vec<Datum>), PgError> {
    let ty = (oid::REGCLASS, -1);
    if ctx.dry {
        return Ok((ty, Vec::new()));
    }
    let env = ctx.eval_env();
    let ancestor = super::expr::partition_ancestor(eval(rel, &NoRow, &env)?, &env)?;
    Ok((ty, ancestor.into_iter().map(Some).collect()))
}

/// No columns: a function's arguments in FROM see no row.
struct NoColumns;

impl Columns for NoColumns {
    fn column_type(&self, _: Option<&str>, _: &str) -> Option<TypeOf> {
        None
    }
}

/// `generate_series` over int4 (or int8 when an argument is int8).
fn series(
    start: &Expr,
    stop: &Expr,
    step: Option<&Expr>,
    ctx: &Ctx,
) -> Result<(TypeOf, Vec<Datum>), PgError> {
    let exprs: Vec<&Expr> = [start, stop].into_iter().chain(step).collect();
    let tenv = type_env(ctx);
    let mut ty = oid::INT4;
    for e in &exprs {
        match infer(e, &NoColumns, &tenv)?.0 {
            oid::INT2 | oid::INT4 | oid::UNKNOWN | oid::TEXT => {}
            oid::INT8 => ty = oid::INT8,
            other => {
                return Err(PgError::feature_not_supported(format!(
                    "generate_series over {} is not supported",
                    coerce::type_name(other)
                )))
            }
        }
    }
    if ctx.dry {
        return Ok(((ty, -1), Vec::new()));
    }
    let env = ctx.eval_env();
    let mut bounds = Vec::with_capacity(3);
    for e in &exprs {
        match eval(e, &NoRow, &env)? {
            None => return Ok(((ty, -1), Vec::new())),
            Some(v) => bounds.push(integer(v, ty)?),
        }
    }
    let out = arrays::series(&bounds, ty == oid::INT8, &|| ctx.check_cancel())?;
    Ok(((ty, -1), out))
}

/// An argument of `generate_series` as an integer of type `ty`.
fn integer(v: Value, ty: u32) -> Result<i64, PgError> {
    let v = match v {
        Value::Text(_) => coerce::cast(v, ty, None, false)?,
        v => v,
    };
    as_i64(&v).ok_or_else(|| {
        PgError::new(
            "42883",
            format!(
                "function generate_series({}) does not exist",
                coerce::type_name(v.type_oid())
            ),
        )
    })
}

/// The elements of an array, typed by the array's type (text for an
/// untyped literal).
fn unnest(array: &Expr, ctx: &Ctx) -> Result<(TypeOf, Vec<Datum>), PgError> {
    let (t, m) = infer(array, &NoColumns, &type_env(ctx))?;
    let ty = (arrays::element_of(t).unwrap_or(oid::TEXT), m);
    if ctx.dry {
        return Ok((ty, Vec::new()));
    }
    let items = arrays::items(array, &NoRow, &ctx.eval_env())?.unwrap_or_default();
    let items = items
        .into_iter()
        .map(|v| v.map(|v| coerce::cast(v, ty.0, None, false)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ty, items))
}
