//! JSON by path: the operators `#>` (json or jsonb) and `#>>` (text), and
//! jsonb's editing functions `jsonb_set`, `jsonb_insert` and
//! `jsonb_strip_nulls`, with PostgreSQL's rules for missing keys, array
//! indexes (negative from the end, out of range appended or prepended)
//! and its errors.

use super::coerce;
use super::infer::TypeOf;
use super::json_ops::{field, jsonb_text};
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use serde_json::Value as Json;
use sqlparser::ast::BinaryOperator;

/// A path (`'{a,0,b}'` or a `text[]`) as its elements; NULL elements
/// are `None`.
fn path_of(v: &Value) -> Result<Vec<Option<String>>, PgError> {
    let array = match v {
        Value::Array(a) => a.clone(),
        other => match coerce::cast(other.clone(), 1009, None, false)? {
            Value::Array(a) => a,
            _ => return Err(PgError::invalid_text("text[]", &other.to_text())),
        },
    };
    Ok(array
        .items
        .into_iter()
        .map(|d| d.map(|v| v.to_text()))
        .collect())
}

/// `a #> path` (`as_text`: false) or `a #>> path`; `None` for other
/// operators.
pub fn path_operator(op: &BinaryOperator, a: &Value, b: &Value) -> Option<Result<Datum, PgError>> {
    let as_text = match op {
        BinaryOperator::HashArrow => false,
        BinaryOperator::HashLongArrow => true,
        _ => return None,
    };
    Some((|| {
        let a = match a {
            Value::Text(t) => Value::Jsonb(super::json_ops::jsonb_of(t)?),
            other => other.clone(),
        };
        let path = path_of(b)?;
        let Some((last, steps)) = path.split_last() else {
            return Ok(Some(match (as_text, a) {
                (true, v) => Value::Text(v.to_text()),
                (false, v) => v,
            }));
        };
        let mut cur = a;
        for key in steps {
            match step(&cur, key.as_deref(), false)? {
                Some(next) => cur = next,
                None => return Ok(None),
            }
        }
        step(&cur, last.as_deref(), as_text)
    })())
}

/// One path element into `v`: an object's field, else an array's
/// element when the key reads as an integer.
fn step(v: &Value, key: Option<&str>, as_text: bool) -> Result<Datum, PgError> {
    let Some(key) = key else { return Ok(None) };
    if let Some(found) = field(v, &Value::Text(key.to_string()), as_text)? {
        return Ok(Some(found));
    }
    match key.trim().parse::<i64>() {
        Ok(i) => field(v, &Value::Int8(i), as_text),
        Err(_) => Ok(None),
    }
}

/// The result type of `a op b` for [`path_operator`]'s operators.
pub fn path_operator_type(op: &BinaryOperator, a: u32) -> Option<TypeOf> {
    match op {
        BinaryOperator::HashArrow if a == oid::JSON => Some((oid::JSON, -1)),
        BinaryOperator::HashArrow => Some((oid::JSONB, -1)),
        BinaryOperator::HashLongArrow => Some((oid::TEXT, -1)),
        _ => None,
    }
}

fn json_arg(v: &Value) -> Result<Json, PgError> {
    let text = match v {
        Value::Jsonb(t) | Value::Json(t) | Value::Text(t) => t,
        other => {
            return Err(super::functions::no_function(
                "jsonb_set",
                std::slice::from_ref(other),
            ))
        }
    };
    serde_json::from_str(text).map_err(|_| PgError::invalid_text("json", text))
}

fn bool_arg(v: &Value) -> Result<bool, PgError> {
    match coerce::cast(v.clone(), oid::BOOL, None, false)? {
        Value::Bool(b) => Ok(b),
        other => Err(PgError::invalid_text("boolean", &other.to_text())),
    }
}

/// What happens at the path's end.
#[derive(Clone, Copy)]
enum Edit {
    /// jsonb_set: replace, or add when `create` is set.
    Set { create: bool },
    /// jsonb_insert: add before (or `after`) an array element, or a new
    /// object field.
    Insert { after: bool },
}

fn array_index(key: &str, position: usize) -> Result<i64, PgError> {
    key.trim().parse().map_err(|_| {
        PgError::new(
            "22P02",
            format!("path element at position {position} is not an integer: \"{key}\""),
        )
    })
}

/// Applies `edit` with `new` at `path` (elements from `position`, 1-based)
/// inside `doc`; a missing step leaves the document as it is.
fn edit_at(
    doc: &mut Json,
    path: &[Option<String>],
    position: usize,
    new: &Json,
    edit: Edit,
) -> Result<(), PgError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let Some(key) = first else {
        return Err(PgError::new(
            "22004",
            format!("path element at position {position} is null"),
        ));
    };
    match doc {
        Json::Object(map) => {
            if !rest.is_empty() {
                return match map.get_mut(key.as_str()) {
                    Some(inner) => edit_at(inner, rest, position + 1, new, edit),
                    None => Ok(()),
                };
            }
            match (edit, map.contains_key(key.as_str())) {
                (Edit::Insert { .. }, true) => {
                    Err(PgError::new("22023", "cannot replace existing key")
                        .with_hint("Try using the function jsonb_set to replace key value."))
                }
                (Edit::Set { create: false }, false) => Ok(()),
                _ => {
                    map.insert(key.clone(), new.clone());
                    Ok(())
                }
            }
        }
        Json::Array(items) => {
            let i = array_index(key, position)?;
            let len = items.len() as i64;
            let at = if i < 0 { len + i } else { i };
            if !rest.is_empty() {
                return match usize::try_from(at).ok().and_then(|at| items.get_mut(at)) {
                    Some(inner) => edit_at(inner, rest, position + 1, new, edit),
                    None => Ok(()),
                };
            }
            match edit {
                Edit::Set { create } => {
                    if (0..len).contains(&at) {
                        items[at as usize] = new.clone();
                    } else if create && at < 0 {
                        items.insert(0, new.clone());
                    } else if create {
                        items.push(new.clone());
                    }
                }
                Edit::Insert { after } => {
                    let at = match at {
                        at if (0..len).contains(&at) => at + i64::from(after),
                        at if at < 0 => 0,
                        _ => len,
                    };
                    items.insert(at as usize, new.clone());
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn edited(args: &[Value], edit: Edit) -> Result<Value, PgError> {
    let mut doc = json_arg(&args[0])?;
    let path = path_of(&args[1])?;
    let new = json_arg(&args[2])?;
    if !doc.is_object() && !doc.is_array() {
        return Err(PgError::new("22023", "cannot set path in scalar"));
    }
    edit_at(&mut doc, &path, 1, &new, edit)?;
    Ok(Value::Jsonb(jsonb_text(&doc)))
}

fn strip_nulls(v: &mut Json) {
    crate::stack::guard(|| match v {
        Json::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Json::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    })
}

/// Runs `jsonb_set`, `jsonb_insert` or `jsonb_strip_nulls` (strict: a
/// NULL argument gives NULL); `None` for other functions or argument
/// counts.
pub fn call(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    let counts = match name {
        "jsonb_set" | "jsonb_insert" => 3..=4,
        "jsonb_strip_nulls" => 1..=1,
        _ => return None,
    };
    if !counts.contains(&args.len()) {
        return None;
    }
    if args.iter().any(Option::is_none) {
        return Some(Ok(None));
    }
    let v: Vec<Value> = args.iter().flatten().cloned().collect();
    Some((|| {
        Ok(Some(match name {
            "jsonb_set" => {
                let create = v.get(3).map_or(Ok(true), bool_arg)?;
                edited(&v, Edit::Set { create })?
            }
            "jsonb_insert" => {
                let after = v.get(3).map_or(Ok(false), bool_arg)?;
                edited(&v, Edit::Insert { after })?
            }
            _ => {
                let mut doc = json_arg(&v[0])?;
                strip_nulls(&mut doc);
                Value::Jsonb(jsonb_text(&doc))
            }
        }))
    })())
}

/// The result type of [`call`]'s functions.
pub fn result_type(name: &str) -> Option<TypeOf> {
    matches!(name, "jsonb_set" | "jsonb_insert" | "jsonb_strip_nulls").then_some((oid::JSONB, -1))
}
