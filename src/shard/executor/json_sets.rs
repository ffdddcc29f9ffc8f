//! jsonb's set-returning functions, which LangChain's and LlamaIndex's
//! metadata filters call: `jsonb_each` and `jsonb_each_text` (an object's
//! keys and values), `jsonb_array_elements` and
//! `jsonb_array_elements_text` (an array's elements) and
//! `jsonb_object_keys` (an object's keys), in FROM (where they see the
//! columns of the items before them, as PostgreSQL's functions in FROM
//! do) and, those of one column, in a select list. Keys come in jsonb's
//! order (shortest first); a NULL argument gives no rows; the wrong kind
//! of value is PostgreSQL's 22023.

use super::json_ops::jsonb_text;
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use serde_json::Value as Json;

/// The functions here, with their result columns (name, type). A
/// function with named result columns keeps their names under a table
/// alias; `jsonb_object_keys`'s one column takes the alias's name.
const FUNCTIONS: &[(&str, &[(&str, u32)])] = &[
    ("jsonb_each", &[("key", oid::TEXT), ("value", oid::JSONB)]),
    (
        "jsonb_each_text",
        &[("key", oid::TEXT), ("value", oid::TEXT)],
    ),
    ("jsonb_array_elements", &[("value", oid::JSONB)]),
    ("jsonb_array_elements_text", &[("value", oid::TEXT)]),
    ("jsonb_object_keys", &[("jsonb_object_keys", oid::TEXT)]),
];

/// The result columns of jsonb set-returning function `name`, if it is one.
pub fn columns(name: &str) -> Option<&'static [(&'static str, u32)]> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// Whether a table alias names the function's one column.
pub fn alias_names_column(name: &str) -> bool {
    name == "jsonb_object_keys"
}

/// The type of a one-column function's values, for a select list.
pub fn select_list_type(name: &str) -> Option<u32> {
    match columns(name)? {
        [(_, ty)] => Some(*ty),
        _ => None,
    }
}

/// The rows of `name(arg)`.
pub fn rows(name: &str, arg: &Datum) -> Result<Vec<Vec<Datum>>, PgError> {
    let Some(value) = arg else {
        return Ok(Vec::new());
    };
    let text = match value {
        // An untyped literal arrives as text.
        Value::Jsonb(t) | Value::Text(t) => t,
        other => {
            return Err(PgError::new(
                "42883",
                format!(
                    "function {name}({}) does not exist",
                    crate::shard::datum::type_name(other)
                ),
            ))
        }
    };
    let json: Json = serde_json::from_str(text).map_err(|_| PgError::invalid_text("json", text))?;
    let jsonb = |v: &Json| Some(Value::Jsonb(jsonb_text(v)));
    let as_text = |v: &Json| match v {
        Json::Null => None,
        Json::String(s) => Some(Value::Text(s.clone())),
        other => Some(Value::Text(jsonb_text(other))),
    };
    let key = |k: &String| Some(Value::Text(k.clone()));
    match (name, json) {
        ("jsonb_each" | "jsonb_each_text" | "jsonb_object_keys", Json::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            Ok(keys
                .into_iter()
                .map(|k| match name {
                    "jsonb_each" => vec![key(k), jsonb(&map[k])],
                    "jsonb_each_text" => vec![key(k), as_text(&map[k])],
                    _ => vec![key(k)],
                })
                .collect())
        }
        ("jsonb_array_elements", Json::Array(items)) => {
            Ok(items.iter().map(|v| vec![jsonb(v)]).collect())
        }
        ("jsonb_array_elements_text", Json::Array(items)) => {
            Ok(items.iter().map(|v| vec![as_text(v)]).collect())
        }
        ("jsonb_each" | "jsonb_each_text", _) => {
            Err(invalid(format!("cannot call {name} on a non-object")))
        }
        ("jsonb_object_keys", other) => {
            Err(invalid(format!("cannot call {name} on {}", kind(&other))))
        }
        (_, Json::Object(_)) => Err(invalid("cannot extract elements from an object".into())),
        _ => Err(invalid("cannot extract elements from a scalar".into())),
    }
}

fn invalid(message: String) -> PgError {
    PgError::new("22023", message)
}

/// A non-object's kind as jsonb_object_keys's error names it.
fn kind(v: &Json) -> &'static str {
    match v {
        Json::Array(_) => "an array",
        _ => "a scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Datum {
        Some(Value::Jsonb(s.into()))
    }

    #[test]
    fn objects_and_arrays_become_rows() {
        let t = |s: &str| Some(Value::Text(s.into()));
        let rows = rows("jsonb_each_text", &doc(r#"{"bb": 1, "a": "x", "c": null}"#)).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![t("a"), t("x")],
                vec![t("c"), None],
                vec![t("bb"), t("1")]
            ]
        );
        let elems = super::rows("jsonb_array_elements", &doc(r#"[1, {"k": [2]}]"#)).unwrap();
        assert_eq!(elems[1], vec![Some(Value::Jsonb(r#"{"k": [2]}"#.into()))]);
        assert!(super::rows("jsonb_object_keys", &None).unwrap().is_empty());
        let e = super::rows("jsonb_array_elements", &doc("{}")).unwrap_err();
        assert_eq!(e.code, "22023");
    }
}
