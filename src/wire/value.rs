//! Typed values with PostgreSQL's text and binary formats for every type in
//! [`super::types`]; pgvector's types go through `ann::types`, which already
//! applies pgvector's checks and messages.

use ann::types::float_text;
use ann::{BitVector, HalfVector, SparseVector, Vector};
use bytes::{BufMut, BytesMut};

use super::array::{self, Array};
use super::error::PgError;
use super::interval::Interval;
use super::types::{self, oid};
use super::{datetime, sqlstate};

/// A column or parameter format code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// 0: text.
    #[default]
    Text,
    /// 1: binary.
    Binary,
}

impl Format {
    /// The format for code `code` (22023 `unsupported format code: N`).
    pub fn from_code(code: i16) -> Result<Self, PgError> {
        match code {
            0 => Ok(Format::Text),
            1 => Ok(Format::Binary),
            n => Err(PgError::invalid_parameter_value(format!(
                "unsupported format code: {n}"
            ))),
        }
    }

    /// The wire code.
    pub fn code(self) -> i16 {
        match self {
            Format::Text => 0,
            Format::Binary => 1,
        }
    }

    /// The format of column `i` of `n` under Bind's rule: no codes = all
    /// text, one code = all columns, else one code per column.
    pub fn pick(codes: &[i16], i: usize, n: usize) -> Result<Self, PgError> {
        match codes.len() {
            0 => Ok(Format::Text),
            1 => Format::from_code(codes[0]),
            len if len == n => Format::from_code(codes[i]),
            len => Err(PgError::protocol_violation(format!(
                "bind message has {len} result formats but query has {n} columns"
            ))),
        }
    }
}

/// A non-NULL value of one of the registry's types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// bool.
    Bool(bool),
    /// int2.
    Int2(i16),
    /// int4.
    Int4(i32),
    /// int8.
    Int8(i64),
    /// float4.
    Float4(f32),
    /// float8.
    Float8(f64),
    /// text, varchar or name.
    Text(String),
    /// "char".
    Char(u8),
    /// oid.
    Oid(u32),
    /// regclass or regtype (`ty`): an object's OID and the name it prints
    /// as, looked up when the value was made.
    Reg {
        /// `oid::REGCLASS` or `oid::REGTYPE`.
        ty: u32,
        /// The object's OID (the binary form).
        oid: u32,
        /// The object's name (the text form).
        name: String,
    },
    /// date: days since 2000-01-01.
    Date(i32),
    /// timestamp (without time zone): µs since 2000-01-01.
    Timestamp(i64),
    /// timestamptz: µs since 2000-01-01 UTC.
    Timestamptz(i64),
    /// interval.
    Interval(Interval),
    /// uuid.
    Uuid([u8; 16]),
    /// json, kept as the text it was given (checked to be JSON).
    Json(String),
    /// jsonb, kept as its JSON text.
    Jsonb(String),
    /// jsonpath, kept as PostgreSQL prints it.
    JsonPath(String),
    /// bit or varbit.
    Bit(BitVector),
    /// vector.
    Vector(Vector),
    /// halfvec.
    HalfVec(HalfVector),
    /// sparsevec.
    SparseVec(SparseVector),
    /// A one-dimensional array.
    Array(Array),
}

impl Value {
    /// The OID of the value's natural type.
    pub fn type_oid(&self) -> u32 {
        match self {
            Value::Bool(_) => oid::BOOL,
            Value::Int2(_) => oid::INT2,
            Value::Int4(_) => oid::INT4,
            Value::Int8(_) => oid::INT8,
            Value::Float4(_) => oid::FLOAT4,
            Value::Float8(_) => oid::FLOAT8,
            Value::Text(_) => oid::TEXT,
            Value::Char(_) => oid::CHAR,
            Value::Oid(_) => oid::OID,
            Value::Reg { ty, .. } => *ty,
            Value::Date(_) => oid::DATE,
            Value::Timestamp(_) => oid::TIMESTAMP,
            Value::Timestamptz(_) => oid::TIMESTAMPTZ,
            Value::Interval(_) => oid::INTERVAL,
            Value::Json(_) => oid::JSON,
            Value::Uuid(_) => oid::UUID,
            Value::Jsonb(_) => oid::JSONB,
            Value::JsonPath(_) => oid::JSONPATH,
            Value::Bit(_) => oid::VARBIT,
            Value::Vector(_) => oid::VECTOR,
            Value::HalfVec(_) => oid::HALFVEC,
            Value::SparseVec(_) => oid::SPARSEVEC,
            Value::Array(a) => a.type_oid(),
        }
    }

    /// PostgreSQL's text output.
    pub fn to_text(&self) -> String {
        match self {
            Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
            Value::Int2(v) => v.to_string(),
            Value::Int4(v) => v.to_string(),
            Value::Int8(v) => v.to_string(),
            Value::Float4(v) => float_text::shortest(*v),
            Value::Float8(v) => float_text::shortest(*v),
            Value::Text(s) | Value::Json(s) | Value::Jsonb(s) | Value::JsonPath(s) => s.clone(),
            // charout prints the zero byte as an empty string.
            Value::Char(0) => String::new(),
            Value::Char(c) => char::from(*c).to_string(),
            Value::Oid(v) => v.to_string(),
            Value::Reg { name, .. } => name.clone(),
            Value::Uuid(u) => super::uuid::format(u),
            Value::Date(d) => datetime::format_date(*d),
            Value::Timestamp(t) => datetime::format_timestamp(*t),
            Value::Timestamptz(t) => datetime::format_timestamptz(*t),
            Value::Interval(i) => i.to_text(),
            Value::Bit(b) => b.to_text(),
            Value::Vector(v) => v.to_text(),
            Value::HalfVec(v) => v.to_text(),
            Value::SparseVec(v) => v.to_text(),
            Value::Array(a) => a.to_text(),
        }
    }

    /// Appends the value in `format` to `out`.
    pub fn encode(&self, format: Format, out: &mut BytesMut) {
        if format == Format::Text {
            out.put_slice(self.to_text().as_bytes());
            return;
        }
        match self {
            Value::Bool(b) => out.put_u8(u8::from(*b)),
            Value::Int2(v) => out.put_i16(*v),
            Value::Int4(v) => out.put_i32(*v),
            Value::Int8(v) => out.put_i64(*v),
            Value::Float4(v) => out.put_f32(*v),
            Value::Float8(v) => out.put_f64(*v),
            Value::Text(s) | Value::Json(s) => out.put_slice(s.as_bytes()),
            Value::Uuid(u) => out.put_slice(u),
            Value::Char(c) => out.put_u8(*c),
            Value::Oid(v) | Value::Reg { oid: v, .. } => out.put_u32(*v),
            Value::Date(d) => out.put_i32(*d),
            Value::Timestamp(t) | Value::Timestamptz(t) => out.put_i64(*t),
            Value::Interval(i) => out.put_slice(&i.to_binary()),
            Value::Jsonb(s) | Value::JsonPath(s) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            Value::Bit(b) => out.put_slice(&b.to_binary()),
            Value::Vector(v) => out.put_slice(&v.to_binary()),
            Value::HalfVec(v) => out.put_slice(&v.to_binary()),
            Value::SparseVec(v) => out.put_slice(&v.to_binary()),
            Value::Array(a) => a.encode_binary(out),
        }
    }

    /// Decodes `bytes` in `format` as type `type_oid` (with optional typmod
    /// for the vector types, e.g. 3 for `vector(3)`).
    pub fn decode(
        type_oid: u32,
        typmod: Option<u32>,
        format: Format,
        bytes: &[u8],
    ) -> Result<Value, PgError> {
        match format {
            Format::Text => Value::parse(type_oid, typmod, utf8(bytes)?),
            Format::Binary => decode_binary(type_oid, typmod, bytes),
        }
    }

    /// Parses PostgreSQL text input for type `type_oid`.
    pub fn parse(type_oid: u32, typmod: Option<u32>, text: &str) -> Result<Value, PgError> {
        Ok(match type_oid {
            oid::BOOL => Value::Bool(parse_bool(text)?),
            oid::INT2 => Value::Int2(parse_int(text, "smallint")?),
            oid::INT4 => Value::Int4(parse_int(text, "integer")?),
            oid::INT8 => Value::Int8(parse_int(text, "bigint")?),
            oid::OID => Value::Oid(parse_int(text, "oid")?),
            // A name is looked up by the executor's cast, an OID is kept.
            oid::REGCLASS | oid::REGTYPE => match text.trim().parse() {
                Ok(n) => Value::Oid(n),
                Err(_) => Value::Text(text.to_string()),
            },
            oid::FLOAT4 => Value::Float4(parse_float::<f32>(text, "real")?),
            oid::FLOAT8 => Value::Float8(parse_float::<f64>(text, "double precision")?),
            oid::TEXT | oid::VARCHAR | oid::NAME | oid::UNKNOWN | oid::VOID => {
                Value::Text(text.to_string())
            }
            oid::CHAR => Value::Char(text.bytes().next().unwrap_or(0)),
            oid::DATE => Value::Date(datetime::parse_date(text)?),
            oid::TIMESTAMP => Value::Timestamp(datetime::parse_timestamp(text)?),
            oid::TIMESTAMPTZ => Value::Timestamptz(datetime::parse_timestamptz(text)?),
            oid::INTERVAL => Value::Interval(Interval::parse(text)?),
            oid::JSON => Value::Json(parse_json(text)?),
            oid::UUID => Value::Uuid(
                super::uuid::parse(text).ok_or_else(|| PgError::invalid_text("uuid", text))?,
            ),
            oid::JSONB => Value::Jsonb(parse_json(text)?),
            oid::JSONPATH => Value::JsonPath(parse_jsonpath(text)?),
            oid::BIT | oid::VARBIT => Value::Bit(BitVector::parse(text, typmod)?),
            oid::VECTOR => Value::Vector(Vector::parse(text, typmod)?),
            oid::HALFVEC => Value::HalfVec(HalfVector::parse(text, typmod)?),
            oid::SPARSEVEC => Value::SparseVec(SparseVector::parse(text, typmod)?),
            other => match (array::vector_element(other), array_element(other)) {
                (Some(elem), _) => Value::Array(Array::parse_vector(elem, text)?),
                (None, Some(elem)) => Value::Array(Array::parse(elem, typmod, text)?),
                (None, None) => return Err(unsupported_type(other)),
            },
        })
    }
}

/// jsonpath input, as PostgreSQL prints it back.
fn parse_jsonpath(text: &str) -> Result<String, PgError> {
    Ok(crate::sql::jsonpath::parse(text)?.to_string())
}

fn unsupported_type(oid: u32) -> PgError {
    PgError::feature_not_supported(format!("values of type with OID {oid} are not supported"))
}

fn decode_binary(type_oid: u32, typmod: Option<u32>, b: &[u8]) -> Result<Value, PgError> {
    fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], PgError> {
        b.try_into()
            .map_err(|_| PgError::invalid_binary("incorrect binary data format"))
    }
    Ok(match type_oid {
        oid::BOOL => Value::Bool(fixed::<1>(b)?[0] != 0),
        oid::INT2 => Value::Int2(i16::from_be_bytes(fixed(b)?)),
        oid::INT4 => Value::Int4(i32::from_be_bytes(fixed(b)?)),
        oid::INT8 => Value::Int8(i64::from_be_bytes(fixed(b)?)),
        oid::OID | oid::REGCLASS | oid::REGTYPE => Value::Oid(u32::from_be_bytes(fixed(b)?)),
        oid::FLOAT4 => Value::Float4(f32::from_be_bytes(fixed(b)?)),
        oid::FLOAT8 => Value::Float8(f64::from_be_bytes(fixed(b)?)),
        oid::CHAR => Value::Char(fixed::<1>(b)?[0]),
        oid::UUID => Value::Uuid(fixed(b)?),
        oid::DATE => Value::Date(i32::from_be_bytes(fixed(b)?)),
        oid::TIMESTAMP => Value::Timestamp(i64::from_be_bytes(fixed(b)?)),
        oid::TIMESTAMPTZ => Value::Timestamptz(i64::from_be_bytes(fixed(b)?)),
        oid::INTERVAL => Value::Interval(Interval::from_binary(b)?),
        oid::JSON => Value::Json(parse_json(utf8(b)?)?),
        oid::JSONB => match b.split_first() {
            Some((1, json)) => {
                let text = std::str::from_utf8(json)
                    .map_err(|_| PgError::invalid_binary("invalid jsonb text"))?;
                Value::Jsonb(parse_json(text)?)
            }
            _ => return Err(PgError::invalid_binary("unsupported jsonb version number")),
        },
        oid::JSONPATH => match b.split_first() {
            Some((1, path)) => {
                let text = std::str::from_utf8(path)
                    .map_err(|_| PgError::invalid_binary("invalid jsonpath text"))?;
                Value::JsonPath(parse_jsonpath(text)?)
            }
            _ => {
                return Err(PgError::invalid_binary(
                    "unsupported jsonpath version number",
                ))
            }
        },
        oid::BIT | oid::VARBIT => Value::Bit(BitVector::from_binary(b, typmod)?),
        oid::VECTOR => Value::Vector(Vector::from_binary(b, typmod)?),
        oid::HALFVEC => Value::HalfVec(HalfVector::from_binary(b, typmod)?),
        oid::SPARSEVEC => Value::SparseVec(SparseVector::from_binary(b, typmod)?),
        oid::TEXT | oid::VARCHAR | oid::NAME | oid::UNKNOWN | oid::VOID => {
            Value::Text(utf8(b)?.to_string())
        }
        other => match (array::vector_element(other), array_element(other)) {
            (Some(elem), _) => Value::Array(Array::from_binary(elem, typmod, true, b)?),
            (None, Some(elem)) => Value::Array(Array::from_binary(elem, typmod, false, b)?),
            (None, None) => return Err(unsupported_type(other)),
        },
    })
}

/// `bytes` as UTF-8 text (22021 otherwise).
fn utf8(bytes: &[u8]) -> Result<&str, PgError> {
    std::str::from_utf8(bytes).map_err(|_| {
        PgError::new(
            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        )
    })
}

/// The element type of array type `type_oid`, if it is one.
fn array_element(type_oid: u32) -> Option<u32> {
    types::by_oid(type_oid).map(|t| t.elem).filter(|&e| e != 0)
}

fn parse_bool(text: &str) -> Result<bool, PgError> {
    let t = text.trim().to_ascii_lowercase();
    let is_prefix = |word: &str| !t.is_empty() && word.starts_with(t.as_str());
    match t.as_str() {
        "1" | "on" => Ok(true),
        "0" | "off" => Ok(false),
        _ if is_prefix("true") || is_prefix("yes") => Ok(true),
        _ if is_prefix("false") || is_prefix("no") => Ok(false),
        _ => Err(PgError::invalid_text("boolean", text)),
    }
}

fn parse_int<T: std::str::FromStr>(text: &str, type_name: &str) -> Result<T, PgError> {
    let t = text.trim();
    t.parse().map_err(|_| {
        let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            PgError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!("value \"{text}\" is out of range for type {type_name}"),
            )
        } else {
            PgError::invalid_text(type_name, text)
        }
    })
}

/// PostgreSQL's `float4in`/`float8in`: a finite value that overflows the
/// type, or a non-zero one that underflows to 0, is out of range (22003)
/// rather than Infinity or 0.
fn parse_float<F>(text: &str, type_name: &str) -> Result<F, PgError>
where
    F: std::str::FromStr + Into<f64> + From<f32> + Copy,
{
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(F::from(f32::NAN)),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(F::from(f32::INFINITY)),
        "-infinity" | "-inf" => return Ok(F::from(f32::NEG_INFINITY)),
        _ => {}
    }
    let v: F = t
        .parse()
        .map_err(|_| PgError::invalid_text(type_name, text))?;
    let x: f64 = v.into();
    let mantissa = t.split(['e', 'E']).next().unwrap_or("");
    let underflow = x == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if x.is_finite() && !underflow {
        Ok(v)
    } else {
        Err(PgError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{t}\" is out of range for type {type_name}"),
        ))
    }
}

fn parse_json(text: &str) -> Result<String, PgError> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|_| text.to_string())
        .map_err(|_| PgError::invalid_text("json", text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_round_trip(oid: u32, text: &str) {
        let v = Value::parse(oid, None, text).unwrap();
        assert_eq!(v.to_text(), text, "oid {oid}");
        let mut buf = BytesMut::new();
        v.encode(Format::Binary, &mut buf);
        assert_eq!(Value::decode(oid, None, Format::Binary, &buf).unwrap(), v);
    }

    #[test]
    fn every_type_round_trips_text_and_binary() {
        text_round_trip(oid::BOOL, "t");
        text_round_trip(oid::INT2, "-32768");
        text_round_trip(oid::INT4, "42");
        text_round_trip(oid::INT8, "9223372036854775807");
        text_round_trip(oid::FLOAT4, "1.5");
        text_round_trip(oid::FLOAT8, "0.1");
        text_round_trip(oid::TEXT, "héllo");
        text_round_trip(oid::DATE, "2024-02-29");
        text_round_trip(oid::TIMESTAMPTZ, "2024-02-29 12:00:00.25+00");
        text_round_trip(oid::JSONB, "{\"a\": 1}");
        text_round_trip(oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        text_round_trip(oid::JSON, "{\"b\":1,  \"a\": [1 ,2]}");
        text_round_trip(oid::VARBIT, "10110");
        text_round_trip(oid::VECTOR, "[1,2.5,-3]");
        text_round_trip(oid::HALFVEC, "[1,2.5,-3]");
        text_round_trip(oid::SPARSEVEC, "{1:1,3:2.5}/5");
    }

    #[test]
    fn floats_print_like_postgres() {
        // Each type with its own digits and plain range (ann's float_text
        // has the cases; sql/cases/34 compares them with PostgreSQL).
        assert_eq!(Value::Float4(0.1).to_text(), "0.1");
        assert_eq!(Value::Float8(0.1).to_text(), "0.1");
        assert_eq!(Value::Float4(1234567.0).to_text(), "1.234567e+06");
        assert_eq!(Value::Float8(1234567.0).to_text(), "1234567");
        // A tie between two shortest texts rounds to even, as in PostgreSQL.
        assert_eq!(Value::Float4(2_070_951.2).to_text(), "2.0709512e+06");
    }

    #[test]
    fn input_errors_carry_postgres_codes() {
        let e = Value::parse(oid::INT4, None, "12x").unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("22P02", "invalid input syntax for type integer: \"12x\"")
        );
        let e = Value::parse(oid::INT2, None, "40000").unwrap_err();
        assert_eq!(
            e.message,
            "value \"40000\" is out of range for type smallint"
        );
        let e = Value::parse(oid::VECTOR, Some(3), "[1,2]").unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("22000", "expected 3 dimensions, not 2")
        );
        let e = Value::decode(oid::INT4, None, Format::Binary, &[0, 1]).unwrap_err();
        assert_eq!(e.code, "22P03");
        assert!(Value::decode(oid::VECTOR, None, Format::Binary, &[0xff; 3]).is_err());
        assert!(Value::parse(oid::BOOL, None, "maybe").is_err());
        assert_eq!(
            Value::parse(oid::BOOL, None, "YES").unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn format_codes_follow_bind_rules() {
        assert_eq!(Format::pick(&[], 2, 3).unwrap(), Format::Text);
        assert_eq!(Format::pick(&[1], 2, 3).unwrap(), Format::Binary);
        assert_eq!(Format::pick(&[0, 1, 0], 1, 3).unwrap(), Format::Binary);
        assert_eq!(Format::pick(&[0, 1], 1, 3).unwrap_err().code, "08P01");
        assert_eq!(Format::pick(&[2], 0, 1).unwrap_err().code, "22023");
    }
}
