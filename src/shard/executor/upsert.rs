//! `INSERT … ON CONFLICT`: the constraints that arbitrate (the target's
//! columns or named constraint; without a target, every unique one) and
//! the row a proposed row conflicts with through them, as the transaction
//! sees its table — committed rows as it left them and the rows it
//! inserted itself. So an upsert finds a row its own transaction wrote,
//! a conflict on a constraint that does not arbitrate stays an error, and
//! a statement that would update one row twice is refused, as PostgreSQL
//! does.

use std::collections::HashSet;

use sqlparser::ast::{ConflictTarget, OnConflictAction};

use super::select::object_name;
use crate::shard::datum::{self, Datum, KeyValue};
use crate::shard::storage::{RowRef, TableDef, Tables, Transaction};
use crate::wire::PgError;

/// One arbitrating constraint: its columns and where its committed
/// index is.
struct Arbiter {
    /// In the constraint's order.
    columns: Vec<usize>,
    /// `None`: the primary key; else the UNIQUE constraint's position.
    unique: Option<usize>,
}

/// The row a proposed row conflicts with.
pub enum Existing {
    /// A committed row, with its values as the transaction left them.
    Committed(RowRef, Vec<Datum>),
    /// A row the transaction inserted (its position in the write set).
    Pending(usize, Vec<Datum>),
}

impl Existing {
    /// The row's values.
    pub fn values(&self) -> &[Datum] {
        match self {
            Existing::Committed(_, v) | Existing::Pending(_, v) => v,
        }
    }

    fn id(&self) -> RowId {
        match self {
            Existing::Committed(r, _) => RowId::Committed(r.slot),
            Existing::Pending(pos, _) => RowId::Pending(*pos),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RowId {
    Committed(u32),
    Pending(usize),
}

/// The arbiters of one statement and the rows it has inserted or updated
/// so far (a second DO UPDATE of one of them is refused).
pub struct Upsert {
    arbiters: Vec<Arbiter>,
    /// Write-set positions from here on are this statement's inserts.
    first_own: usize,
    updated: HashSet<RowId>,
}

impl Upsert {
    /// The arbiters `target` names on `def` (PostgreSQL's errors for a
    /// DO UPDATE without a target, columns no unique constraint has, and
    /// an unknown constraint name).
    pub fn new(
        def: &TableDef,
        target: Option<&ConflictTarget>,
        action: &OnConflictAction,
        txn: &Transaction,
    ) -> Result<Self, PgError> {
        let mut all = Vec::new();
        if !def.primary_key.is_empty() {
            all.push((def.pkey_name(), def.primary_key.clone(), None));
        }
        for (i, u) in def.constraints.unique.iter().enumerate() {
            all.push((u.name.clone(), u.columns.clone(), Some(i)));
        }
        let chosen: Vec<_> = match target {
            None if matches!(action, OnConflictAction::DoUpdate(_)) => {
                return Err(PgError::new(
                    "42601",
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .with_hint("For example, ON CONFLICT (column_name)."))
            }
            None => all,
            Some(ConflictTarget::Columns(cols)) => {
                let wanted: Option<Vec<usize>> = cols
                    .iter()
                    .map(|c| def.column_index(&crate::sql::fold(c)))
                    .collect();
                let wanted = wanted.map(|w| sorted(&w));
                let chosen: Vec<_> = all
                    .into_iter()
                    .filter(|(_, c, _)| Some(sorted(c)) == wanted)
                    .collect();
                if chosen.is_empty() {
                    return Err(PgError::new(
                        "42P10",
                        "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                    ));
                }
                chosen
            }
            Some(ConflictTarget::OnConstraint(name)) => {
                let name = object_name(name);
                let chosen: Vec<_> = all.into_iter().filter(|(n, _, _)| *n == name).collect();
                if chosen.is_empty() {
                    return Err(PgError::new(
                        "42704",
                        format!(
                            "constraint \"{name}\" for table \"{}\" does not exist",
                            def.name
                        ),
                    ));
                }
                chosen
            }
        };
        Ok(Upsert {
            arbiters: chosen
                .into_iter()
                .map(|(_, columns, unique)| Arbiter { columns, unique })
                .collect(),
            first_own: txn.write_count(),
            updated: HashSet::new(),
        })
    }

    /// The row `row` conflicts with through an arbiter, if any.
    pub fn conflict(
        &self,
        txn: &Transaction,
        tables: &Tables,
        table: &str,
        row: &[Datum],
    ) -> Option<Existing> {
        // Each arbiter's key of the proposed row (NULL never conflicts).
        let keys: Vec<Option<Vec<KeyValue>>> =
            self.arbiters.iter().map(|a| key(&a.columns, row)).collect();
        if keys.iter().all(Option::is_none) {
            return None;
        }
        let same = |other: &[Datum]| {
            self.arbiters
                .iter()
                .zip(&keys)
                .any(|(a, k)| k.is_some() && key(&a.columns, other) == *k)
        };
        let committed = tables.get(table).filter(|_| txn.sees_committed(table));
        // Most conflicts are with a committed row, found through its index.
        if let Some(committed) = committed {
            for (a, k) in self.arbiters.iter().zip(&keys) {
                if k.is_none() {
                    continue;
                }
                let slot = match a.unique {
                    None => committed.find_key(
                        &a.columns
                            .iter()
                            .map(|&c| row[c].clone())
                            .collect::<Vec<_>>(),
                    ),
                    Some(i) => committed.unique_slot(i, row),
                };
                let Some(slot) = slot else { continue };
                // The transaction may have changed or deleted that row.
                if let Some(now) = txn
                    .committed_row_now(tables, table, slot)
                    .filter(|n| same(n))
                {
                    return Some(Existing::Committed(committed.row_ref(slot)?, now));
                }
            }
        }
        if let Some((pos, r)) = txn.pending_rows(table).into_iter().find(|(_, r)| same(r)) {
            return Some(Existing::Pending(pos, r.to_vec()));
        }
        // Rare: a committed row this transaction updated to the key.
        let committed = committed?;
        let changed = txn.changed_committed_rows(table);
        changed.into_iter().find_map(|(slot, now)| {
            let now = now.filter(|n| same(n))?;
            Some(Existing::Committed(committed.row_ref(slot)?, now))
        })
    }

    /// Refuses a second DO UPDATE of a row this statement inserted or
    /// updated; else remembers it as updated.
    pub fn updating(&mut self, existing: &Existing) -> Result<(), PgError> {
        let id = existing.id();
        let own_insert = matches!(id, RowId::Pending(pos) if pos >= self.first_own);
        if own_insert || !self.updated.insert(id) {
            return Err(PgError::new(
                "21000",
                "ON CONFLICT DO UPDATE command cannot affect row a second time",
            )
            .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
        }
        Ok(())
    }
}

fn sorted(columns: &[usize]) -> Vec<usize> {
    let mut c = columns.to_vec();
    c.sort_unstable();
    c
}

/// `row`'s key in `columns` (in column order), `None` when one is NULL.
fn key(columns: &[usize], row: &[Datum]) -> Option<Vec<KeyValue>> {
    columns.iter().map(|&c| datum::key(row.get(c)?)).collect()
}
