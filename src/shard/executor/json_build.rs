//! SQL values as JSON text, as `to_json` / `to_jsonb` write them: what
//! `json_agg` / `jsonb_agg` collect. Numbers and booleans as JSON
//! numbers and booleans (a non-finite float as a string), json and jsonb
//! as themselves (json keeps its text; jsonb prints normalized), arrays
//! as JSON arrays, anything else as a JSON string of its text.

use super::json_ops::jsonb_of;
use crate::shard::datum::Datum;
use crate::wire::{PgError, Value};

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
        Value::Timestamptz(_) => {
            return Err(PgError::feature_not_supported(
                "timestamptz in JSON (ISO 8601 with a T) is not supported",
            ))
        }
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
