//! The set of tables, and the one place that changes it: [`Tables::apply`]
//! applies a WAL record (at commit, and again at replay) and returns how to
//! undo it, so a commit that fails halfway is rolled back in memory before
//! anything reaches the WAL.

use super::catalog::IndexMethod;
use super::error::{Result, StorageError};
use super::prepared::{Footprint, Prepared};
use super::table::{Table, TableIndex};
use super::wal::record::WalRecord;
use crate::shard::datum::Datum;
use ann::BuildProgress;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// First oid handed out (PostgreSQL's first user oid).
const FIRST_OID: u32 = 16384;

/// All tables of a shard, by oid.
#[derive(Debug)]
pub struct Tables {
    by_oid: BTreeMap<u32, Table>,
    next_oid: u32,
    next_version: u64,
    /// Bumped by every applied or undone record: an index built while it
    /// stayed the same is an index of the current rows.
    generation: u64,
    /// Prepared transactions waiting for COMMIT or ROLLBACK PREPARED, by gid.
    prepared: BTreeMap<String, Prepared>,
    /// Changes whenever a table or index is created, dropped, truncated
    /// or altered (see [`Tables::schema_epoch`]).
    schema_epoch: u64,
}

/// Schema epochs are drawn from one counter per process, so that no two
/// sets of tables (a standby's, reloaded) ever share one.
static NEXT_SCHEMA_EPOCH: AtomicU64 = AtomicU64::new(1);

fn new_schema_epoch() -> u64 {
    NEXT_SCHEMA_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// How to take back one applied record.
#[derive(Debug)]
pub(crate) enum Undo {
    Inserted {
        table: u32,
        slot: u32,
    },
    Deleted {
        table: u32,
        slot: u32,
        row: Vec<Datum>,
    },
    Updated {
        table: u32,
        slot: u32,
        row: Vec<Datum>,
    },
    CreatedTable {
        table: u32,
    },
    /// Dropped or truncated: the table as it was.
    Replaced(Box<Table>),
    AddedColumn {
        table: u32,
    },
    CreatedIndex {
        table: u32,
        index: u32,
    },
    DroppedIndex {
        table: u32,
        pos: usize,
        index: Box<TableIndex>,
    },
    Prepared {
        gid: String,
    },
    Finished(Box<Prepared>),
    Nothing,
}

fn missing_table(oid: u32) -> StorageError {
    StorageError::new("42P01", format!("table with oid {oid} does not exist"))
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            by_oid: BTreeMap::new(),
            next_oid: FIRST_OID,
            next_version: 1,
            generation: 0,
            prepared: BTreeMap::new(),
            schema_epoch: new_schema_epoch(),
        }
    }
}

impl Tables {
    /// The table named `name`.
    pub fn get(&self, name: &str) -> Option<&Table> {
        self.by_oid.values().find(|t| t.def().name == name)
    }

    /// Allocates room for `rows` more rows in table `name` at once (see
    /// [`Table::reserve`]); nothing when there is no such table.
    pub(crate) fn reserve_rows(&mut self, name: &str, rows: usize) {
        if let Some(t) = self.by_oid.values_mut().find(|t| t.def().name == name) {
            t.reserve(rows);
        }
    }

    /// The table with `oid`.
    pub fn by_oid(&self, oid: u32) -> Option<&Table> {
        self.by_oid.get(&oid)
    }

    /// Every table, by oid.
    pub fn iter(&self) -> impl Iterator<Item = &Table> {
        self.by_oid.values()
    }

    /// The table holding the index named `name`, and the index.
    pub fn find_index(&self, name: &str) -> Option<(&Table, &TableIndex)> {
        self.by_oid
            .values()
            .find_map(|t| t.index(name).map(|i| (t, i)))
    }

    /// True when a table or an index is called `name`.
    pub fn relation_exists(&self, name: &str) -> bool {
        self.get(name).is_some() || self.find_index(name).is_some()
    }

    /// The next oid for a new table or index.
    pub(crate) fn next_oid(&self) -> u32 {
        self.next_oid
    }

    /// Adds a table loaded from a checkpoint.
    pub(crate) fn attach(&mut self, table: Table) {
        let oid = table.def().oid;
        self.next_oid = self.next_oid.max(oid + 1);
        for i in table.indexes() {
            self.next_oid = self.next_oid.max(i.def.oid + 1);
        }
        self.by_oid.insert(oid, table);
    }

    /// The prepared transactions, by gid.
    pub fn prepared(&self) -> impl Iterator<Item = &Prepared> {
        self.prepared.values()
    }

    /// The prepared transaction `gid`.
    pub fn prepared_txn(&self, gid: &str) -> Option<&Prepared> {
        self.prepared.get(gid)
    }

    /// The first prepared transaction (other than `except`) whose
    /// reservations `footprint` overlaps: a writer must wait for it.
    pub(crate) fn blocking_prepared(
        &self,
        footprint: &Footprint,
        except: Option<&str>,
    ) -> Option<&str> {
        self.prepared
            .values()
            .find(|p| Some(p.record.gid.as_str()) != except && p.footprint.conflicts(footprint))
            .map(|p| p.record.gid.as_str())
    }

    /// Sets the oid counter from a checkpoint manifest.
    pub(crate) fn set_next_oid(&mut self, oid: u32) {
        self.next_oid = self.next_oid.max(oid);
    }

    fn table_mut(&mut self, oid: u32) -> Result<&mut Table> {
        self.by_oid.get_mut(&oid).ok_or_else(|| missing_table(oid))
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Changes whenever the tables change.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// A number that changes whenever the schema may have changed (a
    /// table or index created, dropped, truncated or altered, or such a
    /// change undone), and only then: what a statement derived from the
    /// schema can be kept while it stays the same. Unique in the process.
    pub fn schema_epoch(&self) -> u64 {
        self.schema_epoch
    }

    /// Applies `rec`, returning its undo. On error nothing changed.
    /// `progress` reports (and cancels) an index build; `prebuilt` is the
    /// contents of the index a CreateIndex record creates, if they were
    /// built beforehand over the current rows.
    pub(crate) fn apply(
        &mut self,
        rec: &WalRecord,
        progress: &BuildProgress,
        prebuilt: Option<TableIndex>,
    ) -> Result<Undo> {
        let undo = self.apply_record(rec, progress, prebuilt)?;
        self.generation += 1;
        if !matches!(
            rec,
            WalRecord::Insert { .. }
                | WalRecord::Update { .. }
                | WalRecord::Delete { .. }
                | WalRecord::Prepare(_)
                | WalRecord::Finish { .. }
                | WalRecord::Commit
        ) {
            self.schema_epoch = new_schema_epoch();
        }
        Ok(undo)
    }

    fn apply_record(
        &mut self,
        rec: &WalRecord,
        progress: &BuildProgress,
        prebuilt: Option<TableIndex>,
    ) -> Result<Undo> {
        Ok(match rec {
            WalRecord::CreateTable(def) => {
                def.validate()?;
                if self.relation_exists(&def.name) {
                    return Err(StorageError::duplicate_relation(&def.name));
                }
                if self.by_oid.contains_key(&def.oid) {
                    return Err(StorageError::new(
                        "XX000",
                        format!("oid {} is taken", def.oid),
                    ));
                }
                self.next_oid = self.next_oid.max(def.oid + 1);
                self.by_oid.insert(def.oid, Table::new(def.clone()));
                Undo::CreatedTable { table: def.oid }
            }
            WalRecord::DropTable { table } => {
                let old = self
                    .by_oid
                    .remove(table)
                    .ok_or_else(|| missing_table(*table))?;
                Undo::Replaced(Box::new(old))
            }
            WalRecord::Truncate { table } => {
                let emptied = self.table_mut(*table)?.emptied()?;
                let old = std::mem::replace(self.table_mut(*table)?, emptied);
                Undo::Replaced(Box::new(old))
            }
            WalRecord::AddColumn {
                table,
                column,
                fill,
            } => {
                self.table_mut(*table)?.add_column(column.clone(), fill)?;
                Undo::AddedColumn { table: *table }
            }
            WalRecord::CreateIndex { table, index } => {
                if self.relation_exists(&index.name) {
                    return Err(StorageError::duplicate_relation(&index.name));
                }
                self.next_oid = self.next_oid.max(index.oid + 1);
                let t = self.table_mut(*table)?;
                match prebuilt {
                    Some(mut built) => {
                        // Built before the commit gave the index its OID.
                        built.def = index.clone();
                        t.attach_index(built)
                    }
                    None => t.create_index(index.clone(), progress)?,
                }
                Undo::CreatedIndex {
                    table: *table,
                    index: index.oid,
                }
            }
            WalRecord::DropIndex { table, index } => {
                let (pos, removed) =
                    self.table_mut(*table)?.drop_index(*index).ok_or_else(|| {
                        StorageError::new("42704", format!("index with oid {index} does not exist"))
                    })?;
                Undo::DroppedIndex {
                    table: *table,
                    pos,
                    index: Box::new(removed),
                }
            }
            WalRecord::Insert { table, slot, row } => {
                let v = self.version();
                self.table_mut(*table)?.insert_at(*slot, row, v)?;
                Undo::Inserted {
                    table: *table,
                    slot: *slot,
                }
            }
            WalRecord::Update { table, slot, row } => {
                let v = self.version();
                let old = self.table_mut(*table)?.replace(*slot, row, v)?;
                Undo::Updated {
                    table: *table,
                    slot: *slot,
                    row: old,
                }
            }
            WalRecord::Delete { table, slot } => {
                let row = self.table_mut(*table)?.remove(*slot)?;
                Undo::Deleted {
                    table: *table,
                    slot: *slot,
                    row,
                }
            }
            WalRecord::Prepare(rec) => {
                if self.prepared.contains_key(&rec.gid) {
                    return Err(StorageError::gid_in_use(&rec.gid));
                }
                let prepared = Prepared {
                    footprint: Footprint::of(&rec.changes, self),
                    record: (**rec).clone(),
                };
                self.prepared.insert(rec.gid.clone(), prepared);
                Undo::Prepared {
                    gid: rec.gid.clone(),
                }
            }
            WalRecord::Finish { gid } => {
                let p = self
                    .prepared
                    .remove(gid)
                    .ok_or_else(|| StorageError::unknown_gid(gid))?;
                Undo::Finished(Box::new(p))
            }
            WalRecord::Commit => Undo::Nothing,
        })
    }

    /// Takes back an applied record (newest first). Undo only restores
    /// what apply changed, so it cannot fail on a consistent state; a
    /// failure would be a bug and is logged.
    pub(crate) fn undo(&mut self, undo: Undo) {
        self.generation += 1;
        if matches!(
            undo,
            Undo::CreatedTable { .. }
                | Undo::Replaced(_)
                | Undo::AddedColumn { .. }
                | Undo::CreatedIndex { .. }
                | Undo::DroppedIndex { .. }
        ) {
            self.schema_epoch = new_schema_epoch();
        }
        let outcome = match undo {
            Undo::Inserted { table, slot } => {
                self.table_mut(table).and_then(|t| t.remove(slot)).map(drop)
            }
            Undo::Deleted { table, slot, row } => {
                let v = self.version();
                self.table_mut(table)
                    .and_then(|t| t.insert_at(slot, &row, v))
            }
            Undo::Updated { table, slot, row } => {
                let v = self.version();
                self.table_mut(table)
                    .and_then(|t| t.replace(slot, &row, v))
                    .map(drop)
            }
            Undo::CreatedTable { table } => {
                self.by_oid.remove(&table);
                Ok(())
            }
            Undo::Replaced(old) => {
                self.by_oid.insert(old.def().oid, *old);
                Ok(())
            }
            Undo::AddedColumn { table } => self.table_mut(table).map(Table::drop_last_column),
            Undo::CreatedIndex { table, index } => self.table_mut(table).map(|t| {
                t.drop_index(index);
            }),
            Undo::DroppedIndex { table, pos, index } => {
                self.table_mut(table).map(|t| t.restore_index(pos, *index))
            }
            Undo::Prepared { gid } => {
                self.prepared.remove(&gid);
                Ok(())
            }
            Undo::Finished(p) => {
                self.prepared.insert(p.record.gid.clone(), *p);
                Ok(())
            }
            Undo::Nothing => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "rolling back a failed commit hit an inconsistency");
        }
    }

    /// True when `method` on the column is an ANN index (kept in index files).
    pub(crate) fn is_ann(method: IndexMethod) -> bool {
        !matches!(method, IndexMethod::BTree | IndexMethod::Gin { .. })
    }
}
