//! The shard's datum: one SQL value of a column type the shard stores.
//!
//! Values are what the executor hands to storage and gets back from it.
//! Text-like types keep their text (`jsonb` is kept as the text the executor
//! normalised), dates are days since 2000-01-01 and timestamps microseconds
//! since 2000-01-01 UTC, as PostgreSQL counts them. The vector types are
//! ann's checked values, so a `Value` is always a valid datum.
//! The binary form used by the WAL and checkpoints is in
//! [`crate::shard::storage::row_codec`].

use ann::types::{BitVector, HalfVector, SparseVector, Vector};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    Int2(i16),
    /// `integer`.
    Int4(i32),
    /// `bigint`.
    Int8(i64),
    /// `real`.
    Float4(f32),
    /// `double precision`.
    Float8(f64),
    /// `text` / `varchar`.
    Text(String),
    /// `date`: days since 2000-01-01.
    Date(i32),
    /// `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
    Timestamptz(i64),
    /// `jsonb`, as normalised text.
    Jsonb(String),
    /// pgvector `vector`.
    Vector(Vector),
    /// pgvector `halfvec`.
    HalfVec(HalfVector),
    /// pgvector `sparsevec`.
    SparseVec(SparseVector),
    /// `bit(n)`.
    Bit(BitVector),
}

impl Value {
    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The SQL name of the value's type (`"null"` for NULL).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int2(_) => "smallint",
            Value::Int4(_) => "integer",
            Value::Int8(_) => "bigint",
            Value::Float4(_) => "real",
            Value::Float8(_) => "double precision",
            Value::Text(_) => "text",
            Value::Date(_) => "date",
            Value::Timestamptz(_) => "timestamp with time zone",
            Value::Jsonb(_) => "jsonb",
            Value::Vector(_) => "vector",
            Value::HalfVec(_) => "halfvec",
            Value::SparseVec(_) => "sparsevec",
            Value::Bit(_) => "bit",
        }
    }

    /// The value as a key for primary-key and btree indexes, `None` for
    /// NULL and for the vector types (which are not indexed that way).
    pub fn key(&self) -> Option<KeyValue> {
        Some(match self {
            Value::Bool(b) => KeyValue::Bool(*b),
            Value::Int2(v) => KeyValue::Int(*v as i64),
            Value::Int4(v) => KeyValue::Int(*v as i64),
            Value::Int8(v) => KeyValue::Int(*v),
            Value::Float4(v) => KeyValue::Float(OrderedF64(*v as f64)),
            Value::Float8(v) => KeyValue::Float(OrderedF64(*v)),
            Value::Text(s) | Value::Jsonb(s) => KeyValue::Text(s.clone()),
            Value::Date(d) => KeyValue::Int(*d as i64),
            Value::Timestamptz(t) => KeyValue::Int(*t),
            Value::Null
            | Value::Vector(_)
            | Value::HalfVec(_)
            | Value::SparseVec(_)
            | Value::Bit(_) => return None,
        })
    }
}

/// A scalar value as an index key: integers of every width (and dates and
/// timestamps, which a column never mixes) compare as i64, floats by
/// PostgreSQL's order (NaN above everything, `-0 = 0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// `boolean`.
    Bool(bool),
    /// Any integer, date or timestamp.
    Int(i64),
    /// `real` or `double precision`.
    Float(OrderedF64),
    /// `text`, `varchar`, `jsonb` (byte order, i.e. the C collation).
    Text(String),
}

impl std::fmt::Display for KeyValue {
    /// The key as PostgreSQL prints it in `Key (id)=(1)` details.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Bool(b) => f.write_str(if *b { "t" } else { "f" }),
            KeyValue::Int(v) => write!(f, "{v}"),
            KeyValue::Float(v) => write!(f, "{}", v.0),
            KeyValue::Text(s) => f.write_str(s),
        }
    }
}

/// An f64 with PostgreSQL's total order for floats.
#[derive(Debug, Clone, Copy)]
pub struct OrderedF64(pub f64);

impl OrderedF64 {
    fn canonical(self) -> f64 {
        if self.0.is_nan() {
            f64::NAN
        } else if self.0 == 0.0 {
            0.0
        } else {
            self.0
        }
    }
}

impl PartialEq for OrderedF64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrderedF64 {}

impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.canonical(), other.canonical());
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.total_cmp(&b),
        }
    }
}

impl Hash for OrderedF64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let c = self.canonical();
        if c.is_nan() {
            u64::MAX.hash(state)
        } else {
            c.to_bits().hash(state)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_like_postgres() {
        assert_eq!(Value::Int2(3).key(), Value::Int8(3).key());
        assert_eq!(Value::Float8(-0.0).key(), Value::Float4(0.0).key());
        let nan = Value::Float8(f64::NAN).key().unwrap();
        let inf = Value::Float8(f64::INFINITY).key().unwrap();
        assert!(nan > inf);
        assert_eq!(nan, Value::Float4(f32::NAN).key().unwrap());
        assert!(Value::Null.key().is_none());
        assert!(Value::Text("a".into()).key() < Value::Text("b".into()).key());
        assert_eq!(Value::Int4(7).key().unwrap().to_string(), "7");
    }
}
