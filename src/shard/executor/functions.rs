//! pgvector's operators and functions over [`Value`]s, dispatched by type
//! to `ann::functions` (which holds pgvector's formulas and messages), and
//! the few scalar functions applications call beside them.

use super::coerce::{self, as_i64};
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use ann::functions::{bit, dense, sparse};
use ann::Metric;
use sqlparser::ast::{Expr, Value as SqlValue};

/// 42883 `operator does not exist: a op b`.
fn no_operator(op: &str, a: &Value, b: &Value) -> PgError {
    PgError::new(
        "42883",
        format!(
            "operator does not exist: {} {op} {}",
            coerce::type_name(a.type_oid()),
            coerce::type_name(b.type_oid())
        ),
    )
    .with_hint(
        "No operator matches the given name and argument types. You might need to add explicit type casts.",
    )
}

/// 42883 `function f(types) does not exist`.
pub fn no_function(name: &str, args: &[Value]) -> PgError {
    let types: Vec<&str> = args
        .iter()
        .map(|a| coerce::type_name(a.type_oid()))
        .collect();
    no_function_of(name, &types)
}

/// [`no_function`] for a call of `exprs` that evaluated to `args`: a
/// string literal or NULL is `unknown` there, as PostgreSQL names an
/// untyped argument.
pub fn no_matching_function(name: &str, exprs: &[&Expr], args: &[Datum]) -> PgError {
    let types: Vec<&str> = exprs
        .iter()
        .zip(args)
        .map(|(e, a)| match (e, a) {
            (Expr::Value(v), _) if is_untyped(&v.value) => "unknown",
            (_, Some(v)) => coerce::type_name(v.type_oid()),
            (_, None) => "unknown",
        })
        .collect();
    no_function_of(name, &types)
}

fn is_untyped(v: &SqlValue) -> bool {
    matches!(
        v,
        SqlValue::SingleQuotedString(_) | SqlValue::DoubleQuotedString(_) | SqlValue::Null
    )
}

fn no_function_of(name: &str, types: &[&str]) -> PgError {
    PgError::new(
        "42883",
        format!("function {name}({}) does not exist", types.join(", ")),
    )
    .with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

/// Gives an untyped (text) operand the type of the other operand; two
/// untyped operands of a vector operator are read as `vector`.
pub fn unify(a: Value, b: Value) -> Result<(Value, Value), PgError> {
    match (&a, &b) {
        (Value::Text(_), Value::Text(_)) => Ok((a, b)),
        (Value::Text(_), other) => {
            let t = other.type_oid();
            Ok((coerce::cast(a, t, None, false)?, b))
        }
        (other, Value::Text(_)) => {
            let t = other.type_oid();
            Ok((a, coerce::cast(b, t, None, false)?))
        }
        _ => Ok((a, b)),
    }
}

fn as_vector_literal(v: Value) -> Result<Value, PgError> {
    match v {
        Value::Text(s) => Value::parse(oid::VECTOR, None, &s),
        other => Ok(other),
    }
}

/// pgvector's implicit cast: a `vector` meeting a `halfvec` becomes one.
fn implicit_halfvec(a: Value, b: Value) -> Result<(Value, Value), PgError> {
    Ok(match (a, b) {
        (a @ Value::Vector(_), b @ Value::HalfVec(_)) => {
            (coerce::cast(a, oid::HALFVEC, None, false)?, b)
        }
        (a @ Value::HalfVec(_), b @ Value::Vector(_)) => {
            (a, coerce::cast(b, oid::HALFVEC, None, false)?)
        }
        pair => pair,
    })
}

/// 42725 for a pgvector function called with only untyped literals: it
/// exists for several vector types, so PostgreSQL cannot choose.
fn ambiguous(name: &str, args: &[Value]) -> Option<PgError> {
    let untyped = !args.is_empty() && args.iter().all(|a| matches!(a, Value::Text(_)));
    untyped.then(|| {
        let unknown = vec!["unknown"; args.len()].join(", ");
        PgError::new(
            "42725",
            format!("function {name}({unknown}) is not unique"),
        )
        .with_hint(
            "Could not choose a best candidate function. You might need to add explicit type casts.",
        )
    })
}

/// `a <op> b` for one of pgvector's six distance operators.
pub fn distance(metric: Metric, a: Value, b: Value) -> Result<Value, PgError> {
    let (a, b) = unify(a, b)?;
    let (a, b) = implicit_halfvec(as_vector_literal(a)?, as_vector_literal(b)?)?;
    let d = match (metric, &a, &b) {
        (Metric::L2, Value::Vector(x), Value::Vector(y)) => dense::l2_distance(x, y)?,
        (Metric::L2, Value::HalfVec(x), Value::HalfVec(y)) => dense::l2_distance(x, y)?,
        (Metric::L2, Value::SparseVec(x), Value::SparseVec(y)) => sparse::l2_distance(x, y)?,
        (Metric::InnerProduct, Value::Vector(x), Value::Vector(y)) => {
            dense::negative_inner_product(x, y)?
        }
        (Metric::InnerProduct, Value::HalfVec(x), Value::HalfVec(y)) => {
            dense::negative_inner_product(x, y)?
        }
        (Metric::InnerProduct, Value::SparseVec(x), Value::SparseVec(y)) => {
            sparse::negative_inner_product(x, y)?
        }
        (Metric::Cosine, Value::Vector(x), Value::Vector(y)) => dense::cosine_distance(x, y)?,
        (Metric::Cosine, Value::HalfVec(x), Value::HalfVec(y)) => dense::cosine_distance(x, y)?,
        (Metric::Cosine, Value::SparseVec(x), Value::SparseVec(y)) => {
            sparse::cosine_distance(x, y)?
        }
        (Metric::L1, Value::Vector(x), Value::Vector(y)) => dense::l1_distance(x, y)?,
        (Metric::L1, Value::HalfVec(x), Value::HalfVec(y)) => dense::l1_distance(x, y)?,
        (Metric::L1, Value::SparseVec(x), Value::SparseVec(y)) => sparse::l1_distance(x, y)?,
        (Metric::Hamming, Value::Bit(x), Value::Bit(y)) => bit::hamming_distance(x, y)?,
        (Metric::Jaccard, Value::Bit(x), Value::Bit(y)) => bit::jaccard_distance(x, y)?,
        _ => return Err(no_operator(metric.operator(), &a, &b)),
    };
    Ok(Value::Float8(d))
}

/// `a + b`, `a - b`, `a * b` of two vectors (element-wise) or `a || b`
/// (concatenation); `None` when the operands are not vectors.
pub fn vector_arithmetic(op: &str, a: &Value, b: &Value) -> Result<Option<Value>, PgError> {
    Ok(Some(match (op, a, b) {
        ("+", Value::Vector(x), Value::Vector(y)) => Value::Vector(dense::add(x, y)?),
        ("-", Value::Vector(x), Value::Vector(y)) => Value::Vector(dense::sub(x, y)?),
        ("*", Value::Vector(x), Value::Vector(y)) => Value::Vector(dense::mul(x, y)?),
        ("||", Value::Vector(x), Value::Vector(y)) => Value::Vector(dense::concat(x, y)?),
        ("+", Value::HalfVec(x), Value::HalfVec(y)) => Value::HalfVec(dense::add(x, y)?),
        ("-", Value::HalfVec(x), Value::HalfVec(y)) => Value::HalfVec(dense::sub(x, y)?),
        ("*", Value::HalfVec(x), Value::HalfVec(y)) => Value::HalfVec(dense::mul(x, y)?),
        ("||", Value::HalfVec(x), Value::HalfVec(y)) => Value::HalfVec(dense::concat(x, y)?),
        (_, Value::Vector(_) | Value::HalfVec(_) | Value::SparseVec(_) | Value::Bit(_), _)
        | (_, _, Value::Vector(_) | Value::HalfVec(_) | Value::SparseVec(_) | Value::Bit(_)) => {
            return Err(no_operator(op, a, b))
        }
        _ => return Ok(None),
    }))
}

/// The type of both arguments of a pgvector function declared for one
/// type only, which untyped arguments take (PostgreSQL's resolution with
/// a single candidate): `hamming_distance(bit, bit)`, `vector_cmp(vector,
/// vector)`, ….
fn single_candidate(name: &str) -> Option<u32> {
    Some(match name {
        "hamming_distance" | "jaccard_distance" => oid::BIT,
        "vector_cmp" => oid::VECTOR,
        "halfvec_cmp" => oid::HALFVEC,
        "sparsevec_cmp" => oid::SPARSEVEC,
        _ => return None,
    })
}

/// An untyped argument read as `ty`; a typed one as it is.
fn as_type(v: Value, ty: u32) -> Result<Value, PgError> {
    match v {
        Value::Text(s) => Value::parse(ty, None, &s),
        other => Ok(other),
    }
}

/// `vector_cmp`, `halfvec_cmp`, `sparsevec_cmp`: -1, 0 or 1 in the order
/// of the comparison operators.
fn vector_cmp(name: &str, ty: u32, args: &[Value]) -> Result<Value, PgError> {
    // Untyped arguments are named `unknown` when no function matches.
    let missing = || {
        let types: Vec<&str> = args
            .iter()
            .map(|a| match a {
                Value::Text(_) => "unknown",
                other => coerce::type_name(other.type_oid()),
            })
            .collect();
        no_function_of(name, &types)
    };
    let [a, b] = args else {
        return Err(missing());
    };
    let a = as_type(a.clone(), ty)?;
    let b = as_type(b.clone(), ty)?;
    let ord = match (&a, &b) {
        (Value::Vector(x), Value::Vector(y)) => x.cmp_pg(y),
        (Value::HalfVec(x), Value::HalfVec(y)) => x.cmp_pg(y),
        (Value::SparseVec(x), Value::SparseVec(y)) => x.cmp_pg(y),
        _ => return Err(missing()),
    };
    Ok(Value::Int4(ord as i32))
}

fn metric_function(name: &str) -> Option<Metric> {
    Some(match name {
        "l2_distance" => Metric::L2,
        "cosine_distance" => Metric::Cosine,
        "l1_distance" => Metric::L1,
        "hamming_distance" => Metric::Hamming,
        "jaccard_distance" => Metric::Jaccard,
        _ => return None,
    })
}

fn int_arg(v: &Value, name: &str, args: &[Value]) -> Result<i32, PgError> {
    as_i64(v)
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| no_function(name, args))
}

/// A scalar pgvector function over non-NULL arguments (pgvector's are
/// strict: a NULL argument gives NULL, handled by the caller); `None`
/// when `name` is not one of them.
pub fn vector_function(name: &str, args: &[Value]) -> Option<Result<Value, PgError>> {
    let single = single_candidate(name);
    let overloaded = (metric_function(name).is_some() && single.is_none())
        || matches!(
            name,
            "inner_product"
                | "vector_dims"
                | "l2_norm"
                | "l2_normalize"
                | "binary_quantize"
                | "subvector"
        );
    // Any other name is not pgvector's: its arguments are not vectors.
    if !overloaded && single.is_none() && name != "vector_norm" {
        return None;
    }
    if let Some(e) = ambiguous(name, args).filter(|_| overloaded) {
        return Some(Err(e));
    }
    if let (Some(ty), None) = (single, metric_function(name)) {
        return Some(vector_cmp(name, ty, args));
    }
    if let Some(metric) = metric_function(name) {
        let args = match single {
            Some(ty) => match args.iter().cloned().map(|a| as_type(a, ty)).collect() {
                Ok(a) => a,
                Err(e) => return Some(Err(e)),
            },
            None => args.to_vec(),
        };
        let args = args.as_slice();
        return Some(match args {
            // No candidate takes a non-vector: a function, not an operator, is missing.
            [a, b] => distance(metric, a.clone(), b.clone()).map_err(|e| match e.code.as_ref() {
                "42883" => no_function(name, args),
                _ => e,
            }),
            _ => Err(no_function(name, args)),
        });
    }
    // An untyped argument beside a typed one takes its type.
    let args = match args {
        [a, b] => match unify(a.clone(), b.clone()) {
            Ok((a, b)) => vec![a, b],
            Err(e) => return Some(Err(e)),
        },
        _ => args.to_vec(),
    };
    let args: Vec<Value> = match args
        .into_iter()
        .map(as_vector_literal)
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    let f = |v: f64| Ok(Value::Float8(v));
    Some(match (name, args.as_slice()) {
        ("inner_product", [Value::Vector(x), Value::Vector(y)]) => dense::inner_product(x, y)
            .map(Value::Float8)
            .map_err(Into::into),
        ("inner_product", [Value::HalfVec(x), Value::HalfVec(y)]) => dense::inner_product(x, y)
            .map(Value::Float8)
            .map_err(Into::into),
        ("inner_product", [Value::SparseVec(x), Value::SparseVec(y)]) => {
            sparse::inner_product(x, y)
                .map(Value::Float8)
                .map_err(Into::into)
        }
        ("vector_dims", [Value::Vector(x)]) => Ok(Value::Int4(x.dims() as i32)),
        ("vector_dims", [Value::HalfVec(x)]) => Ok(Value::Int4(x.dims() as i32)),
        ("vector_norm" | "l2_norm", [Value::Vector(x)]) => f(dense::l2_norm(x)),
        ("l2_norm", [Value::HalfVec(x)]) => f(dense::l2_norm(x)),
        ("l2_norm", [Value::SparseVec(x)]) => f(sparse::l2_norm(x)),
        ("l2_normalize", [Value::Vector(x)]) => dense::l2_normalize(x)
            .map(Value::Vector)
            .map_err(Into::into),
        ("l2_normalize", [Value::HalfVec(x)]) => dense::l2_normalize(x)
            .map(Value::HalfVec)
            .map_err(Into::into),
        ("l2_normalize", [Value::SparseVec(x)]) => sparse::l2_normalize(x)
            .map(Value::SparseVec)
            .map_err(Into::into),
        ("binary_quantize", [Value::Vector(x)]) => Ok(Value::Bit(dense::binary_quantize(x))),
        ("binary_quantize", [Value::HalfVec(x)]) => Ok(Value::Bit(dense::binary_quantize(x))),
        ("subvector", [Value::Vector(x), s, n]) => (|| {
            let (s, n) = (int_arg(s, name, &args)?, int_arg(n, name, &args)?);
            Ok(Value::Vector(dense::subvector(x, s, n)?))
        })(),
        ("subvector", [Value::HalfVec(x), s, n]) => (|| {
            let (s, n) = (int_arg(s, name, &args)?, int_arg(n, name, &args)?);
            Ok(Value::HalfVec(dense::subvector(x, s, n)?))
        })(),
        (
            "inner_product" | "vector_dims" | "vector_norm" | "l2_norm" | "l2_normalize"
            | "binary_quantize" | "subvector",
            _,
        ) => Err(no_function(name, &args)),
        _ => return None,
    })
}

/// `round(numeric, n)` of `x` (numeric is computed as double precision):
/// `x` read as PostgreSQL converts a float8 to numeric (15 significant
/// digits), rounded half away from zero at `n` decimal places.
fn round_numeric(x: f64, n: i64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let shown = format!("{:.14e}", x.abs());
    let Some((mantissa, exponent)) = shown.split_once('e') else {
        return x;
    };
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let Ok(exponent) = exponent.parse::<i64>() else {
        return x;
    };
    // Significant digits kept: those before the (n+1)th decimal place.
    let keep = exponent + 1 + n.clamp(-400, 400);
    if keep >= digits.len() as i64 {
        return x;
    }
    if keep < 0 {
        return 0.0;
    }
    let kept = &digits[..keep as usize];
    let mut value: u64 = kept.iter().fold(0, |v, d| v * 10 + u64::from(d - b'0'));
    if digits[keep as usize] >= b'5' {
        value += 1;
    }
    let magnitude: f64 = format!("{value}e{}", exponent + 1 - keep)
        .parse()
        .unwrap_or(0.0);
    magnitude.copysign(x)
}

/// The scalar functions beside pgvector's that need no session state.
pub fn plain_function(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    Some(match (name, args) {
        ("coalesce", _) => Ok(args.iter().flatten().next().cloned()),
        ("abs", [None]) | ("lower", [None]) | ("upper", [None]) | ("length", [None]) => Ok(None),
        ("abs", [Some(v)]) => match v {
            Value::Float4(x) => Ok(Some(Value::Float4(x.abs()))),
            Value::Float8(x) => Ok(Some(Value::Float8(x.abs()))),
            v => as_i64(v)
                .and_then(i64::checked_abs)
                .ok_or_else(|| no_function(name, std::slice::from_ref(v)))
                .and_then(|i| coerce::cast(Value::Int8(i), v.type_oid(), None, false))
                .map(Some),
        },
        ("lower", [Some(Value::Text(s))]) => Ok(Some(Value::Text(s.to_lowercase()))),
        ("upper", [Some(Value::Text(s))]) => Ok(Some(Value::Text(s.to_uppercase()))),
        ("length", [Some(Value::Text(s))]) => Ok(Some(Value::Int4(s.chars().count() as i32))),
        ("round", [None, _] | [_, None]) => Ok(None),
        ("round", [Some(x), Some(n)]) => match (coerce::as_f64(x), as_i64(n)) {
            (Some(x), Some(n)) => Ok(Some(Value::Float8(round_numeric(x, n)))),
            _ => Err(no_function(name, &[x.clone(), n.clone()])),
        },
        _ => return None,
    })
}
