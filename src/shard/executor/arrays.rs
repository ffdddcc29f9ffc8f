//! Array values in expressions: `ARRAY[…]` with PostgreSQL's common
//! element type, casts between array types and pgvector's casts between
//! vectors and `real[]` / `double precision[]` / `numeric[]` /
//! `integer[]`, and the elements `= ANY (…)` and `unnest` read.
//!
//! Arrays are one-dimensional (see [`crate::wire::array`]); `numeric`
//! is `double precision` on a shard, so `numeric[]` is `float8[]`.

use super::coerce::{self, type_name};
use super::expr::{eval, Env, Row};
use crate::shard::datum::Datum;
use crate::wire::types::{self, oid};
use crate::wire::{Array, PgError, Value};
use ann::functions::casts::{self, ArrayElements};
use ann::types::{DenseVector, Element};
use half::f16;
use sqlparser::ast::{AccessExpr, Expr, Subscript, Value as SqlValue};
use std::borrow::Cow;

/// The element type of array type `type_oid`, if it is one.
pub fn element_of(type_oid: u32) -> Option<u32> {
    types::by_oid(type_oid).map(|t| t.elem).filter(|&e| e != 0)
}

/// The array type of elements of `elem` (0A000 for an array of arrays,
/// 42704 when there is none).
pub fn array_type(elem: u32) -> Result<u32, PgError> {
    types::array_of(elem).map(|t| t.oid).ok_or_else(|| {
        if element_of(elem).is_some() {
            return PgError::feature_not_supported("multidimensional arrays are not supported");
        }
        PgError::new(
            "42704",
            format!(
                "could not find array type for data type {}",
                type_name(elem)
            ),
        )
    })
}

/// True for a literal whose type comes from its context (`'…'`, NULL).
pub fn is_untyped(e: &Expr) -> bool {
    crate::stack::guard(|| match e {
        Expr::Value(v) => matches!(
            v.value,
            SqlValue::SingleQuotedString(_) | SqlValue::EscapedStringLiteral(_) | SqlValue::Null
        ),
        Expr::Nested(inner) => is_untyped(inner),
        _ => false,
    })
}

fn numeric_rank(t: u32) -> Option<u8> {
    Some(match t {
        oid::INT2 => 0,
        oid::INT4 => 1,
        oid::INT8 => 2,
        oid::FLOAT4 => 3,
        oid::FLOAT8 => 4,
        _ => return None,
    })
}

/// PostgreSQL's common type of the typed elements of `ARRAY[…]` (text
/// when every element is an untyped literal), 42804 when two cannot
/// meet.
pub fn common_type(types: impl IntoIterator<Item = u32>) -> Result<u32, PgError> {
    let mut common: Option<u32> = None;
    for t in types {
        common = Some(match common {
            None => t,
            Some(c) if c == t => c,
            Some(c) => match (numeric_rank(c), numeric_rank(t)) {
                // An integer meeting a float widens to double precision.
                (Some(a), Some(b)) if a >= 3 || b >= 3 => match a.max(b) {
                    3 if a.min(b) == 3 => oid::FLOAT4,
                    _ => oid::FLOAT8,
                },
                (Some(a), Some(b)) => [c, t][usize::from(b > a)],
                _ if is_text(c) && is_text(t) => oid::TEXT,
                _ => {
                    return Err(PgError::new(
                        "42804",
                        format!(
                            "ARRAY types {} and {} cannot be matched",
                            type_name(c),
                            type_name(t)
                        ),
                    ))
                }
            },
        });
    }
    Ok(common.unwrap_or(oid::TEXT))
}

fn is_text(t: u32) -> bool {
    matches!(t, oid::TEXT | oid::VARCHAR | oid::NAME)
}

/// Evaluates `ARRAY[elements]`: elements of the common type, or of
/// `elem` when a cast around the constructor names it.
pub fn construct(
    elements: &[Expr],
    elem: Option<u32>,
    row: &dyn Row,
    env: &Env,
) -> Result<Value, PgError> {
    if elements.iter().any(|e| matches!(e, Expr::Array(_))) {
        return Err(PgError::feature_not_supported(
            "multidimensional arrays are not supported",
        ));
    }
    let values = elements
        .iter()
        .map(|e| eval(e, row, env))
        .collect::<Result<Vec<Datum>, _>>()?;
    let elem = match elem {
        Some(t) => t,
        None if elements.is_empty() => {
            return Err(
                PgError::new("42P18", "cannot determine type of empty array").with_hint(
                    "Explicitly cast to the desired type, for example ARRAY[]::integer[].",
                ),
            )
        }
        None => common_type(
            elements
                .iter()
                .zip(&values)
                .filter(|(e, _)| !is_untyped(e))
                .filter_map(|(_, v)| v.as_ref().map(Value::type_oid)),
        )?,
    };
    let items = values
        .into_iter()
        .map(|v| v.map(|v| coerce::cast(v, elem, None, true)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(Array::new(elem, items)))
}

/// The array and the index of `a[i]` (`t.a[i]` too: sqlparser reads it
/// as `t` followed by `.a` and `[i]`); slices and `a[i][j]` are refused.
pub fn subscript<'e>(
    root: &'e Expr,
    chain: &'e [AccessExpr],
) -> Result<(Cow<'e, Expr>, &'e Expr), PgError> {
    let unsupported = || {
        PgError::feature_not_supported(
            "array slices and multidimensional subscripts are not supported",
        )
    };
    let Some((AccessExpr::Subscript(Subscript::Index { index }), path)) = chain.split_last() else {
        return Err(unsupported());
    };
    if path.is_empty() {
        return Ok((Cow::Borrowed(root), index));
    }
    let mut parts = match root {
        Expr::Identifier(i) => vec![i.clone()],
        Expr::CompoundIdentifier(p) => p.clone(),
        _ => return Err(unsupported()),
    };
    for step in path {
        match step {
            AccessExpr::Dot(Expr::Identifier(i)) => parts.push(i.clone()),
            _ => return Err(unsupported()),
        }
    }
    Ok((Cow::Owned(Expr::CompoundIdentifier(parts)), index))
}

/// `array[i]`: the element at 1-based `i`, NULL outside the array.
pub fn element_at(array: Value, i: Value) -> Result<Datum, PgError> {
    let Value::Array(a) = array else {
        return Err(PgError::new(
            "42804",
            format!(
                "cannot subscript type {} because it does not support subscripting",
                type_name(array.type_oid())
            ),
        ));
    };
    let i = match coerce::cast(i, oid::INT4, None, false)? {
        Value::Int4(i) => i,
        _ => return Ok(None),
    };
    Ok(i.checked_sub(a.lower_bound())
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| a.items.into_iter().nth(i))
        .flatten())
}

/// PostgreSQL's largest array (MaxArraySize).
const MAX_ARRAY_SIZE: i64 = 134_217_727;
/// The largest array `array_fill` builds here (each element is a whole
/// value in memory).
const MAX_FILLED: i64 = 16_777_216;

/// `array_fill(value, ARRAY[n])`: `n` copies of `value`.
fn array_fill(args: &[Datum]) -> Result<Datum, PgError> {
    let dims = match args.get(1) {
        Some(Some(Value::Array(d))) => d,
        Some(Some(_)) | None => return Err(PgError::internal("array_fill without dimensions")),
        Some(None) => {
            return Err(PgError::new(
                "22004",
                "dimension array or low bound array cannot be null",
            ))
        }
    };
    let n = match dims.items.as_slice() {
        [Some(n)] => coerce::as_i64(n).unwrap_or(-1),
        [None] => return Err(PgError::new("22004", "dimension values cannot be null")),
        _ => {
            return Err(PgError::feature_not_supported(
                "multidimensional arrays are not supported",
            ))
        }
    };
    if !(0..=MAX_ARRAY_SIZE).contains(&n) {
        return Err(PgError::new(
            "54000",
            format!("array size exceeds the maximum allowed ({MAX_ARRAY_SIZE})"),
        ));
    }
    if n > MAX_FILLED {
        return Err(PgError::new(
            "54000",
            format!("array_fill builds at most {MAX_FILLED} elements here"),
        ));
    }
    let Some(Some(value)) = args.first() else {
        return Err(PgError::feature_not_supported(
            "array_fill of NULL is not supported",
        ));
    };
    Ok(Some(Value::Array(Array::new(
        value.type_oid(),
        vec![Some(value.clone()); n as usize],
    ))))
}

/// `cardinality`, `array_length`, `array_lower`, `array_upper` (of a
/// one-dimensional array, dimension 1), `array_fill`, `array_to_string`,
/// or `None` for another name.
pub fn array_function(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    match (name, args) {
        ("array_append", [array, item]) => return Some(add_item(array, item, false)),
        ("array_prepend", [item, array]) => return Some(add_item(array, item, true)),
        ("array_remove" | "array_position", [array, item]) => {
            return Some(find_item(name == "array_remove", array, item))
        }
        _ => {}
    }
    if (name, args.len()) == ("array_fill", 2) {
        return Some(array_fill(args));
    }
    if name == "array_to_string" && matches!(args.len(), 2 | 3) {
        return array_to_string(args);
    }
    if !matches!(
        (name, args.len()),
        ("cardinality", 1) | ("array_length" | "array_lower" | "array_upper", 2)
    ) {
        return None;
    }
    let (len, lower) = match args.first() {
        Some(Some(Value::Array(a))) => (a.items.len() as i32, a.lower_bound()),
        Some(None) => return Some(Ok(None)),
        _ => return None,
    };
    let dim = || match args.get(1) {
        Some(Some(d)) => coerce::as_i64(d) == Some(1),
        _ => false,
    };
    Some(Ok(match (name, args.len()) {
        ("cardinality", 1) => Some(Value::Int4(len)),
        ("array_length", 2) if dim() && len > 0 => Some(Value::Int4(len)),
        ("array_lower", 2) if dim() && len > 0 => Some(Value::Int4(lower)),
        ("array_upper", 2) if dim() && len > 0 => Some(Value::Int4(lower + len - 1)),
        _ => None,
    }))
}

/// `array_append` / `array_prepend`: `item` (cast to the element type) at
/// the end or the start; a NULL array is an empty one.
fn add_item(array: &Datum, item: &Datum, front: bool) -> Result<Datum, PgError> {
    let mut array = match array {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(PgError::new(
                "42883",
                format!(
                    "function array_append({}, …) does not exist",
                    type_name(other.type_oid())
                ),
            ))
        }
        None => match item {
            Some(v) => Array::new(v.type_oid(), Vec::new()),
            None => return Ok(None),
        },
    };
    let item = item
        .clone()
        .map(|v| coerce::cast(v, array.elem, None, false))
        .transpose()?;
    match front {
        true => array.items.insert(0, item),
        false => array.items.push(item),
    }
    Ok(Some(Value::Array(array)))
}

/// `array_remove(array, item)`: the array without the elements equal to
/// `item` (NULLs for NULL); `array_position(array, item)`: the 1-based
/// place of the first such element, or NULL.
fn find_item(remove: bool, array: &Datum, item: &Datum) -> Result<Datum, PgError> {
    let Some(Value::Array(array)) = array else {
        return Ok(None);
    };
    let item = item
        .clone()
        .map(|v| coerce::cast(v, array.elem, None, false))
        .transpose()?;
    let mut equal = Vec::with_capacity(array.items.len());
    for element in &array.items {
        equal.push(match (element, &item) {
            (None, None) => true,
            (Some(a), Some(b)) => super::expr::compare(a, b)? == std::cmp::Ordering::Equal,
            _ => false,
        });
    }
    if remove {
        let items = array.items.iter().zip(&equal).filter(|(_, e)| !**e);
        let kept = items.map(|(v, _)| v.clone()).collect();
        return Ok(Some(Value::Array(Array::new(array.elem, kept))));
    }
    // array_position compares with IS NOT DISTINCT FROM too.
    let at = equal.iter().position(|e| *e);
    Ok(at.map(|i| Value::Int4(array.lower_bound() + i as i32)))
}

/// `array_to_string(array, delimiter [, null_string])`: the elements' text
/// joined by the delimiter, NULLs left out unless `null_string` is given.
fn array_to_string(args: &[Datum]) -> Option<Result<Datum, PgError>> {
    let (items, delimiter) = match (&args[0], &args[1]) {
        (Some(Value::Array(a)), Some(d)) => (&a.items, d.to_text()),
        (None, _) | (_, None) => return Some(Ok(None)),
        _ => return None,
    };
    let null_text = args.get(2).cloned().flatten().map(|v| v.to_text());
    let parts: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Some(v) => Some(v.to_text()),
            None => null_text.clone(),
        })
        .collect();
    Some(Ok(Some(Value::Text(parts.join(&delimiter)))))
}

/// True for the set-returning functions a select list may call.
pub fn is_set_returning(name: &str) -> bool {
    matches!(name, "unnest" | "generate_subscripts" | "generate_series")
        || super::json_sets::select_list_type(name).is_some()
}

/// The rows of set-returning call `name(args)` in a select list:
/// `unnest(array)` its elements, `generate_subscripts(array, 1 [,
/// reverse])` its subscripts (none for a NULL or empty array),
/// `generate_series(start, stop [, step])` over integers, and the
/// one-column jsonb ones (see `json_sets`).
pub fn set_values(
    name: &str,
    args: &[Datum],
    cancel: &dyn Fn() -> Result<(), PgError>,
) -> Result<Vec<Datum>, PgError> {
    if name == "generate_series" {
        return integer_series(args, cancel);
    }
    if let (Some(_), [arg]) = (super::json_sets::select_list_type(name), args) {
        let rows = super::json_sets::rows(name, arg)?;
        return Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect());
    }
    let array = match args.first() {
        Some(Some(Value::Array(a))) => a,
        Some(None) => return Ok(Vec::new()),
        Some(Some(v)) => {
            return Err(PgError::new(
                "42883",
                format!(
                    "function {name}({}) does not exist",
                    type_name(v.type_oid())
                ),
            ))
        }
        None => {
            return Err(PgError::new(
                "42883",
                format!("function {name}() does not exist"),
            ))
        }
    };
    match (name, &args[1..]) {
        ("unnest", []) => Ok(array.items.clone()),
        ("generate_subscripts", [dim] | [dim, _]) => {
            if dim.as_ref().and_then(coerce::as_i64) != Some(1) {
                return Ok(Vec::new());
            }
            let reverse = matches!(args.get(2), Some(Some(Value::Bool(true))));
            let lower = array.lower_bound();
            let mut subs: Vec<Datum> = (0..array.items.len() as i32)
                .map(|i| Some(Value::Int4(lower + i)))
                .collect();
            if reverse {
                subs.reverse();
            }
            Ok(subs)
        }
        _ => Err(PgError::no_function_with_args(name, args.len())),
    }
}

/// `a || b` with an array on either side: array || array, array ||
/// element, element || array (an untyped literal beside an array is an
/// array literal, as PostgreSQL resolves `anyarray || unknown`).
pub fn concat(a: Value, b: Value) -> Result<Value, PgError> {
    let (mut left, right) = match (a, b) {
        (Value::Array(x), Value::Text(t)) => {
            let t = coerce::cast(Value::Text(t), x.type_oid(), None, false)?;
            (x, t)
        }
        (Value::Text(t), Value::Array(y)) => {
            match coerce::cast(Value::Text(t), y.type_oid(), None, false)? {
                Value::Array(x) => (x, Value::Array(y)),
                _ => return Err(PgError::internal("array literal did not parse to an array")),
            }
        }
        (Value::Array(x), y) => (x, y),
        (x, Value::Array(mut y)) => {
            let x = coerce::cast(x, y.elem, None, false)?;
            y.items.insert(0, Some(x));
            return Ok(Value::Array(y));
        }
        _ => return Err(PgError::internal("concat of arrays without an array")),
    };
    match right {
        Value::Array(y) => {
            for item in y.items {
                left.items.push(
                    item.map(|v| coerce::cast(v, left.elem, None, false))
                        .transpose()?,
                );
            }
        }
        other => left
            .items
            .push(Some(coerce::cast(other, left.elem, None, false)?)),
    }
    Ok(Value::Array(left))
}

/// `generate_series` in a select list: over int4 (int8 when an argument
/// is int8); no rows when an argument is NULL.
fn integer_series(
    args: &[Datum],
    cancel: &dyn Fn() -> Result<(), PgError>,
) -> Result<Vec<Datum>, PgError> {
    if !(2..=3).contains(&args.len()) {
        return Err(PgError::no_function_with_args(
            "generate_series",
            args.len(),
        ));
    }
    let mut bounds = Vec::with_capacity(3);
    let mut wide = false;
    for a in args {
        let Some(v) = a else { return Ok(Vec::new()) };
        wide |= matches!(v, Value::Int8(_));
        bounds.push(coerce::as_i64(v).ok_or_else(|| {
            PgError::new(
                "42883",
                format!(
                    "function generate_series({}) does not exist",
                    type_name(v.type_oid())
                ),
            )
        })?);
    }
    series(&bounds, wide, cancel)
}

/// The integers from `bounds[0]` to `bounds[1]` by `bounds[2]` (1 when
/// absent), as int8 when `wide` else int4 (stopping before an int4
/// overflow); 22023 for a zero step; `cancel` is checked every 4096 rows.
pub fn series(
    bounds: &[i64],
    wide: bool,
    cancel: &dyn Fn() -> Result<(), PgError>,
) -> Result<Vec<Datum>, PgError> {
    let step = bounds.get(2).copied().unwrap_or(1);
    if step == 0 {
        return Err(PgError::new("22023", "step size cannot equal zero"));
    }
    let (mut at, stop) = (bounds[0], bounds[1]);
    let mut out = Vec::new();
    while (step > 0 && at <= stop) || (step < 0 && at >= stop) {
        if out.len() % 4096 == 0 {
            cancel()?;
        }
        out.push(Some(if wide {
            Value::Int8(at)
        } else {
            Value::Int4(at as i32)
        }));
        match at.checked_add(step) {
            Some(next) if wide || i32::try_from(next).is_ok() => at = next,
            _ => break,
        }
    }
    Ok(out)
}

/// The elements `= ANY (e)` compares with: an array value, or an untyped
/// array literal (`'{a,b}'`) as text elements; `None` for NULL.
pub fn items(e: &Expr, row: &dyn Row, env: &Env) -> Result<Option<Vec<Datum>>, PgError> {
    crate::stack::guard(|| match eval(e, row, env)? {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a.items)),
        Some(Value::Text(t)) => Ok(Some(
            crate::wire::array::split_literal(&t)?
                .into_iter()
                .map(|s| s.map(Value::Text))
                .collect(),
        )),
        Some(v) => Err(PgError::new(
            "42809",
            format!(
                "op ANY/ALL (array) requires array on right side, not {}",
                type_name(v.type_oid())
            ),
        )),
    })
}

/// Casts array `a` to array type `to` element by element, or to one of
/// pgvector's dense types; `None` when neither applies.
pub fn cast_from_array(
    a: Array,
    to: u32,
    typmod: Option<u32>,
    explicit: bool,
) -> Option<Result<Value, PgError>> {
    if let Some(elem) = element_of(to) {
        let items = a
            .items
            .into_iter()
            .map(|v| {
                v.map(|v| coerce::cast(v, elem, typmod, explicit))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>();
        let vector = crate::wire::array::vector_element(to).is_some();
        return Some(items.map(|items| {
            Value::Array(Array {
                elem,
                items,
                vector,
            })
        }));
    }
    Some(match to {
        oid::VECTOR => to_dense::<f32>(&a, typmod).map(Value::Vector),
        oid::HALFVEC => to_dense::<f16>(&a, typmod).map(Value::HalfVec),
        oid::SPARSEVEC => {
            from_array(&a, typmod, "sparsevec", casts::array_to_sparse).map(Value::SparseVec)
        }
        _ => return None,
    })
}

/// pgvector's `array_to_vector` / `array_to_halfvec` /
/// `array_to_sparsevec` over `integer[]`, `real[]`, `double precision[]`
/// (and `numeric[]`): `convert` gets the elements, `target` names the
/// type in the 42846 of any other array.
fn from_array<T>(
    a: &Array,
    typmod: Option<u32>,
    target: &str,
    convert: impl Fn(ArrayElements<'_>, Option<u32>) -> ann::Result<T>,
) -> Result<T, PgError> {
    if !matches!(a.elem, oid::INT4 | oid::FLOAT4 | oid::FLOAT8) {
        return Err(PgError::new(
            "42846",
            format!("cannot cast type {}[] to {target}", type_name(a.elem)),
        ));
    }
    if a.items.iter().any(Option::is_none) {
        return Err(PgError::new("22004", "array must not contain nulls"));
    }
    let values = a.items.iter().flatten();
    let result = match a.elem {
        oid::INT4 => {
            let v: Vec<i32> = values
                .filter_map(|v| coerce::as_i64(v).map(|i| i as i32))
                .collect();
            convert(ArrayElements::Int4(&v), typmod)
        }
        oid::FLOAT4 => {
            let v: Vec<f32> = values
                .filter_map(|v| coerce::as_f64(v).map(|f| f as f32))
                .collect();
            convert(ArrayElements::Float4(&v), typmod)
        }
        _ => {
            let v: Vec<f64> = values.filter_map(coerce::as_f64).collect();
            convert(ArrayElements::Float8(&v), typmod)
        }
    };
    result.map_err(PgError::from)
}

fn to_dense<E: Element>(a: &Array, typmod: Option<u32>) -> Result<DenseVector<E>, PgError> {
    from_array(a, typmod, E::TYPE_NAME, casts::array_to_dense)
}

/// `vector::real[]` / `halfvec::real[]`.
pub fn dense_to_real_array<E: Element>(v: &DenseVector<E>) -> Value {
    Value::Array(Array::new(
        oid::FLOAT4,
        casts::dense_to_f32_array(v)
            .into_iter()
            .map(|x| Some(Value::Float4(x)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_follow_postgres() {
        let c = |ts: &[u32]| common_type(ts.iter().copied());
        assert_eq!(c(&[oid::INT4, oid::INT8]).unwrap(), oid::INT8);
        assert_eq!(c(&[oid::INT4, oid::FLOAT4]).unwrap(), oid::FLOAT8);
        assert_eq!(c(&[oid::FLOAT4, oid::FLOAT4]).unwrap(), oid::FLOAT4);
        assert_eq!(c(&[oid::INT2, oid::INT4]).unwrap(), oid::INT4);
        assert_eq!(c(&[]).unwrap(), oid::TEXT);
        assert_eq!(c(&[oid::VARCHAR, oid::TEXT]).unwrap(), oid::TEXT);
        let e = c(&[oid::TEXT, oid::INT4]).unwrap_err();
        assert_eq!(e.message, "ARRAY types text and integer cannot be matched");
    }
}
