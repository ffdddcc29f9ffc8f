//! Big-endian reading of PostgreSQL binary values (`pq_getmsgint`,
//! `pq_getmsgfloat4`, …) without panics: running out of bytes is an error,
//! as is anything left over once a value has been read.

use crate::error::{AnnError, ErrorKind, Result};

/// A cursor over one binary-format value.
pub(crate) struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> WireReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        WireReader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            // PostgreSQL raises this from pq_copymsgbytes/pq_getmsgint.
            return Err(AnnError::new(
                ErrorKind::ProtocolViolation,
                "insufficient data left in message",
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(u32::from_be_bytes(self.array()?)))
    }

    /// Fails if bytes remain, as PostgreSQL does after a binary parameter's
    /// receive function returns.
    pub(crate) fn finish(self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(AnnError::new(
                ErrorKind::InvalidBinaryRepresentation,
                "incorrect binary data format",
            ));
        }
        Ok(())
    }
}
