//! Sequences: `CREATE SEQUENCE`'s and the ones serial and identity
//! columns read, with `nextval`, `currval`, `setval` and `lastval`.
//!
//! Two kinds, one behaviour:
//! - a **stored** sequence (`CREATE SEQUENCE s`) is kept by storage as a
//!   table named `s` with PostgreSQL's sequence columns (`last_value`,
//!   `log_cnt`, `is_called`) and one row; its options are written after
//!   [`SEQUENCE_MARK`] in the first column's default, as identity columns
//!   mark theirs (so it is created, dropped, replicated and checkpointed
//!   as a table is, and rolled back with its transaction);
//! - a **column** sequence (`t_id_seq` of `id serial`) is the name a
//!   column default's `nextval('…')` reads; it exists while its column
//!   does and starts after the column's largest value.
//!
//! As in PostgreSQL, values are not transactional: they live in memory
//! ([`Sequences`]), shared by the shard's sessions. A stored sequence's
//! row is written ahead of the values handed out ([`LOG_AHEAD`] steps,
//! as PostgreSQL's `SEQ_LOG_VALS`), by [`Sequences::log_pending`] after
//! the statement that advanced it, so that a restart continues after
//! every value handed out (skipping some, as PostgreSQL does after a crash).

use super::coerce::as_i64;
use super::pg_catalog::PKEY_OID_BASE;
use super::select::{Column, Relation};
use super::storage_error;
use crate::shard::datum::Datum;
use crate::shard::storage::{
    ColumnDef, ColumnType, Database, RowRef, Table, TableDef, Tables, Transaction,
};
use crate::wire::types::oid;
use crate::wire::{PgError, Session, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What a stored sequence's first column default starts with.
pub const SEQUENCE_MARK: &str = "sequence:";

/// How many steps ahead of the values handed out a stored sequence's row
/// is written.
const LOG_AHEAD: i64 = 32;

/// A column sequence's OID: this plus 64 × its table's plus the column's
/// position (a column sequence has no storage id of its own).
const COLUMN_SEQUENCE_OID_BASE: u32 = PKEY_OID_BASE + 500_000_000;

/// A sequence's options (`CREATE SEQUENCE … AS type INCREMENT … MINVALUE
/// … MAXVALUE … START … CACHE … [NO] CYCLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceSpec {
    /// `smallint`, `integer` or `bigint`.
    pub ty: ColumnType,
    /// First value.
    pub start: i64,
    /// Step (not zero).
    pub increment: i64,
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    /// Values cached per session (shown only).
    pub cache: i64,
    /// Wraps around at the end.
    pub cycle: bool,
}

/// The largest value of `ty`.
pub fn type_max(ty: ColumnType) -> i64 {
    match ty {
        ColumnType::Int2 => i16::MAX.into(),
        ColumnType::Int4 => i32::MAX.into(),
        _ => i64::MAX,
    }
}

/// The smallest value of `ty`.
pub fn type_min(ty: ColumnType) -> i64 {
    match ty {
        ColumnType::Int2 => i16::MIN.into(),
        ColumnType::Int4 => i32::MIN.into(),
        _ => i64::MIN,
    }
}

impl SequenceSpec {
    /// The options PostgreSQL gives a sequence of `ty` stepping by
    /// `increment` where none are written.
    pub fn defaults(ty: ColumnType, increment: i64) -> Self {
        let (min, max) = if increment > 0 {
            (1, type_max(ty))
        } else {
            (type_min(ty), -1)
        };
        SequenceSpec {
            ty,
            start: if increment > 0 { min } else { max },
            increment,
            min,
            max,
            cache: 1,
            cycle: false,
        }
    }

    /// The type's OID.
    pub fn type_oid(&self) -> u32 {
        match self.ty {
            ColumnType::Int2 => oid::INT2,
            ColumnType::Int4 => oid::INT4,
            _ => oid::INT8,
        }
    }

    /// The options as a stored sequence keeps them.
    fn encode(&self) -> String {
        let ty = match self.ty {
            ColumnType::Int2 => 2,
            ColumnType::Int4 => 4,
            _ => 8,
        };
        format!(
            "{SEQUENCE_MARK}{ty} {} {} {} {} {} {}",
            self.start, self.increment, self.min, self.max, self.cache, self.cycle as u8
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix(SEQUENCE_MARK)?.split(' ');
        let mut next = || parts.next()?.parse::<i64>().ok();
        let ty = match next()? {
            2 => ColumnType::Int2,
            4 => ColumnType::Int4,
            _ => ColumnType::Int8,
        };
        Some(SequenceSpec {
            ty,
            start: next()?,
            increment: next()?,
            min: next()?,
            max: next()?,
            cache: next()?,
            cycle: next()? != 0,
        })
    }

    /// The stored sequence's columns, with these options in the first's
    /// default.
    pub fn columns(&self) -> Vec<ColumnDef> {
        let column = |name: &str, ty| ColumnDef {
            name: name.into(),
            ty,
            not_null: true,
            default: None,
        };
        let mut columns = vec![
            column("last_value", ColumnType::Int8),
            column("log_cnt", ColumnType::Int8),
            column("is_called", ColumnType::Bool),
        ];
        columns[0].default = Some(self.encode());
        columns
    }

    /// The stored row of a sequence at `last_value`.
    pub fn row(last_value: i64, is_called: bool) -> Vec<Datum> {
        vec![
            Some(Value::Int8(last_value)),
            Some(Value::Int8(0)),
            Some(Value::Bool(is_called)),
        ]
    }
}

/// One sequence as the catalog and the functions see it.
#[derive(Debug, Clone)]
pub struct SequenceInfo {
    /// Its OID.
    pub oid: u32,
    /// Its name.
    pub name: String,
    /// Its options.
    pub spec: SequenceSpec,
    /// The table and column it belongs to (a column sequence).
    pub owned_by: Option<(String, String)>,
    /// A stored sequence's row and what it holds (`last_value`, `is_called`).
    stored: Option<(RowRef, i64, bool)>,
    /// A column sequence's table and column position.
    column: Option<(String, usize)>,
}

/// The sequence a column default's `nextval('name'…)` reads, by name.
pub fn default_sequence(c: &ColumnDef) -> Option<String> {
    let d = c.default.as_deref()?;
    let d = d.trim_start_matches(crate::shard::storage::IDENTITY_MARK);
    let rest = d.strip_prefix("nextval('")?;
    let name = &rest[..rest.find('\'')?];
    Some(plain_name(name))
}

/// A relation name as `regclass` input writes it (`public.s`, `"S"`),
/// as stored.
pub fn plain_name(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_prefix("public.").unwrap_or(name);
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => name.to_lowercase(),
    }
}

/// True when `def`'s table is a stored sequence.
pub fn is_stored_sequence(columns: &[ColumnDef]) -> bool {
    columns
        .first()
        .and_then(|c| c.default.as_deref())
        .is_some_and(|d| d.starts_with(SEQUENCE_MARK))
}

/// Every sequence, by OID.
pub fn all(tables: &Tables) -> Vec<SequenceInfo> {
    let mut out = Vec::new();
    for t in tables.iter() {
        if let Some(s) = stored(t) {
            out.push(s);
            continue;
        }
        let def = t.def();
        out.extend((0..def.columns.len()).filter_map(|i| column(tables, def, i)));
    }
    out.sort_by_key(|s| s.oid);
    out
}

/// The stored sequence `t` is, if it is one.
fn stored(t: &Table) -> Option<SequenceInfo> {
    let def = t.def();
    let spec = SequenceSpec::decode(def.columns.first()?.default.as_deref()?)?;
    let stored = t.live_slots().next().and_then(|slot| {
        let row = t.row(slot)?;
        let last = row.first()?.as_ref().and_then(as_i64)?;
        let called = matches!(row.get(2), Some(Some(Value::Bool(true))));
        Some((t.row_ref(slot)?, last, called))
    });
    Some(SequenceInfo {
        oid: def.oid,
        name: def.name.clone(),
        spec,
        owned_by: None,
        stored,
        column: None,
    })
}

/// The column sequence of column `i` of `def`, if its default reads one
/// that is not a stored sequence.
fn column(tables: &Tables, def: &TableDef, i: usize) -> Option<SequenceInfo> {
    let c = &def.columns[i];
    let name = default_sequence(c)?;
    if tables.get(&name).is_some() {
        return None;
    }
    Some(SequenceInfo {
        oid: COLUMN_SEQUENCE_OID_BASE + def.oid.saturating_mul(64) + i as u32,
        name,
        spec: SequenceSpec::defaults(c.ty, 1),
        owned_by: Some((def.name.clone(), c.name.clone())),
        stored: None,
        column: Some((def.name.clone(), i)),
    })
}

/// The sequence column `i` of `def` numbers its rows from: its own, or
/// the stored sequence its default names (found without scanning every
/// table, as each inserted row asks).
pub fn of_column(tables: &Tables, def: &TableDef, i: usize) -> Option<SequenceInfo> {
    let name = default_sequence(def.columns.get(i)?)?;
    match tables.get(&name) {
        Some(t) => stored(t),
        None => column(tables, def, i),
    }
}

/// The sequence `name` (as `regclass` input writes it, or an OID).
pub fn find(tables: &Tables, name: &str) -> Option<SequenceInfo> {
    match name.trim().parse::<u32>() {
        Ok(id) => all(tables).into_iter().find(|s| s.oid == id),
        Err(_) => named(tables, &plain_name(name)),
    }
}

/// The sequence called exactly `name`.
pub fn named(tables: &Tables, name: &str) -> Option<SequenceInfo> {
    all(tables).into_iter().find(|s| s.name == name)
}

/// A sequence's values in memory.
#[derive(Debug, Clone, Copy)]
struct Live {
    /// The sequence's OID when read: another one of the same name starts over.
    oid: u32,
    last: i64,
    is_called: bool,
    /// Its step.
    increment: i64,
    /// A stored sequence (whose row is written ahead).
    stored: bool,
    /// The value PostgreSQL would have logged ahead (`last` plus
    /// `log_cnt` steps); `None` after `setval` or a restart.
    ahead: Option<i64>,
    /// The `ahead` a stored sequence's row holds.
    written: Option<i64>,
    /// `setval` changed the values: the row must hold them as set.
    dirty: bool,
}

impl Live {
    /// Whether the stored row must be written again.
    fn needs_log(&self) -> bool {
        self.stored && (self.dirty || (self.ahead.is_some() && self.written != self.ahead))
    }

    /// `log_cnt` as PostgreSQL shows it.
    fn log_cnt(&self) -> i64 {
        match self.ahead {
            Some(a) if self.is_called => (a - self.last) / self.increment,
            _ => 0,
        }
    }
}

/// Each session's last values, for `currval` and `lastval`.
#[derive(Debug, Default)]
pub struct SessionValues {
    values: HashMap<u32, i64>,
    /// Values taken ahead (`CACHE` above 1), by sequence OID.
    cached: HashMap<u32, VecDeque<i64>>,
    /// The sequence `nextval` last read.
    last: Option<u32>,
}

/// The values of the shard's sequences (see the module doc).
#[derive(Debug, Default)]
pub struct Sequences {
    live: Mutex<HashMap<String, Live>>,
    /// Serialises writing rows ahead, so a later write never holds an
    /// older value.
    logging: Mutex<()>,
}

fn out_of_range(fname: &str, s: &SequenceInfo, max: bool) -> PgError {
    let (word, v) = if max {
        ("maximum", s.spec.max)
    } else {
        ("minimum", s.spec.min)
    };
    PgError::new(
        "2200H",
        format!(
            "{fname}: reached {word} value of sequence \"{}\" ({v})",
            s.name
        ),
    )
}

impl Sequences {
    fn with_live<T>(&self, tables: &Tables, s: &SequenceInfo, f: impl FnOnce(&mut Live) -> T) -> T {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let entry = live
            .entry(s.name.clone())
            .and_modify(|l| {
                if l.oid != s.oid {
                    *l = Self::seed(tables, s);
                }
            })
            .or_insert_with(|| Self::seed(tables, s));
        f(entry)
    }

    fn seed(tables: &Tables, s: &SequenceInfo) -> Live {
        if let Some((_, last, is_called)) = s.stored {
            return Live {
                oid: s.oid,
                last,
                is_called,
                increment: s.spec.increment,
                stored: true,
                ahead: None,
                written: None,
                dirty: false,
            };
        }
        let largest = s.column.as_ref().and_then(|(table, i)| {
            let t = tables.get(table)?;
            t.live_slots()
                .filter_map(|slot| t.value(slot, *i))
                .filter_map(|v| as_i64(&v))
                .max()
        });
        Live {
            oid: s.oid,
            last: largest.unwrap_or(s.spec.start),
            is_called: largest.is_some(),
            increment: s.spec.increment,
            stored: false,
            ahead: None,
            written: None,
            dirty: false,
        }
    }

    /// `nextval(name)`; the session remembers it for `currval`/`lastval`.
    pub fn nextval(
        &self,
        tables: &Tables,
        name: &str,
        session: &Mutex<SessionValues>,
    ) -> Result<i64, PgError> {
        let s = lookup(tables, name)?;
        self.next(tables, &s, session)
    }

    /// The next value of `s` for the session (see [`Sequences::nextval`]).
    pub fn next(
        &self,
        tables: &Tables,
        s: &SequenceInfo,
        session: &Mutex<SessionValues>,
    ) -> Result<i64, PgError> {
        let cached = {
            let mut values = session.lock().unwrap_or_else(|e| e.into_inner());
            values.cached.get_mut(&s.oid).and_then(VecDeque::pop_front)
        };
        let v = match cached {
            Some(v) => v,
            None => {
                let mut fetched = self.with_live(tables, s, |l| fetch(l, s))?;
                let first = fetched.pop_front().unwrap_or_default();
                let mut values = session.lock().unwrap_or_else(|e| e.into_inner());
                values.cached.insert(s.oid, fetched);
                first
            }
        };
        remember(session, s, v);
        Ok(v)
    }

    /// `currval(name)`.
    pub fn currval(
        &self,
        tables: &Tables,
        name: &str,
        session: &Mutex<SessionValues>,
    ) -> Result<i64, PgError> {
        let s = lookup(tables, name)?;
        let values = session.lock().unwrap_or_else(|e| e.into_inner());
        values.values.get(&s.oid).copied().ok_or_else(|| {
            PgError::new(
                "55000",
                format!(
                    "currval of sequence \"{}\" is not yet defined in this session",
                    s.name
                ),
            )
        })
    }

    /// `lastval()`.
    pub fn lastval(&self, tables: &Tables, session: &Mutex<SessionValues>) -> Result<i64, PgError> {
        let values = session.lock().unwrap_or_else(|e| e.into_inner());
        let undefined = || PgError::new("55000", "lastval is not yet defined in this session");
        let oid = values.last.ok_or_else(undefined)?;
        // A dropped sequence's value is gone with it.
        if !all(tables).iter().any(|s| s.oid == oid) {
            return Err(undefined());
        }
        values.values.get(&oid).copied().ok_or_else(undefined)
    }

    /// `setval(name, value [, is_called])`.
    pub fn setval(
        &self,
        tables: &Tables,
        name: &str,
        value: i64,
        is_called: bool,
        session: &Mutex<SessionValues>,
    ) -> Result<i64, PgError> {
        let s = lookup(tables, name)?;
        if value < s.spec.min || value > s.spec.max {
            return Err(PgError::new(
                "22003",
                format!(
                    "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                    s.name, s.spec.min, s.spec.max
                ),
            ));
        }
        self.with_live(tables, &s, |l| {
            l.last = value;
            l.is_called = is_called;
            l.ahead = None;
            l.dirty = true;
        });
        let mut values = session.lock().unwrap_or_else(|e| e.into_inner());
        values.cached.remove(&s.oid);
        // currval follows (lastval does not), as in PostgreSQL.
        if is_called {
            values.values.insert(s.oid, value);
        }
        Ok(value)
    }

    /// The values `SELECT * FROM name` shows (`last_value`, `log_cnt`,
    /// `is_called`), if `name` is a sequence.
    pub fn relation(&self, tables: &Tables, s: &SequenceInfo) -> Relation {
        let (last, log_cnt, is_called) =
            self.with_live(tables, s, |l| (l.last, l.log_cnt(), l.is_called));
        Relation {
            columns: vec![
                Column {
                    name: "last_value".into(),
                    ty: (oid::INT8, -1),
                },
                Column {
                    name: "log_cnt".into(),
                    ty: (oid::INT8, -1),
                },
                Column {
                    name: "is_called".into(),
                    ty: (oid::BOOL, -1),
                },
            ],
            rows: vec![vec![
                Some(Value::Int8(last)),
                Some(Value::Int8(log_cnt)),
                Some(Value::Bool(is_called)),
            ]],
        }
    }

    /// `last_value` as `pg_sequences` shows it (NULL before the first
    /// `nextval`).
    pub fn last_value(&self, tables: &Tables, s: &SequenceInfo) -> Option<i64> {
        self.with_live(tables, s, |l| l.is_called.then_some(l.last))
    }

    /// Whether a stored sequence's row must be written (see
    /// [`Sequences::log_pending`]).
    pub fn pending(&self) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.values().any(Live::needs_log)
    }

    /// Writes the rows of stored sequences whose values went past what
    /// their rows hold (see the module doc). Called after each statement,
    /// outside the tables' lock.
    pub fn log_pending(&self, db: &Database) -> Result<(), PgError> {
        let _one_at_a_time = self.logging.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = Transaction::new();
        let mut written = Vec::new();
        {
            let tables = db.read().map_err(storage_error)?;
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let existing = all(&tables);
            // The values of sequences dropped since are forgotten.
            live.retain(|name, l| existing.iter().any(|s| s.oid == l.oid && &s.name == name));
            for s in existing {
                let (Some(l), Some((row, ..))) = (live.get(&s.name), s.stored) else {
                    continue;
                };
                if l.oid != s.oid || !l.needs_log() {
                    continue;
                }
                // After setval the row holds the values as set; after
                // nextval, the value logged ahead.
                let (target, called) = match l.ahead {
                    Some(a) if !l.dirty => (a, true),
                    _ => (l.last, l.is_called),
                };
                let stored_row = SequenceSpec::row(target, called);
                txn.update(&tables, &s.name, row, stored_row)
                    .map_err(storage_error)?;
                written.push((s.name.clone(), s.oid, l.last, l.ahead));
            }
        }
        if written.is_empty() {
            return Ok(());
        }
        db.commit(txn).map_err(storage_error)?;
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for (name, oid, last, logged) in written {
            // Unless a setval came in between (its values are written next).
            if let Some(l) = live
                .get_mut(&name)
                .filter(|l| l.oid == oid && l.last == last)
            {
                l.written = logged;
                l.dirty = false;
            }
        }
        Ok(())
    }
}

/// The `pg_sequences` view: every sequence with its options and last
/// value (NULL before the first `nextval`).
pub fn pg_sequences(tables: &Tables, values: &Sequences, session: &Session) -> Relation {
    let column = |name: &str, ty: u32| Column {
        name: name.into(),
        ty: (ty, -1),
    };
    let columns = vec![
        column("schemaname", oid::NAME),
        column("sequencename", oid::NAME),
        column("sequenceowner", oid::NAME),
        column("data_type", oid::REGTYPE),
        column("start_value", oid::INT8),
        column("min_value", oid::INT8),
        column("max_value", oid::INT8),
        column("increment_by", oid::INT8),
        column("cycle", oid::BOOL),
        column("cache_size", oid::INT8),
        column("last_value", oid::INT8),
    ];
    let i8 = |v: i64| Some(Value::Int8(v));
    let text = |s: &str| Some(Value::Text(s.into()));
    let rows = all(tables)
        .iter()
        .map(|s| {
            let p = s.spec;
            vec![
                text("public"),
                text(&s.name),
                text(&session.user),
                Some(Value::Reg {
                    ty: oid::REGTYPE,
                    oid: p.type_oid(),
                    name: p.ty.sql_name(),
                }),
                i8(p.start),
                i8(p.min),
                i8(p.max),
                i8(p.increment),
                Some(Value::Bool(p.cycle)),
                i8(p.cache),
                values.last_value(tables, s).map(Value::Int8),
            ]
        })
        .collect();
    Relation { columns, rows }
}

/// Most values one `nextval` takes into a session's cache (PostgreSQL
/// takes `CACHE` of them however many).
const CACHE_LIMIT: i64 = 1000;

/// The next `CACHE` values of `s` (fewer at its end), the first handed out
/// now and the others kept by the session, as PostgreSQL's `nextval`
/// takes them; logs ahead when fewer than that many were logged.
fn fetch(l: &mut Live, s: &SequenceInfo) -> Result<VecDeque<i64>, PgError> {
    let spec = &s.spec;
    let logged_left = l.ahead.map(|a| (a - l.last) / spec.increment);
    let relog = !l.is_called || logged_left.is_none_or(|left| left < spec.cache);
    let mut values = VecDeque::new();
    let (mut last, mut called) = (l.last, l.is_called);
    while (values.len() as i64) < spec.cache.min(CACHE_LIMIT) {
        let next = if !called {
            last
        } else {
            match last.checked_add(spec.increment) {
                Some(n) if n <= spec.max && n >= spec.min => n,
                _ if !values.is_empty() => break,
                _ if !spec.cycle => return Err(out_of_range("nextval", s, spec.increment > 0)),
                _ if spec.increment > 0 => spec.min,
                _ => spec.max,
            }
        };
        values.push_back(next);
        (last, called) = (next, true);
    }
    l.last = last;
    l.is_called = true;
    if relog {
        // PostgreSQL logs SEQ_LOG_VALS values past the ones it takes.
        let a = last.saturating_add(spec.increment.saturating_mul(LOG_AHEAD));
        l.ahead = Some(a.clamp(spec.min, spec.max));
    }
    Ok(values)
}

fn remember(session: &Mutex<SessionValues>, s: &SequenceInfo, v: i64) {
    let mut values = session.lock().unwrap_or_else(|e| e.into_inner());
    values.values.insert(s.oid, v);
    values.last = Some(s.oid);
}

/// The sequence `name`: 42P01 when no relation has that name, 42809 when
/// the relation is not a sequence.
fn lookup(tables: &Tables, name: &str) -> Result<SequenceInfo, PgError> {
    if let Some(s) = find(tables, name) {
        return Ok(s);
    }
    let plain = plain_name(name);
    if tables.relation_exists(&plain) {
        let mut e = PgError::new("42809", format!("cannot open relation \"{plain}\""));
        e.detail = Some("This operation is not supported for tables.".into());
        return Err(e);
    }
    Err(PgError::new(
        "42P01",
        format!("relation \"{}\" does not exist", name.trim()),
    ))
}
