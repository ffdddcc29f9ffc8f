//! Prepared transactions (`PREPARE TRANSACTION 'gid'`): a write set checked
//! like a commit, logged, and kept aside — invisible to readers — until
//! `COMMIT PREPARED` applies it or `ROLLBACK PREPARED` drops it.
//!
//! A prepared transaction reserves what it will change (its
//! [`Footprint`]): a commit or another PREPARE whose footprint overlaps it
//! waits until it is decided, as PostgreSQL's writers wait on a prepared
//! transaction's locks. The reservation is what makes COMMIT PREPARED
//! unable to fail: nothing it depends on can change meanwhile.
//!
//! ```text
//! WAL:  Prepare{gid, owner, database, at, changes} Commit      at PREPARE
//!       Finish{gid} <the changes' records> Commit              at COMMIT PREPARED
//!       Finish{gid} Commit                                     at ROLLBACK PREPARED
//! ```
//! Replay applies the same records through [`super::Tables::apply`], so a
//! prepared transaction survives a crash as prepared; checkpoints keep the
//! undecided ones in the manifest (their Prepare records may be gone).

use super::row_codec::{ByteReader, ByteWriter, Decoded, Malformed};
use super::table::RowRef;
use super::tables::Tables;
use super::txn::Change;
use crate::shard::datum::KeyValue;
use std::collections::HashSet;

/// PostgreSQL's limit on a transaction identifier (GIDSIZE less its NUL).
pub const MAX_GID_BYTES: usize = 199;

/// A prepared transaction as logged: who prepared it and what it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareRecord {
    /// The global transaction identifier.
    pub gid: String,
    /// The role that prepared it.
    pub owner: String,
    /// The database it was prepared in.
    pub database: String,
    /// When it was prepared: microseconds since 2000-01-01 UTC (a timestamptz).
    pub prepared_at: i64,
    /// Its write set, in order.
    pub changes: Vec<Change>,
}

/// A prepared transaction waiting for its decision.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What was logged.
    pub record: PrepareRecord,
    /// What it reserves.
    pub(crate) footprint: Footprint,
}

/// What a write set touches, to find writers that must wait for a
/// prepared transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Footprint {
    /// Relations whose definition changes (created, dropped, truncated,
    /// altered, indexed): no other writer may touch them.
    locked: HashSet<String>,
    /// Tables whose rows change.
    written: HashSet<String>,
    /// Primary keys added or removed, by table.
    keys: HashSet<(String, Vec<KeyValue>)>,
    /// Committed rows updated or deleted: table and slot.
    rows: HashSet<(String, u32)>,
}

impl Footprint {
    /// The footprint of `changes` over the committed `tables`.
    pub(crate) fn of(changes: &[Change], tables: &Tables) -> Footprint {
        let mut f = Footprint::default();
        let key_of = |table: &str, row: &[crate::shard::datum::Datum]| {
            tables
                .get(table)
                .and_then(|t| t.def().key_of(row))
                .map(|k| (table.to_string(), k))
        };
        let old_key = |table: &str, slot: u32| {
            tables
                .get(table)
                .and_then(|t| t.row(slot))
                .and_then(|row| key_of(table, &row))
        };
        for c in changes {
            match c {
                Change::CreateTable { name, .. }
                | Change::DropTable(name)
                | Change::Truncate(name)
                | Change::AddColumn { table: name, .. } => {
                    f.locked.insert(name.clone());
                }
                Change::CreateIndex { table, index } => {
                    f.locked.insert(table.clone());
                    f.locked.insert(index.name.clone());
                }
                Change::DropIndex(name) => {
                    f.locked.insert(name.clone());
                    if let Some((t, _)) = tables.find_index(name) {
                        f.locked.insert(t.def().name.clone());
                    }
                }
                Change::Insert { table, row } => {
                    f.written.insert(table.clone());
                    f.keys.extend(key_of(table, row));
                }
                Change::Update { table, row, new } => {
                    f.written.insert(table.clone());
                    f.rows.insert((table.clone(), row.slot));
                    f.keys.extend(old_key(table, row.slot));
                    f.keys.extend(key_of(table, new));
                }
                Change::Delete { table, row } => {
                    f.written.insert(table.clone());
                    f.rows.insert((table.clone(), row.slot));
                    f.keys.extend(old_key(table, row.slot));
                }
            }
        }
        f
    }

    /// True when the two write sets cannot both go ahead undecided.
    pub(crate) fn conflicts(&self, other: &Footprint) -> bool {
        let touches =
            |f: &Footprint, name: &String| f.locked.contains(name) || f.written.contains(name);
        self.locked.iter().any(|n| touches(other, n))
            || other.locked.iter().any(|n| touches(self, n))
            || !self.keys.is_disjoint(&other.keys)
            || !self.rows.is_disjoint(&other.rows)
    }
}

impl Prepared {
    /// The changes to apply at COMMIT PREPARED. The rows it updates or
    /// deletes are reserved, so their current versions are the ones it
    /// read (versions restart after a restart; slots do not).
    pub(crate) fn changes_to_commit(&self, tables: &Tables) -> Vec<Change> {
        let current = |table: &str, row: &RowRef| {
            tables
                .get(table)
                .and_then(|t| t.row_ref(row.slot))
                .unwrap_or(*row)
        };
        self.record
            .changes
            .iter()
            .cloned()
            .map(|c| match c {
                Change::Update { table, row, new } => Change::Update {
                    row: current(&table, &row),
                    table,
                    new,
                },
                Change::Delete { table, row } => Change::Delete {
                    row: current(&table, &row),
                    table,
                },
                c => c,
            })
            .collect()
    }
}

impl PrepareRecord {
    /// Appends the record's fields.
    pub(crate) fn encode(&self, w: &mut ByteWriter) {
        w.str(&self.gid);
        w.str(&self.owner);
        w.str(&self.database);
        w.u64(self.prepared_at as u64);
        w.u32(self.changes.len() as u32);
        for c in &self.changes {
            encode_change(c, w);
        }
    }

    /// Reads the fields [`PrepareRecord::encode`] wrote.
    pub(crate) fn decode(r: &mut ByteReader<'_>) -> Decoded<PrepareRecord> {
        let gid = r.str()?;
        let owner = r.str()?;
        let database = r.str()?;
        let prepared_at = r.u64()? as i64;
        let n = r.count(1)?;
        let changes = (0..n)
            .map(|_| decode_change(r))
            .collect::<Decoded<Vec<_>>>()?;
        Ok(PrepareRecord {
            gid,
            owner,
            database,
            prepared_at,
            changes,
        })
    }
}

fn encode_change(c: &Change, w: &mut ByteWriter) {
    match c {
        Change::CreateTable {
            name,
            columns,
            primary_key,
            constraints,
        } => {
            w.u8(1);
            w.str(name);
            w.u32(columns.len() as u32);
            for col in columns {
                w.column(col);
            }
            w.u32(primary_key.len() as u32);
            for &k in primary_key {
                w.u32(k as u32);
            }
            w.constraints(constraints);
        }
        Change::DropTable(name) => {
            w.u8(2);
            w.str(name);
        }
        Change::Truncate(name) => {
            w.u8(3);
            w.str(name);
        }
        Change::AddColumn {
            table,
            column,
            fill,
        } => {
            w.u8(4);
            w.str(table);
            w.column(column);
            w.value(fill);
        }
        Change::CreateIndex { table, index } => {
            w.u8(5);
            w.str(table);
            w.index_def(index);
        }
        Change::DropIndex(name) => {
            w.u8(6);
            w.str(name);
        }
        Change::Insert { table, row } => {
            w.u8(7);
            w.str(table);
            w.row(row);
        }
        Change::Update { table, row, new } => {
            w.u8(8);
            w.str(table);
            w.u32(row.slot);
            w.row(new);
        }
        Change::Delete { table, row } => {
            w.u8(9);
            w.str(table);
            w.u32(row.slot);
        }
    }
}

fn decode_change(r: &mut ByteReader<'_>) -> Decoded<Change> {
    let slot = |slot| RowRef { slot, version: 0 };
    Ok(match r.u8()? {
        1 => {
            let name = r.str()?;
            let n = r.count(1)?;
            let columns = (0..n).map(|_| r.column()).collect::<Decoded<Vec<_>>>()?;
            let n = r.count(4)?;
            let primary_key = (0..n)
                .map(|_| r.u32().map(|k| k as usize))
                .collect::<Decoded<Vec<_>>>()?;
            let constraints = r.constraints(columns.len())?;
            Change::CreateTable {
                name,
                columns,
                primary_key,
                constraints,
            }
        }
        2 => Change::DropTable(r.str()?),
        3 => Change::Truncate(r.str()?),
        4 => Change::AddColumn {
            table: r.str()?,
            column: r.column()?,
            fill: r.value()?,
        },
        5 => Change::CreateIndex {
            table: r.str()?,
            index: r.index_def()?,
        },
        6 => Change::DropIndex(r.str()?),
        7 => Change::Insert {
            table: r.str()?,
            row: r.row()?,
        },
        8 => Change::Update {
            table: r.str()?,
            row: slot(r.u32()?),
            new: r.row()?,
        },
        9 => Change::Delete {
            table: r.str()?,
            row: slot(r.u32()?),
        },
        t => return Err(Malformed(format!("unknown change type {t}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::catalog::{
        ColumnDef, ColumnType, Constraints, ForeignKey, IndexDef, IndexMethod, OnDelete, OnUpdate,
        Unique,
    };
    use crate::wire::Value;

    #[test]
    fn prepare_records_round_trip() {
        let rec = PrepareRecord {
            gid: "g1".into(),
            owner: "alice".into(),
            database: "db".into(),
            prepared_at: 1_700_000_000_000_000,
            changes: vec![
                Change::CreateTable {
                    name: "t".into(),
                    columns: vec![ColumnDef {
                        name: "id".into(),
                        ty: ColumnType::Int8,
                        not_null: true,
                        default: None,
                    }],
                    primary_key: vec![0],
                    constraints: Constraints {
                        unique: vec![Unique {
                            name: "t_id_key".into(),
                            columns: vec![0],
                        }],
                        foreign_keys: vec![ForeignKey {
                            name: "t_id_fkey".into(),
                            columns: vec![0],
                            table: "p".into(),
                            referenced: vec![1],
                            on_delete: OnDelete::Cascade,
                            on_update: OnUpdate::Restrict,
                        }],
                    },
                },
                Change::CreateIndex {
                    table: "t".into(),
                    index: IndexDef {
                        oid: 0,
                        name: "t_idx".into(),
                        column: 0,
                        method: IndexMethod::BTree,
                        expression: None,
                        predicate: None,
                        with: Vec::new(),
                    },
                },
                Change::Insert {
                    table: "t".into(),
                    row: vec![Some(Value::Int8(7))],
                },
                Change::Update {
                    table: "t".into(),
                    row: RowRef {
                        slot: 3,
                        version: 0,
                    },
                    new: vec![None],
                },
                Change::Delete {
                    table: "t".into(),
                    row: RowRef {
                        slot: 4,
                        version: 0,
                    },
                },
                Change::DropIndex("t_idx".into()),
                Change::Truncate("t".into()),
                Change::DropTable("t".into()),
            ],
        };
        let mut w = ByteWriter::default();
        rec.encode(&mut w);
        let mut r = ByteReader::new(&w.buf);
        assert_eq!(PrepareRecord::decode(&mut r).unwrap(), rec);
        r.finish().unwrap();
    }
}
