//! Log output: `tracing`'s text lines (the default), or with
//! `log_format: json` one JSON object per line — `ts` (RFC 3339, UTC),
//! `level`, `target`, `message`, then the event's own fields by name (a
//! field named like one of those four is written as `field.<name>`) —
//! for log shippers that parse lines.

use std::fmt;

use serde_json::Value as Json;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::proxy::config::LogFormat;

/// Sends this process's logs to stderr in `format`.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.event_format(JsonLines).init(),
    }
}

/// The `json` line format.
pub struct JsonLines;

const RESERVED: [&str; 4] = ["ts", "level", "target", "message"];

/// The event's fields in the order they were recorded.
struct Fields(Vec<(String, Json)>);

impl Fields {
    fn put(&mut self, field: &Field, value: Json) {
        let name = field.name();
        let key = if name != "message" && RESERVED.contains(&name) {
            format!("field.{name}")
        } else {
            name.to_string()
        };
        self.0.push((key, value));
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Json::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Json::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Json::from(format!("{value:?}")));
    }
}

/// Now as RFC 3339 in UTC, e.g. `2026-12-06T05:50:01.123456Z`.
fn now_rfc3339() -> String {
    let micros = crate::proxy::ops::stats::pg_micros(std::time::SystemTime::now());
    crate::wire::datetime::format_timestamptz(micros)
        .replacen(' ', "T", 1)
        .replace("+00", "Z")
}

/// One event as a JSON object, its keys in order: `ts`, `level`,
/// `target`, `message`, then the event's fields as recorded.
pub fn event_json(event: &Event<'_>) -> String {
    let mut fields = Fields(Vec::new());
    event.record(&mut fields);
    let meta = event.metadata();
    let message = match fields.0.iter().position(|(k, _)| k == "message") {
        Some(i) => fields.0.remove(i).1,
        None => Json::from(""),
    };
    let fixed = [
        ("ts".to_string(), Json::from(now_rfc3339())),
        ("level".to_string(), Json::from(meta.level().as_str())),
        ("target".to_string(), Json::from(meta.target())),
        ("message".to_string(), message),
    ];
    let mut line = String::from("{");
    for (i, (key, value)) in fixed.into_iter().chain(fields.0).enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&Json::from(key).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", event_json(event))
    }
}
