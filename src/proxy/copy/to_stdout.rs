//! `COPY … TO STDOUT`: the same COPY on every shard that holds rows, each
//! shard's output passed on in turn. A CSV/text HEADER line comes from the
//! first shard only; binary output gets one header and one trailer.

use sqlparser::ast::{CopySource, Statement};

use super::{describe, rewritten, started};
use crate::proxy::backend::{BackendMessage, Request, ShardChannel};
use crate::proxy::cluster::Cluster;
use crate::proxy::execute::shard_stream::tag_count;
use crate::proxy::plan::{self, Combine};
use crate::sql::{
    self, binary_header, classify, CopyDirection, CopyFormat, CopyInfo, CopyOptions, Record,
    RecordReader, BINARY_TRAILER,
};
use crate::wire::{CopyOut, PgError, Responder};

/// Runs `COPY table|(query) TO STDOUT`.
pub(super) async fn copy_to(
    cluster: &Cluster,
    statement: &sql::Statement,
    info: &CopyInfo,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let (shards, columns) = match &info.table {
        Some(table) => {
            let columns = match info.columns.len() {
                0 => cluster.table(table).await?.columns.len(),
                n => n,
            };
            let shards = match cluster.is_reference(table) {
                // Whole on each shard: one copy is the table.
                true => vec![cluster.serving_order()[0]],
                false => cluster.all().into_iter().collect::<Vec<_>>(),
            };
            (shards, columns)
        }
        None => query_shards(cluster, statement).await?,
    };
    let mut chans = Vec::with_capacity(shards.len());
    for (i, &shard) in shards.iter().enumerate() {
        let mut chan = cluster.shards[shard].checkout().await?;
        chan.send(&Request::Simple(rewritten(statement, i > 0, None)))
            .await?;
        chans.push(chan);
    }
    for chan in &mut chans {
        started(chan.as_mut(), CopyDirection::To).await?;
    }
    let binary = info.format == CopyFormat::Binary;
    let mut copy = out.copy_out(info.format.into(), columns);
    let mut header = binary.then(binary_header);
    let mut total = 0;
    for chan in &mut chans {
        total += relay(chan.as_mut(), binary, &mut header, &mut copy).await?;
    }
    if binary {
        let mut trailer = header.unwrap_or_default();
        trailer.extend_from_slice(BINARY_TRAILER);
        copy.send(&trailer).await?;
    }
    copy.finish();
    out.complete(&format!("COPY {total}"));
    Ok(())
}

/// The shards a `COPY (query) TO STDOUT` reads and its column count; only
/// queries whose shard results can simply be concatenated.
async fn query_shards(
    cluster: &Cluster,
    statement: &sql::Statement,
) -> Result<(Vec<usize>, usize), PgError> {
    let Statement::Copy {
        source: CopySource::Query(query),
        ..
    } = &statement.ast
    else {
        return Err(PgError::internal("COPY TO without a table or a query"));
    };
    let inner = sql::parse_single(&query.to_string()).map_err(PgError::from)?;
    let kind = classify(&inner);
    if !matches!(kind, sql::StatementKind::Select(_)) {
        return Err(PgError::feature_not_supported(
            "COPY (statement) TO STDOUT through the proxy takes a SELECT only",
        )
        .with_hint("Run an INSERT, UPDATE or DELETE with RETURNING on its own."));
    }
    let advisory = sql::advisory_hold(&inner);
    let route = plan::plan(cluster, &inner, &kind, advisory, None).await?;
    if !matches!(route.combine, Combine::Concat) {
        return Err(PgError::feature_not_supported(format!(
            "COPY (query) TO STDOUT across shards needs a plain scan whose rows can be concatenated; this query needs a {} (ORDER BY, LIMIT, DISTINCT or aggregates)",
            route.label
        ))
        .with_hint("Run the query as a SELECT, or restrict it to one shard key."));
    }
    let shards: Vec<usize> = route.shards().into_iter().collect();
    let first = shards.first().copied().unwrap_or(0);
    let columns = describe(cluster, first, &inner.text).await?.len();
    Ok((shards, columns))
}

/// Passes one shard's CopyData on; returns its row count. Binary output
/// is re-cut into one tuple per CopyData (as PostgreSQL sends it, and as
/// tokio-postgres' BinaryCopyOutStream expects) without the shard's header
/// and trailer; `header` is put before the first tuple of the answer.
async fn relay(
    chan: &mut dyn ShardChannel,
    binary: bool,
    header: &mut Option<Vec<u8>>,
    copy: &mut CopyOut<'_>,
) -> Result<u64, PgError> {
    let mut tuples = RecordReader::new(CopyOptions::new(CopyFormat::Binary));
    let mut rows = 0;
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::CopyData(data) if binary => {
                tuples.feed(&data);
                while let Some(record) = tuples.next_record().map_err(PgError::from)? {
                    let mut message = header.take().unwrap_or_default();
                    if let Record::Row(tuple) = record {
                        message.extend_from_slice(&tuple);
                    }
                    copy.send(&message).await?;
                }
            }
            BackendMessage::CopyData(data) => copy.send(&data).await?,
            BackendMessage::CommandComplete(tag) => rows = tag_count(&tag).unwrap_or(0),
            BackendMessage::Error(e) => error = error.or(Some(e)),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if binary && !tuples.ended() {
        return Err(PgError::protocol_violation(
            "a shard's binary COPY output did not end with its trailer",
        ));
    }
    Ok(rows)
}
