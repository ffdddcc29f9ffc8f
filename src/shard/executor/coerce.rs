//! Converting values between types: explicit casts (`::vector(3)`,
//! `::bit(8)`, `::bigint`), an untyped literal meeting a typed operand,
//! a value stored into a column, and a result cell sent under its
//! described type.
//!
//! String literals evaluate to `text`; wherever a typed value is wanted
//! the text is parsed with the target type's input function, which is
//! what PostgreSQL does with an `unknown` literal.

use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use ann::functions::casts;
use ann::types::BitVector;
use half::f16;

/// The name of `type_oid` as PostgreSQL prints it in messages.
pub fn type_name(type_oid: u32) -> &'static str {
    match type_oid {
        oid::BOOL => "boolean",
        oid::INT2 => "smallint",
        oid::INT4 => "integer",
        oid::INT8 => "bigint",
        oid::FLOAT4 => "real",
        oid::FLOAT8 => "double precision",
        oid::TEXT => "text",
        oid::VARCHAR => "character varying",
        oid::DATE => "date",
        oid::TIMESTAMP => "timestamp without time zone",
        oid::TIMESTAMPTZ => "timestamp with time zone",
        oid::INTERVAL => "interval",
        oid::JSON => "json",
        oid::UUID => "uuid",
        oid::JSONB => "jsonb",
        oid::JSONPATH => "jsonpath",
        oid::BIT | oid::VARBIT => "bit",
        oid::VECTOR => "vector",
        oid::HALFVEC => "halfvec",
        oid::SPARSEVEC => "sparsevec",
        oid::OID => "oid",
        oid::NAME => "name",
        oid::CHAR => "\"char\"",
        1000 => "boolean[]",
        1002 => "\"char\"[]",
        1003 => "name[]",
        1005 => "smallint[]",
        1007 => "integer[]",
        1009 => "text[]",
        1015 => "character varying[]",
        1016 => "bigint[]",
        oid::FLOAT4_ARRAY => "real[]",
        1022 => "double precision[]",
        1028 => "oid[]",
        1182 => "date[]",
        1115 => "timestamp without time zone[]",
        1185 => "timestamp with time zone[]",
        1187 => "interval[]",
        1561 | 1563 => "bit[]",
        199 => "json[]",
        2951 => "uuid[]",
        3807 => "jsonb[]",
        4073 => "jsonpath[]",
        16390 => "vector[]",
        16391 => "halfvec[]",
        16392 => "sparsevec[]",
        _ => "unknown",
    }
}

fn cannot_cast(from: &Value, to: u32) -> PgError {
    PgError::new(
        "42846",
        format!(
            "cannot cast type {} to {}",
            type_name(from.type_oid()),
            type_name(to)
        ),
    )
}

fn out_of_range(type_oid: u32) -> PgError {
    PgError::new("22003", format!("{} out of range", type_name(type_oid)))
}

/// True for the integer types.
pub fn is_integer(v: &Value) -> bool {
    matches!(
        v,
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Oid(_)
    )
}

/// The value as an i64, for the integer types.
pub fn as_i64(v: &Value) -> Option<i64> {
    Some(match v {
        Value::Int2(x) => *x as i64,
        Value::Int4(x) => *x as i64,
        Value::Int8(x) => *x,
        Value::Oid(x) | Value::Reg { oid: x, .. } => *x as i64,
        _ => return None,
    })
}

/// The value as an f64, for the numeric types.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float4(x) => Some(*x as f64),
        Value::Float8(x) => Some(*x),
        _ => as_i64(v).map(|i| i as f64),
    }
}

fn int_to(i: i64, to: u32) -> Result<Value, PgError> {
    Ok(match to {
        oid::INT2 => Value::Int2(i16::try_from(i).map_err(|_| out_of_range(oid::INT2))?),
        oid::INT4 => Value::Int4(i32::try_from(i).map_err(|_| out_of_range(oid::INT4))?),
        oid::INT8 => Value::Int8(i),
        oid::OID => Value::Oid(u32::try_from(i).map_err(|_| out_of_range(oid::OID))?),
        oid::FLOAT4 => Value::Float4(i as f32),
        oid::FLOAT8 => Value::Float8(i as f64),
        oid::BOOL => Value::Bool(i != 0),
        _ => return Err(PgError::internal("not a numeric target")),
    })
}

fn float_to(f: f64, to: u32) -> Result<Value, PgError> {
    let rounded = f.round_ties_even();
    let int = |lo: f64, hi: f64| {
        if f.is_nan() || rounded < lo || rounded > hi {
            Err(out_of_range(to))
        } else {
            Ok(rounded as i64)
        }
    };
    Ok(match to {
        oid::INT2 => Value::Int2(int(i16::MIN as f64, i16::MAX as f64)? as i16),
        oid::INT4 => Value::Int4(int(i32::MIN as f64, i32::MAX as f64)? as i32),
        oid::INT8 => Value::Int8(int(-9.223_372_036_854_776e18, 9.223_372_036_854_775e18)?),
        oid::FLOAT4 => {
            let x = f as f32;
            if x.is_infinite() && f.is_finite() {
                return Err(PgError::new(
                    "22003",
                    "value out of range: overflow".to_string(),
                ));
            }
            Value::Float4(x)
        }
        oid::FLOAT8 => Value::Float8(f),
        _ => return Err(PgError::internal("not a numeric target")),
    })
}

fn is_numeric_oid(t: u32) -> bool {
    matches!(
        t,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::FLOAT4 | oid::FLOAT8
    )
}

/// Casts `v` to type `to` with `typmod` (dimensions of pgvector's types,
/// length of `bit(n)`); `explicit` is a `::type` cast, which may also
/// truncate or pad a bit string as PostgreSQL's explicit cast does.
pub fn cast(v: Value, to: u32, typmod: Option<u32>, explicit: bool) -> Result<Value, PgError> {
    if let Value::Text(s) = &v {
        if to != oid::TEXT && to != oid::VARCHAR && to != oid::NAME {
            return Value::parse(to, typmod, s);
        }
    }
    if is_numeric_oid(to) {
        if let Some(i) = as_i64(&v) {
            return int_to(i, to);
        }
        if let Some(f) = as_f64(&v) {
            return float_to(f, to);
        }
    }
    let v = match v {
        Value::Array(a) if matches!(to, oid::TEXT | oid::VARCHAR | oid::NAME) => {
            return Ok(Value::Text(a.to_text()))
        }
        Value::Array(a) => {
            let from = a.type_oid();
            return super::arrays::cast_from_array(a, to, typmod, explicit).unwrap_or_else(|| {
                Err(PgError::new(
                    "42846",
                    format!("cannot cast type {} to {}", type_name(from), type_name(to)),
                ))
            });
        }
        v => v,
    };
    Ok(match (v, to) {
        (Value::Vector(x), oid::FLOAT4_ARRAY) => super::arrays::dense_to_real_array(&x),
        (Value::HalfVec(x), oid::FLOAT4_ARRAY) => super::arrays::dense_to_real_array(&x),
        (v, oid::TEXT | oid::VARCHAR | oid::NAME) => match v {
            Value::Text(s) => Value::Text(truncate_varchar(s, to, typmod)),
            // The cast spells a boolean out; its output form is `t` / `f`.
            Value::Bool(b) => Value::Text(truncate_varchar(b.to_string(), to, typmod)),
            other => Value::Text(other.to_text()),
        },
        (Value::Bool(b), oid::INT4) => Value::Int4(b as i32),
        (v @ Value::Bool(_), oid::BOOL) => v,
        (Value::Vector(x), oid::VECTOR) => {
            if let Some(n) = typmod {
                x.check_dims(n)?;
            }
            Value::Vector(x)
        }
        (Value::Vector(x), oid::HALFVEC) => {
            Value::HalfVec(casts::cast_dense::<f32, f16>(&x, typmod)?)
        }
        (Value::HalfVec(x), oid::HALFVEC) => {
            if let Some(n) = typmod {
                x.check_dims(n)?;
            }
            Value::HalfVec(x)
        }
        (Value::HalfVec(x), oid::VECTOR) => {
            Value::Vector(casts::cast_dense::<f16, f32>(&x, typmod)?)
        }
        (Value::Vector(x), oid::SPARSEVEC) => Value::SparseVec(casts::dense_to_sparse(&x, typmod)?),
        (Value::HalfVec(x), oid::SPARSEVEC) => {
            Value::SparseVec(casts::dense_to_sparse(&x, typmod)?)
        }
        (Value::SparseVec(x), oid::VECTOR) => Value::Vector(casts::sparse_to_dense(&x, typmod)?),
        (Value::SparseVec(x), oid::HALFVEC) => Value::HalfVec(casts::sparse_to_dense(&x, typmod)?),
        (Value::SparseVec(x), oid::SPARSEVEC) => {
            if let Some(n) = typmod {
                x.check_dims(n)?;
            }
            Value::SparseVec(x)
        }
        (Value::Bit(b), oid::BIT | oid::VARBIT) => Value::Bit(resize_bits(b, typmod, explicit)?),
        (v @ Value::Date(_), oid::DATE)
        | (v @ Value::Timestamptz(_), oid::TIMESTAMPTZ)
        | (v @ Value::Timestamp(_), oid::TIMESTAMP)
        | (v @ Value::Interval(_), oid::INTERVAL)
        | (v @ Value::Json(_), oid::JSON)
        | (v @ Value::Uuid(_), oid::UUID)
        | (v @ Value::Jsonb(_), oid::JSONB)
        | (v @ Value::JsonPath(_), oid::JSONPATH)
        | (v @ Value::Char(_), oid::CHAR) => v,
        (Value::Json(s), oid::JSONB) => Value::Jsonb(super::json_ops::jsonb_of(&s)?),
        (Value::Jsonb(s), oid::JSON) => Value::Json(s),
        (Value::Date(d), oid::TIMESTAMPTZ) => Value::Timestamptz(date_micros(d)?),
        (Value::Timestamptz(t) | Value::Timestamp(t), oid::DATE) => {
            Value::Date(crate::wire::datetime::date_of(t))
        }
        // The session's time zone is UTC: both name the same instant.
        (Value::Timestamptz(t), oid::TIMESTAMP) => Value::Timestamp(t),
        (Value::Timestamp(t), oid::TIMESTAMPTZ) => Value::Timestamptz(t),
        (Value::Date(d), oid::TIMESTAMP) => Value::Timestamp(date_micros(d)?),
        (v, to) => return Err(cannot_cast(&v, to)),
    })
}

/// A date's midnight in µs (22008 past the timestamp range, which a
/// binary date parameter can be).
fn date_micros(days: i32) -> Result<i64, PgError> {
    i64::from(days)
        .checked_mul(86_400_000_000)
        .ok_or_else(|| PgError::new("22008", "date out of range for timestamp"))
}

fn truncate_varchar(s: String, to: u32, typmod: Option<u32>) -> String {
    match typmod {
        Some(n) if to == oid::VARCHAR && s.chars().count() > n as usize => {
            s.chars().take(n as usize).collect()
        }
        _ => s,
    }
}

fn resize_bits(b: BitVector, typmod: Option<u32>, explicit: bool) -> Result<BitVector, PgError> {
    let Some(n) = typmod.filter(|&n| n != b.len()) else {
        return Ok(b);
    };
    if !explicit {
        return Err(PgError::new(
            "22026",
            format!("bit string length {} does not match type bit({n})", b.len()),
        ));
    }
    Ok(b.resized(n))
}

/// Converts a computed value to the type a result column was described
/// with, so binary encodings match the RowDescription.
pub fn to_described(v: Value, type_oid: u32) -> Result<Value, PgError> {
    if v.type_oid() == type_oid
        || (type_oid == oid::BIT && matches!(v, Value::Bit(_)))
        || (type_oid == oid::VARCHAR && matches!(v, Value::Text(_)))
        || (type_oid == oid::NAME && matches!(v, Value::Text(_)))
    {
        return Ok(v);
    }
    cast(v, type_oid, None, false)
}
