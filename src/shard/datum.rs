//! The shard's datum: one SQL value of a column, `None` for NULL, as the
//! protocol layer's [`Value`] — so rows go from storage to the client
//! without conversion — and its key form for primary-key and btree indexes.
//!
//! Dates are days since 2000-01-01 and timestamps microseconds since
//! 2000-01-01 UTC, as PostgreSQL counts them; the vector types are ann's
//! checked values. The binary form used by the WAL and checkpoints is in
//! [`crate::shard::storage::row_codec`].

use crate::wire::Value;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// One column value of a row: `None` is SQL NULL.
pub type Datum = Option<Value>;

/// The SQL name of a value's type, as error messages print it.
pub fn type_name(value: &Value) -> String {
    scalar_type_name(value).map_or_else(
        || match value {
            Value::Array(a) => match a.items.iter().flatten().next() {
                Some(v) => format!("{}[]", type_name(v)),
                None => crate::wire::types::by_oid(a.type_oid())
                    .map_or("anyarray", |t| t.name)
                    .to_string(),
            },
            _ => "unknown".to_string(),
        },
        str::to_string,
    )
}

fn scalar_type_name(value: &Value) -> Option<&'static str> {
    Some(match value {
        Value::Bool(_) => "boolean",
        Value::Int2(_) => "smallint",
        Value::Int4(_) => "integer",
        Value::Int8(_) => "bigint",
        Value::Float4(_) => "real",
        Value::Float8(_) => "double precision",
        Value::Text(_) => "text",
        Value::Char(_) => "\"char\"",
        Value::Oid(_) => "oid",
        Value::Reg { ty, .. } if *ty == crate::wire::types::oid::REGCLASS => "regclass",
        Value::Reg { .. } => "regtype",
        Value::Date(_) => "date",
        Value::Timestamp(_) => "timestamp without time zone",
        Value::Timestamptz(_) => "timestamp with time zone",
        Value::Interval(_) => "interval",
        Value::Json(_) => "json",
        Value::Uuid(_) => "uuid",
        Value::Jsonb(_) => "jsonb",
        Value::JsonPath(_) => "jsonpath",
        Value::Vector(_) => "vector",
        Value::HalfVec(_) => "halfvec",
        Value::SparseVec(_) => "sparsevec",
        Value::Bit(_) => "bit",
        Value::Array(_) => return None,
    })
}

/// The datum as a key for primary-key and btree indexes, `None` for NULL
/// and for the vector types (which are not indexed that way).
pub fn key(datum: &Datum) -> Option<KeyValue> {
    Some(match datum.as_ref()? {
        Value::Bool(b) => KeyValue::Bool(*b),
        Value::Int2(v) => KeyValue::Int(*v as i64),
        Value::Int4(v) => KeyValue::Int(*v as i64),
        Value::Int8(v) => KeyValue::Int(*v),
        Value::Oid(v) | Value::Reg { oid: v, .. } => KeyValue::Int(*v as i64),
        Value::Char(c) => KeyValue::Int(*c as i64),
        Value::Float4(v) => KeyValue::Float(OrderedF64(*v as f64)),
        Value::Float8(v) => KeyValue::Float(OrderedF64(*v)),
        Value::Text(s) | Value::Json(s) | Value::Jsonb(s) | Value::JsonPath(s) => {
            KeyValue::Text(s.clone())
        }
        // Text order of the canonical form is the bytes' order.
        Value::Uuid(u) => KeyValue::Text(crate::wire::uuid::format(u)),
        Value::Date(d) => KeyValue::Int(*d as i64),
        Value::Timestamp(t) | Value::Timestamptz(t) => KeyValue::Int(*t),
        Value::Interval(i) => KeyValue::Span(i.span()),
        Value::Vector(_)
        | Value::HalfVec(_)
        | Value::SparseVec(_)
        | Value::Bit(_)
        | Value::Array(_) => return None,
    })
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
    /// `interval`, by its length (a month as 30 days).
    Span(i128),
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
            KeyValue::Span(v) => write!(f, "{v}"),
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
        let k = |v: Value| key(&Some(v));
        assert_eq!(k(Value::Int2(3)), k(Value::Int8(3)));
        assert_eq!(k(Value::Float8(-0.0)), k(Value::Float4(0.0)));
        let nan = k(Value::Float8(f64::NAN)).unwrap();
        let inf = k(Value::Float8(f64::INFINITY)).unwrap();
        assert!(nan > inf);
        assert_eq!(nan, k(Value::Float4(f32::NAN)).unwrap());
        assert!(key(&None).is_none());
        assert!(k(Value::Text("a".into())) < k(Value::Text("b".into())));
        assert_eq!(k(Value::Int4(7)).unwrap().to_string(), "7");
    }
}
