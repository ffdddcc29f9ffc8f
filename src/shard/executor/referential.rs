//! What changing a referenced row does to the rows whose foreign keys
//! point at it (PostgreSQL's RI triggers, run at the end of the DELETE or
//! UPDATE statement): `ON DELETE CASCADE` deletes them (and what
//! references those, in turn), `SET NULL` clears their referencing
//! columns, `NO ACTION` / `RESTRICT` fail the statement with 23503 while
//! one is left. An UPDATE that changes a referenced key is `NO ACTION`.
//!
//! The referencing side (a new or changed row must point at an existing
//! row) is checked by storage when the row is written. Both sides see the
//! transaction's own writes; a concurrent transaction's uncommitted
//! changes are not seen (PostgreSQL locks the referenced row instead).

use std::collections::HashSet;

use super::dml::{matching, Target};
use super::select::Ctx;
use super::storage_error;
use crate::shard::datum::{Datum, KeyValue};
use crate::shard::storage::{
    key_of_columns, ForeignKey, OnDelete, OnUpdate, TableDef, Tables, Transaction,
};
use crate::wire::PgError;

/// Rows of `child` whose key `fk` holds one of `keys`.
fn referencing_rows(
    tables: &Tables,
    txn: &Transaction,
    child: &TableDef,
    fk: &ForeignKey,
    keys: &HashSet<Vec<KeyValue>>,
    ctx: &Ctx,
) -> Result<Vec<(Target, Vec<Datum>)>, PgError> {
    Ok(matching(tables, txn, child, &child.name, None, ctx)?
        .into_iter()
        .filter(|(_, row)| key_of_columns(&fk.columns, row).is_some_and(|k| keys.contains(&k)))
        .collect())
}

/// 23503 for a referenced key still in use, or 23001 (with
/// PostgreSQL's wording) when the action that refused is RESTRICT.
fn still_referenced(
    parent: &TableDef,
    child: &TableDef,
    fk: &ForeignKey,
    row: &[Datum],
    restrict: bool,
) -> PgError {
    let shown: Vec<String> = fk
        .columns
        .iter()
        .map(|&c| row[c].as_ref().map_or_else(String::new, |v| v.to_text()))
        .collect();
    let (code, setting, still) = if restrict {
        ("23001", "RESTRICT setting of ", "")
    } else {
        ("23503", "", "still ")
    };
    PgError::new(
        code,
        format!(
            "update or delete on table \"{}\" violates {setting}foreign key constraint \"{}\" on table \"{}\"",
            parent.name, fk.name, child.name
        ),
    )
    .with_detail(format!(
        "Key ({})=({}) is {still}referenced from table \"{}\".",
        parent.column_list(&fk.referenced),
        shown.join(", "),
        child.name
    ))
}

/// The referential actions for rows of `parent` that lost their keys:
/// `deleted` rows, or rows whose key an UPDATE changed (`updated`: only
/// NO ACTION applies).
pub fn after_change(
    tables: &Tables,
    txn: &mut Transaction,
    parent: &TableDef,
    gone: &[Vec<Datum>],
    updated: bool,
    ctx: &Ctx,
) -> Result<(), PgError> {
    crate::stack::guard(|| {
        for (child, fk) in txn.referencing(tables, &parent.name) {
            let restrict = if updated {
                fk.on_update == OnUpdate::Restrict
            } else {
                fk.on_delete == OnDelete::Restrict
            };
            let keys: HashSet<Vec<KeyValue>> = gone
                .iter()
                .filter_map(|r| key_of_columns(&fk.referenced, r))
                .filter(|k| {
                    // A key an UPDATE gave back to another row stays taken
                    // (NO ACTION; RESTRICT refuses at once, as PostgreSQL).
                    restrict
                        || !txn
                            .has_referenced_key(tables, &parent.name, &fk.referenced, k)
                            .unwrap_or(false)
                })
                .collect();
            if keys.is_empty() {
                continue;
            }
            let rows = referencing_rows(tables, txn, &child, &fk, &keys, ctx)?;
            let Some((_, first)) = rows.first() else {
                continue;
            };
            match fk.on_delete {
                _ if updated => {
                    return Err(still_referenced(parent, &child, &fk, first, restrict));
                }
                OnDelete::NoAction | OnDelete::Restrict => {
                    return Err(still_referenced(parent, &child, &fk, first, restrict));
                }
                OnDelete::Cascade => {
                    let mut pending = Vec::new();
                    let mut removed = Vec::new();
                    for (target, row) in rows {
                        match target {
                            Target::Committed(r) => {
                                txn.delete(tables, &child.name, r).map_err(storage_error)?
                            }
                            Target::Pending(pos) => pending.push(pos),
                        }
                        removed.push(row);
                    }
                    txn.delete_pending(tables, pending).map_err(storage_error)?;
                    after_change(tables, txn, &child, &removed, false, ctx)?;
                }
                OnDelete::SetNull => {
                    for (target, mut row) in rows {
                        let old = row.clone();
                        for &c in &fk.columns {
                            row[c] = None;
                        }
                        match target {
                            Target::Committed(r) => txn.update(tables, &child.name, r, row),
                            Target::Pending(pos) => txn.update_pending(tables, pos, row),
                        }
                        .map_err(storage_error)?;
                        after_change(tables, txn, &child, &[old], true, ctx)?;
                    }
                }
            }
        }
        Ok(())
    })
}
