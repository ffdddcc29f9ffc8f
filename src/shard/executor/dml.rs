//! INSERT (with defaults, serials, ON CONFLICT and RETURNING), UPDATE and
//! DELETE: rows are read from the committed tables, changed values are
//! checked and added to the transaction's write set.

use super::coerce::cast;
use super::ddl::default_value;
use super::expr::{bool_of, eval, Env, Row};
use super::infer::{infer, Columns, TypeEnv, TypeOf};
use super::select::{expand_items, object_name, run_query, Column, Ctx, Relation};
use super::types::{type_oid, typmod, value_typmod};
use super::upsert::{Existing, Upsert};
use super::{storage_error, Outcome, Sequences};
use crate::shard::datum::Datum;
use crate::shard::storage::{ColumnType, RowRef, TableDef, Tables, Transaction};
use crate::wire::{PgError, Value};
use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, Expr, FromTable, Insert, OnConflictAction, OnInsert,
    SelectItem, SetExpr, TableFactor, TableObject, TableWithJoins, Update,
};

/// A row of a table as values by column name, with the proposed row of
/// an INSERT as `excluded`.
struct DefRow<'a> {
    def: &'a TableDef,
    alias: &'a str,
    values: &'a [Datum],
    excluded: Option<&'a [Datum]>,
}

impl Row for DefRow<'_> {
    fn get(&self, q: Option<&str>, name: &str) -> Option<Datum> {
        let i = self.def.column_index(name)?;
        // A row read before the transaction added a column is shorter.
        let at = |values: &[Datum]| values.get(i).cloned().flatten();
        match q {
            Some(q) if q.eq_ignore_ascii_case("excluded") => self.excluded.map(at),
            Some(q) if q != self.alias && q != self.def.name => None,
            _ => Some(at(self.values)),
        }
    }
}

/// Column types of a table, for RETURNING's result types.
struct DefColumns<'a>(&'a TableDef);

impl Columns for DefColumns<'_> {
    fn column_type(&self, _: Option<&str>, name: &str) -> Option<TypeOf> {
        let c = self.0.columns.iter().find(|c| c.name == name)?;
        Some((type_oid(c.ty), typmod(c.ty)))
    }
}

/// RETURNING: its columns, and the rows gathered so far.
struct Returning {
    items: Vec<(String, Expr)>,
    rel: Relation,
}

impl Returning {
    fn new(
        def: &TableDef,
        items: Option<&Vec<SelectItem>>,
        params: &[u32],
    ) -> Result<Option<Self>, PgError> {
        let Some(items) = items else { return Ok(None) };
        let names: Vec<(String, String)> = def
            .columns
            .iter()
            .map(|c| (def.name.clone(), c.name.clone()))
            .collect();
        let out = expand_items(items, &names)?;
        let cols = DefColumns(def);
        let env = TypeEnv::params(params);
        let columns = out
            .iter()
            .map(|(n, e)| {
                Ok(Column {
                    name: n.clone(),
                    ty: infer(e, &cols, &env)?,
                })
            })
            .collect::<Result<_, PgError>>()?;
        Ok(Some(Returning {
            items: out.into_iter().map(|(n, e)| (n, e.into_owned())).collect(),
            rel: Relation {
                columns,
                rows: Vec::new(),
            },
        }))
    }

    fn push(&mut self, row: &dyn Row, env: &Env) -> Result<(), PgError> {
        let values = self
            .items
            .iter()
            .zip(&self.rel.columns)
            .map(|((_, e), c)| {
                eval(e, row, env)?
                    .map(|v| super::coerce::to_described(v, c.ty.0))
                    .transpose()
            })
            .collect::<Result<_, PgError>>()?;
        self.rel.rows.push(values);
        Ok(())
    }
}

/// Adds `values` (a row of `def`) to RETURNING's rows, if there is one.
fn returned(
    returning: &mut Option<Returning>,
    def: &TableDef,
    alias: &str,
    values: &[Datum],
    env: &Env,
) -> Result<(), PgError> {
    match returning {
        Some(r) => r.push(
            &DefRow {
                def,
                alias,
                values,
                excluded: None,
            },
            env,
        ),
        None => Ok(()),
    }
}

fn finish(tag: String, returning: Option<Returning>) -> Outcome {
    let mut out = Outcome::tag(&tag);
    out.rows = returning.map(|r| r.rel);
    out
}

/// The value of `v` stored into column `i` of `def`.
fn store(def: &TableDef, i: usize, v: Datum) -> Result<Datum, PgError> {
    let ty = def.columns[i].ty;
    let Some(v) = v else { return Ok(None) };
    if let (Value::Text(s), ColumnType::Varchar(Some(n))) = (&v, ty) {
        if s.chars().count() > n as usize {
            return Err(PgError::new(
                "22001",
                format!("value too long for type character varying({n})"),
            ));
        }
    }
    let from = crate::shard::datum::type_name(&v);
    cast(v, type_oid(ty), value_typmod(ty), false)
        .map(Some)
        .map_err(|e| {
            if e.code == "42846" {
                PgError::new(
                    "42804",
                    format!(
                        "column \"{}\" is of type {} but expression is of type {from}",
                        def.columns[i].name,
                        ty.sql_name()
                    ),
                )
                .with_hint("You will need to rewrite or cast the expression.")
            } else {
                e
            }
        })
}

fn table_of(t: &TableWithJoins) -> Result<(String, String), PgError> {
    match &t.relation {
        TableFactor::Table { name, alias, .. } if t.joins.is_empty() => {
            let n = object_name(name);
            let a = alias
                .as_ref()
                .map_or_else(|| n.clone(), |a| a.name.value.clone());
            Ok((n, a))
        }
        _ => Err(PgError::feature_not_supported(
            "UPDATE and DELETE of joins are not supported",
        )),
    }
}

fn assign(
    def: &TableDef,
    assignments: &[Assignment],
    row: &dyn Row,
    env: &Env,
    mut new: Vec<Datum>,
) -> Result<Vec<Datum>, PgError> {
    for a in assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(PgError::feature_not_supported(
                "tuple assignments are not supported",
            ));
        };
        let col = object_name(name);
        let i = def.column_index(&col).ok_or_else(|| {
            PgError::new(
                "42703",
                format!(
                    "column \"{col}\" of relation \"{}\" does not exist",
                    def.name
                ),
            )
        })?;
        new[i] = store(def, i, eval(&a.value, row, env)?)?;
    }
    Ok(new)
}

/// True for the `DEFAULT` keyword in a VALUES list.
fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// The source rows of an INSERT: a value per target column, `None` where
/// VALUES says `DEFAULT`.
fn source_rows(ins: &Insert, ctx: &Ctx) -> Result<Vec<Vec<Option<Datum>>>, PgError> {
    let Some(source) = &ins.source else {
        return Ok(vec![Vec::new()]);
    };
    if let SetExpr::Values(values) = source.body.as_ref() {
        return values
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|e| {
                        if is_default(e) {
                            Ok(None)
                        } else {
                            eval(e, &super::expr::NoRow, &ctx.env).map(Some)
                        }
                    })
                    .collect()
            })
            .collect();
    }
    Ok(run_query(source, ctx)?
        .rows
        .into_iter()
        .map(|r| r.into_iter().map(Some).collect())
        .collect())
}

/// `INSERT`.
pub fn insert(
    tables: &Tables,
    txn: &mut Transaction,
    ins: &Insert,
    ctx: &Ctx,
    sequences: &Sequences,
) -> Result<Outcome, PgError> {
    let TableObject::TableName(name) = &ins.table else {
        return Err(PgError::feature_not_supported(
            "INSERT INTO a function is not supported",
        ));
    };
    let table = object_name(name);
    let def = txn.table_def(tables, &table).map_err(storage_error)?;
    let names: Vec<String> = ins.columns.iter().map(object_name).collect();
    let targets = target_columns(&def, &names)?;
    let mut returning = Returning::new(&def, ins.returning.as_ref(), ctx.param_types)?;
    let mut upsert = match &ins.on {
        None => None,
        Some(OnInsert::OnConflict(c)) => Some((
            &c.action,
            Upsert::new(&def, c.conflict_target.as_ref(), &c.action, txn)?,
        )),
        Some(_) => {
            return Err(PgError::feature_not_supported(
                "ON DUPLICATE KEY UPDATE is not supported",
            ))
        }
    };
    let alias = ins
        .table_alias
        .as_ref()
        .map_or_else(|| table.clone(), |a| a.alias.value.clone());
    let computed = index_expressions(tables, &table)?;
    let mut count = 0usize;
    for source in source_rows(ins, ctx)? {
        if source.len() > targets.len() {
            return Err(PgError::new(
                "42601",
                "INSERT has more expressions than target columns",
            ));
        }
        let row = complete_row(&def, &targets, source, tables, sequences, &ctx.env)?;
        compute(&computed, &def, &row, &ctx.env)?;
        match txn.insert(tables, &table, row.clone()) {
            Ok(()) => {
                count += 1;
                returned(&mut returning, &def, &alias, &row, &ctx.env)?;
            }
            Err(e) if e.sqlstate == "23505" && upsert.is_some() => {
                let Some((action, upsert)) = upsert.as_mut() else {
                    return Err(storage_error(e));
                };
                // A conflict through a constraint that does not arbitrate
                // stays an error.
                let Some(existing) = upsert.conflict(txn, tables, &table, &row) else {
                    return Err(storage_error(e));
                };
                let OnConflictAction::DoUpdate(du) = action else {
                    continue;
                };
                upsert.updating(&existing)?;
                let ctx_row = DefRow {
                    def: &def,
                    alias: &alias,
                    values: existing.values(),
                    excluded: Some(&row),
                };
                if let Some(w) = &du.selection {
                    if eval(w, &ctx_row, &ctx.env)?.map(bool_of).transpose()? != Some(true) {
                        continue;
                    }
                }
                let current = existing.values().to_vec();
                let new = assign(&def, &du.assignments, &ctx_row, &ctx.env, current)?;
                compute(&computed, &def, &new, &ctx.env)?;
                match existing {
                    Existing::Committed(rref, _) => txn.update(tables, &table, rref, new.clone()),
                    Existing::Pending(pos, _) => txn.update_pending(tables, pos, new.clone()),
                }
                .map_err(storage_error)?;
                count += 1;
                returned(&mut returning, &def, &alias, &new, &ctx.env)?;
            }
            Err(e) => return Err(storage_error(e)),
        }
    }
    Ok(finish(format!("INSERT 0 {count}"), returning))
}

/// A full row of `def` from `values` for the `targets` columns; the
/// other columns, and those whose value is `None` (`DEFAULT`), get their
/// defaults (serials their next value).
pub fn complete_row(
    def: &TableDef,
    targets: &[usize],
    values: Vec<Option<Datum>>,
    tables: &Tables,
    sequences: &Sequences,
    env: &Env,
) -> Result<Vec<Datum>, PgError> {
    let mut row: Vec<Datum> = vec![None; def.columns.len()];
    let mut given = vec![false; def.columns.len()];
    for (&i, v) in targets.iter().zip(values) {
        if let Some(v) = v {
            row[i] = store(def, i, v)?;
            given[i] = true;
        }
    }
    for (i, c) in def.columns.iter().enumerate() {
        if given[i] {
            continue;
        }
        row[i] = match &c.default {
            Some(_) if c.numbers_rows() => {
                let next = match super::sequences::of_column(tables, def, i) {
                    Some(s) => sequences.next(tables, &s, &env.globals.sequence_values)?,
                    None => {
                        // Not a sequence: nextval gives PostgreSQL's error.
                        let name = super::sequences::default_sequence(c).unwrap_or_default();
                        sequences.nextval(tables, &name, &env.globals.sequence_values)?
                    }
                };
                store(def, i, Some(Value::Int8(next)))?
            }
            Some(d) => default_value(d, c.ty, env)?,
            None => None,
        };
    }
    Ok(row)
}

/// The column positions an INSERT or COPY names (all when none).
pub fn target_columns(def: &TableDef, names: &[String]) -> Result<Vec<usize>, PgError> {
    if names.is_empty() {
        return Ok((0..def.columns.len()).collect());
    }
    names
        .iter()
        .map(|n| {
            def.column_index(n).ok_or_else(|| {
                PgError::new(
                    "42703",
                    format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                )
            })
        })
        .collect()
}

/// A row an UPDATE or DELETE reaches: committed (as read) or inserted
/// by the transaction itself (its position in the write set).
pub(super) enum Target {
    Committed(RowRef),
    Pending(usize),
}

fn passes(filter: Option<&Expr>, row: &DefRow, env: &Env) -> Result<bool, PgError> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(eval(f, row, env)?.map(bool_of).transpose()? == Some(true)),
    }
}

/// The rows of `table` matching `filter` as the transaction sees them:
/// committed rows (unless it truncated or recreated the table) and the
/// rows it inserted. Rows are padded to `def`, which may have columns
/// the transaction added.
pub(super) fn matching(
    tables: &Tables,
    txn: &Transaction,
    def: &TableDef,
    alias: &str,
    filter: Option<&Expr>,
    ctx: &Ctx,
) -> Result<Vec<(Target, Vec<Datum>)>, PgError> {
    let mut out = Vec::new();
    fn row<'a>(def: &'a TableDef, alias: &'a str, values: &'a [Datum]) -> DefRow<'a> {
        DefRow {
            def,
            alias,
            values,
            excluded: None,
        }
    }
    if let Some(t) = tables
        .get(&def.name)
        .filter(|_| txn.sees_committed(&def.name))
    {
        // Rows an earlier statement changed are seen as it left them (an
        // index lookup reads the committed values: scan the table then).
        let changed = txn.changed_committed_rows(&def.name);
        let lookup =
            super::plan::btree_lookup(t, alias, filter, &ctx.env).filter(|_| changed.is_empty());
        let slots: Vec<u32> = match lookup {
            Some(l) => l.slots,
            None => t.live_slots().collect(),
        };
        for (n, slot) in slots.into_iter().enumerate() {
            if n % 1024 == 0 {
                ctx.check_cancel()?;
            }
            let (Some(committed), Some(rref)) = (t.row(slot), t.row_ref(slot)) else {
                continue;
            };
            let mut values = match changed.get(&slot) {
                Some(None) => continue,
                Some(Some(now)) => now.clone(),
                None => committed,
            };
            values.resize(def.columns.len(), None);
            if passes(filter, &row(def, alias, &values), &ctx.env)? {
                out.push((Target::Committed(rref), values));
            }
        }
    }
    for (pos, values) in txn.pending_rows(&def.name) {
        if passes(filter, &row(def, alias, values), &ctx.env)? {
            out.push((Target::Pending(pos), values.to_vec()));
        }
    }
    Ok(out)
}

/// The expressions `table`'s indexes are on, parsed.
fn index_expressions(tables: &Tables, table: &str) -> Result<Vec<Expr>, PgError> {
    let Some(t) = tables.get(table) else {
        return Ok(Vec::new());
    };
    t.indexes()
        .iter()
        .filter_map(|i| i.def.expression.as_deref())
        .map(super::ddl::parse_expr)
        .collect()
}

/// Computes each of `exprs` for the row `values` of `def`, as PostgreSQL
/// computes an index's expression for every row it writes: an error
/// refuses the row.
fn compute(exprs: &[Expr], def: &TableDef, values: &[Datum], env: &Env) -> Result<(), PgError> {
    let row = DefRow {
        def,
        alias: &def.name,
        values,
        excluded: None,
    };
    for e in exprs {
        eval(e, &row, env)?;
    }
    Ok(())
}

/// Computes `expr` for every row of `def` the transaction sees (CREATE
/// INDEX on an expression): an error refuses the index.
pub fn compute_for_every_row(
    tables: &Tables,
    txn: &Transaction,
    def: &TableDef,
    expr: &Expr,
    ctx: &Ctx,
) -> Result<(), PgError> {
    let exprs = std::slice::from_ref(expr);
    for (_, values) in matching(tables, txn, def, &def.name, None, ctx)? {
        compute(exprs, def, &values, &ctx.env)?;
    }
    Ok(())
}

/// `UPDATE`.
pub fn update(
    tables: &Tables,
    txn: &mut Transaction,
    up: &Update,
    ctx: &Ctx,
) -> Result<Outcome, PgError> {
    if up.from.is_some() {
        return Err(PgError::feature_not_supported(
            "UPDATE … FROM is not supported",
        ));
    }
    let (table, alias) = table_of(&up.table)?;
    let def = txn.table_def(tables, &table).map_err(storage_error)?;
    let mut returning = Returning::new(&def, up.returning.as_ref(), ctx.param_types)?;
    let rows = matching(tables, txn, &def, &alias, up.selection.as_ref(), ctx)?;
    let computed = index_expressions(tables, &table)?;
    let count = rows.len();
    let mut rekeyed = Vec::new();
    for (target, old) in rows {
        let row = DefRow {
            def: &def,
            alias: &alias,
            values: &old,
            excluded: None,
        };
        let new = assign(&def, &up.assignments, &row, &ctx.env, old.clone())?;
        compute(&computed, &def, &new, &ctx.env)?;
        match target {
            Target::Committed(rref) => txn.update(tables, &table, rref, new.clone()),
            Target::Pending(pos) => txn.update_pending(tables, pos, new.clone()),
        }
        .map_err(storage_error)?;
        returned(&mut returning, &def, &alias, &new, &ctx.env)?;
        if old != new {
            rekeyed.push(old);
        }
    }
    super::referential::after_change(tables, txn, &def, &rekeyed, true, ctx)?;
    Ok(finish(format!("UPDATE {count}"), returning))
}

/// `DELETE`.
pub fn delete(
    tables: &Tables,
    txn: &mut Transaction,
    del: &Delete,
    ctx: &Ctx,
) -> Result<Outcome, PgError> {
    let from = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [target] = from.as_slice() else {
        return Err(PgError::feature_not_supported(
            "DELETE from several tables is not supported",
        ));
    };
    if del.using.is_some() {
        return Err(PgError::feature_not_supported(
            "DELETE … USING is not supported",
        ));
    }
    let (table, alias) = table_of(target)?;
    let def = txn.table_def(tables, &table).map_err(storage_error)?;
    let mut returning = Returning::new(&def, del.returning.as_ref(), ctx.param_types)?;
    let rows = matching(tables, txn, &def, &alias, del.selection.as_ref(), ctx)?;
    let count = rows.len();
    let mut pending = Vec::new();
    let mut deleted = Vec::new();
    for (target, old) in rows {
        match target {
            Target::Committed(rref) => txn.delete(tables, &table, rref).map_err(storage_error)?,
            Target::Pending(pos) => pending.push(pos),
        }
        returned(&mut returning, &def, &alias, &old, &ctx.env)?;
        deleted.push(old);
    }
    txn.delete_pending(tables, pending).map_err(storage_error)?;
    super::referential::after_change(tables, txn, &def, &deleted, false, ctx)?;
    Ok(finish(format!("DELETE {count}"), returning))
}

/// Result columns of a DML statement's RETURNING (empty without one).
pub fn returning_columns(
    tables: &Tables,
    table: &str,
    items: Option<&Vec<SelectItem>>,
    params: &[u32],
) -> Result<Relation, PgError> {
    let Some(t) = tables.get(table) else {
        return Ok(Relation::default());
    };
    Ok(Returning::new(t.def(), items, params)?
        .map(|r| r.rel)
        .unwrap_or_default())
}
