//! Result types known before any row is read: a prepared statement's
//! RowDescription and ParameterDescription come from here, and every
//! computed cell is converted to the type announced for its column.

use super::expr::{function_args, function_name, number};
use super::types::cast_target;
use crate::sql::{distance_operator, placeholder_index};
use crate::wire::types::oid;
use crate::wire::PgError;
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value as SqlValue};

/// A type OID and typmod (-1: none).
pub type TypeOf = (u32, i32);

/// What the columns an expression may reference are.
pub trait Columns {
    /// The type of column `name` (of `qualifier`, if given).
    fn column_type(&self, qualifier: Option<&str>, name: &str) -> Option<TypeOf>;
}

/// Types of the statement's `$n` parameters, `$1` first (0 = unknown).
pub struct TypeEnv<'a> {
    /// Parameter types.
    pub params: &'a [u32],
}

fn is_int(t: u32) -> bool {
    matches!(t, oid::INT2 | oid::INT4 | oid::INT8)
}

fn is_vector(t: u32) -> bool {
    matches!(t, oid::VECTOR | oid::HALFVEC | oid::SPARSEVEC | oid::BIT)
}

/// The type `expr` evaluates to.
pub fn infer(expr: &Expr, cols: &dyn Columns, env: &TypeEnv) -> Result<TypeOf, PgError> {
    let plain = |t: u32| Ok((t, -1));
    match expr {
        Expr::Identifier(i) => cols
            .column_type(None, &i.value)
            .ok_or_else(|| super::expr::undefined_column(&i.value)),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, c] => cols
                .column_type(Some(&q.value), &c.value)
                .ok_or_else(|| super::expr::undefined_column(&format!("{}.{}", q.value, c.value))),
            _ => Err(super::expr::undefined_column(&expr.to_string())),
        },
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => plain(number(n)?.type_oid()),
            SqlValue::Boolean(_) => plain(oid::BOOL),
            SqlValue::Placeholder(p) => {
                let t = placeholder_index(p)
                    .and_then(|n| env.params.get(n - 1))
                    .copied()
                    .filter(|&t| t != 0)
                    .unwrap_or(oid::TEXT);
                plain(t)
            }
            _ => plain(oid::TEXT),
        },
        Expr::Nested(e) => infer(e, cols, env),
        Expr::Cast { data_type, .. }
        | Expr::TypedString(sqlparser::ast::TypedString { data_type, .. }) => {
            let (t, typmod) = cast_target(data_type)?;
            Ok((t, typmod.map_or(-1, |n| n as i32)))
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            ..
        }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. } => plain(oid::BOOL),
        Expr::UnaryOp { expr, .. } => infer(expr, cols, env),
        Expr::BinaryOp { left, op, right } => {
            if distance_operator(op).is_some() {
                return plain(oid::FLOAT8);
            }
            match op {
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
                | BinaryOperator::And
                | BinaryOperator::Or => plain(oid::BOOL),
                _ => {
                    let (a, b) = (infer(left, cols, env)?, infer(right, cols, env)?);
                    Ok(arithmetic_type(op, a, b))
                }
            }
        }
        Expr::Function(f) => {
            let name = function_name(f);
            let args = function_args(f)?;
            let arg = |i: usize| -> Result<TypeOf, PgError> {
                args.get(i)
                    .map_or(Ok((oid::TEXT, -1)), |a| infer(a, cols, env))
            };
            match name.as_str() {
                "count" => plain(oid::INT8),
                "sum" => Ok(match arg(0)? {
                    (t, _) if is_int(t) => (oid::INT8, -1),
                    (oid::TEXT, _) => (oid::FLOAT8, -1),
                    other => other,
                }),
                "avg" => Ok(match arg(0)? {
                    (t, m) if is_vector(t) => (t, m),
                    _ => (oid::FLOAT8, -1),
                }),
                "min" | "max" | "abs" | "coalesce" | "l2_normalize" => arg(0),
                "subvector" => Ok((arg(0)?.0, -1)),
                "l2_distance" | "inner_product" | "cosine_distance" | "l1_distance"
                | "hamming_distance" | "jaccard_distance" | "vector_norm" | "l2_norm" => {
                    plain(oid::FLOAT8)
                }
                "vector_dims" | "length" | "pg_backend_pid" => plain(oid::INT4),
                "binary_quantize" => plain(oid::BIT),
                _ => plain(oid::TEXT),
            }
        }
        _ => plain(oid::TEXT),
    }
}

fn arithmetic_type(op: &BinaryOperator, a: TypeOf, b: TypeOf) -> TypeOf {
    let (ta, tb) = (a.0, b.0);
    if is_vector(ta) {
        return (ta, -1);
    }
    if is_vector(tb) {
        return (tb, -1);
    }
    if matches!(op, BinaryOperator::StringConcat) {
        return (oid::TEXT, -1);
    }
    let t = match (ta, tb) {
        (x, y) if is_int(x) && is_int(y) => {
            if x == oid::INT8 || y == oid::INT8 {
                oid::INT8
            } else {
                oid::INT4
            }
        }
        (oid::FLOAT4, y) | (y, oid::FLOAT4) if y == oid::FLOAT4 || is_int(y) => oid::FLOAT4,
        _ => oid::FLOAT8,
    };
    (t, -1)
}

/// The name PostgreSQL gives a result column computed by `expr`.
pub fn output_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map_or_else(String::new, |p| p.value.clone())
        }
        Expr::Function(f) => function_name(f),
        Expr::Nested(e) => output_name(e),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Function(_) => {
                output_name(expr)
            }
            _ => cast_name(data_type),
        },
        _ => "?column?".to_string(),
    }
}

fn cast_name(dt: &sqlparser::ast::DataType) -> String {
    match cast_target(dt) {
        Ok((t, _)) => crate::wire::types::by_oid(t)
            .map_or("?column?", |t| t.name)
            .to_string(),
        Err(_) => "?column?".to_string(),
    }
}
