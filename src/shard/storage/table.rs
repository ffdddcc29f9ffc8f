//! One table in memory: column stores by row slot, a free list, the
//! primary-key hash index, btree indexes on scalar columns and ANN indexes
//! on vector columns — all changed together by each row operation.
//!
//! ```text
//! slot:      0     1     2     3 …            u32 ids the ANN indexes store
//! versions: [7]   [0]   [9]   [12]            0 = free slot (on the free list)
//! columns:  id[]  embedding[f32; slots×dim] … one ColumnStore per column
//! pkey:     {key → slot}   btree: {(key, slot)}   ann: IvfFlat | Hnsw (slots)
//! ```
//!
//! Freed slots are reused (the free list is a stack), so slot ids stay dense
//! as the ANN indexes want. A row's version changes on every update, so a
//! transaction can tell that a row it read was changed under it.

use super::ann_index::{AnnIndex, AnnSearch};
use super::catalog::{key_of_columns, ColumnDef, IndexDef, IndexMethod, TableDef};
use super::columns::ColumnStore;
use super::error::{Result, StorageError};
use super::space::ColumnSpace;
use crate::shard::datum::{self, Datum, KeyValue};
use ann::{BuildProgress, Filter, Neighbor};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// A row as a transaction saw it: its slot and the version it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef {
    /// Row slot.
    pub slot: u32,
    /// Version seen.
    pub version: u64,
}

/// The contents of a secondary index.
#[derive(Debug)]
pub enum IndexData {
    /// Ordered (key, slot) pairs of the non-NULL values.
    BTree(BTreeSet<(KeyValue, u32)>),
    /// An ANN index over the column's vectors.
    Ann(AnnIndex),
    /// No entries: a btree index on an expression (see
    /// [`IndexDef::expression`]) or a GIN index ([`IndexMethod::Gin`]).
    Expression,
}

/// A secondary index: its definition and contents.
#[derive(Debug)]
pub struct TableIndex {
    /// What was declared.
    pub def: IndexDef,
    /// The entries.
    pub data: IndexData,
}

/// A table's rows and indexes.
#[derive(Debug)]
pub struct Table {
    def: TableDef,
    columns: Vec<ColumnStore>,
    versions: Vec<u64>,
    free: Vec<u32>,
    rows: usize,
    pkey: HashMap<Vec<KeyValue>, u32>,
    /// One map per UNIQUE constraint, from its non-NULL keys to slots.
    uniques: Vec<HashMap<Vec<KeyValue>, u32>>,
    indexes: Vec<TableIndex>,
}

fn index_value(index: &mut TableIndex, columns: &[ColumnStore], slot: u32, value: &Datum) {
    match &mut index.data {
        IndexData::BTree(set) => {
            if let Some(k) = datum::key(value) {
                set.insert((k, slot));
            }
        }
        IndexData::Ann(ann) if value.is_some() => {
            if let Some(metric) = index.def.method.metric() {
                if let Ok(space) = ColumnSpace::new(&columns[index.def.column], metric) {
                    ann.insert(&space, slot);
                }
            }
        }
        IndexData::Ann(_) | IndexData::Expression => {}
    }
}

fn unindex_value(index: &mut TableIndex, columns: &[ColumnStore], slot: u32, value: &Datum) {
    match &mut index.data {
        IndexData::BTree(set) => {
            if let Some(k) = datum::key(value) {
                set.remove(&(k, slot));
            }
        }
        IndexData::Ann(ann) if value.is_some() => {
            if let Some(metric) = index.def.method.metric() {
                if let Ok(space) = ColumnSpace::new(&columns[index.def.column], metric) {
                    ann.delete(&space, slot);
                }
            }
        }
        IndexData::Ann(_) | IndexData::Expression => {}
    }
}

impl Table {
    /// An empty table.
    pub fn new(def: TableDef) -> Table {
        let columns = def
            .columns
            .iter()
            .map(|c| ColumnStore::for_type(c.ty))
            .collect();
        Table {
            uniques: vec![HashMap::new(); def.constraints.unique.len()],
            def,
            columns,
            versions: Vec::new(),
            free: Vec::new(),
            rows: 0,
            pkey: HashMap::new(),
            indexes: Vec::new(),
        }
    }

    /// The definition.
    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// One past the highest slot ever used.
    pub fn slot_count(&self) -> u32 {
        self.versions.len() as u32
    }

    /// The slots holding rows, ascending.
    pub fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.versions
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(i, _)| i as u32)
    }

    /// True when `slot` holds a row.
    pub fn is_live(&self, slot: u32) -> bool {
        self.versions.get(slot as usize).is_some_and(|v| *v != 0)
    }

    /// The row at `slot` with the version a transaction reads it at.
    pub fn row_ref(&self, slot: u32) -> Option<RowRef> {
        self.is_live(slot).then(|| RowRef {
            slot,
            version: self.versions[slot as usize],
        })
    }

    /// The row at `slot`, if live.
    pub fn row(&self, slot: u32) -> Option<Vec<Datum>> {
        self.is_live(slot)
            .then(|| self.columns.iter().map(|c| c.get(slot)).collect())
    }

    /// Column `column` of the row at `slot` (NULL for free slots).
    pub fn value(&self, slot: u32, column: usize) -> Datum {
        self.columns.get(column).and_then(|c| c.get(slot))
    }

    /// True when `slot` holds a row whose `column` is not NULL.
    pub fn has_value(&self, slot: u32, column: usize) -> bool {
        self.is_live(slot) && self.columns.get(column).is_some_and(|c| !c.is_null(slot))
    }

    /// The slot of the row whose primary key equals `key` (one value per
    /// key column).
    pub fn find_key(&self, key: &[Datum]) -> Option<u32> {
        let key: Option<Vec<KeyValue>> = key.iter().map(datum::key).collect();
        self.pkey.get(&key?).copied()
    }

    /// The slot of the row whose primary key is `key`.
    pub fn slot_of_key(&self, key: &[KeyValue]) -> Option<u32> {
        self.pkey.get(key).copied()
    }

    /// True when a row has primary key `key`.
    pub fn has_key(&self, key: &[KeyValue]) -> bool {
        self.pkey.contains_key(key)
    }

    /// True when a row has `key` in UNIQUE constraint `i`.
    pub fn has_unique(&self, i: usize, key: &[KeyValue]) -> bool {
        self.uniques.get(i).is_some_and(|m| m.contains_key(key))
    }

    /// The slot of the row holding `row`'s key in UNIQUE constraint `i`.
    pub fn unique_slot(&self, i: usize, row: &[Datum]) -> Option<u32> {
        let unique = self.def.constraints.unique.get(i)?;
        let key = key_of_columns(&unique.columns, row)?;
        self.uniques.get(i)?.get(&key).copied()
    }

    /// Each UNIQUE constraint's key of `row` (`None` where a value is NULL).
    fn unique_keys(&self, row: &[Datum]) -> Vec<Option<Vec<KeyValue>>> {
        self.def
            .constraints
            .unique
            .iter()
            .map(|u| key_of_columns(&u.columns, row))
            .collect()
    }

    /// 23505 when a key of `new` is taken in a UNIQUE constraint by a row
    /// other than `slot`.
    fn check_uniques(&self, new: &[Option<Vec<KeyValue>>], slot: u32) -> Result<()> {
        for (i, key) in new.iter().enumerate() {
            if let Some(k) = key {
                if self.uniques[i].get(k).is_some_and(|&s| s != slot) {
                    return Err(self.def.duplicate_unique(i, k));
                }
            }
        }
        Ok(())
    }

    fn set_uniques(&mut self, keys: Vec<Option<Vec<KeyValue>>>, slot: Option<u32>) {
        for (i, key) in keys.into_iter().enumerate() {
            if let Some(k) = key {
                match slot {
                    Some(s) => self.uniques[i].insert(k, s),
                    None => self.uniques[i].remove(&k),
                };
            }
        }
    }

    /// The secondary indexes.
    pub fn indexes(&self) -> &[TableIndex] {
        &self.indexes
    }

    /// The index named `name`.
    pub fn index(&self, name: &str) -> Option<&TableIndex> {
        self.indexes.iter().find(|i| i.def.name == name)
    }

    /// True when index `name` is an ANN index ready to search without
    /// one-time work first (see [`AnnIndex::is_warm`]).
    pub fn ann_index_is_warm(&self, name: &str) -> bool {
        self.index(name)
            .is_some_and(|i| matches!(&i.data, IndexData::Ann(a) if a.is_warm()))
    }

    /// Column `column` as an [`ann::Space`] under `metric`.
    pub fn space(&self, column: usize, metric: ann::Metric) -> Result<ColumnSpace<'_>> {
        let store = self
            .columns
            .get(column)
            .ok_or_else(|| StorageError::new("42703", format!("column {column} does not exist")))?;
        ColumnSpace::new(store, metric)
    }

    /// Slots whose value in the btree index `name` lies between the bounds.
    pub fn btree_range(
        &self,
        name: &str,
        low: Bound<KeyValue>,
        high: Bound<KeyValue>,
    ) -> Result<Vec<u32>> {
        let Some(IndexData::BTree(set)) = self.index(name).map(|i| &i.data) else {
            return Err(StorageError::undefined_index(name));
        };
        let low = match low {
            Bound::Included(k) => Bound::Included((k, 0)),
            Bound::Excluded(k) => Bound::Excluded((k, u32::MAX)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let high = match high {
            Bound::Included(k) => Bound::Included((k, u32::MAX)),
            Bound::Excluded(k) => Bound::Excluded((k, 0)),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) =
            (&low, &high)
        {
            if l > h {
                return Ok(Vec::new());
            }
        }
        Ok(set.range((low, high)).map(|(_, slot)| *slot).collect())
    }

    /// Searches the ANN index `name` for the `k` slots nearest to `query`.
    pub fn ann_search(
        &self,
        name: &str,
        query: &crate::wire::Value,
        k: usize,
        settings: &AnnSearch,
        filter: Option<Filter>,
    ) -> Result<Vec<Neighbor>> {
        let index = self
            .index(name)
            .ok_or_else(|| StorageError::undefined_index(name))?;
        let (IndexData::Ann(ann), Some(metric)) = (&index.data, index.def.method.metric()) else {
            return Err(StorageError::new(
                "42809",
                format!("\"{name}\" is not an ANN index"),
            ));
        };
        let space = self.space(index.def.column, metric)?;
        let q = space.query(query)?;
        Ok(ann.search(&space, &q, k, settings, filter))
    }

    /// The slot the next insert takes.
    pub(crate) fn next_slot(&self) -> u32 {
        self.free
            .last()
            .copied()
            .unwrap_or(self.versions.len() as u32)
    }

    /// Inserts `row` at the free `slot`.
    pub(crate) fn insert_at(&mut self, slot: u32, row: &[Datum], version: u64) -> Result<()> {
        self.def.check_row(row)?;
        if self.is_live(slot) {
            return Err(StorageError::new(
                "XX000",
                format!("slot {slot} of \"{}\" is taken", self.def.name),
            ));
        }
        let key = self.def.key_of(row);
        if let Some(key) = key.as_ref().filter(|k| self.pkey.contains_key(*k)) {
            return Err(self.def.duplicate_key(key));
        }
        let unique_keys = self.unique_keys(row);
        self.check_uniques(&unique_keys, slot)?;
        let s = slot as usize;
        if s >= self.versions.len() {
            self.free.extend((self.versions.len() as u32..slot).rev());
            self.versions.resize(s + 1, 0);
        } else if let Some(pos) = self.free.iter().rposition(|&f| f == slot) {
            self.free.swap_remove(pos);
        }
        self.versions[s] = version;
        for (store, value) in self.columns.iter_mut().zip(row) {
            store.set(slot, value);
        }
        if let Some(key) = key {
            self.pkey.insert(key, slot);
        }
        self.set_uniques(unique_keys, Some(slot));
        for index in &mut self.indexes {
            index_value(index, &self.columns, slot, &row[index.def.column]);
        }
        self.rows += 1;
        Ok(())
    }

    fn live_row(&self, slot: u32) -> Result<Vec<Datum>> {
        self.row(slot).ok_or_else(|| {
            StorageError::new(
                "XX000",
                format!("slot {slot} of \"{}\" holds no row", self.def.name),
            )
        })
    }

    /// Removes the row at `slot`, returning it.
    pub(crate) fn remove(&mut self, slot: u32) -> Result<Vec<Datum>> {
        let row = self.live_row(slot)?;
        for index in &mut self.indexes {
            unindex_value(index, &self.columns, slot, &row[index.def.column]);
        }
        if let Some(key) = self.def.key_of(&row) {
            self.pkey.remove(&key);
        }
        let unique_keys = self.unique_keys(&row);
        self.set_uniques(unique_keys, None);
        for store in &mut self.columns {
            store.set(slot, &None);
        }
        self.versions[slot as usize] = 0;
        self.free.push(slot);
        self.rows -= 1;
        Ok(row)
    }

    /// Replaces the row at `slot` with `row`, returning the old one. Only
    /// indexes on changed columns are touched.
    pub(crate) fn replace(&mut self, slot: u32, row: &[Datum], version: u64) -> Result<Vec<Datum>> {
        self.def.check_row(row)?;
        let old = self.live_row(slot)?;
        let (old_key, new_key) = (self.def.key_of(&old), self.def.key_of(row));
        if new_key != old_key {
            if let Some(key) = new_key.as_ref().filter(|k| self.pkey.contains_key(*k)) {
                return Err(self.def.duplicate_key(key));
            }
        }
        let (old_uniques, new_uniques) = (self.unique_keys(&old), self.unique_keys(row));
        self.check_uniques(&new_uniques, slot)?;
        let changed: Vec<bool> = old.iter().zip(row).map(|(a, b)| a != b).collect();
        for index in &mut self.indexes {
            if changed[index.def.column] {
                unindex_value(index, &self.columns, slot, &old[index.def.column]);
            }
        }
        for (i, store) in self.columns.iter_mut().enumerate() {
            if changed[i] {
                store.set(slot, &row[i]);
            }
        }
        for index in &mut self.indexes {
            if changed[index.def.column] {
                index_value(index, &self.columns, slot, &row[index.def.column]);
            }
        }
        if let Some(k) = old_key {
            self.pkey.remove(&k);
        }
        if let Some(k) = new_key {
            self.pkey.insert(k, slot);
        }
        self.set_uniques(old_uniques, None);
        self.set_uniques(new_uniques, Some(slot));
        self.versions[slot as usize] = version;
        Ok(old)
    }

    /// Adds a column holding `fill` in every existing row.
    pub(crate) fn add_column(&mut self, column: ColumnDef, fill: &Datum) -> Result<()> {
        if self.def.column_index(&column.name).is_some() {
            return Err(StorageError::duplicate_column(&column.name, &self.def.name));
        }
        if !self.is_empty() {
            column.check_value(&self.def.name, fill, false)?;
        }
        let mut store = ColumnStore::for_type(column.ty);
        for slot in self.live_slots() {
            store.set(slot, fill);
        }
        self.columns.push(store);
        self.def.columns.push(column);
        Ok(())
    }

    /// Undoes [`Table::add_column`].
    pub(crate) fn drop_last_column(&mut self) {
        self.columns.pop();
        self.def.columns.pop();
    }

    /// Builds and adds the index `def` over the current rows.
    pub(crate) fn create_index(&mut self, def: IndexDef, progress: &BuildProgress) -> Result<()> {
        let data = self.build_index(&def, progress)?;
        self.indexes.push(TableIndex { def, data });
        Ok(())
    }

    /// Builds the contents of index `def` over the current rows.
    pub(crate) fn build_index(
        &self,
        def: &IndexDef,
        progress: &BuildProgress,
    ) -> Result<IndexData> {
        let column = self.def.columns.get(def.column).ok_or_else(|| {
            StorageError::new("42703", format!("column {} does not exist", def.column))
        })?;
        if def.expression.is_some() {
            return Ok(IndexData::Expression);
        }
        let store = &self.columns[def.column];
        let slots: Vec<u32> = self.live_slots().filter(|&s| !store.is_null(s)).collect();
        match def.method {
            IndexMethod::Gin { .. } => Ok(IndexData::Expression),
            IndexMethod::BTree => {
                if column.ty.vector_type().is_some() {
                    return Err(StorageError::unsupported(format!(
                        "btree indexes on column \"{}\" of type {} are not supported",
                        column.name,
                        column.ty.sql_name()
                    )));
                }
                let set = slots
                    .iter()
                    .filter_map(|&s| datum::key(&store.get(s)).map(|k| (k, s)))
                    .collect();
                Ok(IndexData::BTree(set))
            }
            IndexMethod::IvfFlat { metric, .. } | IndexMethod::Hnsw { metric, .. } => {
                let (ty, dims) = column.ty.vector_type().ok_or_else(|| {
                    StorageError::new(
                        "42704",
                        format!(
                            "data type {} has no default operator class for access method \"{}\"",
                            column.ty.sql_name(),
                            def.method.name()
                        ),
                    )
                })?;
                let kind = match def.method {
                    IndexMethod::Hnsw { .. } => ann::types::IndexKind::Hnsw,
                    _ => ann::types::IndexKind::IvfFlat,
                };
                ann::types::check_index_dims(kind, ty, dims.map(|d| d as usize))?;
                let space = ColumnSpace::new(store, metric)?;
                Ok(IndexData::Ann(AnnIndex::build(
                    def.method, &space, &slots, progress,
                )?))
            }
        }
    }

    /// Adds an index whose contents were loaded from a checkpoint.
    pub(crate) fn attach_index(&mut self, index: TableIndex) {
        self.indexes.push(index);
    }

    /// Removes the index with `oid`, returning its position and contents.
    pub(crate) fn drop_index(&mut self, oid: u32) -> Option<(usize, TableIndex)> {
        let pos = self.indexes.iter().position(|i| i.def.oid == oid)?;
        Some((pos, self.indexes.remove(pos)))
    }

    /// Puts back an index removed by [`Table::drop_index`].
    pub(crate) fn restore_index(&mut self, pos: usize, index: TableIndex) {
        self.indexes.insert(pos.min(self.indexes.len()), index);
    }

    /// An empty table with the same definition and indexes (TRUNCATE).
    pub(crate) fn emptied(&self) -> Result<Table> {
        let mut t = Table::new(self.def.clone());
        for index in &self.indexes {
            t.create_index(index.def.clone(), &BuildProgress::new())?;
        }
        Ok(t)
    }
}
