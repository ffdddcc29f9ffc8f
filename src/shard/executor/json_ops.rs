//! jsonb's field and element operators, `->` (jsonb) and `->>` (text): what
//! ORMs and vector stores filter metadata with (`metadata_->>'kind' =
//! 'fruit'`). A key is text (an object's field) or an integer (an array's
//! element, negative from the end); a missing one, or a key of the other
//! kind, is NULL. `->>` gives a string without its quotes, JSON null as
//! NULL, anything else as jsonb text.
//!
//! Values come out as PostgreSQL prints jsonb (`{"a": 1, "b": [1, 2]}`,
//! keys shortest first, a repeated key's last value), except numbers,
//! which print as serde_json reads them (`1e2` → `100.0`; PostgreSQL keeps
//! numeric's digits, `100`).

use serde_json::Value as Json;

use crate::wire::{PgError, Value};

/// `a -> b` (`as_text`: false) or `a ->> b` (true).
pub fn field(a: &Value, b: &Value, as_text: bool) -> Result<Option<Value>, PgError> {
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
        (Json::Array(items), Value::Int2(_) | Value::Int4(_) | Value::Int8(_)) => {
            let i = match b {
                Value::Int2(i) => i64::from(*i),
                Value::Int4(i) => i64::from(*i),
                Value::Int8(i) => *i,
                _ => 0,
            };
            let len = items.len() as i64;
            let at = if i < 0 { len + i } else { i };
            usize::try_from(at).ok().and_then(|at| items.get(at))
        }
        _ => None,
    };
    Ok(found.and_then(|v| match (v, as_text) {
        (Json::Null, true) => None,
        (Json::String(s), true) => Some(Value::Text(s.clone())),
        (v, true) => Some(Value::Text(jsonb_text(v))),
        (v, false) => Some(Value::Jsonb(jsonb_text(v))),
    }))
}

/// A JSON value as PostgreSQL prints jsonb.
fn jsonb_text(v: &Json) -> String {
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
}
