//! The write-ahead log: append-only segment files of checksummed records.
//!
//! ```text
//! <data dir>/wal/
//!   0000000000000000.wal    segment named by the LSN of its first record
//!   00000000010003A8.wal
//! segment := header (24 bytes) | frame* (see [`record`])
//! header  := magic "PGVSWAL\0" | version u32 | start LSN u64 | CRC-32 of the 20 bytes before
//! ```
//!
//! An LSN is a byte position in the stream of frames (segment headers do
//! not count), so the LSN of a frame is its segment's start LSN plus its
//! offset after the header, and the WAL's current LSN is where the next
//! frame goes. A record never spans two segments.

pub mod reader;
pub mod record;
pub mod stream;
pub mod writer;

use std::fmt;
use std::path::{Path, PathBuf};

/// A WAL position: a byte offset in the record stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    /// PostgreSQL's `pg_lsn` text form, e.g. `0/16B3748`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 as u32)
    }
}

const MAGIC: &[u8; 8] = b"PGVSWAL\0";
const VERSION: u32 = 2;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: usize = 24;

/// The file of the segment starting at `start`.
pub fn segment_path(dir: &Path, start: Lsn) -> PathBuf {
    dir.join(format!("{:016X}.wal", start.0))
}

/// The header of a segment starting at `start`.
fn segment_header(start: Lsn) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&start.0.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header claims `start`.
fn check_segment_header(bytes: &[u8], start: Lsn) -> Result<(), &'static str> {
    if bytes.len() < SEGMENT_HEADER {
        return Err("segment header cut short");
    }
    if bytes[..SEGMENT_HEADER] != segment_header(start) {
        return Err("segment header damaged or for another position");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_print_like_postgres() {
        assert_eq!(Lsn(0x16B3748).to_string(), "0/16B3748");
        assert_eq!(Lsn((1 << 32) | 0x10).to_string(), "1/10");
        assert!(check_segment_header(&segment_header(Lsn(5)), Lsn(5)).is_ok());
        assert!(check_segment_header(&segment_header(Lsn(5)), Lsn(6)).is_err());
    }
}
