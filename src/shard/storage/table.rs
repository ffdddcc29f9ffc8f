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
use super::index_source::IndexSource;
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
    /// An ANN index on an expression or with a predicate: what it reads.
    derived: Option<Derived>,
}

/// What an ANN index on an expression or with a predicate reads, and the
/// expression's value for each indexed slot (its vectors live here, not in
/// the table's columns; a partial index on a column reads the column).
#[derive(Debug)]
struct Derived {
    source: IndexSource,
    values: Option<ColumnStore>,
}

impl TableIndex {
    /// The type of the values the index holds: its expression's (for an
    /// ANN index on one), else the column's.
    pub fn value_type(&self, table: &TableDef) -> super::catalog::ColumnType {
        match &self.derived {
            Some(d) => d.source.value_type(),
            None => table.columns[self.def.column].ty,
        }
    }

    /// Heap bytes held by the entries (and an expression index's values).
    pub fn memory_bytes(&self) -> usize {
        let entries = match &self.data {
            IndexData::BTree(set) => set.len() * std::mem::size_of::<(KeyValue, u32)>(),
            IndexData::Ann(ann) => ann.memory_bytes(),
            IndexData::Expression => 0,
        };
        let values = self.derived.as_ref().and_then(|d| d.values.as_ref());
        entries + values.map_or(0, ColumnStore::memory_bytes)
    }

    /// True when a change of the columns flagged in `changed` may change
    /// the index's entry for a row.
    fn reads_changed(&self, changed: &[bool]) -> bool {
        match &self.derived {
            Some(d) => d.source.reads_any(changed),
            None => changed[self.def.column],
        }
    }

    /// The vectors the index is over: its expression's values, or the
    /// column's.
    fn store<'a>(&'a self, columns: &'a [ColumnStore]) -> &'a ColumnStore {
        indexed_store(&self.def, &self.derived, columns)
    }
}

fn indexed_store<'a>(
    def: &IndexDef,
    derived: &'a Option<Derived>,
    columns: &'a [ColumnStore],
) -> &'a ColumnStore {
    match derived.as_ref().and_then(|d| d.values.as_ref()) {
        Some(values) => values,
        None => &columns[def.column],
    }
}

/// Inserts (`add`) or deletes `slot` in the ANN index of a derived index.
fn change_derived(index: &mut TableIndex, columns: &[ColumnStore], slot: u32, add: bool) {
    let TableIndex { def, data, derived } = index;
    let (IndexData::Ann(ann), Some(metric)) = (data, def.method.metric()) else {
        return;
    };
    if let Ok(space) = ColumnSpace::new(indexed_store(def, derived, columns), metric) {
        if add {
            ann.insert(&space, slot);
        } else {
            ann.delete(&space, slot);
        }
    }
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

/// Heap bytes of a key map: its table and the keys' values.
fn key_map_bytes(map: &HashMap<Vec<KeyValue>, u32>) -> usize {
    let slots = map.capacity() * (std::mem::size_of::<(Vec<KeyValue>, u32)>() + 1);
    let keys: usize = map.keys().map(|k| k.capacity()).sum();
    slots + keys * std::mem::size_of::<KeyValue>()
}

/// Adds `row` at `slot` to `index` (its columns already stored).
fn index_row(index: &mut TableIndex, columns: &[ColumnStore], slot: u32, row: &[Datum]) {
    let Some(derived) = &mut index.derived else {
        return index_value(index, columns, slot, &row[index.def.column]);
    };
    let Some(value) = derived.source.value(row, index.def.column) else {
        return;
    };
    if let Some(values) = &mut derived.values {
        values.set(slot, &Some(value));
    }
    change_derived(index, columns, slot, true);
}

/// Removes `row` at `slot` from `index` (its columns still stored).
fn unindex_row(index: &mut TableIndex, columns: &[ColumnStore], slot: u32, row: &[Datum]) {
    let Some(derived) = &index.derived else {
        return unindex_value(index, columns, slot, &row[index.def.column]);
    };
    let indexed = match &derived.values {
        Some(values) => !values.is_null(slot),
        None => derived.source.value(row, index.def.column).is_some(),
    };
    if !indexed {
        return;
    }
    change_derived(index, columns, slot, false);
    if let Some(values) = index.derived.as_mut().and_then(|d| d.values.as_mut()) {
        values.set(slot, &None);
    }
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

    /// Heap bytes held by the rows: column stores and row versions (what
    /// `pg_table_size` reports for the table).
    pub fn heap_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(ColumnStore::memory_bytes)
            .sum::<usize>()
            + self.versions.capacity() * std::mem::size_of::<u64>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Heap bytes held by the primary key's map (none: 0).
    pub fn primary_key_bytes(&self) -> usize {
        key_map_bytes(&self.pkey)
    }

    /// Heap bytes held by the map of UNIQUE constraint `i`.
    pub fn unique_bytes(&self, i: usize) -> usize {
        self.uniques.get(i).map_or(0, key_map_bytes)
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
        let space = ColumnSpace::new(index.store(&self.columns), metric)?;
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

    /// Allocates room for `rows` more rows at once (a bulk commit's
    /// inserts): the slots, each column's store and the key map.
    pub(crate) fn reserve(&mut self, rows: usize) {
        let slots = self.versions.len() + rows.saturating_sub(self.free.len());
        self.versions.reserve(slots - self.versions.len());
        for store in &mut self.columns {
            store.reserve(slots);
        }
        if !self.def.primary_key.is_empty() {
            self.pkey.reserve(rows);
        }
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
            index_row(index, &self.columns, slot, row);
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
            unindex_row(index, &self.columns, slot, &row);
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
            if index.reads_changed(&changed) {
                unindex_row(index, &self.columns, slot, &old);
            }
        }
        for (i, store) in self.columns.iter_mut().enumerate() {
            if changed[i] {
                store.set(slot, &row[i]);
            }
        }
        for index in &mut self.indexes {
            if index.reads_changed(&changed) {
                index_row(index, &self.columns, slot, row);
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
        let index = self.build_index(&def, progress)?;
        self.indexes.push(index);
        Ok(())
    }

    /// Builds index `def` over the current rows.
    pub(crate) fn build_index(
        &self,
        def: &IndexDef,
        progress: &BuildProgress,
    ) -> Result<TableIndex> {
        let (data, derived) = self.build_index_data(def, progress)?;
        Ok(TableIndex {
            def: def.clone(),
            data,
            derived,
        })
    }

    /// What an ANN index `def` on an expression or with a predicate
    /// reads, with its values over the current rows, and the slots it
    /// holds; `None` for any other index.
    fn derive(&self, def: &IndexDef) -> Result<Option<(Derived, Vec<u32>)>> {
        if def.method.metric().is_none() {
            return Ok(None);
        }
        let Some(source) = IndexSource::of(def, &self.def)? else {
            return Ok(None);
        };
        let mut values = source
            .is_expression()
            .then(|| ColumnStore::for_type(source.value_type()));
        let mut slots = Vec::new();
        for slot in self.live_slots() {
            let row: Vec<Datum> = self.columns.iter().map(|c| c.get(slot)).collect();
            if let Some(v) = source.value(&row, def.column) {
                if let Some(values) = &mut values {
                    values.set(slot, &Some(v));
                }
                slots.push(slot);
            }
        }
        Ok(Some((Derived { source, values }, slots)))
    }

    fn build_index_data(
        &self,
        def: &IndexDef,
        progress: &BuildProgress,
    ) -> Result<(IndexData, Option<Derived>)> {
        let column = self.def.columns.get(def.column).ok_or_else(|| {
            StorageError::new("42703", format!("column {} does not exist", def.column))
        })?;
        if let Some((derived, slots)) = self.derive(def)? {
            let ty = derived.source.value_type();
            let store = derived.values.as_ref().unwrap_or(&self.columns[def.column]);
            let ann = self.build_ann(def, ty, store, &slots, progress)?;
            return Ok((IndexData::Ann(ann), Some(derived)));
        }
        if def.expression.is_some() {
            return Ok((IndexData::Expression, None));
        }
        let store = &self.columns[def.column];
        let slots: Vec<u32> = self.live_slots().filter(|&s| !store.is_null(s)).collect();
        let data = match def.method {
            IndexMethod::Gin { .. } => IndexData::Expression,
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
                IndexData::BTree(set)
            }
            IndexMethod::IvfFlat { .. } | IndexMethod::Hnsw { .. } => {
                IndexData::Ann(self.build_ann(def, column.ty, store, &slots, progress)?)
            }
        };
        Ok((data, None))
    }

    /// The number of dimensions of the vectors of type `ty` an ANN index
    /// `def` is over, checked against the method's limits.
    fn ann_dims(def: &IndexDef, ty: super::catalog::ColumnType) -> Result<usize> {
        let (vt, dims) = ty.vector_type().ok_or_else(|| {
            StorageError::new(
                "42704",
                format!(
                    "data type {} has no default operator class for access method \"{}\"",
                    ty.sql_name(),
                    def.method.name()
                ),
            )
        })?;
        let kind = match def.method {
            IndexMethod::Hnsw { .. } => ann::types::IndexKind::Hnsw,
            _ => ann::types::IndexKind::IvfFlat,
        };
        let dims = dims.map(|d| d as usize);
        ann::types::check_index_dims(kind, vt, dims)?;
        Ok(dims.unwrap_or(0))
    }

    fn build_ann(
        &self,
        def: &IndexDef,
        ty: super::catalog::ColumnType,
        store: &ColumnStore,
        slots: &[u32],
        progress: &BuildProgress,
    ) -> Result<AnnIndex> {
        Self::ann_dims(def, ty)?;
        let metric = def
            .method
            .metric()
            .ok_or_else(|| StorageError::new("XX000", "an ANN index without a metric"))?;
        let space = ColumnSpace::new(store, metric)?;
        AnnIndex::build(def.method, &space, slots, progress)
    }

    /// Adds an index built by [`Table::build_index`] over the current rows.
    pub(crate) fn attach_index(&mut self, index: TableIndex) {
        self.indexes.push(index);
    }

    /// Adds ANN index `def` whose graph `load` reads from a checkpoint,
    /// given the number of dimensions it must have; an expression index's
    /// values are computed again from the rows.
    pub(crate) fn attach_loaded_ann(
        &mut self,
        def: IndexDef,
        load: impl FnOnce(usize) -> Result<AnnIndex>,
    ) -> Result<()> {
        let derived = self.derive(&def)?.map(|(d, _)| d);
        let ty = match &derived {
            Some(d) => d.source.value_type(),
            None => {
                self.def
                    .columns
                    .get(def.column)
                    .ok_or_else(|| {
                        StorageError::new("42703", format!("column {} does not exist", def.column))
                    })?
                    .ty
            }
        };
        let data = IndexData::Ann(load(Self::ann_dims(&def, ty)?)?);
        self.indexes.push(TableIndex { def, data, derived });
        Ok(())
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
