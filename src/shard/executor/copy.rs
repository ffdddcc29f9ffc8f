//! COPY FROM STDIN (text, csv, binary) into a table, in one transaction,
//! and COPY TO STDOUT of a table or a query.
//!
//! Incoming chunks are parsed on the blocking pool as they arrive; the
//! rows are inserted and committed when the client sends CopyDone.

use super::dml::{complete_row, target_columns};
use super::select::{object_name, run_query, Ctx, PlanSeen, Relation};
use super::session::{CopyJob, ShardSession};
use super::types::{type_oid, value_typmod};
use super::Outcome;
use crate::shard::datum::Datum;
use crate::shard::storage::TableDef;
use crate::sql::{CopyDirection, CopyFormat, CopyInfo};
use crate::wire::{self, Format, PgError, Responder, TransactionStatus, Value};
use bytes::{BufMut, BytesMut};
use sqlparser::ast::{CopySource, Statement};
use std::sync::Arc;

const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

fn wire_format(f: CopyFormat) -> wire::CopyFormat {
    match f {
        CopyFormat::Text => wire::CopyFormat::Text,
        CopyFormat::Csv => wire::CopyFormat::Csv,
        CopyFormat::Binary => wire::CopyFormat::Binary,
    }
}

fn bad_copy(message: impl Into<String>) -> PgError {
    PgError::new("22P04", message)
}

/// Runs a COPY statement.
pub async fn run(
    session: &mut ShardSession,
    job: CopyJob,
    info: CopyInfo,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    if !info.stdio {
        return Err(PgError::feature_not_supported(
            "COPY to or from a file or program is not supported; use STDIN or STDOUT",
        ));
    }
    match info.direction {
        CopyDirection::From => copy_from(session, job, info, out).await,
        CopyDirection::To => copy_to(job, info, out).await,
    }
}

/// Parses COPY data as it arrives.
struct Parser {
    format: CopyFormat,
    types: Vec<(u32, Option<u32>)>,
    buf: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows: Vec<Vec<Datum>>,
}

impl Parser {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), PgError> {
        self.buf.extend_from_slice(chunk);
        let used = match self.format {
            CopyFormat::Binary => self.binary()?,
            _ => self.lines()?,
        };
        self.buf.drain(..used);
        Ok(())
    }

    fn row(&mut self, fields: Vec<Option<Vec<u8>>>, format: Format) -> Result<(), PgError> {
        if fields.len() != self.types.len() {
            return Err(bad_copy(if fields.len() < self.types.len() {
                "missing data for column"
            } else {
                "extra data after last expected column"
            }));
        }
        let row = fields
            .into_iter()
            .zip(&self.types)
            .map(|(f, &(t, m))| f.map(|b| Value::decode(t, m, format, &b)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        self.rows.push(row);
        Ok(())
    }

    fn lines(&mut self) -> Result<usize, PgError> {
        let mut start = 0;
        let buf = std::mem::take(&mut self.buf);
        let result = (|| {
            while let Some(end) = record_end(&buf[start..], self.format == CopyFormat::Csv) {
                let line = &buf[start..start + end];
                start += end + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if self.ended || line == b"\\." {
                    self.ended = true;
                    continue;
                }
                let fields = match self.format {
                    CopyFormat::Csv => csv_fields(line)?,
                    _ => text_fields(line)?,
                };
                self.row(fields, Format::Text)?;
            }
            Ok(start)
        })();
        self.buf = buf;
        result
    }

    fn binary(&mut self) -> Result<usize, PgError> {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        let result = (|| {
            if !self.header_done {
                if buf.len() < 19 {
                    return Ok(0);
                }
                if &buf[..11] != BINARY_SIGNATURE {
                    return Err(bad_copy("COPY file signature not recognized"));
                }
                let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
                if buf.len() < 19 + ext {
                    return Ok(0);
                }
                pos = 19 + ext;
                self.header_done = true;
            }
            loop {
                if self.ended {
                    return Ok(buf.len());
                }
                let Some(count) = buf.get(pos..pos + 2) else {
                    return Ok(pos);
                };
                let count = i16::from_be_bytes([count[0], count[1]]);
                if count == -1 {
                    self.ended = true;
                    return Ok(buf.len());
                }
                let mut p = pos + 2;
                let mut fields = Vec::with_capacity(count.max(0) as usize);
                for _ in 0..count.max(0) {
                    let Some(len) = buf.get(p..p + 4) else {
                        return Ok(pos);
                    };
                    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                    p += 4;
                    if len < 0 {
                        fields.push(None);
                        continue;
                    }
                    let Some(data) = buf.get(p..p + len as usize) else {
                        return Ok(pos);
                    };
                    fields.push(Some(data.to_vec()));
                    p += len as usize;
                }
                self.row(fields, Format::Binary)?;
                pos = p;
            }
        })();
        self.buf = buf;
        result
    }
}

/// The end of the first complete record (its newline), if there is one;
/// CSV newlines inside quotes do not end a record.
fn record_end(buf: &[u8], csv: bool) -> Option<usize> {
    if !csv {
        return buf.iter().position(|&b| b == b'\n');
    }
    let mut quoted = false;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn text_fields(line: &[u8]) -> Result<Vec<Option<Vec<u8>>>, PgError> {
    line.split(|&b| b == b'\t')
        .map(|f| {
            if f == b"\\N" {
                return Ok(None);
            }
            let mut out = Vec::with_capacity(f.len());
            let mut it = f.iter();
            while let Some(&b) = it.next() {
                if b != b'\\' {
                    out.push(b);
                    continue;
                }
                out.push(match it.next() {
                    Some(b'n') => b'\n',
                    Some(b't') => b'\t',
                    Some(b'r') => b'\r',
                    Some(b'b') => 8,
                    Some(b'f') => 12,
                    Some(b'v') => 11,
                    Some(&c) => c,
                    None => return Err(bad_copy("unterminated escape in COPY data")),
                });
            }
            Ok(Some(out))
        })
        .collect()
}

fn csv_fields(line: &[u8]) -> Result<Vec<Option<Vec<u8>>>, PgError> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let (mut quoted, mut was_quoted) = (false, false);
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match (quoted, b) {
            (true, b'"') if line.get(i + 1) == Some(&b'"') => {
                field.push(b'"');
                i += 1;
            }
            (true, b'"') => quoted = false,
            (false, b'"') => {
                quoted = true;
                was_quoted = true;
            }
            (false, b',') => {
                fields.push((was_quoted || !field.is_empty()).then(|| std::mem::take(&mut field)));
                was_quoted = false;
            }
            (_, b) => field.push(b),
        }
        i += 1;
    }
    if quoted {
        return Err(bad_copy("unterminated CSV quoted field"));
    }
    fields.push((was_quoted || !field.is_empty()).then_some(field));
    Ok(fields)
}

fn columns_of(stmt: &Statement) -> (String, Vec<String>) {
    match stmt {
        Statement::Copy {
            source:
                CopySource::Table {
                    table_name,
                    columns,
                },
            ..
        } => (
            object_name(table_name),
            columns.iter().map(crate::sql::fold).collect(),
        ),
        _ => (String::new(), Vec::new()),
    }
}

async fn copy_from(
    session: &mut ShardSession,
    job: CopyJob,
    info: CopyInfo,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let (table, names) = columns_of(&job.stmt.ast);
    let shard = job.shard.clone();
    let lookup = table.clone();
    let def: TableDef = tokio::task::spawn_blocking(move || {
        shard
            .db
            .read()
            .get(&lookup)
            .map(|t| t.def().clone())
            .ok_or_else(|| super::select::undefined_table(&lookup))
    })
    .await
    .map_err(|e| PgError::internal(e.to_string()))??;
    let targets = target_columns(&def, &names)?;
    let types = targets
        .iter()
        .map(|&i| (type_oid(def.columns[i].ty), value_typmod(def.columns[i].ty)))
        .collect();
    let mut parser = Parser {
        format: info.format,
        types,
        buf: Vec::new(),
        header_done: false,
        ended: false,
        rows: Vec::new(),
    };
    let started = std::time::Instant::now();
    let table_name = table.clone();
    let mut copy = out.copy_in(wire_format(info.format), targets.len()).await?;
    while let Some(chunk) = copy.next().await? {
        parser = tokio::task::spawn_blocking(move || parser.feed(&chunk).map(|()| parser))
            .await
            .map_err(|e| PgError::internal(e.to_string()))??;
    }
    if !parser.buf.is_empty() && parser.format != CopyFormat::Binary {
        parser = tokio::task::spawn_blocking(move || parser.feed(b"\n").map(|()| parser))
            .await
            .map_err(|e| PgError::internal(e.to_string()))??;
    }
    let rows = parser.rows;
    let n_rows = rows.len();
    let received = started.elapsed();
    let in_block = out.session().transaction_status() == TransactionStatus::InTransaction;
    let shard = job.shard.clone();
    let globals = job.globals.clone();
    let outcome = session
        .write_rows(
            in_block,
            job.shard.clone(),
            job.cancel.clone(),
            move |tables, txn| {
                let env = super::expr::Env {
                    params: &[],
                    globals: &globals,
                    aggregates: None,
                };
                let n = rows.len();
                for row in rows {
                    let values = row.into_iter().map(Some).collect();
                    let full =
                        complete_row(&def, &targets, values, tables, &shard.sequences, &env)?;
                    txn.insert(tables, &table, full)
                        .map_err(super::storage_error)?;
                }
                Ok(Outcome::tag(&format!("COPY {n}")))
            },
        )
        .await?;
    tracing::info!(
        table = %table_name,
        rows = n_rows,
        receive_ms = received.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "COPY FROM STDIN"
    );
    out.complete(&outcome.tag);
    Ok(())
}

fn escape_text(s: &str, out: &mut BytesMut) {
    for c in s.chars() {
        match c {
            '\\' => out.put_slice(b"\\\\"),
            '\t' => out.put_slice(b"\\t"),
            '\n' => out.put_slice(b"\\n"),
            '\r' => out.put_slice(b"\\r"),
            c => {
                let mut b = [0; 4];
                out.put_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn quote_csv(s: &str, out: &mut BytesMut) {
    if s.is_empty() || s.contains([',', '"', '\n', '\r']) {
        out.put_u8(b'"');
        out.put_slice(s.replace('"', "\"\"").as_bytes());
        out.put_u8(b'"');
    } else {
        out.put_slice(s.as_bytes());
    }
}

/// Encodes rows in a COPY format.
fn encode(rel: &Relation, format: CopyFormat) -> BytesMut {
    let mut out = BytesMut::new();
    if format == CopyFormat::Binary {
        out.put_slice(BINARY_SIGNATURE);
        out.put_i32(0);
        out.put_i32(0);
    }
    for row in &rel.rows {
        match format {
            CopyFormat::Binary => {
                out.put_i16(row.len() as i16);
                for v in row {
                    match v {
                        None => out.put_i32(-1),
                        Some(v) => {
                            let mut b = BytesMut::new();
                            v.encode(Format::Binary, &mut b);
                            out.put_i32(b.len() as i32);
                            out.put_slice(&b);
                        }
                    }
                }
            }
            _ => {
                for (i, v) in row.iter().enumerate() {
                    if i > 0 {
                        out.put_u8(if format == CopyFormat::Csv {
                            b','
                        } else {
                            b'\t'
                        });
                    }
                    match (v, format) {
                        (None, CopyFormat::Csv) => {}
                        (None, _) => out.put_slice(b"\\N"),
                        (Some(v), CopyFormat::Csv) => quote_csv(&v.to_text(), &mut out),
                        (Some(v), _) => escape_text(&v.to_text(), &mut out),
                    }
                }
                out.put_u8(b'\n');
            }
        }
    }
    if format == CopyFormat::Binary {
        out.put_i16(-1);
    }
    out
}

async fn copy_to(job: CopyJob, info: CopyInfo, out: &mut Responder<'_>) -> Result<(), PgError> {
    let job = Arc::new(job);
    let j = job.clone();
    let rel = tokio::task::spawn_blocking(move || {
        let tables = j.shard.db.read();
        let ann = crate::shard::storage::AnnSearch::default();
        let ctx = Ctx {
            tables: &tables,
            env: super::expr::Env {
                params: &[],
                globals: &j.globals,
                aggregates: None,
            },
            param_types: &[],
            ann: &ann,
            cancel: j.cancel.flag(),
            dry: false,
            ctes: Default::default(),
            plan: &PlanSeen::default(),
        };
        let query = match &j.stmt.ast {
            Statement::Copy {
                source: CopySource::Query(q),
                ..
            } => q.clone(),
            Statement::Copy { .. } => {
                let (table, names) = columns_of(&j.stmt.ast);
                let cols = if names.is_empty() {
                    "*".to_string()
                } else {
                    names.join(", ")
                };
                let stmt = crate::sql::parse_single(&format!("SELECT {cols} FROM {table}"))
                    .map_err(|e| PgError::new(e.sqlstate, e.message))?;
                match stmt.ast {
                    Statement::Query(q) => q,
                    _ => return Err(PgError::internal("COPY source is not a query")),
                }
            }
            _ => return Err(PgError::internal("not a COPY")),
        };
        let rel = run_query(&query, &ctx)?;
        Ok::<_, PgError>((encode(&rel, info.format), rel.rows.len(), rel.columns.len()))
    })
    .await
    .map_err(|e| PgError::internal(e.to_string()))?;
    let (data, n, columns) = rel?;
    let mut copy = out.copy_out(wire_format(info.format), columns);
    for chunk in data.chunks(64 * 1024) {
        copy.send(chunk).await?;
    }
    copy.finish();
    out.complete(&format!("COPY {n}"));
    Ok(())
}
