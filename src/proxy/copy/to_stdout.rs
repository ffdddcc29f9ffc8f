//! `COPY … TO STDOUT`: the same COPY on every shard that holds rows, each
//! shard's output passed on in turn. A CSV/text HEADER line comes from the
//! first shard only; binary output gets one header and one trailer.

use bytes::{Buf, BytesMut};
use sqlparser::ast::{CopySource, Statement};

use super::from_stdin::wire_format;
use super::{describe, rewritten};
use crate::proxy::backend::{BackendMessage, Request, ShardChannel};
use crate::proxy::exec::tag_count;
use crate::proxy::frontend::sql_error;
use crate::proxy::plan::{self, Combine};
use crate::proxy::route::Cluster;
use crate::sql::{self, binary_header, classify, CopyFormat, CopyInfo, BINARY_TRAILER};
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
            (cluster.all().into_iter().collect::<Vec<_>>(), columns)
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
        started(chan.as_mut()).await?;
    }
    let binary = info.format == CopyFormat::Binary;
    let mut copy = out.copy_out(wire_format(info.format), columns);
    if binary {
        copy.send(&binary_header()).await?;
    }
    let mut total = 0;
    for chan in &mut chans {
        total += relay(chan.as_mut(), binary, &mut copy).await?;
    }
    if binary {
        copy.send(BINARY_TRAILER).await?;
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
    let inner = sql::parse_single(&query.to_string()).map_err(sql_error)?;
    let route = plan::plan(cluster, &inner, &classify(&inner), None).await?;
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

/// Waits for a shard's CopyOutResponse (or returns its error).
async fn started(chan: &mut dyn ShardChannel) -> Result<(), PgError> {
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::CopyOut => return Ok(()),
            BackendMessage::Error(e) => error = error.or(Some(e)),
            BackendMessage::ReadyForQuery(_) => {
                return Err(error.unwrap_or_else(|| {
                    PgError::protocol_violation("the shard did not start COPY TO STDOUT")
                }))
            }
            _ => {}
        }
    }
}

/// Passes one shard's CopyData on (binary: without its header and
/// trailer); returns its row count.
async fn relay(
    chan: &mut dyn ShardChannel,
    binary: bool,
    copy: &mut CopyOut<'_>,
) -> Result<u64, PgError> {
    let mut body = BinaryBody::default();
    let mut rows = 0;
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::CopyData(data) if binary => {
                let ready = body.feed(&data);
                if !ready.is_empty() {
                    copy.send(&ready).await?;
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
    if binary && !body.ended() {
        return Err(PgError::protocol_violation(
            "a shard's binary COPY output did not end with its trailer",
        ));
    }
    Ok(rows)
}

/// One shard's binary COPY output without its header and trailer.
#[derive(Default)]
struct BinaryBody {
    pending: BytesMut,
    header_done: bool,
}

impl BinaryBody {
    /// Takes a chunk; returns the tuple bytes that can be passed on (the
    /// last two bytes are held back: they may be the trailer).
    fn feed(&mut self, chunk: &[u8]) -> BytesMut {
        self.pending.extend_from_slice(chunk);
        if !self.header_done {
            if self.pending.len() < 19 {
                return BytesMut::new();
            }
            let p = &self.pending;
            let ext = u32::from_be_bytes([p[15], p[16], p[17], p[18]]);
            let skip = usize::try_from(ext)
                .unwrap_or(usize::MAX)
                .saturating_add(19);
            if self.pending.len() < skip {
                return BytesMut::new();
            }
            self.pending.advance(skip);
            self.header_done = true;
        }
        let ready = self.pending.len().saturating_sub(BINARY_TRAILER.len());
        self.pending.split_to(ready)
    }

    fn ended(&self) -> bool {
        self.header_done && &self.pending[..] == BINARY_TRAILER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_bodies_lose_header_and_trailer_however_split() {
        let mut data = binary_header();
        data.extend_from_slice(b"\x00\x01\x00\x00\x00\x01x");
        data.extend_from_slice(BINARY_TRAILER);
        for cut in 1..data.len() {
            let mut b = BinaryBody::default();
            let mut got = b.feed(&data[..cut]).to_vec();
            got.extend_from_slice(&b.feed(&data[cut..]));
            assert_eq!(got, b"\x00\x01\x00\x00\x00\x01x", "cut at {cut}");
            assert!(b.ended());
        }
    }
}
