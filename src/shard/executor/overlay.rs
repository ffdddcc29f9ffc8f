//! A transaction reading its own writes: the tables it changed, as the
//! committed rows with its changes applied, materialised for the query
//! (in place of the stored table, so they are scanned exactly, without
//! indexes). Other sessions keep reading the committed tables.

use super::select::{Column, Relation};
use super::types::{type_oid, typmod};
use crate::shard::datum::Datum;
use crate::shard::storage::{Change, ColumnDef, Tables};
use std::collections::BTreeMap;

/// One table as the transaction sees it.
struct Overlay {
    columns: Vec<ColumnDef>,
    /// Committed rows by slot (changed in place), then new rows.
    rows: BTreeMap<(u8, u64), Vec<Datum>>,
    next: u64,
}

fn change_table(c: &Change) -> &str {
    match c {
        Change::CreateTable { name, .. } | Change::DropTable(name) | Change::Truncate(name) => name,
        Change::AddColumn { table, .. }
        | Change::CreateIndex { table, .. }
        | Change::Insert { table, .. }
        | Change::Update { table, .. }
        | Change::Delete { table, .. } => table,
        Change::DropIndex(name) => name,
    }
}

/// The tables `changes` touch, each as the transaction sees it (dropped
/// ones are left out).
pub fn relations(tables: &Tables, changes: &[Change]) -> BTreeMap<String, Relation> {
    let mut views: BTreeMap<String, Option<Overlay>> = BTreeMap::new();
    for c in changes {
        let name = change_table(c).to_string();
        if matches!(c, Change::DropIndex(_) | Change::CreateIndex { .. }) {
            continue;
        }
        let view = views.entry(name.clone()).or_insert_with(|| {
            tables.get(&name).map(|t| Overlay {
                columns: t.def().columns.clone(),
                rows: t
                    .live_slots()
                    .filter_map(|s| Some(((0, s as u64), t.row(s)?)))
                    .collect(),
                next: 0,
            })
        });
        match c {
            Change::CreateTable { columns, .. } => {
                *view = Some(Overlay {
                    columns: columns.clone(),
                    rows: BTreeMap::new(),
                    next: 0,
                })
            }
            Change::DropTable(_) => *view = None,
            _ => {}
        }
        let Some(v) = view else { continue };
        match c {
            Change::Truncate(_) => v.rows.clear(),
            Change::AddColumn { column, fill, .. } => {
                v.columns.push(column.clone());
                for r in v.rows.values_mut() {
                    r.push(fill.clone());
                }
            }
            Change::Insert { row, .. } => {
                v.rows.insert((1, v.next), row.clone());
                v.next += 1;
            }
            Change::Update { row, new, .. } => {
                v.rows.insert((0, row.slot as u64), new.clone());
            }
            Change::Delete { row, .. } => {
                v.rows.remove(&(0, row.slot as u64));
            }
            _ => {}
        }
    }
    views
        .into_iter()
        .filter_map(|(name, v)| {
            let v = v?;
            let columns = v
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    ty: (type_oid(c.ty), typmod(c.ty)),
                })
                .collect();
            Some((
                name,
                Relation {
                    columns,
                    rows: v.rows.into_values().collect(),
                },
            ))
        })
        .collect()
}
