//! The compact binary form of values, rows and definitions used by WAL
//! records and checkpoint files. Little-endian, no alignment:
//!
//! ```text
//! value  := tag u8, then by tag:
//!   0 NULL | 1 bool u8 | 2 int2 i16 | 3 int4 i32 | 4 int8 i64
//!   5 float4 f32 | 6 float8 f64 | 7 text str | 8 date i32
//!   9 timestamptz i64 | 10 jsonb str
//!   11 vector  u32 dim, dim × f32
//!   12 halfvec u32 dim, dim × u16 (f16 bits)
//!   13 sparsevec u32 dim, u32 nnz, nnz × u32 index, nnz × f32
//!   14 bit u32 len, ceil(len/8) bytes | 15 "char" u8 | 16 oid u32
//!   17 array u32 element OID, u32 count, count × value | 18 json str
//!   19 uuid 16 bytes
//! str    := u32 byte length, UTF-8 bytes
//! index  := u32 oid, str name, u32 column, u8 method, then by method:
//!   0 btree | 3 btree on an expression: str expression
//!   4 ivfflat u8 metric, u32 lists, names | 5 hnsw u8 metric, u32 m,
//!   u32 ef_construction, names (1, 2: the same without names, older)
//!   | 7, 8: as 4, 5, then opt expression, opt predicate (an ANN index on
//!   an expression or partial)
//! opt    := u8 0 | u8 1, str
//! names  := u32 count, count × str
//! row    := u32 value count, values
//! ```
//!
//! Decoding never trusts a length: running past the end, a bad tag, bad
//! UTF-8 or a vector ann rejects is a [`Malformed`] error, never a panic.

use super::catalog::{
    ColumnDef, ColumnType, Constraints, ElementType, ForeignKey, IndexDef, IndexMethod, OnDelete,
    OnUpdate, TableDef, Unique, ARRAY_TAG,
};
use crate::shard::datum::Datum;
use crate::wire::{Array, Value};
use ann::types::{BitVector, HalfVector, SparseVector, Vector};
use ann::Metric;
use half::f16;

/// Set in a FOREIGN KEY's action byte for ON UPDATE RESTRICT; the low
/// bits are the ON DELETE action (data written before ON UPDATE was kept
/// has it clear, which reads as NO ACTION).
const ON_UPDATE_RESTRICT: u8 = 0x10;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decoding result.
pub type Decoded<T> = std::result::Result<T, Malformed>;

fn malformed(why: impl Into<String>) -> Malformed {
    Malformed(why.into())
}

/// Appends little-endian fields to a buffer.
#[derive(Debug, Default)]
pub struct ByteWriter {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl ByteWriter {
    /// Appends a u8.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// Appends an optional u32 (presence byte, then the value).
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
            None => self.u8(0),
        }
    }

    /// Appends f32s in one pass over room made at once: a plain copy on
    /// little-endian machines, where 4-byte appends one by one each check
    /// the capacity and move the length.
    fn f32s(&mut self, xs: &[f32]) {
        let start = self.buf.len();
        self.buf.resize(start + 4 * xs.len(), 0);
        for (out, x) in self.buf[start..].chunks_exact_mut(4).zip(xs) {
            out.copy_from_slice(&x.to_le_bytes());
        }
    }

    /// Appends one datum.
    pub fn value(&mut self, v: &Datum) {
        let Some(v) = v else {
            return self.u8(0);
        };
        match v {
            Value::Bool(b) => {
                self.u8(1);
                self.u8(*b as u8);
            }
            Value::Int2(x) => {
                self.u8(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Int4(x) => {
                self.u8(3);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Int8(x) => {
                self.u8(4);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Float4(x) => {
                self.u8(5);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Float8(x) => {
                self.u8(6);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Text(s) => {
                self.u8(7);
                self.str(s);
            }
            Value::Date(d) => {
                self.u8(8);
                self.buf.extend_from_slice(&d.to_le_bytes());
            }
            Value::Timestamptz(t) => {
                self.u8(9);
                self.buf.extend_from_slice(&t.to_le_bytes());
            }
            Value::Timestamp(t) => {
                self.u8(21);
                self.buf.extend_from_slice(&t.to_le_bytes());
            }
            Value::Interval(i) => {
                self.u8(22);
                self.buf.extend_from_slice(&i.to_binary());
            }
            Value::Jsonb(s) => {
                self.u8(10);
                self.str(s);
            }
            Value::Json(s) => {
                self.u8(18);
                self.str(s);
            }
            Value::JsonPath(s) => {
                self.u8(20);
                self.str(s);
            }
            Value::Uuid(u) => {
                self.u8(19);
                self.buf.extend_from_slice(u);
            }
            Value::Vector(v) => {
                self.u8(11);
                self.u32(v.dims() as u32);
                self.f32s(v.as_slice());
            }
            Value::HalfVec(v) => {
                self.u8(12);
                self.u32(v.dims() as u32);
                for x in v.as_slice() {
                    self.buf.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
            Value::SparseVec(v) => {
                self.u8(13);
                self.u32(v.dims());
                self.u32(v.nnz() as u32);
                for i in v.indices() {
                    self.u32(*i);
                }
                self.f32s(v.values());
            }
            Value::Bit(v) => {
                self.u8(14);
                self.u32(v.len());
                self.buf.extend_from_slice(v.bytes());
            }
            Value::Char(c) => {
                self.u8(15);
                self.u8(*c);
            }
            Value::Oid(o) | Value::Reg { oid: o, .. } => {
                self.u8(16);
                self.u32(*o);
            }
            Value::Array(a) => {
                self.u8(17);
                self.u32(a.elem);
                self.u32(a.items.len() as u32);
                for item in &a.items {
                    self.value(item);
                }
            }
        }
    }

    /// Appends a row.
    pub fn row(&mut self, row: &[Datum]) {
        self.u32(row.len() as u32);
        for v in row {
            self.value(v);
        }
    }

    fn column_type(&mut self, ty: ColumnType) {
        let (tag, typmod) = ty.tag();
        self.u8(tag);
        self.opt_u32(typmod);
        if let ColumnType::Array(e) = ty {
            self.u8(e.column_type().tag().0);
        }
    }

    /// Appends a column definition.
    pub fn column(&mut self, c: &ColumnDef) {
        self.str(&c.name);
        self.column_type(c.ty);
        self.u8(c.not_null as u8);
        match &c.default {
            Some(d) => {
                self.u8(1);
                self.str(d);
            }
            None => self.u8(0),
        }
    }

    /// Appends a table definition.
    pub fn table_def(&mut self, t: &TableDef) {
        self.u32(t.oid);
        self.str(&t.name);
        self.u32(t.columns.len() as u32);
        for c in &t.columns {
            self.column(c);
        }
        self.u32(t.primary_key.len() as u32);
        for &k in &t.primary_key {
            self.u32(k as u32);
        }
        self.constraints(&t.constraints);
    }

    fn positions(&mut self, columns: &[usize]) {
        self.u32(columns.len() as u32);
        for &c in columns {
            self.u32(c as u32);
        }
    }

    /// Appends a table's UNIQUE and FOREIGN KEY constraints.
    pub fn constraints(&mut self, c: &Constraints) {
        self.u32(c.unique.len() as u32);
        for u in &c.unique {
            self.str(&u.name);
            self.positions(&u.columns);
        }
        self.u32(c.foreign_keys.len() as u32);
        for f in &c.foreign_keys {
            self.str(&f.name);
            self.positions(&f.columns);
            self.str(&f.table);
            self.positions(&f.referenced);
            let on_delete = match f.on_delete {
                OnDelete::NoAction => 0,
                OnDelete::Cascade => 1,
                OnDelete::SetNull => 2,
                OnDelete::Restrict => 3,
            };
            let on_update = match f.on_update {
                OnUpdate::NoAction => 0,
                OnUpdate::Restrict => ON_UPDATE_RESTRICT,
            };
            self.u8(on_delete | on_update);
        }
    }

    /// Appends an index definition.
    pub fn index_def(&mut self, i: &IndexDef) {
        self.u32(i.oid);
        self.str(&i.name);
        self.u32(i.column as u32);
        let derived = i.expression.is_some() || i.predicate.is_some();
        match (i.method, &i.expression) {
            (IndexMethod::BTree, Some(e)) => {
                self.u8(3);
                self.str(e);
            }
            (IndexMethod::BTree, None) => self.u8(0),
            (IndexMethod::Gin { path_ops }, _) => {
                self.u8(6);
                self.u8(u8::from(path_ops));
            }
            (IndexMethod::IvfFlat { metric, lists }, _) => {
                self.u8(if derived { 7 } else { 4 });
                self.u8(metric.tag());
                self.u32(lists);
                self.names(&i.with);
            }
            (
                IndexMethod::Hnsw {
                    metric,
                    m,
                    ef_construction,
                },
                _,
            ) => {
                self.u8(if derived { 8 } else { 5 });
                self.u8(metric.tag());
                self.u32(m);
                self.u32(ef_construction);
                self.names(&i.with);
            }
        }
        if derived && i.method.metric().is_some() {
            self.opt_str(i.expression.as_deref());
            self.opt_str(i.predicate.as_deref());
        }
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }

    fn names(&mut self, names: &[String]) {
        self.u32(names.len() as u32);
        for n in names {
            self.str(n);
        }
    }
}

/// Reads fields back; every read is bounds-checked.
#[derive(Debug)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }

    /// True when every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Decoded<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(malformed("trailing bytes"))
        }
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| malformed("ends early"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Reads a u8.
    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }
    /// Reads a u32.
    pub fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// Reads a u64.
    pub fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// Reads a count of items that take at least `min_size` bytes each,
    /// refusing counts the remaining bytes cannot hold.
    pub fn count(&mut self, min_size: usize) -> Decoded<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.buf.len() - self.pos {
            return Err(malformed("impossible length"));
        }
        Ok(n)
    }
    /// Reads a length-prefixed string.
    pub fn str(&mut self) -> Decoded<String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| malformed("invalid UTF-8"))
    }
    fn opt_u32(&mut self) -> Decoded<Option<u32>> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.u32()?),
            t => return Err(malformed(format!("bad option tag {t}"))),
        })
    }
    fn f32s(&mut self, n: usize) -> Decoded<Vec<f32>> {
        Ok(self
            .take(
                n.checked_mul(4)
                    .ok_or_else(|| malformed("impossible length"))?,
            )?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads one datum.
    pub fn value(&mut self) -> Decoded<Datum> {
        let vector = |r: ann::Result<Value>| r.map_err(|e| malformed(e.message));
        Ok(Some(match self.u8()? {
            0 => return Ok(None),
            1 => Value::Bool(self.u8()? != 0),
            2 => Value::Int2(i16::from_le_bytes(self.array()?)),
            3 => Value::Int4(i32::from_le_bytes(self.array()?)),
            4 => Value::Int8(i64::from_le_bytes(self.array()?)),
            5 => Value::Float4(f32::from_le_bytes(self.array()?)),
            6 => Value::Float8(f64::from_le_bytes(self.array()?)),
            7 => Value::Text(self.str()?),
            8 => Value::Date(i32::from_le_bytes(self.array()?)),
            9 => Value::Timestamptz(i64::from_le_bytes(self.array()?)),
            10 => Value::Jsonb(self.str()?),
            11 => {
                let n = self.count(4)?;
                vector(Vector::new(self.f32s(n)?).map(Value::Vector))?
            }
            12 => {
                let n = self.count(2)?;
                let raw = self.take(n * 2)?;
                let elems = raw
                    .chunks_exact(2)
                    .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
                    .collect();
                vector(HalfVector::new(elems).map(Value::HalfVec))?
            }
            13 => {
                let dim = self.u32()?;
                let nnz = self.count(8)?;
                let indices = (0..nnz).map(|_| self.u32()).collect::<Decoded<Vec<_>>>()?;
                let values = self.f32s(nnz)?;
                vector(SparseVector::new(dim, indices, values).map(Value::SparseVec))?
            }
            14 => {
                let len = self.u32()?;
                let bytes = self.take(len.div_ceil(8) as usize)?.to_vec();
                vector(BitVector::new(len, bytes).map(Value::Bit))?
            }
            15 => Value::Char(self.u8()?),
            16 => Value::Oid(self.u32()?),
            18 => Value::Json(self.str()?),
            19 => Value::Uuid(self.array()?),
            20 => Value::JsonPath(self.str()?),
            21 => Value::Timestamp(i64::from_le_bytes(self.array()?)),
            22 => Value::Interval(
                crate::wire::interval::Interval::from_binary(&self.array::<16>()?)
                    .map_err(|e| malformed(e.message))?,
            ),
            17 => {
                let elem = self.u32()?;
                let n = self.count(1)?;
                let items = (0..n)
                    .map(|_| match self.buf.get(self.pos) {
                        Some(17) => Err(malformed("an array inside an array")),
                        _ => self.value(),
                    })
                    .collect::<Decoded<Vec<_>>>()?;
                Value::Array(Array::new(elem, items))
            }
            t => return Err(malformed(format!("bad value tag {t}"))),
        }))
    }

    /// Reads a row.
    pub fn row(&mut self) -> Decoded<Vec<Datum>> {
        let n = self.count(1)?;
        (0..n).map(|_| self.value()).collect()
    }

    fn column_type(&mut self) -> Decoded<ColumnType> {
        let tag = self.u8()?;
        let n = self.opt_u32()?;
        let bad = |t: u8| malformed(format!("bad column type tag {t}"));
        if tag == ARRAY_TAG {
            let elem = self.u8()?;
            let elem = ColumnType::from_tag(elem, n).ok_or_else(|| bad(elem))?;
            return ElementType::of(elem)
                .map(ColumnType::Array)
                .ok_or_else(|| bad(tag));
        }
        ColumnType::from_tag(tag, n).ok_or_else(|| bad(tag))
    }

    /// Reads a column definition.
    pub fn column(&mut self) -> Decoded<ColumnDef> {
        let name = self.str()?;
        let ty = self.column_type()?;
        let not_null = self.u8()? != 0;
        let default = match self.u8()? {
            0 => None,
            _ => Some(self.str()?),
        };
        Ok(ColumnDef {
            name,
            ty,
            not_null,
            default,
        })
    }

    /// Reads a table definition, checking its key positions.
    pub fn table_def(&mut self) -> Decoded<TableDef> {
        let oid = self.u32()?;
        let name = self.str()?;
        let n = self.count(4)?;
        let columns = (0..n).map(|_| self.column()).collect::<Decoded<Vec<_>>>()?;
        let k = self.count(4)?;
        let primary_key = (0..k)
            .map(|_| {
                let i = self.u32()? as usize;
                (i < columns.len())
                    .then_some(i)
                    .ok_or_else(|| malformed("key column out of range"))
            })
            .collect::<Decoded<Vec<_>>>()?;
        let constraints = self.constraints(columns.len())?;
        Ok(TableDef {
            oid,
            name,
            columns,
            primary_key,
            constraints,
        })
    }

    /// Reads column positions, each below `limit` (`None`: unchecked, for
    /// another table's columns).
    fn positions(&mut self, limit: Option<usize>) -> Decoded<Vec<usize>> {
        let n = self.count(4)?;
        (0..n)
            .map(|_| {
                let i = self.u32()? as usize;
                match limit {
                    Some(l) if i >= l => Err(malformed("constraint column out of range")),
                    _ => Ok(i),
                }
            })
            .collect()
    }

    /// Reads a table's constraints (`columns`: its column count).
    pub fn constraints(&mut self, columns: usize) -> Decoded<Constraints> {
        let n = self.count(8)?;
        let unique = (0..n)
            .map(|_| {
                Ok(Unique {
                    name: self.str()?,
                    columns: self.positions(Some(columns))?,
                })
            })
            .collect::<Decoded<Vec<_>>>()?;
        let n = self.count(13)?;
        let foreign_keys = (0..n)
            .map(|_| {
                let name = self.str()?;
                let columns = self.positions(Some(columns))?;
                let table = self.str()?;
                let referenced = self.positions(None)?;
                let tag = self.u8()?;
                let on_delete = match tag & !ON_UPDATE_RESTRICT {
                    0 => OnDelete::NoAction,
                    1 => OnDelete::Cascade,
                    2 => OnDelete::SetNull,
                    3 => OnDelete::Restrict,
                    t => return Err(malformed(format!("bad ON DELETE tag {t}"))),
                };
                let on_update = if tag & ON_UPDATE_RESTRICT != 0 {
                    OnUpdate::Restrict
                } else {
                    OnUpdate::NoAction
                };
                Ok(ForeignKey {
                    name,
                    columns,
                    table,
                    referenced,
                    on_delete,
                    on_update,
                })
            })
            .collect::<Decoded<Vec<_>>>()?;
        Ok(Constraints {
            unique,
            foreign_keys,
        })
    }

    fn metric(&mut self) -> Decoded<Metric> {
        Metric::from_tag(self.u8()?).ok_or_else(|| malformed("bad metric tag"))
    }

    /// Reads an index definition.
    pub fn index_def(&mut self) -> Decoded<IndexDef> {
        let oid = self.u32()?;
        let name = self.str()?;
        let column = self.u32()? as usize;
        let mut expression = None;
        let tag = self.u8()?;
        let method = match tag {
            0 => IndexMethod::BTree,
            3 => {
                expression = Some(self.str()?);
                IndexMethod::BTree
            }
            1 | 4 | 7 => IndexMethod::IvfFlat {
                metric: self.metric()?,
                lists: self.u32()?,
            },
            2 | 5 | 8 => IndexMethod::Hnsw {
                metric: self.metric()?,
                m: self.u32()?,
                ef_construction: self.u32()?,
            },
            6 => IndexMethod::Gin {
                path_ops: self.u8()? != 0,
            },
            t => return Err(malformed(format!("bad index method tag {t}"))),
        };
        // Tags 1 and 2 come from before the given options were kept:
        // show every option, as then.
        let with = match tag {
            1 => vec!["lists".to_string()],
            2 => vec!["m".to_string(), "ef_construction".to_string()],
            4 | 5 | 7 | 8 => {
                let n = self.count(4)?;
                (0..n).map(|_| self.str()).collect::<Decoded<_>>()?
            }
            _ => Vec::new(),
        };
        let mut predicate = None;
        if matches!(tag, 7 | 8) {
            expression = self.opt_str()?;
            predicate = self.opt_str()?;
        }
        Ok(IndexDef {
            oid,
            name,
            column,
            method,
            expression,
            predicate,
            with,
        })
    }

    fn opt_str(&mut self) -> Decoded<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(malformed(format!("bad optional-string tag {t}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_row() -> Vec<Datum> {
        let row = vec![
            Value::Bool(true),
            Value::Int2(-3),
            Value::Int4(70_000),
            Value::Int8(-1 << 40),
            Value::Float4(1.5),
            Value::Float8(f64::NAN),
            Value::Text("héllo".into()),
            Value::Date(-17),
            Value::Timestamptz(1_234_567_890),
            Value::Timestamp(-5),
            Value::Interval(crate::wire::interval::Interval {
                months: -1,
                days: 2,
                micros: 3,
            }),
            Value::Jsonb("{\"a\": 1}".into()),
            Value::Json("{\"b\":2,  \"a\": 1}".into()),
            Value::Uuid([7; 16]),
            Value::Vector(Vector::new(vec![1.0, -2.5, 3.0]).unwrap()),
            Value::HalfVec(HalfVector::new(vec![f16::from_f32(0.5), f16::ONE]).unwrap()),
            Value::SparseVec(SparseVector::new(10, vec![1, 7], vec![2.0, -1.0]).unwrap()),
            Value::Bit(BitVector::from_bits([
                true, false, true, true, false, false, true, false, true,
            ])),
            Value::Char(b'r'),
            Value::Oid(16385),
            Value::Array(Array::new(
                crate::wire::oid::VECTOR,
                vec![Some(Value::Vector(Vector::new(vec![1.0]).unwrap())), None],
            )),
        ];
        let mut row: Vec<Datum> = row.into_iter().map(Some).collect();
        row.insert(0, None);
        row
    }

    #[test]
    fn rows_round_trip_and_every_truncation_fails() {
        let row = sample_row();
        let mut w = ByteWriter::default();
        w.row(&row);
        let mut r = ByteReader::new(&w.buf);
        let back = r.row().unwrap();
        r.finish().unwrap();
        // NaN != NaN, so compare the encodings.
        let mut again = ByteWriter::default();
        again.row(&back);
        assert_eq!(again.buf, w.buf);
        assert_eq!(back[11], row[11]);
        assert_eq!(back[14], row[14]);
        for cut in 0..w.buf.len() {
            let mut r = ByteReader::new(&w.buf[..cut]);
            assert!(r.row().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn invalid_vectors_and_tags_are_errors() {
        let mut w = ByteWriter::default();
        w.u8(11);
        w.u32(1);
        w.buf.extend_from_slice(&f32::NAN.to_le_bytes());
        assert!(ByteReader::new(&w.buf).value().is_err());
        assert!(ByteReader::new(&[99]).value().is_err());
        let nested = [17, 0, 0, 0, 0, 1, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(ByteReader::new(&nested).value().is_err());
        let mut huge = ByteWriter::default();
        huge.u32(u32::MAX);
        assert!(ByteReader::new(&huge.buf).row().is_err());
    }

    #[test]
    fn definitions_round_trip() {
        let t = TableDef {
            oid: 7,
            name: "items".into(),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    ty: ColumnType::Int8,
                    not_null: true,
                    default: Some("nextval('items_id_seq')".into()),
                },
                ColumnDef {
                    name: "embedding".into(),
                    ty: ColumnType::Vector(Some(3)),
                    not_null: false,
                    default: None,
                },
                ColumnDef {
                    name: "history".into(),
                    ty: ColumnType::Array(ElementType::of(ColumnType::HalfVec(Some(2))).unwrap()),
                    not_null: false,
                    default: None,
                },
            ],
            primary_key: vec![0],
            constraints: Constraints::default(),
        };
        let i = IndexDef {
            oid: 9,
            name: "items_embedding_idx".into(),
            column: 1,
            method: IndexMethod::IvfFlat {
                metric: Metric::Cosine,
                lists: 10,
            },
            expression: None,
            predicate: None,
            with: vec!["lists".into()],
        };
        let h = IndexDef {
            oid: 10,
            name: "items_embedding_idx1".into(),
            column: 1,
            method: IndexMethod::Hnsw {
                metric: Metric::InnerProduct,
                m: 8,
                ef_construction: 32,
            },
            expression: None,
            predicate: None,
            with: vec!["ef_construction".into()],
        };
        let partial = IndexDef {
            oid: 12,
            name: "items_expr_idx1".into(),
            column: 1,
            method: IndexMethod::Hnsw {
                metric: Metric::L2,
                m: 16,
                ef_construction: 64,
            },
            expression: Some("(embedding)::halfvec(3)".into()),
            predicate: Some("(id > 1)".into()),
            with: Vec::new(),
        };
        let e = IndexDef {
            oid: 11,
            name: "items_expr_idx".into(),
            column: 0,
            method: IndexMethod::BTree,
            expression: Some("(id + 1)".into()),
            predicate: None,
            with: Vec::new(),
        };
        let mut w = ByteWriter::default();
        w.table_def(&t);
        w.index_def(&i);
        w.index_def(&h);
        w.index_def(&e);
        w.index_def(&partial);
        let mut r = ByteReader::new(&w.buf);
        assert_eq!(r.table_def().unwrap(), t);
        assert_eq!(r.index_def().unwrap(), i);
        assert_eq!(r.index_def().unwrap(), h);
        assert_eq!(r.index_def().unwrap(), e);
        assert_eq!(r.index_def().unwrap(), partial);
        r.finish().unwrap();
    }
}
