//! WAL records and their checksummed framing.
//!
//! ```text
//! frame := len u32 | crc u32 | body (len bytes)
//!          crc = CRC-32 of (len as 4 LE bytes ++ body), so a damaged
//!          length is caught as surely as a damaged body
//! body  := tag u8 | payload (row_codec encoding)
//!   1 create table  table_def
//!   2 drop table    table u32
//!   3 add column    table u32, column, fill value
//!   4 create index  table u32, index_def
//!   5 drop index    table u32, index u32
//!   6 insert        table u32, slot u32, row
//!   7 update        table u32, slot u32, row
//!   8 delete        table u32, slot u32
//!   9 truncate      table u32
//!  10 commit        (empty)
//!  11 prepare       gid, owner, database, time, changes (see prepared)
//!  12 finish        gid: a prepared transaction decided
//! ```
//!
//! A transaction is its records followed by one commit record, written
//! together; replay applies a transaction only when its commit is read.

use crate::shard::datum::Datum;
use crate::shard::storage::catalog::{ColumnDef, IndexDef, TableDef};
use crate::shard::storage::prepared::PrepareRecord;
use crate::shard::storage::row_codec::{ByteReader, ByteWriter, Decoded, Malformed};

/// Bytes before a record's body.
pub const FRAME_HEADER: usize = 8;
/// Largest body accepted when reading (a longer length is damage).
pub const MAX_BODY: usize = 1 << 30;

/// One logged change. Tables and indexes are named by oid, rows by slot.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// `CREATE TABLE`.
    CreateTable(TableDef),
    /// `DROP TABLE`.
    DropTable {
        /// Table oid.
        table: u32,
    },
    /// `ALTER TABLE … ADD COLUMN`, with the value existing rows get.
    AddColumn {
        /// Table oid.
        table: u32,
        /// The new column.
        column: ColumnDef,
        /// Value for rows already in the table.
        fill: Datum,
    },
    /// `CREATE INDEX`.
    CreateIndex {
        /// Table oid.
        table: u32,
        /// The index.
        index: IndexDef,
    },
    /// `DROP INDEX`.
    DropIndex {
        /// Table oid.
        table: u32,
        /// Index oid.
        index: u32,
    },
    /// A row inserted at `slot`.
    Insert {
        /// Table oid.
        table: u32,
        /// Row slot.
        slot: u32,
        /// Column values.
        row: Vec<Datum>,
    },
    /// The row at `slot` replaced.
    Update {
        /// Table oid.
        table: u32,
        /// Row slot.
        slot: u32,
        /// New column values.
        row: Vec<Datum>,
    },
    /// The row at `slot` deleted.
    Delete {
        /// Table oid.
        table: u32,
        /// Row slot.
        slot: u32,
    },
    /// `TRUNCATE`.
    Truncate {
        /// Table oid.
        table: u32,
    },
    /// End of a transaction: everything before it since the previous
    /// commit is applied together.
    Commit,
    /// `PREPARE TRANSACTION`: the write set kept aside until decided.
    Prepare(Box<PrepareRecord>),
    /// `COMMIT PREPARED` (followed by the transaction's records) or
    /// `ROLLBACK PREPARED`: the prepared transaction `gid` is no more.
    Finish {
        /// The transaction's identifier.
        gid: String,
    },
}

impl WalRecord {
    /// Appends the framed record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // The body is written in place after room for its length and CRC.
        let frame = out.len();
        let body = frame + 8;
        let mut w = ByteWriter {
            buf: std::mem::take(out),
        };
        w.buf.resize(body, 0);
        match self {
            WalRecord::CreateTable(def) => {
                w.u8(1);
                w.table_def(def);
            }
            WalRecord::DropTable { table } => {
                w.u8(2);
                w.u32(*table);
            }
            WalRecord::AddColumn {
                table,
                column,
                fill,
            } => {
                w.u8(3);
                w.u32(*table);
                w.column(column);
                w.value(fill);
            }
            WalRecord::CreateIndex { table, index } => {
                w.u8(4);
                w.u32(*table);
                w.index_def(index);
            }
            WalRecord::DropIndex { table, index } => {
                w.u8(5);
                w.u32(*table);
                w.u32(*index);
            }
            WalRecord::Insert { table, slot, row } | WalRecord::Update { table, slot, row } => {
                w.u8(if matches!(self, WalRecord::Insert { .. }) {
                    6
                } else {
                    7
                });
                w.u32(*table);
                w.u32(*slot);
                w.row(row);
            }
            WalRecord::Delete { table, slot } => {
                w.u8(8);
                w.u32(*table);
                w.u32(*slot);
            }
            WalRecord::Truncate { table } => {
                w.u8(9);
                w.u32(*table);
            }
            WalRecord::Commit => w.u8(10),
            WalRecord::Prepare(rec) => {
                w.u8(11);
                rec.encode(&mut w);
            }
            WalRecord::Finish { gid } => {
                w.u8(12);
                w.str(gid);
            }
        }
        let len = ((w.buf.len() - body) as u32).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len);
        crc.update(&w.buf[body..]);
        w.buf[frame..frame + 4].copy_from_slice(&len);
        w.buf[frame + 4..body].copy_from_slice(&crc.finalize().to_le_bytes());
        *out = w.buf;
    }

    /// Decodes a record body (the bytes after the frame header).
    pub fn decode(body: &[u8]) -> Decoded<WalRecord> {
        let mut r = ByteReader::new(body);
        let rec = match r.u8()? {
            1 => WalRecord::CreateTable(r.table_def()?),
            2 => WalRecord::DropTable { table: r.u32()? },
            3 => WalRecord::AddColumn {
                table: r.u32()?,
                column: r.column()?,
                fill: r.value()?,
            },
            4 => WalRecord::CreateIndex {
                table: r.u32()?,
                index: r.index_def()?,
            },
            5 => WalRecord::DropIndex {
                table: r.u32()?,
                index: r.u32()?,
            },
            6 => WalRecord::Insert {
                table: r.u32()?,
                slot: r.u32()?,
                row: r.row()?,
            },
            7 => WalRecord::Update {
                table: r.u32()?,
                slot: r.u32()?,
                row: r.row()?,
            },
            8 => WalRecord::Delete {
                table: r.u32()?,
                slot: r.u32()?,
            },
            9 => WalRecord::Truncate { table: r.u32()? },
            10 => WalRecord::Commit,
            11 => WalRecord::Prepare(Box::new(PrepareRecord::decode(&mut r)?)),
            12 => WalRecord::Finish { gid: r.str()? },
            t => return Err(Malformed(format!("unknown record type {t}"))),
        };
        r.finish()?;
        Ok(rec)
    }
}

/// What the bytes at a position hold.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A whole record whose checksum matches: its body and total length.
    Whole(&'a [u8], usize),
    /// No bytes left.
    End,
    /// A partial or damaged record, and why.
    Damaged(&'static str),
}

/// Reads the frame at the start of `buf`.
pub fn parse_frame(buf: &[u8]) -> Frame<'_> {
    if buf.is_empty() {
        return Frame::End;
    }
    if buf.len() < FRAME_HEADER {
        return Frame::Damaged("partial record header");
    }
    let len_bytes = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_BODY {
        return Frame::Damaged("impossible record length");
    }
    let Some(body) = buf.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Frame::Damaged("record cut short");
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(body);
    if h.finalize() != crc {
        return Frame::Damaged("checksum mismatch");
    }
    Frame::Whole(body, FRAME_HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Value;

    #[test]
    fn records_round_trip_through_frames() {
        let recs = vec![
            WalRecord::Insert {
                table: 3,
                slot: 9,
                row: vec![Some(Value::Int8(1)), Some(Value::Text("a".into()))],
            },
            WalRecord::Delete { table: 3, slot: 2 },
            WalRecord::Commit,
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.encode(&mut buf);
        }
        let mut pos = 0;
        let mut back = Vec::new();
        while let Frame::Whole(body, n) = parse_frame(&buf[pos..]) {
            back.push(WalRecord::decode(body).unwrap());
            pos += n;
        }
        assert_eq!(back, recs);
        assert_eq!(pos, buf.len());
        assert_eq!(
            parse_frame(&buf[..5]),
            Frame::Damaged("partial record header")
        );
        let mut bad = buf.clone();
        bad[10] ^= 1;
        assert_eq!(parse_frame(&bad), Frame::Damaged("checksum mismatch"));
    }
}
