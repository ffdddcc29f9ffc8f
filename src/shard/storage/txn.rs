//! Transactions: a write set collected statement by statement and applied
//! at commit, all of it or none.
//!
//! Each statement is checked when it is added, against the committed
//! tables plus the transaction's own earlier changes, so that a primary-key
//! conflict or a NULL in a NOT NULL column fails the statement with
//! PostgreSQL's error (23505, 23502). Commit checks everything again under
//! the write lock (another transaction may have committed the same key in
//! between) and turns each change into a WAL record: that is where slots
//! and oids are chosen and where a row changed since it was read is found
//! (40001).

use super::catalog::{key_of_columns, ColumnDef, Constraints, ForeignKey, IndexDef, TableDef};
use super::error::{Result, StorageError};
use super::table::RowRef;
use super::tables::Tables;
use super::wal::record::WalRecord;
use crate::shard::datum::{Datum, KeyValue};
use std::collections::{HashMap, HashSet};

/// One change in a transaction's write set.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `CREATE TABLE name (columns, PRIMARY KEY (primary_key))`.
    CreateTable {
        /// Table name.
        name: String,
        /// Columns.
        columns: Vec<ColumnDef>,
        /// Positions of the key columns.
        primary_key: Vec<usize>,
        /// UNIQUE and FOREIGN KEY constraints.
        constraints: Constraints,
    },
    /// `DROP TABLE`.
    DropTable(String),
    /// `TRUNCATE`.
    Truncate(String),
    /// `ALTER TABLE … ADD COLUMN` with the value existing rows get.
    AddColumn {
        /// Table name.
        table: String,
        /// The new column.
        column: ColumnDef,
        /// Value for existing rows (the evaluated default, or NULL).
        fill: Datum,
    },
    /// `CREATE INDEX name ON table … USING method`.
    CreateIndex {
        /// Table name.
        table: String,
        /// The index (its OID is given at commit).
        index: IndexDef,
    },
    /// `DROP INDEX`.
    DropIndex(String),
    /// A new row.
    Insert {
        /// Table name.
        table: String,
        /// Values, one per column.
        row: Vec<Datum>,
    },
    /// A row replaced.
    Update {
        /// Table name.
        table: String,
        /// The row as read.
        row: RowRef,
        /// New values, one per column.
        new: Vec<Datum>,
    },
    /// A row deleted.
    Delete {
        /// Table name.
        table: String,
        /// The row as read.
        row: RowRef,
    },
}

fn lookup(tables: &Tables, name: &str) -> Result<u32> {
    tables
        .get(name)
        .map(|t| t.def().oid)
        .ok_or_else(|| StorageError::undefined_table(name))
}

fn current(tables: &Tables, oid: u32, row: RowRef) -> Result<()> {
    match tables.by_oid(oid).and_then(|t| t.row_ref(row.slot)) {
        Some(now) if now == row => Ok(()),
        _ => Err(StorageError::serialization_failure()),
    }
}

impl Change {
    /// The WAL record that performs this change on `tables` as they are now
    /// (the change's rows move into it).
    /// `touched`: the committed rows (table oid, slot) earlier changes of
    /// the same transaction changed — their version moved on, so only
    /// the first change of a row checks it.
    pub(crate) fn plan(
        self,
        tables: &Tables,
        touched: &mut HashSet<(u32, u32)>,
    ) -> Result<WalRecord> {
        Ok(match self {
            Change::CreateTable {
                name,
                columns,
                primary_key,
                constraints,
            } => WalRecord::CreateTable(TableDef {
                oid: tables.next_oid(),
                name,
                columns,
                primary_key,
                constraints,
            }),
            Change::DropTable(name) => WalRecord::DropTable {
                table: lookup(tables, &name)?,
            },
            Change::Truncate(name) => WalRecord::Truncate {
                table: lookup(tables, &name)?,
            },
            Change::AddColumn {
                table,
                column,
                fill,
            } => WalRecord::AddColumn {
                table: lookup(tables, &table)?,
                column,
                fill,
            },
            Change::CreateIndex { table, index } => WalRecord::CreateIndex {
                table: lookup(tables, &table)?,
                index: IndexDef {
                    oid: tables.next_oid(),
                    ..index
                },
            },
            Change::DropIndex(name) => {
                let (t, i) = tables
                    .find_index(&name)
                    .ok_or_else(|| StorageError::undefined_index(&name))?;
                WalRecord::DropIndex {
                    table: t.def().oid,
                    index: i.def.oid,
                }
            }
            Change::Insert { table, row } => {
                let oid = lookup(tables, &table)?;
                let slot = tables.by_oid(oid).map_or(0, |t| t.next_slot());
                WalRecord::Insert {
                    table: oid,
                    slot,
                    row,
                }
            }
            Change::Update { table, row, new } => {
                let oid = lookup(tables, &table)?;
                if touched.insert((oid, row.slot)) {
                    current(tables, oid, row)?;
                }
                WalRecord::Update {
                    table: oid,
                    slot: row.slot,
                    row: new,
                }
            }
            Change::Delete { table, row } => {
                let oid = lookup(tables, &table)?;
                if touched.insert((oid, row.slot)) {
                    current(tables, oid, row)?;
                }
                WalRecord::Delete {
                    table: oid,
                    slot: row.slot,
                }
            }
        })
    }
}

/// A value as an error's DETAIL shows it.
fn text_of(d: &Datum) -> String {
    d.as_ref()
        .map_or_else(|| "null".to_string(), |v| v.to_text())
}

/// Primary keys a transaction added and removed in one table.
#[derive(Debug, Default, Clone)]
struct KeyDelta {
    added: HashSet<Vec<KeyValue>>,
    removed: HashSet<Vec<KeyValue>>,
    /// Created or truncated in this transaction: committed keys don't count.
    cleared: bool,
}

/// An open transaction's write set (cloned for a savepoint).
#[derive(Debug, Default, Clone)]
pub struct Transaction {
    changes: Vec<Change>,
    /// Definitions as this transaction changed them (None: dropped).
    defs: HashMap<String, Option<TableDef>>,
    keys: HashMap<String, KeyDelta>,
    /// Keys of UNIQUE constraints, by table and constraint position
    /// (committed keys count unless the table's primary-key delta is
    /// cleared).
    unique_keys: HashMap<(String, usize), KeyDelta>,
    /// Committed rows (table, slot) this transaction updated or deleted:
    /// a later statement sees them as changed.
    touched: HashSet<(String, u32)>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// The changes so far, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub(crate) fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    /// The definition of `name` as this transaction sees it.
    pub fn table_def(&self, tables: &Tables, name: &str) -> Result<TableDef> {
        self.def_ref(tables, name).cloned()
    }

    /// True when a table or index `name` exists as this transaction sees
    /// the catalog (its own CREATEs and DROPs applied).
    pub fn relation_exists(&self, tables: &Tables, name: &str) -> bool {
        let index_added = self
            .changes
            .iter()
            .any(|c| matches!(c, Change::CreateIndex { index, .. } if index.name == name));
        // A committed index lives while its table is the committed one
        // (not dropped, nor dropped and created again, in this transaction).
        let committed_index = tables.find_index(name).is_some_and(|(t, _)| {
            let def = t.def();
            match self.defs.get(&def.name) {
                Some(seen) => seen.as_ref().is_some_and(|d| d.oid == def.oid),
                None => true,
            }
        });
        match self.defs.get(name) {
            Some(def) => def.is_some(),
            None => tables.get(name).is_some() || committed_index || index_added,
        }
    }

    /// `CREATE TABLE`.
    pub fn create_table(
        &mut self,
        tables: &Tables,
        name: &str,
        columns: Vec<ColumnDef>,
        primary_key: Vec<usize>,
        constraints: Constraints,
    ) -> Result<()> {
        if self.relation_exists(tables, name) {
            return Err(StorageError::duplicate_relation(name));
        }
        let def = TableDef {
            oid: 0,
            name: name.to_string(),
            columns: columns.clone(),
            primary_key: primary_key.clone(),
            constraints: constraints.clone(),
        };
        def.validate()?;
        for fk in &constraints.foreign_keys {
            let parent = self.def_ref(tables, &fk.table)?;
            if fk.referenced.len() != fk.columns.len()
                || fk.referenced.iter().any(|&c| c >= parent.columns.len())
            {
                return Err(StorageError::new(
                    "42830",
                    "number of referencing and referenced columns for foreign key disagree",
                ));
            }
            if !parent.is_unique_key(&fk.referenced) {
                return Err(StorageError::new(
                    "42830",
                    format!(
                        "there is no unique constraint matching given keys for referenced table \"{}\"",
                        fk.table
                    ),
                ));
            }
        }
        self.defs.insert(name.to_string(), Some(def));
        self.keys.insert(
            name.to_string(),
            KeyDelta {
                cleared: true,
                ..KeyDelta::default()
            },
        );
        self.changes.push(Change::CreateTable {
            name: name.to_string(),
            columns,
            primary_key,
            constraints,
        });
        Ok(())
    }

    /// The tables (as this transaction sees them) with a foreign key to
    /// `parent`, each with the key (self-references excluded).
    pub fn referencing(&self, tables: &Tables, parent: &str) -> Vec<(TableDef, ForeignKey)> {
        let names: std::collections::BTreeSet<&str> = tables
            .iter()
            .map(|t| t.def().name.as_str())
            .chain(self.defs.keys().map(String::as_str))
            .collect();
        names
            .into_iter()
            .filter(|n| *n != parent)
            .filter_map(|n| self.def_ref(tables, n).ok())
            .flat_map(|def| {
                def.constraints
                    .foreign_keys
                    .iter()
                    .filter(|fk| fk.table == parent)
                    .map(|fk| (def.clone(), fk.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// 2BP01 when another table's foreign key references `name`.
    fn refuse_if_referenced(&self, tables: &Tables, name: &str, what: &str) -> Result<()> {
        let dependents = self.referencing(tables, name);
        if let Some((child, _)) = dependents.first() {
            let e = match what {
                "DROP" => StorageError::new(
                    "2BP01",
                    format!("cannot drop table {name} because other objects depend on it"),
                )
                .with_detail(
                    dependents
                        .iter()
                        .map(|(c, f)| {
                            format!(
                                "constraint {} on table {} depends on table {name}",
                                f.name, c.name
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."),
                _ => StorageError::new(
                    "0A000",
                    "cannot truncate a table referenced in a foreign key constraint",
                )
                .with_detail(format!("Table \"{}\" references \"{name}\".", child.name))
                .with_hint(format!(
                    "Truncate table \"{}\" at the same time, or use TRUNCATE ... CASCADE.",
                    child.name
                )),
            };
            return Err(e);
        }
        Ok(())
    }

    /// `DROP TABLE`.
    pub fn drop_table(&mut self, tables: &Tables, name: &str) -> Result<()> {
        self.table_def(tables, name)?;
        self.refuse_if_referenced(tables, name, "DROP")?;
        self.defs.insert(name.to_string(), None);
        self.keys.remove(name);
        self.changes.push(Change::DropTable(name.to_string()));
        Ok(())
    }

    /// `TRUNCATE`.
    pub fn truncate(&mut self, tables: &Tables, name: &str) -> Result<()> {
        self.table_def(tables, name)?;
        self.refuse_if_referenced(tables, name, "TRUNCATE")?;
        self.keys.insert(
            name.to_string(),
            KeyDelta {
                cleared: true,
                ..KeyDelta::default()
            },
        );
        self.changes.push(Change::Truncate(name.to_string()));
        Ok(())
    }

    /// `ALTER TABLE … ADD COLUMN`; `fill` is what existing rows get.
    pub fn add_column(
        &mut self,
        tables: &Tables,
        table: &str,
        column: ColumnDef,
        fill: Datum,
    ) -> Result<()> {
        let mut def = self.table_def(tables, table)?;
        if def.column_index(&column.name).is_some() {
            return Err(StorageError::duplicate_column(&column.name, table));
        }
        def.columns.push(column.clone());
        self.defs.insert(table.to_string(), Some(def));
        self.changes.push(Change::AddColumn {
            table: table.to_string(),
            column,
            fill,
        });
        Ok(())
    }

    /// `CREATE INDEX name ON table USING method (column)`.
    pub fn create_index(&mut self, tables: &Tables, table: &str, index: IndexDef) -> Result<()> {
        let def = self.table_def(tables, table)?;
        if index.column >= def.columns.len() {
            return Err(StorageError::new(
                "42703",
                format!("column {} does not exist", index.column),
            ));
        }
        if self.relation_exists(tables, &index.name) {
            return Err(StorageError::duplicate_relation(&index.name));
        }
        self.changes.push(Change::CreateIndex {
            table: table.to_string(),
            index,
        });
        Ok(())
    }

    /// `DROP INDEX`.
    pub fn drop_index(&mut self, tables: &Tables, name: &str) -> Result<()> {
        if tables.find_index(name).is_none() {
            return Err(StorageError::undefined_index(name));
        }
        self.changes.push(Change::DropIndex(name.to_string()));
        Ok(())
    }

    fn delta(&mut self, table: &str) -> &mut KeyDelta {
        self.keys.entry(table.to_string()).or_default()
    }

    /// Records a key an insert added (without allocating the table's name
    /// again for each row of a COPY once the table has a delta).
    fn add_key(&mut self, table: &str, key: Vec<KeyValue>) {
        match self.keys.get_mut(table) {
            Some(d) => {
                d.added.insert(key);
            }
            None => self.delta(table).added.extend([key]),
        }
    }

    fn check_key(&self, tables: &Tables, table: &str, key: &[KeyValue]) -> Result<()> {
        let committed = tables.get(table).is_some_and(|t| t.has_key(key));
        let d = self.keys.get(table);
        let (added, cleared) = d.map_or((false, false), |d| (d.added.contains(key), d.cleared));
        if added || (committed && !cleared && !d.is_some_and(|d| d.removed.contains(key))) {
            return Err(self.def_ref(tables, table)?.duplicate_key(key));
        }
        Ok(())
    }

    /// 23505 when UNIQUE constraint `i` of `table` already has `key`.
    fn check_unique(
        &mut self,
        tables: &Tables,
        table: &str,
        i: usize,
        key: &[KeyValue],
    ) -> Result<()> {
        let cleared = self.keys.get(table).is_some_and(|d| d.cleared);
        let committed = tables.get(table).is_some_and(|t| t.has_unique(i, key));
        let d = self.unique_keys.entry((table.to_string(), i)).or_default();
        if d.added.contains(key) || (committed && !cleared && !d.removed.contains(key)) {
            return Err(self.def_ref(tables, table)?.duplicate_unique(i, key));
        }
        Ok(())
    }

    /// Checks and records the UNIQUE keys of a row going from `old` to
    /// `new` (either absent for an insert or a delete).
    fn change_uniques(
        &mut self,
        tables: &Tables,
        table: &str,
        old: Option<&[Datum]>,
        new: Option<&[Datum]>,
    ) -> Result<()> {
        let uniques = self.def_ref(tables, table)?.constraints.unique.clone();
        for (i, u) in uniques.iter().enumerate() {
            let old_key = old.and_then(|r| key_of_columns(&u.columns, r));
            let new_key = new.and_then(|r| key_of_columns(&u.columns, r));
            if old_key == new_key {
                continue;
            }
            if let Some(k) = &new_key {
                self.check_unique(tables, table, i, k)?;
            }
            let d = self.unique_keys.entry((table.to_string(), i)).or_default();
            if let Some(k) = old_key {
                if !d.added.remove(&k) {
                    d.removed.insert(k);
                }
            }
            if let Some(k) = new_key {
                d.added.insert(k);
            }
        }
        Ok(())
    }

    /// True when `parent` (as this transaction sees it) has a row whose
    /// `columns` (its primary key or a UNIQUE constraint's) hold `values`.
    pub fn has_referenced_key(
        &self,
        tables: &Tables,
        parent: &str,
        columns: &[usize],
        values: &[KeyValue],
    ) -> Result<bool> {
        let def = self.def_ref(tables, parent)?;
        let in_order = |key_columns: &[usize]| -> Option<Vec<KeyValue>> {
            key_columns
                .iter()
                .map(|c| {
                    columns
                        .iter()
                        .position(|x| x == c)
                        .map(|p| values[p].clone())
                })
                .collect()
        };
        let cleared = self.keys.get(parent).is_some_and(|d| d.cleared);
        let committed_table = tables.get(parent).filter(|_| !cleared);
        if let Some(key) =
            in_order(&def.primary_key).filter(|_| def.primary_key.len() == columns.len())
        {
            let d = self.keys.get(parent);
            if d.is_some_and(|d| d.added.contains(&key)) {
                return Ok(true);
            }
            let removed = d.is_some_and(|d| d.removed.contains(&key));
            return Ok(!removed && committed_table.is_some_and(|t| t.has_key(&key)));
        }
        for (i, u) in def.constraints.unique.iter().enumerate() {
            let Some(key) = in_order(&u.columns).filter(|_| u.columns.len() == columns.len())
            else {
                continue;
            };
            let d = self.unique_keys.get(&(parent.to_string(), i));
            if d.is_some_and(|d| d.added.contains(&key)) {
                return Ok(true);
            }
            let removed = d.is_some_and(|d| d.removed.contains(&key));
            return Ok(!removed && committed_table.is_some_and(|t| t.has_unique(i, &key)));
        }
        Ok(false)
    }

    /// 23503 when a foreign key of `table` points at no row.
    fn check_references(&self, tables: &Tables, table: &str, row: &[Datum]) -> Result<()> {
        let def = self.def_ref(tables, table)?;
        for fk in &def.constraints.foreign_keys {
            let Some(values) = key_of_columns(&fk.columns, row) else {
                continue;
            };
            if !self.has_referenced_key(tables, &fk.table, &fk.referenced, &values)? {
                let shown: Vec<String> = fk.columns.iter().map(|&c| text_of(&row[c])).collect();
                return Err(StorageError::new(
                    "23503",
                    format!(
                        "insert or update on table \"{table}\" violates foreign key constraint \"{}\"",
                        fk.name
                    ),
                )
                .with_detail(format!(
                    "Key ({})=({}) is not present in table \"{}\".",
                    def.column_list(&fk.columns),
                    shown.join(", "),
                    fk.table
                )));
            }
        }
        Ok(())
    }

    /// The definition of `name` as this transaction sees it, borrowed.
    fn def_ref<'a>(&'a self, tables: &'a Tables, name: &str) -> Result<&'a TableDef> {
        match self.defs.get(name) {
            Some(Some(def)) => Ok(def),
            Some(None) => Err(StorageError::undefined_table(name)),
            None => tables
                .get(name)
                .map(|t| t.def())
                .ok_or_else(|| StorageError::undefined_table(name)),
        }
    }

    /// `INSERT` of one row (values for every column, defaults applied).
    pub fn insert(&mut self, tables: &Tables, table: &str, row: Vec<Datum>) -> Result<()> {
        let key = {
            let def = self.def_ref(tables, table)?;
            def.check_row(&row)?;
            def.key_of(&row)
        };
        if let Some(key) = &key {
            self.check_key(tables, table, key)?;
        }
        self.change_uniques(tables, table, None, Some(&row))?;
        if let Err(e) = self.check_references(tables, table, &row) {
            self.change_uniques(tables, table, Some(&row), None)?;
            return Err(e);
        }
        if let Some(key) = key {
            self.add_key(table, key);
        }
        self.changes.push(Change::Insert {
            table: table.to_string(),
            row,
        });
        Ok(())
    }

    /// Committed row `row` of `table` as this transaction last left it.
    fn current_row(&self, tables: &Tables, table: &str, row: RowRef) -> Result<Vec<Datum>> {
        if self.touched.contains(&(table.to_string(), row.slot)) {
            for c in self.changes.iter().rev() {
                match c {
                    Change::Update {
                        table: t,
                        row: r,
                        new,
                    } if t == table && r.slot == row.slot => return Ok(new.clone()),
                    Change::Delete { table: t, row: r } if t == table && r.slot == row.slot => {
                        return Err(StorageError::serialization_failure())
                    }
                    _ => {}
                }
            }
        }
        Self::read_row(tables, table, row)
    }

    /// Committed row `slot` of `table` as this transaction left it;
    /// `None` once it deleted it (or no such row).
    pub fn committed_row_now(&self, tables: &Tables, table: &str, slot: u32) -> Option<Vec<Datum>> {
        if self.touched.contains(&(table.to_string(), slot)) {
            for c in self.changes.iter().rev() {
                match c {
                    Change::Update { table: t, row, new } if t == table && row.slot == slot => {
                        return Some(new.clone())
                    }
                    Change::Delete { table: t, row } if t == table && row.slot == slot => {
                        return None
                    }
                    _ => {}
                }
            }
        }
        tables.get(table)?.row(slot)
    }

    /// The committed rows of `table` this transaction changed, by slot:
    /// their values now, or `None` for a deleted one.
    pub fn changed_committed_rows(&self, table: &str) -> HashMap<u32, Option<Vec<Datum>>> {
        let mut out = HashMap::new();
        if !self.touched.iter().any(|(t, _)| t == table) {
            return out;
        }
        for c in &self.changes {
            match c {
                Change::Update { table: t, row, new } if t == table => {
                    out.insert(row.slot, Some(new.clone()));
                }
                Change::Delete { table: t, row } if t == table => {
                    out.insert(row.slot, None);
                }
                _ => {}
            }
        }
        out
    }

    fn read_row(tables: &Tables, table: &str, row: RowRef) -> Result<Vec<Datum>> {
        tables
            .get(table)
            .filter(|t| t.row_ref(row.slot) == Some(row))
            .and_then(|t| t.row(row.slot))
            .ok_or_else(StorageError::serialization_failure)
    }

    /// `UPDATE` of a committed row read as `row`.
    pub fn update(
        &mut self,
        tables: &Tables,
        table: &str,
        row: RowRef,
        new: Vec<Datum>,
    ) -> Result<()> {
        let def = self.table_def(tables, table)?;
        def.check_row(&new)?;
        let old = self.current_row(tables, table, row)?;
        let (old_key, new_key) = (def.key_of(&old), def.key_of(&new));
        if let Some(k) = new_key.as_ref().filter(|k| Some(*k) != old_key.as_ref()) {
            self.check_key(tables, table, k)?;
        }
        self.change_uniques(tables, table, Some(&old), Some(&new))?;
        if let Err(e) = self.check_references(tables, table, &new) {
            self.change_uniques(tables, table, Some(&new), Some(&old))?;
            return Err(e);
        }
        if new_key != old_key {
            let d = self.delta(table);
            if let Some(k) = old_key {
                d.removed.insert(k);
            }
            if let Some(k) = new_key {
                d.added.insert(k);
            }
        }
        self.touched.insert((table.to_string(), row.slot));
        self.changes.push(Change::Update {
            table: table.to_string(),
            row,
            new,
        });
        Ok(())
    }

    /// `DELETE` of a committed row read as `row`.
    pub fn delete(&mut self, tables: &Tables, table: &str, row: RowRef) -> Result<()> {
        let def = self.table_def(tables, table)?;
        let old = self.current_row(tables, table, row)?;
        self.change_uniques(tables, table, Some(&old), None)?;
        if let Some(k) = def.key_of(&old) {
            self.delta(table).removed.insert(k);
        }
        self.touched.insert((table.to_string(), row.slot));
        self.changes.push(Change::Delete {
            table: table.to_string(),
            row,
        });
        Ok(())
    }

    /// How many writes the transaction holds: positions of
    /// [`Transaction::pending_rows`] from here on are later inserts.
    pub fn write_count(&self) -> usize {
        self.changes.len()
    }

    /// False once this transaction created, dropped or truncated `table`:
    /// the rows committed before are not its rows any more.
    pub fn sees_committed(&self, table: &str) -> bool {
        !self.changes.iter().any(|c| match c {
            Change::CreateTable { name, .. } => name == table,
            Change::DropTable(name) | Change::Truncate(name) => name == table,
            _ => false,
        })
    }

    /// Rows this transaction inserted into `table` since its definition
    /// last changed: (position in the write set, row), for its own UPDATE
    /// and DELETE.
    pub fn pending_rows(&self, table: &str) -> Vec<(usize, &[Datum])> {
        let start = self
            .changes
            .iter()
            .rposition(|c| match c {
                Change::CreateTable { name, .. } => name == table,
                Change::DropTable(name) | Change::Truncate(name) => name == table,
                Change::AddColumn { table: t, .. } => t == table,
                _ => false,
            })
            .map_or(0, |p| p + 1);
        self.changes[start..]
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Change::Insert { table: t, row } if t == table => Some((start + i, row.as_slice())),
                _ => None,
            })
            .collect()
    }

    fn pending_row(&self, pos: usize) -> Result<(String, Vec<Datum>)> {
        match self.changes.get(pos) {
            Some(Change::Insert { table, row }) => Ok((table.clone(), row.clone())),
            _ => Err(StorageError::new(
                "XX000",
                "not a row this transaction inserted",
            )),
        }
    }

    /// UPDATE of a row this transaction inserted (at `pos`, from
    /// [`Transaction::pending_rows`]).
    pub fn update_pending(&mut self, tables: &Tables, pos: usize, new: Vec<Datum>) -> Result<()> {
        let (table, old) = self.pending_row(pos)?;
        let (old_key, new_key) = {
            let def = self.def_ref(tables, &table)?;
            def.check_row(&new)?;
            (def.key_of(&old), def.key_of(&new))
        };
        self.change_uniques(tables, &table, Some(&old), Some(&new))?;
        if let Err(e) = self.check_references(tables, &table, &new) {
            self.change_uniques(tables, &table, Some(&new), Some(&old))?;
            return Err(e);
        }
        if new_key != old_key {
            if let Some(k) = &old_key {
                self.delta(&table).added.remove(k);
            }
            if let Some(k) = &new_key {
                if let Err(e) = self.check_key(tables, &table, k) {
                    if let Some(k) = old_key {
                        self.delta(&table).added.insert(k);
                    }
                    return Err(e);
                }
                self.delta(&table).added.insert(k.clone());
            }
        }
        self.changes[pos] = Change::Insert { table, row: new };
        Ok(())
    }

    /// DELETE of rows this transaction inserted (positions from
    /// [`Transaction::pending_rows`]).
    pub fn delete_pending(&mut self, tables: &Tables, mut positions: Vec<usize>) -> Result<()> {
        positions.sort_unstable();
        for pos in positions.into_iter().rev() {
            let (table, old) = self.pending_row(pos)?;
            self.change_uniques(tables, &table, Some(&old), None)?;
            if let Some(k) = self.def_ref(tables, &table)?.key_of(&old) {
                self.delta(&table).added.remove(&k);
            }
            self.changes.remove(pos);
        }
        Ok(())
    }
}
