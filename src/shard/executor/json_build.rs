//! SQL values as JSON text, as `to_json` / `to_jsonb` write them: what
//! `json_agg` / `jsonb_agg` collect. Numbers and booleans as JSON
//! numbers and booleans (a non-finite float as a string), json and jsonb
//! as themselves (json keeps its text; jsonb prints normalized), arrays
//! as JSON arrays, anything else as a JSON string of its text. Also the
//! functions that build or inspect JSON from them: `to_json` /
//! `to_jsonb`, `json_build_object` / `jsonb_build_object`,
//! `json_build_array` / `jsonb_build_array`, `jsonb_typeof` /
//! `json_typeof` and `jsonb_array_length` / `json_array_length`.

use super::infer::TypeOf;
use super::json_ops::jsonb_of;
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use serde_json::Value as Json;

/// `v` as JSON text: jsonb's (`jsonb`: true) or json's.
pub fn element_text(v: &Datum, jsonb: bool) -> Result<String, PgError> {
    let Some(v) = v else {
        return Ok("null".to_string());
    };
    Ok(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Oid(_) => v.to_text(),
        Value::Float4(x) if x.is_finite() => v.to_text(),
        Value::Float8(x) if x.is_finite() => v.to_text(),
        Value::Json(text) if jsonb => jsonb_of(text)?,
        Value::Json(text) | Value::Jsonb(text) => text.clone(),
        Value::Array(a) => {
            let items = a
                .items
                .iter()
                .map(|x| element_text(x, jsonb))
                .collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(if jsonb { ", " } else { "," }))
        }
        // ISO 8601 with a `T` (and the offset spelled out).
        Value::Timestamp(t) => {
            quoted(&crate::wire::datetime::format_timestamp(*t).replacen(' ', "T", 1))
        }
        Value::Timestamptz(t) => quoted(&format!(
            "{}+00:00",
            crate::wire::datetime::format_timestamp(*t).replacen(' ', "T", 1)
        )),
        other => quoted(&other.to_text()),
    })
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The elements' JSON texts as one JSON array, as `json_agg` /
/// `jsonb_agg` print it (`[1, 2]`).
pub fn array_text(items: &[Datum], jsonb: bool) -> Result<String, PgError> {
    let texts = items
        .iter()
        .map(|x| element_text(x, jsonb))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", texts.join(", ")))
}

/// The result type of the JSON function `name`; `None` for another.
pub fn result_type(name: &str) -> Option<TypeOf> {
    let t = match name {
        "to_json" | "json_build_object" | "json_build_array" => oid::JSON,
        "to_jsonb" | "jsonb_build_object" | "jsonb_build_array" => oid::JSONB,
        "jsonb_typeof" | "json_typeof" => oid::TEXT,
        "jsonb_array_length" | "json_array_length" => oid::INT4,
        _ => return None,
    };
    Some((t, -1))
}

/// Runs the JSON function `name` on `args`; `None` for another function.
pub fn call(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    let jsonb = name.starts_with("jsonb") || name == "to_jsonb";
    let made = |text: String| {
        if jsonb {
            Value::Jsonb(text)
        } else {
            Value::Json(text)
        }
    };
    Some(match (name, args) {
        ("to_json" | "to_jsonb", [None]) => Ok(None),
        ("to_json" | "to_jsonb", [v]) => element_text(v, jsonb).map(|t| Some(made(t))),
        ("json_build_array" | "jsonb_build_array", _) => {
            array_text(args, jsonb).and_then(|t| normalized(t, jsonb).map(|t| Some(made(t))))
        }
        ("json_build_object" | "jsonb_build_object", _) => {
            object_text(args, jsonb).and_then(|t| normalized(t, jsonb).map(|t| Some(made(t))))
        }
        ("jsonb_typeof" | "json_typeof", [v]) => parsed(name, v).map(|j| {
            j.map(|j| {
                Value::Text(
                    match j {
                        Json::Object(_) => "object",
                        Json::Array(_) => "array",
                        Json::String(_) => "string",
                        Json::Number(_) => "number",
                        Json::Bool(_) => "boolean",
                        Json::Null => "null",
                    }
                    .to_string(),
                )
            })
        }),
        ("jsonb_array_length" | "json_array_length", [v]) => match parsed(name, v) {
            Ok(Some(Json::Array(items))) => i32::try_from(items.len())
                .map(|n| Some(Value::Int4(n)))
                .map_err(|_| PgError::new("22003", "integer out of range")),
            Ok(Some(Json::Object(_))) => Err(PgError::new(
                "22023",
                "cannot get array length of a non-array",
            )),
            Ok(Some(_)) => Err(PgError::new("22023", "cannot get array length of a scalar")),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

/// Built JSON text as jsonb prints it (`jsonb`: keys sorted, the last of
/// a repeated key) or as built.
fn normalized(text: String, jsonb: bool) -> Result<String, PgError> {
    if jsonb {
        jsonb_of(&text)
    } else {
        Ok(text)
    }
}

/// A json, jsonb or text argument of `name` parsed; `None` for NULL.
fn parsed(name: &str, v: &Datum) -> Result<Option<Json>, PgError> {
    let Some(v) = v else { return Ok(None) };
    let text = match v {
        Value::Json(t) | Value::Jsonb(t) | Value::Text(t) => t,
        other => {
            return Err(super::functions::no_function(
                name,
                std::slice::from_ref(other),
            ))
        }
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|_| PgError::invalid_text("json", text))
}

/// `json_build_object`'s text of alternating keys and values
/// (`{"a" : 1}`).
fn object_text(args: &[Datum], jsonb: bool) -> Result<String, PgError> {
    if !args.len().is_multiple_of(2) {
        return Err(PgError::new(
            "22023",
            "argument list must have even number of elements",
        ));
    }
    let mut fields = Vec::new();
    for (i, pair) in args.chunks(2).enumerate() {
        let Some(key) = &pair[0] else {
            return Err(PgError::new(
                "22023",
                format!("argument {}: key must not be null", 2 * i + 1),
            ));
        };
        let key = match key {
            Value::Json(_) | Value::Jsonb(_) | Value::Array(_) => {
                return Err(PgError::new(
                    "22023",
                    "key value must be scalar, not array, composite, or json",
                ))
            }
            k => quoted(&k.to_text()),
        };
        fields.push(format!("{key} : {}", element_text(&pair[1], jsonb)?));
    }
    Ok(format!("{{{}}}", fields.join(", ")))
}
