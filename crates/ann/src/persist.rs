//! Index files: a fixed header, then one checksummed payload.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"PGVSANN\0"
//!      8     4  format version (u32 LE), currently 1
//!     12     4  index kind tag (u32 LE), chosen by the index module
//!     16     8  payload length in bytes (u64 LE)
//!     24     4  CRC-32 of the payload (u32 LE)
//!     28     4  CRC-32 of bytes 0..28 (u32 LE)
//!     32     …  payload: the index's arrays, little-endian, loaded as they are
//! ```
//!
//! Files are written to a temporary name, synced, then renamed, so a crash
//! leaves either the old file or the new one. Every read is bounds-checked: a
//! damaged file is an [`ErrorKind::DataCorrupted`] error naming the file.

use crate::error::{AnnError, ErrorKind, Result};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"PGVSANN\0";
const HEADER_LEN: usize = 32;
/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Writes `payload` under a header tagged `kind`, atomically replacing `path`.
pub fn write_file(path: &Path, kind: u32, payload: &[u8]) -> Result<()> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&kind.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());

    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&header)?;
        f.write_all(payload)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads the payload of an index file written with `kind`, checking the
/// header, version, length and both checksums.
pub fn read_file(path: &Path, kind: u32) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    let bad = |why: &str| {
        AnnError::corrupted(format!(
            "index file \"{}\" is damaged: {why}",
            path.display()
        ))
    };
    if bytes.len() < HEADER_LEN {
        return Err(bad("shorter than its header"));
    }
    if &bytes[0..8] != MAGIC {
        return Err(bad("not a pgvshard index file"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    if crc32fast::hash(&bytes[0..28]) != u32_at(28) {
        return Err(bad("header checksum mismatch"));
    }
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(AnnError::new(
            ErrorKind::DataCorrupted,
            format!(
                "index file \"{}\" has format version {version}, this build reads version {FORMAT_VERSION}",
                path.display()
            ),
        ));
    }
    if u32_at(12) != kind {
        return Err(bad("it holds a different kind of index"));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    if len != (bytes.len() - HEADER_LEN) as u64 {
        return Err(bad("truncated or extended payload"));
    }
    let payload = &bytes[HEADER_LEN..];
    if crc32fast::hash(payload) != u32_at(24) {
        return Err(bad("payload checksum mismatch"));
    }
    Ok(payload.to_vec())
}

/// Appends little-endian values to a payload.
#[derive(Debug, Default)]
pub struct PayloadWriter {
    buf: Vec<u8>,
}

impl PayloadWriter {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a u8.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends an f32.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a length-prefixed slice of u32.
    pub fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    /// Appends a length-prefixed slice of f32.
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    /// Appends a length-prefixed byte slice.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// The finished payload.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads little-endian values back from a payload; running past the end is a
/// [`ErrorKind::DataCorrupted`] error, never a panic.
#[derive(Debug)]
pub struct PayloadReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> PayloadReader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        PayloadReader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| AnnError::corrupted("index payload ends early"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn len_prefix(&mut self, elem: usize) -> Result<usize> {
        let n = self.u64()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(elem as u64) > remaining {
            return Err(AnnError::corrupted(
                "index payload has an impossible length",
            ));
        }
        Ok(n as usize)
    }
    /// Reads a u8.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    /// Reads a u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// Reads an f32.
    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    /// Reads a length-prefixed slice of u32.
    pub fn u32s(&mut self) -> Result<Vec<u32>> {
        let n = self.len_prefix(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    /// Reads a length-prefixed slice of f32.
    pub fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len_prefix(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    /// Reads a length-prefixed byte slice.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len_prefix(1)?;
        self.take(n)
    }
    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(AnnError::corrupted("index payload has trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_file::TestFile;

    #[test]
    fn round_trip_and_every_single_byte_flip_is_detected() {
        let file = TestFile::new("ann-persist-flip", "index.bin");
        let path = file.path.clone();
        let mut w = PayloadWriter::new();
        w.u32s(&[1, 2, 3]);
        w.f32s(&[0.5, -1.0]);
        w.u8(9);
        write_file(&path, 7, &w.finish()).unwrap();
        let payload = read_file(&path, 7).unwrap();
        let mut r = PayloadReader::new(&payload);
        assert_eq!(r.u32s().unwrap(), vec![1, 2, 3]);
        assert_eq!(r.f32s().unwrap(), vec![0.5, -1.0]);
        assert_eq!(r.u8().unwrap(), 9);
        r.finish().unwrap();

        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let err = read_file(&path, 7).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted, "byte {i}: {err}");
        }
        for cut in [0, 5, 31, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert_eq!(
                read_file(&path, 7).unwrap_err().kind,
                ErrorKind::DataCorrupted
            );
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(
            read_file(&path, 8).unwrap_err().kind,
            ErrorKind::DataCorrupted
        );
    }

    #[test]
    fn reader_rejects_impossible_lengths() {
        let mut w = PayloadWriter::new();
        w.u64(u64::MAX);
        let p = w.finish();
        assert_eq!(
            PayloadReader::new(&p).u32s().unwrap_err().kind,
            ErrorKind::DataCorrupted
        );
    }
}
