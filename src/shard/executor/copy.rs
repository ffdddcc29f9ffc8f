//! COPY FROM STDIN (text, csv, binary) into a table, in one transaction,
//! and COPY TO STDOUT of a table or a query.
//!
//! Incoming chunks are parsed, completed and checked into the write set
//! on a blocking thread as they arrive; CopyDone commits them.

use super::dml::{complete_row, target_columns};
use super::expr::Globals;
use super::select::{object_name, run_query, Ctx, PlanSeen, Relation};
use super::session::{CopyJob, ShardSession};
use super::types::{type_oid, value_typmod};
use super::Shard;
use super::{storage_error, Outcome};
use crate::shard::datum::Datum;
use crate::shard::replication::sync::SyncLevel;
use crate::shard::storage::{TableDef, Transaction};
use crate::sql::{
    binary_header, CopyDirection, CopyFormat, CopyInfo, CopyOptions, Record, RecordReader,
    BINARY_TRAILER,
};
use crate::wire::{self, Format, PgError, Responder, TransactionStatus, Value};
use bytes::{BufMut, Bytes, BytesMut};
use sqlparser::ast::{CopySource, Statement};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The statement's format as the wire layer frames it (here: the lowest
/// layer that knows both types; the proxy uses it too).
impl From<CopyFormat> for wire::CopyFormat {
    fn from(f: CopyFormat) -> Self {
        match f {
            CopyFormat::Text => wire::CopyFormat::Text,
            CopyFormat::Csv => wire::CopyFormat::Csv,
            CopyFormat::Binary => wire::CopyFormat::Binary,
        }
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

/// Parses COPY data as it arrives: [`RecordReader`] cuts records, each
/// record's fields are decoded as the target columns' types.
struct Parser {
    reader: RecordReader,
    types: Vec<(u32, Option<u32>)>,
    rows: Vec<Vec<Datum>>,
}

impl Parser {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), PgError> {
        self.reader.feed(chunk);
        while let Some(record) = self.reader.next_record().map_err(PgError::from)? {
            self.record(record)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PgError> {
        match self.reader.finish().map_err(PgError::from)? {
            Some(record) => self.record(record),
            None => Ok(()),
        }
    }

    fn record(&mut self, record: Record) -> Result<(), PgError> {
        let Record::Row(bytes) = record else {
            return Ok(());
        };
        let options = self.reader.options();
        let format = if options.format == CopyFormat::Binary {
            Format::Binary
        } else {
            Format::Text
        };
        let fields = options.fields(&bytes).map_err(PgError::from)?;
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

/// CopyData chunks queued between the connection and the loader.
const QUEUED_CHUNKS: usize = 8;

/// What the connection hands the loader.
enum Chunk {
    Data(Bytes),
    /// CopyDone: the data is complete.
    Done,
}

/// Turns chunks into rows of the write set as they arrive, on a blocking
/// thread: each chunk's rows are completed (defaults) and checked (keys,
/// constraints) under one short hold of the table lock.
struct Loader {
    parser: Parser,
    def: TableDef,
    targets: Vec<usize>,
    table: String,
    shard: Arc<Shard>,
    globals: Globals,
    chunks: mpsc::Receiver<Chunk>,
}

impl Loader {
    /// Loads until CopyDone; `COPY n`. When the connection stops without
    /// CopyDone (CopyFail, a lost connection) it returns what it has: the
    /// connection's error decides the statement.
    fn run(mut self, txn: &mut Transaction) -> Result<Outcome, PgError> {
        let mut n = 0;
        while let Some(chunk) = self.chunks.blocking_recv() {
            match chunk {
                Chunk::Data(bytes) => self.parser.feed(&bytes)?,
                Chunk::Done => self.parser.finish()?,
            }
            n += self.insert(txn)?;
        }
        Ok(Outcome::tag(&format!("COPY {n}")))
    }

    /// Adds the rows parsed so far to `txn`; how many.
    fn insert(&mut self, txn: &mut Transaction) -> Result<usize, PgError> {
        let rows = std::mem::take(&mut self.parser.rows);
        if rows.is_empty() {
            return Ok(0);
        }
        let tables = self.shard.db.read().map_err(storage_error)?;
        let env = super::expr::Env {
            params: &[],
            globals: &self.globals,
            aggregates: None,
            scope: None,
            outer: None,
        };
        let n = rows.len();
        for row in rows {
            let values = row.into_iter().map(Some).collect();
            let full = complete_row(
                &self.def,
                &self.targets,
                values,
                &tables,
                &self.shard.sequences,
                &env,
            )?;
            txn.insert(&tables, &self.table, full)
                .map_err(storage_error)?;
        }
        Ok(n)
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
            .map_err(storage_error)?
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
    let started = std::time::Instant::now();
    let in_block = out.session().transaction_status() == TransactionStatus::InTransaction;
    let level = SyncLevel::parse(&out.session().show("synchronous_commit")?);
    let (sender, chunks) = mpsc::channel(QUEUED_CHUNKS);
    let loader = Loader {
        parser: Parser {
            reader: RecordReader::new(info.options.clone()),
            types,
            rows: Vec::new(),
        },
        def,
        targets,
        table: table.clone(),
        shard: job.shard.clone(),
        globals: job.globals.clone(),
        chunks,
    };
    let mut copy = out
        .copy_in(info.format.into(), loader.targets.len())
        .await?;
    let feed = async move {
        while let Some(bytes) = copy.next().await? {
            if sender.send(Chunk::Data(bytes)).await.is_err() {
                // The loader stopped at a bad row: its error answers.
                return Ok(());
            }
        }
        // A loader that already stopped has its own error to report.
        let _ = sender.send(Chunk::Done).await;
        Ok(())
    };
    let outcome = session
        .write_streamed(
            in_block,
            job.shard.clone(),
            job.cancel.clone(),
            level,
            move |txn| loader.run(txn),
            feed,
        )
        .await?;
    tracing::info!(
        table = %table,
        tag = %outcome.tag,
        total_ms = started.elapsed().as_millis() as u64,
        "COPY FROM STDIN"
    );
    for n in &outcome.notices {
        out.notice(n);
    }
    out.complete(&outcome.tag);
    Ok(())
}

/// Encodes rows in a COPY format (text/CSV with the statement's options),
/// with the end of each CopyData message: one row per message as
/// PostgreSQL sends them (psycopg's `Copy.rows()` and tokio-postgres'
/// binary reader rely on it); a header goes with the first row, the binary
/// trailer alone.
fn encode(rel: &Relation, options: &CopyOptions) -> (BytesMut, Vec<usize>) {
    let mut out = BytesMut::new();
    let mut ends = Vec::with_capacity(rel.rows.len() + 1);
    let binary = options.format == CopyFormat::Binary;
    if binary {
        out.put_slice(&binary_header());
    } else if options.header {
        options.write_line(rel.columns.iter().map(|c| Some(c.name.as_str())), &mut out);
        ends.push(out.len());
    }
    for row in &rel.rows {
        if binary {
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
        } else {
            let texts: Vec<Option<String>> =
                row.iter().map(|v| v.as_ref().map(Value::to_text)).collect();
            options.write_line(texts.iter().map(Option::as_deref), &mut out);
        }
        ends.push(out.len());
    }
    if binary {
        out.put_slice(BINARY_TRAILER);
        ends.push(out.len());
    }
    (out, ends)
}

async fn copy_to(job: CopyJob, info: CopyInfo, out: &mut Responder<'_>) -> Result<(), PgError> {
    let job = Arc::new(job);
    let j = job.clone();
    let rel = tokio::task::spawn_blocking(move || {
        let tables = j.shard.db.read().map_err(storage_error)?;
        let ann = crate::shard::storage::AnnSearch::default();
        let ctx = Ctx {
            tables: &tables,
            env: super::expr::Env {
                params: &[],
                globals: &j.globals,
                aggregates: None,
                scope: None,
                outer: None,
            },
            param_types: &[],
            ann: &ann,
            cancel: j.cancel.flag(),
            dry: false,
            ctes: Default::default(),
            plan: &PlanSeen::default(),
            subquery_types: Default::default(),
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
                    .map_err(PgError::from)?;
                match stmt.into_ast() {
                    Statement::Query(q) => q,
                    _ => return Err(PgError::internal("COPY source is not a query")),
                }
            }
            _ => return Err(PgError::internal("not a COPY")),
        };
        let rel = run_query(&query, &ctx)?;
        Ok::<_, PgError>((
            encode(&rel, &info.options),
            rel.rows.len(),
            rel.columns.len(),
        ))
    })
    .await
    .map_err(|e| PgError::internal(e.to_string()))?;
    let ((data, ends), n, columns) = rel?;
    let mut copy = out.copy_out(info.format.into(), columns);
    let mut start = 0;
    for end in ends {
        copy.send(&data[start..end]).await?;
        start = end;
    }
    copy.finish();
    out.complete(&format!("COPY {n}"));
    Ok(())
}
