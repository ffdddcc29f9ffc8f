//! Column types as SQL spells them, as storage keeps them and as the
//! protocol describes them (type OID and typmod).

use crate::shard::storage::{ColumnType, ElementType};
use crate::sql::vector_cast;
use crate::wire::types::{self, oid};
use crate::wire::{FieldDescription, PgError};
use ann::VectorType;
use sqlparser::ast::{ArrayElemTypeDef, CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};

/// A declared column type, and whether it is a serial (`serial`,
/// `bigserial`, `smallserial`: an integer with a sequence default).
pub fn column_type(dt: &DataType) -> Result<(ColumnType, bool), PgError> {
    if let Some(elem) = array_element(dt) {
        let (elem, serial) = column_type(elem)?;
        if serial {
            return Err(undefined_type(&dt.to_string()));
        }
        return Ok((array_column(elem), false));
    }
    check_typmod(dt)?;
    if let Some(cast) = vector_cast(dt) {
        return Ok((ColumnType::of_vector(cast.ty, cast.typmod), false));
    }
    Ok(match dt {
        DataType::Bool | DataType::Boolean => (ColumnType::Bool, false),
        DataType::SmallInt(_) | DataType::Int2(_) => (ColumnType::Int2, false),
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => (ColumnType::Int4, false),
        DataType::BigInt(_) | DataType::Int8(_) => (ColumnType::Int8, false),
        DataType::Real | DataType::Float4 => (ColumnType::Float4, false),
        DataType::DoublePrecision | DataType::Float8 | DataType::Double(ExactNumberInfo::None) => {
            (ColumnType::Float8, false)
        }
        DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => (ColumnType::Float4, false),
        DataType::Float(_) => (ColumnType::Float8, false),
        DataType::Text | DataType::String(None) => (ColumnType::Text, false),
        DataType::Varchar(n) | DataType::CharacterVarying(n) => {
            let n = match n {
                Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
                _ => None,
            };
            (ColumnType::Varchar(n), false)
        }
        DataType::Date => (ColumnType::Date, false),
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            (ColumnType::Timestamptz, false)
        }
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            (ColumnType::Timestamp, false)
        }
        DataType::Interval { fields: None, .. } => (ColumnType::Interval, false),
        DataType::JSON => (ColumnType::Json, false),
        DataType::Uuid => (ColumnType::Uuid, false),
        DataType::JSONB => (ColumnType::Jsonb, false),
        DataType::Custom(name, mods) if mods.is_empty() => match custom_name(name).as_str() {
            "serial" | "serial4" => (ColumnType::Int4, true),
            "bigserial" | "serial8" => (ColumnType::Int8, true),
            "smallserial" | "serial2" => (ColumnType::Int2, true),
            "timestamptz" => (ColumnType::Timestamptz, false),
            "timestamp" => (ColumnType::Timestamp, false),
            "interval" => (ColumnType::Interval, false),
            "json" => (ColumnType::Json, false),
            "uuid" => (ColumnType::Uuid, false),
            "jsonb" => (ColumnType::Jsonb, false),
            "text" => (ColumnType::Text, false),
            "float8" => (ColumnType::Float8, false),
            _ => return Err(undefined_type(&dt.to_string())),
        },
        // A name that is no type here, with modifiers (`minivec(3)`).
        DataType::Custom(name, _) if types::by_name(&custom_name(name)).is_none() => {
            return Err(undefined_type(&custom_name(name)))
        }
        other => {
            return Err(PgError::feature_not_supported(format!(
                "columns of type {other} are not supported"
            )))
        }
    })
}

/// pgvector's checks of a type modifier (PostgreSQL's for `bit(n)`),
/// made where a type is named — a column definition or a cast — with
/// their messages (22023).
fn check_typmod(dt: &DataType) -> Result<(), PgError> {
    let (what, max, written) = match dt {
        DataType::Bit(Some(n)) => ("length for type bit", 83_886_080, n.to_string()),
        DataType::Custom(name, mods) if !mods.is_empty() => {
            let Some(cast) = vector_cast(&DataType::Custom(name.clone(), Vec::new())) else {
                return Ok(());
            };
            let [m] = mods.as_slice() else {
                return Err(PgError::invalid_parameter_value("invalid type modifier"));
            };
            let (what, max) = match cast.ty {
                VectorType::Vector => ("dimensions for type vector", 16_000),
                VectorType::HalfVec => ("dimensions for type halfvec", 16_000),
                VectorType::SparseVec => ("dimensions for type sparsevec", 1_000_000_000),
                VectorType::Bit => return Ok(()),
            };
            (what, max, m.clone())
        }
        _ => return Ok(()),
    };
    // pgvector reads a modifier as an integer (`vector('a')`: 22P02).
    let written = written.trim();
    let n: i64 = written
        .parse()
        .map_err(|_| PgError::invalid_text("integer", written))?;
    if n < 1 {
        return Err(PgError::invalid_parameter_value(format!(
            "{what} must be at least 1"
        )));
    }
    if n > max {
        return Err(PgError::invalid_parameter_value(format!(
            "{what} cannot exceed {max}"
        )));
    }
    Ok(())
}

/// The element type of an array type (`int[]`, `vector(3)[]`,
/// `integer ARRAY`).
pub fn array_element(dt: &DataType) -> Option<&DataType> {
    match dt {
        DataType::Array(
            ArrayElemTypeDef::SquareBracket(t, _) | ArrayElemTypeDef::AngleBracket(t),
        ) => Some(t),
        _ => None,
    }
}

/// The array type of `elem` (an array type is its own array type).
pub fn array_column(elem: ColumnType) -> ColumnType {
    ElementType::of(elem).map_or(elem, ColumnType::Array)
}

/// 42704 `type "x" does not exist`.
pub fn undefined_type(name: &str) -> PgError {
    PgError::new("42704", format!("type \"{name}\" does not exist"))
}

/// The type OID a column of `ty` is described with.
pub fn type_oid(ty: ColumnType) -> u32 {
    match ty {
        ColumnType::Bool => oid::BOOL,
        ColumnType::Int2 => oid::INT2,
        ColumnType::Int4 => oid::INT4,
        ColumnType::Int8 => oid::INT8,
        ColumnType::Float4 => oid::FLOAT4,
        ColumnType::Float8 => oid::FLOAT8,
        ColumnType::Text => oid::TEXT,
        ColumnType::Varchar(_) => oid::VARCHAR,
        ColumnType::Date => oid::DATE,
        ColumnType::Timestamptz => oid::TIMESTAMPTZ,
        ColumnType::Timestamp => oid::TIMESTAMP,
        ColumnType::Interval => oid::INTERVAL,
        ColumnType::Json => oid::JSON,
        ColumnType::Uuid => oid::UUID,
        ColumnType::Jsonb => oid::JSONB,
        ColumnType::Vector(_) => oid::VECTOR,
        ColumnType::HalfVec(_) => oid::HALFVEC,
        ColumnType::SparseVec(_) => oid::SPARSEVEC,
        ColumnType::Bit(_) => oid::BIT,
        ColumnType::Array(e) => types::array_of(type_oid(e.column_type())).map_or(0, |t| t.oid),
    }
}

/// The typmod of `ty` as `pg_attribute.atttypmod` holds it (-1: none):
/// dimensions for pgvector's types, bits for `bit(n)`, n + 4 for
/// `varchar(n)`.
pub fn typmod(ty: ColumnType) -> i32 {
    match ty {
        ColumnType::Vector(Some(n))
        | ColumnType::HalfVec(Some(n))
        | ColumnType::SparseVec(Some(n))
        | ColumnType::Bit(Some(n)) => n as i32,
        ColumnType::Varchar(Some(n)) => n as i32 + 4,
        ColumnType::Array(e) => typmod(e.column_type()),
        _ => -1,
    }
}

/// The typmod [`crate::wire::Value::parse`] checks values against.
pub fn value_typmod(ty: ColumnType) -> Option<u32> {
    match ty {
        ColumnType::Vector(n)
        | ColumnType::HalfVec(n)
        | ColumnType::SparseVec(n)
        | ColumnType::Bit(n) => n,
        ColumnType::Array(e) => value_typmod(e.column_type()),
        _ => None,
    }
}

/// A result column of type OID `type_oid` with typmod `typmod`.
pub fn field(name: &str, type_oid: u32, typmod: i32) -> FieldDescription {
    let ty = types::by_oid(type_oid)
        .or_else(|| types::by_oid(oid::TEXT))
        .expect("text is a registered type");
    let mut f = FieldDescription::new(name, ty);
    f.type_modifier = typmod;
    f
}

/// The type OID and value typmod a `::type` cast converts to.
pub fn cast_target(dt: &DataType) -> Result<(u32, Option<u32>), PgError> {
    if let Some(elem) = array_element(dt) {
        let (elem, typmod) = cast_target(elem)?;
        let array = types::by_oid(elem)
            .filter(|t| t.elem != 0)
            .or_else(|| types::array_of(elem))
            .ok_or_else(|| undefined_type(&dt.to_string()))?;
        return Ok((array.oid, typmod));
    }
    check_typmod(dt)?;
    if let Some(cast) = vector_cast(dt) {
        let to = match cast.ty {
            VectorType::Vector => oid::VECTOR,
            VectorType::HalfVec => oid::HALFVEC,
            VectorType::SparseVec => oid::SPARSEVEC,
            VectorType::Bit => oid::BIT,
        };
        return Ok((to, cast.typmod));
    }
    match dt {
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => {
            return Ok((oid::FLOAT8, None))
        }
        DataType::BitVarying(_) | DataType::VarBit(_) => return Ok((oid::VARBIT, None)),
        DataType::Interval { .. } => return Ok((oid::INTERVAL, None)),
        DataType::Regclass => return Ok((oid::REGCLASS, None)),
        // `$3::CHAR` (SQLAlchemy's asyncpg dialect, comparing with a
        // "char" catalog column): blank-padded character(n) is not a type
        // here; varchar(n) cuts the value the same way.
        DataType::Char(n) | DataType::Character(n) => {
            let n = match n {
                Some(CharacterLength::IntegerLength { length, .. }) => *length as u32,
                _ => 1,
            };
            return Ok((oid::VARCHAR, Some(n)));
        }
        DataType::Custom(name, mods) if mods.is_empty() => match custom_name(name).as_str() {
            "oid" => return Ok((oid::OID, None)),
            "regclass" => return Ok((oid::REGCLASS, None)),
            "regtype" => return Ok((oid::REGTYPE, None)),
            "name" => return Ok((oid::NAME, None)),
            "varbit" => return Ok((oid::VARBIT, None)),
            "jsonpath" => return Ok((oid::JSONPATH, None)),
            _ => {}
        },
        _ => {}
    }
    let (ty, _) = column_type(dt)?;
    let typmod = match ty {
        ColumnType::Varchar(n) => n,
        other => value_typmod(other),
    };
    Ok((type_oid(ty), typmod))
}

/// A type name as written, lower-cased, without a `pg_catalog.` or
/// `public.` schema (`pg_catalog.regclass` is `regclass`).
pub fn custom_name(name: &sqlparser::ast::ObjectName) -> String {
    let full = name.to_string().to_ascii_lowercase();
    for schema in ["pg_catalog.", "public."] {
        if let Some(rest) = full.strip_prefix(schema) {
            return rest.to_string();
        }
    }
    full
}
