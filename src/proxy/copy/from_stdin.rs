//! `COPY table FROM STDIN` split by slot: each record goes, unchanged
//! (plus a generated key when the column list leaves a serial key out),
//! to the COPY of the shard its key hashes to; into a table without a
//! shard key (spread), the records take turns over the shards. See
//! [`super`] for the commit protocol.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::join_all;

use super::{describe, rewritten, started};
use crate::proxy::backend::{run_simple, BackendMessage, Request, ShardChannel};
use crate::proxy::cluster::{binary_key_text, Cluster};
use crate::proxy::execute::shard_stream::tag_count;
use crate::proxy::txn::{self, Block};
use crate::sql::{
    self, binary_header, quote_ident, CopyDirection, CopyFormat, CopyInfo, CopyOptions, Record,
    RecordReader, TableName,
};
use crate::wire::{oid, PgError, Responder};

/// CopyData batch size per shard.
const BATCH: usize = 64 * 1024;
/// Generated keys reserved at a time.
const KEY_BLOCK: usize = 1024;

/// The shard key's place in each record.
struct KeyColumn {
    name: String,
    /// Index among the client's fields; `None` when the proxy generates it.
    position: Option<usize>,
    /// The key's type (binary format only: to read or write its bytes).
    type_oid: u32,
    /// Generated keys reserved and not used yet: next, end.
    reserved: (i64, i64),
}

/// One shard's COPY, started on its first row.
struct ShardCopy {
    shard: usize,
    chan: Box<dyn ShardChannel>,
    batch: BytesMut,
}

/// The state of one COPY FROM STDIN across the shards.
struct Loader<'c, 'p> {
    cluster: &'c Cluster,
    table: TableName,
    shard_sql: String,
    options: CopyOptions,
    /// The shard key; `None` for a spread table.
    key: Option<KeyColumn>,
    /// The shard the next record of a spread table goes to.
    turn: usize,
    header: Option<Bytes>,
    open: Vec<ShardCopy>,
    /// The client's transaction block, inside one.
    block: Option<&'p mut Block>,
}

fn bad_copy(message: impl Into<String>) -> PgError {
    PgError::new("22P04", message)
}

/// Runs `COPY table FROM STDIN` (`block` is set inside a transaction).
pub(super) async fn copy_from(
    cluster: &Cluster,
    statement: &sql::Statement,
    info: &CopyInfo,
    block: Option<&mut Block>,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let Some(table) = info.table.clone() else {
        return Err(PgError::feature_not_supported("COPY FROM needs a table"));
    };
    if cluster.is_reference(&table) && cluster.shards.len() > 1 {
        return Err(PgError::feature_not_supported(format!(
            "COPY FROM into reference table {table} is not supported through the proxy"
        ))
        .with_hint(
            "Load it with INSERT (a multi-row INSERT … VALUES goes to every shard at once).",
        ));
    }
    let table_info = cluster.table(&table).await?;
    if let Some(missing) = info
        .columns
        .iter()
        .find(|c| !table_info.columns.contains(c))
    {
        return Err(PgError::new(
            "42703",
            format!(
                "column \"{missing}\" of relation \"{}\" does not exist",
                table.name
            ),
        ));
    }
    let targets = if info.columns.is_empty() {
        &table_info.columns
    } else {
        &info.columns
    };
    let key = match table_info.key.clone() {
        Some(name) => Some(KeyColumn {
            position: targets.iter().position(|c| *c == name),
            type_oid: match info.format {
                CopyFormat::Binary => key_type(cluster, &table, &name).await?,
                _ => 0,
            },
            name,
            reserved: (0, 0),
        }),
        None => None,
    };
    let generated = key
        .as_ref()
        .filter(|k| k.position.is_none())
        .map(|k| k.name.as_str());
    let mut loader = Loader {
        cluster,
        shard_sql: rewritten(statement, false, generated),
        table,
        options: info.options.clone(),
        key,
        turn: cluster.spread_shard(),
        header: None,
        open: Vec::new(),
        block,
    };
    let received = receive(&mut loader, info, targets.len(), out).await;
    match received {
        Err(e) => {
            loader.abort(&e.message).await;
            Err(e)
        }
        Ok(()) => {
            let n = loader.finish().await?;
            out.complete(&format!("COPY {n}"));
            Ok(())
        }
    }
}

/// Reads the client's data and routes every record.
async fn receive(
    loader: &mut Loader<'_, '_>,
    info: &CopyInfo,
    columns: usize,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let mut reader = RecordReader::new(info.options.clone());
    let mut copy = out.copy_in(info.format.into(), columns).await?;
    while let Some(chunk) = copy.next().await? {
        reader.feed(&chunk);
        while let Some(record) = reader.next_record().map_err(PgError::from)? {
            loader.record(record).await?;
        }
    }
    if let Some(record) = reader.finish().map_err(PgError::from)? {
        loader.record(record).await?;
    }
    Ok(())
}

/// The type OID of a table's key column (the proxy's OIDs).
async fn key_type(cluster: &Cluster, table: &TableName, key: &str) -> Result<u32, PgError> {
    let sql = format!("SELECT {} FROM {table}", quote_ident(key));
    let columns = describe(cluster, 0, &sql).await?;
    Ok(columns.first().map_or(oid::INT8, |f| f.type_oid))
}

/// A line with `value` appended as one more field (before its terminator).
fn line_with_field(line: &[u8], delimiter: u8, value: &[u8]) -> Bytes {
    let body_len = line.len()
        - if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n"))
        };
    let mut out = BytesMut::with_capacity(line.len() + value.len() + 1);
    out.put_slice(&line[..body_len]);
    out.put_u8(delimiter);
    out.put_slice(value);
    out.put_slice(&line[body_len..]);
    out.freeze()
}

impl KeyColumn {
    /// The text the slot hash reads from a record's key field.
    fn text(
        &self,
        options: &CopyOptions,
        table: &TableName,
        row: &[u8],
        position: usize,
    ) -> Result<String, PgError> {
        let fields = options.fields(row).map_err(PgError::from)?;
        let name = &self.name;
        let value = match fields.into_iter().nth(position) {
            Some(Some(v)) => v,
            Some(None) => {
                return Err(PgError::new(
                    "23502",
                    format!(
                        "null value in column \"{name}\" of relation \"{}\" violates not-null constraint",
                        table.name
                    ),
                ))
            }
            None => return Err(bad_copy(format!("missing data for column \"{name}\""))),
        };
        if options.format == CopyFormat::Binary {
            return binary_key_text(self.type_oid, &value).ok_or_else(|| {
                PgError::new(
                    "22P03",
                    format!("incorrect binary data format in the shard key column \"{name}\""),
                )
            });
        }
        String::from_utf8(value.into_owned())
            .map_err(|_| PgError::new("22021", "invalid byte sequence for encoding \"UTF8\""))
    }

    /// The next generated key, reserving a block when none is left.
    async fn next(&mut self, cluster: &Cluster, table: &TableName) -> Result<i64, PgError> {
        if self.reserved.0 >= self.reserved.1 {
            let first = cluster
                .keys
                .take(&cluster.shards, table, &self.name, KEY_BLOCK)
                .await?;
            self.reserved = (first, first + KEY_BLOCK as i64);
        }
        let key = self.reserved.0;
        self.reserved.0 += 1;
        Ok(key)
    }

    /// A record with a generated key appended as its last field.
    fn appended(
        &self,
        options: &CopyOptions,
        table: &TableName,
        row: &[u8],
        key: i64,
    ) -> Result<Bytes, PgError> {
        if options.format != CopyFormat::Binary {
            return Ok(line_with_field(
                row,
                options.delimiter,
                key.to_string().as_bytes(),
            ));
        }
        let value = match self.type_oid {
            oid::INT8 => key.to_be_bytes().to_vec(),
            oid::INT4 => i32::try_from(key)
                .map_err(|_| PgError::new("22003", "integer out of range"))?
                .to_be_bytes()
                .to_vec(),
            _ => {
                return Err(PgError::feature_not_supported(format!(
                    "binary COPY into {} must give its shard key \"{}\"",
                    table, self.name
                )))
            }
        };
        let count = row
            .get(..2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .ok_or_else(|| bad_copy("unexpected EOF in COPY data"))?;
        let mut out = BytesMut::with_capacity(row.len() + 4 + value.len());
        out.put_i16(count.saturating_add(1));
        out.put_slice(&row[2..]);
        out.put_i32(value.len() as i32);
        out.put_slice(&value);
        Ok(out.freeze())
    }
}

impl Loader<'_, '_> {
    async fn record(&mut self, record: Record) -> Result<(), PgError> {
        match record {
            Record::Header(line) => {
                self.header = Some(match &self.key {
                    Some(key) if key.position.is_none() => {
                        line_with_field(&line, self.options.delimiter, key.name.as_bytes())
                    }
                    _ => line,
                });
                Ok(())
            }
            Record::Row(row) => {
                let (shard, row) = match &mut self.key {
                    Some(key) => {
                        let (text, row) = match key.position {
                            Some(p) => (key.text(&self.options, &self.table, &row, p)?, row),
                            None => {
                                let value = key.next(self.cluster, &self.table).await?;
                                let row = key.appended(&self.options, &self.table, &row, value)?;
                                (value.to_string(), row)
                            }
                        };
                        (self.cluster.slots.shard_of(&text), row)
                    }
                    None => {
                        let shard = self.turn % self.cluster.shards.len().max(1);
                        self.turn = shard + 1;
                        (shard, row)
                    }
                };
                let copy = self.shard(shard).await?;
                copy.batch.put_slice(&row);
                if copy.batch.len() >= BATCH {
                    let data = copy.batch.split().freeze();
                    copy.chan.send(&Request::CopyData(data)).await?;
                }
                Ok(())
            }
        }
    }

    /// The COPY of `shard`, started (inside BEGIN, or on the
    /// transaction's connection) on its first row.
    async fn shard(&mut self, shard: usize) -> Result<&mut ShardCopy, PgError> {
        if let Some(i) = self.open.iter().position(|c| c.shard == shard) {
            return Ok(&mut self.open[i]);
        }
        let mut chan = match &mut self.block {
            Some(block) => {
                block.join(self.cluster, shard).await?;
                block
                    .take(shard)
                    .ok_or_else(|| PgError::internal("the transaction's connection is in use"))?
            }
            None => {
                let mut chan = self.cluster.shards[shard].checkout().await?;
                txn::begin_one(chan.as_mut()).await?;
                chan
            }
        };
        chan.send(&Request::Simple(self.shard_sql.clone())).await?;
        started(chan.as_mut(), CopyDirection::From).await?;
        let mut batch = BytesMut::with_capacity(BATCH + 1024);
        match (&self.header, self.options.format) {
            (_, CopyFormat::Binary) => batch.put_slice(&binary_header()),
            (Some(header), _) => batch.put_slice(header),
            (None, _) => {}
        }
        self.open.push(ShardCopy { shard, chan, batch });
        let last = self.open.len() - 1;
        Ok(&mut self.open[last])
    }

    /// After the client's CopyDone: ends every shard's COPY, then commits
    /// them all if every one succeeded (else rolls them all back).
    async fn finish(mut self) -> Result<u64, PgError> {
        for copy in &mut self.open {
            if self.options.format == CopyFormat::Binary {
                copy.batch.put_slice(sql::BINARY_TRAILER);
            }
            let data = copy.batch.split().freeze();
            copy.chan.send(&Request::CopyData(data)).await?;
            copy.chan.send(&Request::CopyDone).await?;
        }
        let replies = join_all(self.open.iter_mut().map(|c| copy_reply(c.chan.as_mut()))).await;
        let failed = replies.iter().find_map(|r| r.as_ref().err().cloned());
        if let Some(block) = self.block.take() {
            // Every reply was read to its end: the connections are clean.
            for copy in self.open.drain(..) {
                block.put_back(copy.shard, copy.chan);
            }
            return match failed {
                Some(e) => Err(e),
                None => Ok(replies.into_iter().flatten().sum()),
            };
        }
        if let Some(e) = failed {
            self.end_all("ROLLBACK").await;
            return Err(e);
        }
        let total = replies.into_iter().flatten().sum();
        let chans = std::mem::take(&mut self.open)
            .into_iter()
            .map(|c| (c.shard, c.chan))
            .collect();
        txn::commit(self.cluster, chans).await?;
        Ok(total)
    }

    /// Runs COMMIT or ROLLBACK on every shard's connection.
    async fn end_all(&mut self, word: &str) -> Vec<Result<String, PgError>> {
        join_all(
            self.open
                .iter_mut()
                .map(|c| run_simple(c.chan.as_mut(), word)),
        )
        .await
    }

    /// After an error: fails every shard's COPY so nothing is applied.
    async fn abort(&mut self, reason: &str) {
        for copy in &mut self.open {
            if copy
                .chan
                .send(&Request::CopyFail(reason.to_string()))
                .await
                .is_ok()
            {
                copy_reply(copy.chan.as_mut()).await.ok();
            }
        }
        if self.block.is_none() {
            self.end_all("ROLLBACK").await;
        }
    }
}

/// A shard's reply to CopyDone or CopyFail: its row count or its error.
async fn copy_reply(chan: &mut dyn ShardChannel) -> Result<u64, PgError> {
    let mut rows = 0;
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::CommandComplete(tag) => rows = tag_count(&tag).unwrap_or(0),
            BackendMessage::Error(e) => error = error.or(Some(e)),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    error.map_or(Ok(rows), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_goes_before_the_line_terminator() {
        assert_eq!(
            &line_with_field(b"a\tb\r\n", b'\t', b"7")[..],
            b"a\tb\t7\r\n"
        );
        assert_eq!(&line_with_field(b"a,b\n", b',', b"7")[..], b"a,b,7\n");
        assert_eq!(&line_with_field(b"a", b',', b"7")[..], b"a,7");
    }
}
