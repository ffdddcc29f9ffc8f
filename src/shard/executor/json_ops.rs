//! The field and element operators of json and jsonb, `->` (json or
//! jsonb) and `->>` (text): what ORMs and vector stores filter metadata
//! with (`metadata_->>'kind' = 'fruit'`). A key is text (an object's field)
//! or an integer (an array's element, negative from the end); a missing
//! one, or a key of the other kind, is NULL. `->>` gives a string without
//! its quotes, JSON null as NULL, anything else as JSON text.
//!
//! jsonb values come out as PostgreSQL prints jsonb (`{"a": 1, "b": [1,
//! 2]}`, keys shortest first, a repeated key's last value), except
//! numbers, which print as serde_json reads them (`1e2` → `100.0`;
//! PostgreSQL keeps numeric's digits, `100`). json values come out as the
//! text they were given: a field is the exact text of its value (a
//! repeated key's last one), as PostgreSQL's json keeps it.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value as Json;
use sqlparser::ast::BinaryOperator;

use crate::wire::{PgError, Value};

/// `a -> b` (`as_text`: false) or `a ->> b` (true).
pub fn field(a: &Value, b: &Value, as_text: bool) -> Result<Option<Value>, PgError> {
    if let Value::Json(text) = a {
        return json_field(text, b, as_text);
    }
    let Value::Jsonb(text) = a else {
        return Err(PgError::new(
            "42883",
            format!(
                "operator does not exist: {} {} {}",
                crate::shard::datum::type_name(a),
                if as_text { "->>" } else { "->" },
                crate::shard::datum::type_name(b)
            ),
        ));
    };
    let json: Json = serde_json::from_str(text).map_err(|_| PgError::invalid_text("json", text))?;
    let found = match (&json, b) {
        (Json::Object(map), Value::Text(key)) => map.get(key.as_str()),
        (Json::Array(items), _) => element(items, b),
        _ => None,
    };
    Ok(found.and_then(|v| match (v, as_text) {
        (Json::Null, true) => None,
        (Json::String(s), true) => Some(Value::Text(s.clone())),
        (v, true) => Some(Value::Text(jsonb_text(v))),
        (v, false) => Some(Value::Jsonb(jsonb_text(v))),
    }))
}

/// The element of `items` an integer key `b` names (negative: from the
/// end); `None` for a key of another type or out of range.
fn element<'a, T>(items: &'a [T], b: &Value) -> Option<&'a T> {
    let i = match b {
        Value::Int2(i) => i64::from(*i),
        Value::Int4(i) => i64::from(*i),
        Value::Int8(i) => *i,
        _ => return None,
    };
    let len = items.len() as i64;
    let at = if i < 0 { len + i } else { i };
    usize::try_from(at).ok().and_then(|at| items.get(at))
}

/// `->` / `->>` on json text: the field's own text, unparsed.
fn json_field(text: &str, b: &Value, as_text: bool) -> Result<Option<Value>, PgError> {
    let invalid = |_| PgError::invalid_text("json", text);
    let raw: &RawValue = serde_json::from_str(text).map_err(invalid)?;
    let found = match (raw.get().as_bytes().first(), b) {
        (Some(b'{'), Value::Text(key)) => {
            let map: HashMap<String, &RawValue> =
                serde_json::from_str(raw.get()).map_err(invalid)?;
            map.get(key.as_str()).copied()
        }
        (Some(b'['), _) => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(invalid)?;
            element(&items, b).copied()
        }
        _ => None,
    };
    let Some(found) = found else {
        return Ok(None);
    };
    if !as_text {
        return Ok(Some(Value::Json(found.get().to_string())));
    }
    Ok(
        match serde_json::from_str::<Json>(found.get()).map_err(invalid)? {
            Json::Null => None,
            Json::String(s) => Some(Value::Text(s)),
            _ => Some(Value::Text(found.get().to_string())),
        },
    )
}

/// jsonb's containment and existence operators: `a @> b`, `a <@ b`, and
/// `a ? key`, `a ?| keys`, `a ?& keys` (a key exists as an object's
/// field, a string element of an array, or the string itself). `None`
/// for another operator or a left operand of another type than json.
pub fn jsonb_test(op: &BinaryOperator, a: &Value, b: &Value) -> Option<Result<Value, PgError>> {
    let (name, contains) = match op {
        BinaryOperator::AtArrow => ("@>", true),
        BinaryOperator::ArrowAt => ("<@", true),
        BinaryOperator::Question => ("?", false),
        BinaryOperator::QuestionPipe => ("?|", false),
        BinaryOperator::QuestionAnd => ("?&", false),
        _ => return None,
    };
    let Value::Jsonb(left) = a else {
        // json has none of them; other types' (arrays') are not here.
        return matches!(a, Value::Json(_)).then(|| Err(no_operator(a, name, b)));
    };
    Some((|| {
        let left: Json =
            serde_json::from_str(left).map_err(|_| PgError::invalid_text("json", left))?;
        if contains {
            let right = match b {
                Value::Jsonb(t) | Value::Text(t) => {
                    serde_json::from_str::<Json>(t).map_err(|_| PgError::invalid_text("json", t))?
                }
                _ => return Err(no_operator(a, name, b)),
            };
            let (outer, inner) = match op {
                BinaryOperator::AtArrow => (&left, &right),
                _ => (&right, &left),
            };
            return Ok(Value::Bool(contained(outer, inner, true)));
        }
        let keys: Vec<&str> = match (op, b) {
            (BinaryOperator::Question, Value::Text(k)) => vec![k.as_str()],
            (BinaryOperator::QuestionPipe | BinaryOperator::QuestionAnd, Value::Array(arr)) => arr
                .items
                .iter()
                .filter_map(|i| match i {
                    Some(Value::Text(k)) => Some(k.as_str()),
                    _ => None,
                })
                .collect(),
            _ => return Err(no_operator(a, name, b)),
        };
        let has = |k: &str| match &left {
            Json::Object(map) => map.contains_key(k),
            Json::Array(items) => items.iter().any(|i| i.as_str() == Some(k)),
            Json::String(s) => s == k,
            _ => false,
        };
        Ok(Value::Bool(match op {
            BinaryOperator::QuestionAnd => keys.into_iter().all(has),
            _ => keys.into_iter().any(has),
        }))
    })())
}

/// 42883 for an operator over types it does not take.
fn no_operator(a: &Value, op: &str, b: &Value) -> PgError {
    PgError::new(
        "42883",
        format!(
            "operator does not exist: {} {op} {}",
            crate::shard::datum::type_name(a),
            crate::shard::datum::type_name(b)
        ),
    )
}

/// jsonb containment: every field of an object `inner` is contained in
/// `outer`'s field of the same key, every element of an array `inner` in
/// some element of `outer`; scalars are equal (numbers by value). At the
/// top level an array contains a scalar it has as an element.
fn contained(outer: &Json, inner: &Json, top: bool) -> bool {
    crate::stack::guard(|| match (outer, inner) {
        (Json::Object(o), Json::Object(i)) => i
            .iter()
            .all(|(k, v)| o.get(k).is_some_and(|ov| contained(ov, v, false))),
        (Json::Array(o), Json::Array(i)) => {
            i.iter().all(|v| o.iter().any(|ov| contained(ov, v, false)))
        }
        (Json::Array(o), scalar) if top && !scalar.is_object() => {
            o.iter().any(|ov| contained(ov, scalar, false))
        }
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Object(_) | Json::Array(_), _) | (_, Json::Object(_) | Json::Array(_)) => false,
        (x, y) => x == y,
    })
}

/// jsonb's editing operators: `a || b` (objects merged, the right one's
/// keys winning; arrays concatenated; anything else wrapped in an array
/// first) and `a - key` (an object's field, or an array's string elements
/// equal to it) or `a - n` (an array's element, from the end when
/// negative). `None` unless one operand is jsonb.
pub fn jsonb_edit(op: &BinaryOperator, a: &Value, b: &Value) -> Option<Result<Value, PgError>> {
    let concat = match op {
        BinaryOperator::StringConcat => true,
        BinaryOperator::Minus => false,
        _ => return None,
    };
    let is_jsonb = |v: &Value| matches!(v, Value::Jsonb(_));
    if !(is_jsonb(a) || concat && is_jsonb(b)) {
        return None;
    }
    let parse = |v: &Value| -> Result<Json, PgError> {
        let text = match v {
            Value::Jsonb(t) | Value::Text(t) => t,
            _ => return Err(no_operator(a, if concat { "||" } else { "-" }, b)),
        };
        serde_json::from_str(text).map_err(|_| PgError::invalid_text("json", text))
    };
    Some((|| {
        let left = parse(a)?;
        let edited = match concat {
            true => jsonb_concat(left, parse(b)?),
            false => jsonb_delete(left, b)?,
        };
        Ok(Value::Jsonb(jsonb_text(&edited)))
    })())
}

fn jsonb_concat(left: Json, right: Json) -> Json {
    match (left, right) {
        (Json::Object(mut l), Json::Object(r)) => {
            l.extend(r);
            Json::Object(l)
        }
        (Json::Array(mut l), Json::Array(r)) => {
            l.extend(r);
            Json::Array(l)
        }
        (Json::Array(mut l), r) => {
            l.push(r);
            Json::Array(l)
        }
        (l, Json::Array(r)) => Json::Array(std::iter::once(l).chain(r).collect()),
        (l, r) => Json::Array(vec![l, r]),
    }
}

fn jsonb_delete(doc: Json, key: &Value) -> Result<Json, PgError> {
    let index = match key {
        Value::Text(_) => None,
        other => super::coerce::as_i64(other),
    };
    match (doc, key, index) {
        (Json::Object(mut map), Value::Text(k), _) => {
            map.remove(k);
            Ok(Json::Object(map))
        }
        (Json::Array(items), Value::Text(k), _) => Ok(Json::Array(
            items
                .into_iter()
                .filter(|v| v.as_str() != Some(k))
                .collect(),
        )),
        (Json::Array(mut items), _, Some(n)) => {
            let len = items.len() as i64;
            let at = if n < 0 { len + n } else { n };
            if (0..len).contains(&at) {
                items.remove(at as usize);
            }
            Ok(Json::Array(items))
        }
        (Json::Object(_), _, Some(_)) => Err(PgError::new(
            "22023",
            "cannot delete from object using integer index",
        )),
        (Json::Object(_) | Json::Array(_), other, None) => Err(PgError::new(
            "42883",
            format!(
                "operator does not exist: jsonb - {}",
                crate::shard::datum::type_name(other)
            ),
        )),
        _ => Err(PgError::new("22023", "cannot delete from scalar")),
    }
}

/// json text as jsonb text (the `::jsonb` cast).
pub fn jsonb_of(text: &str) -> Result<String, PgError> {
    let json: Json = serde_json::from_str(text).map_err(|_| PgError::invalid_text("json", text))?;
    Ok(jsonb_text(&json))
}

/// A JSON value as PostgreSQL prints jsonb.
pub fn jsonb_text(v: &Json) -> String {
    let mut out = String::new();
    write_jsonb(v, &mut out);
    out
}

fn write_jsonb(v: &Json, out: &mut String) {
    crate::stack::guard(|| match v {
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push_str(": ");
                write_jsonb(&map[k], out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(doc: &str, key: Value, as_text: bool) -> Option<Value> {
        field(&Value::Jsonb(doc.into()), &key, as_text).unwrap()
    }

    #[test]
    fn fields_and_elements() {
        let doc = r#"{"kind": "fruit", "price": 3, "tags": ["a", "b"], "n": null, "o": {"zz": 1, "b": [1,2]}}"#;
        let text = |s: &str| Some(Value::Text(s.into()));
        assert_eq!(get(doc, Value::Text("kind".into()), true), text("fruit"));
        assert_eq!(get(doc, Value::Text("price".into()), true), text("3"));
        assert_eq!(get(doc, Value::Text("n".into()), true), None);
        assert_eq!(get(doc, Value::Text("missing".into()), true), None);
        assert_eq!(get(doc, Value::Int4(0), true), None);
        assert_eq!(
            get(doc, Value::Text("o".into()), false),
            Some(Value::Jsonb(r#"{"b": [1, 2], "zz": 1}"#.into()))
        );
        assert_eq!(get(r#"["a", "b"]"#, Value::Int4(-1), true), text("b"));
        assert_eq!(get(r#"["a", "b"]"#, Value::Int8(2), true), None);
        assert_eq!(
            get(doc, Value::Text("kind".into()), false),
            Some(Value::Jsonb(r#""fruit""#.into()))
        );
    }

    #[test]
    fn json_fields_keep_their_text() {
        let doc = Value::Json(r#"{"a": 1, "a":  [1,  2] , "s": "x\"y", "n": null}"#.into());
        let get = |key: Value, as_text| field(&doc, &key, as_text).unwrap();
        assert_eq!(
            get(Value::Text("a".into()), false),
            Some(Value::Json("[1,  2]".into()))
        );
        assert_eq!(
            get(Value::Text("s".into()), true),
            Some(Value::Text("x\"y".into()))
        );
        assert_eq!(get(Value::Text("n".into()), true), None);
        assert_eq!(get(Value::Int4(0), true), None);
        let list = Value::Json(r#" [ 1 , {"x" :  2 } ] "#.into());
        assert_eq!(
            field(&list, &Value::Int8(-1), false).unwrap(),
            Some(Value::Json(r#"{"x" :  2 }"#.into()))
        );
        assert_eq!(
            jsonb_of(r#"{"b":1,"a":[2]}"#).unwrap(),
            r#"{"a": [2], "b": 1}"#
        );
    }

    #[test]
    fn containment_and_existence() {
        let test = |op, a: &str, b: Value| {
            jsonb_test(&op, &Value::Jsonb(a.into()), &b)
                .unwrap()
                .unwrap()
        };
        let doc = r#"{"a": 1, "tags": ["x", "y"], "o": {"p": [1, 2], "q": null}}"#;
        let j = |s: &str| Value::Jsonb(s.into());
        assert_eq!(
            test(BinaryOperator::AtArrow, doc, j(r#"{"tags": ["y"]}"#)),
            Value::Bool(true)
        );
        assert_eq!(
            test(
                BinaryOperator::AtArrow,
                doc,
                j(r#"{"o": {"p": [2]}, "a": 1.0}"#)
            ),
            Value::Bool(true)
        );
        assert_eq!(
            test(BinaryOperator::AtArrow, doc, j(r#"{"tags": "x"}"#)),
            Value::Bool(false)
        );
        assert_eq!(
            test(BinaryOperator::AtArrow, r#"["x", 1]"#, j(r#""x""#)),
            Value::Bool(true)
        );
        assert_eq!(
            test(BinaryOperator::AtArrow, r#"[["x"]]"#, j(r#""x""#)),
            Value::Bool(false)
        );
        assert_eq!(
            test(BinaryOperator::ArrowAt, r#"{"a": 1}"#, j(doc)),
            Value::Bool(true)
        );
        let keys = |ks: &[&str]| {
            Value::Array(crate::wire::Array::new(
                crate::wire::types::oid::TEXT,
                ks.iter()
                    .map(|k| Some(Value::Text(k.to_string())))
                    .collect(),
            ))
        };
        assert_eq!(
            test(
                BinaryOperator::QuestionPipe,
                r#"["x", "y"]"#,
                keys(&["z", "y"])
            ),
            Value::Bool(true)
        );
        assert_eq!(
            test(
                BinaryOperator::QuestionAnd,
                r#"["x", "y"]"#,
                keys(&["z", "y"])
            ),
            Value::Bool(false)
        );
        assert_eq!(
            test(BinaryOperator::Question, doc, Value::Text("o".into())),
            Value::Bool(true)
        );
        assert!(
            jsonb_test(&BinaryOperator::AtArrow, &Value::Json("1".into()), &j("1"))
                .unwrap()
                .is_err()
        );
        assert!(jsonb_test(&BinaryOperator::AtArrow, &Value::Int4(1), &j("1")).is_none());
    }
}
