//! `bit(n)`: PostgreSQL's fixed-length bit string, as pgvector uses it for
//! binary vectors. Text is the digits (`101`, or `B101` / `X5` as
//! PostgreSQL's `bit_in` also accepts); binary is PostgreSQL's varbit
//! layout:
//! ```text
//! int32 bit length | ceil(len / 8) bytes, first bit in the high bit of byte 0
//! ```
//! Bits past the length in the last byte are always zero.

use super::wire::WireReader;
use super::BIT_MAX_LEN;
use crate::error::{AnnError, ErrorKind, Result};
use std::cmp::Ordering;
use std::fmt;

/// A bit string of `len` bits packed high-bit first into `bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitVector {
    pub(crate) len: u32,
    pub(crate) bytes: Vec<u8>,
}

fn length_mismatch(bitlen: u64, typmod: u32) -> AnnError {
    AnnError::new(
        ErrorKind::StringDataLengthMismatch,
        format!("bit string length {bitlen} does not match type bit({typmod})"),
    )
}

impl BitVector {
    /// A bit string of `len` bits from `bytes` (exactly `ceil(len / 8)` of
    /// them); bits past `len` are cleared.
    pub fn new(len: u32, mut bytes: Vec<u8>) -> Result<Self> {
        if len > BIT_MAX_LEN || bytes.len() != len.div_ceil(8) as usize {
            return Err(AnnError::data(format!(
                "bit string of {len} bits needs {} bytes, not {}",
                len.div_ceil(8),
                bytes.len()
            )));
        }
        clear_padding(len, &mut bytes);
        Ok(BitVector { len, bytes })
    }

    /// A bit string from booleans.
    pub fn from_bits(bits: impl IntoIterator<Item = bool>) -> Self {
        let mut bytes = Vec::new();
        let mut len = 0u32;
        for b in bits {
            if len.is_multiple_of(8) {
                bytes.push(0);
            }
            if b {
                if let Some(last) = bytes.last_mut() {
                    *last |= 0x80 >> (len % 8);
                }
            }
            len += 1;
        }
        BitVector { len, bytes }
    }

    /// Number of bits.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True for the empty bit string.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bit `i` (0-based), if `i < len`.
    pub fn get(&self, i: u32) -> Option<bool> {
        (i < self.len).then(|| self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0)
    }

    /// The bit string an explicit cast to `bit(n)` makes: cut or padded
    /// with zeros on the right to exactly `n` bits.
    pub fn resized(&self, n: u32) -> BitVector {
        BitVector::from_bits((0..n).map(|i| self.get(i).unwrap_or(false)))
    }

    /// The typmod check a cast to `bit(n)` makes.
    pub fn check_dims(&self, expected: u32) -> Result<()> {
        if self.len != expected {
            return Err(length_mismatch(self.len as u64, expected));
        }
        Ok(())
    }

    /// Parses text input (`bit_in`): binary digits, or `B…`/`X…`.
    pub fn parse(lit: &str, typmod: Option<u32>) -> Result<Self> {
        let (hex, digits) = match lit.as_bytes().first() {
            Some(b'b' | b'B') => (false, &lit[1..]),
            Some(b'x' | b'X') => (true, &lit[1..]),
            _ => (false, lit),
        };
        let bitlen = if hex {
            if digits.len() as u64 > (BIT_MAX_LEN / 4) as u64 {
                return Err(AnnError::limit(format!(
                    "bit string length exceeds the maximum allowed ({BIT_MAX_LEN})"
                )));
            }
            digits.len() as u64 * 4
        } else {
            digits.len() as u64
        };
        if let Some(t) = typmod.filter(|t| *t as u64 != bitlen) {
            return Err(length_mismatch(bitlen, t));
        }
        let mut out = BitVector {
            len: bitlen as u32,
            bytes: vec![0; (bitlen as usize).div_ceil(8)],
        };
        let mut bit = 0usize;
        for c in digits.chars() {
            let (value, width) = if hex {
                let v = c.to_digit(16).ok_or_else(|| {
                    AnnError::new(
                        ErrorKind::InvalidTextRepresentation,
                        format!("\"{c}\" is not a valid hexadecimal digit"),
                    )
                })?;
                (v as u8, 4)
            } else {
                match c {
                    '0' => (0, 1),
                    '1' => (1, 1),
                    _ => {
                        return Err(AnnError::new(
                            ErrorKind::InvalidTextRepresentation,
                            format!("\"{c}\" is not a valid binary digit"),
                        ))
                    }
                }
            };
            // A nibble or a bit, placed high-bit first.
            let shift = 8 - width - (bit % 8);
            out.bytes[bit / 8] |= value << shift;
            bit += width;
        }
        Ok(out)
    }

    /// Text output (`bit_out`): the digits.
    pub fn to_text(&self) -> String {
        (0..self.len)
            .map(|i| if self.get(i) == Some(true) { '1' } else { '0' })
            .collect()
    }

    /// Reads the binary format (`bit_recv`), checking against `typmod`.
    pub fn from_binary(buf: &[u8], typmod: Option<u32>) -> Result<Self> {
        let mut r = WireReader::new(buf);
        let bitlen = r.i32()?;
        if bitlen < 0 || bitlen as u32 > BIT_MAX_LEN {
            return Err(AnnError::new(
                ErrorKind::InvalidBinaryRepresentation,
                "invalid length in external bit string",
            ));
        }
        let len = bitlen as u32;
        if let Some(t) = typmod.filter(|t| *t != len) {
            return Err(length_mismatch(len as u64, t));
        }
        let mut bytes = r.bytes(len.div_ceil(8) as usize)?.to_vec();
        r.finish()?;
        clear_padding(len, &mut bytes);
        Ok(BitVector { len, bytes })
    }

    /// Appends the binary format (`bit_send`).
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.bytes);
    }

    /// The binary format as a new buffer.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_binary(&mut out);
        out
    }

    /// PostgreSQL's `bitcmp`: bytes first, then the shorter string first.
    pub fn cmp_pg(&self, other: &Self) -> Ordering {
        let n = self.bytes.len().min(other.bytes.len());
        self.bytes[..n]
            .cmp(&other.bytes[..n])
            .then(self.len.cmp(&other.len))
    }
}

/// PostgreSQL's `VARBIT_PAD`: zero the bits past `len` in the last byte.
fn clear_padding(len: u32, bytes: &mut [u8]) {
    let pad = (8 - len % 8) % 8;
    if let Some(last) = bytes.last_mut() {
        *last &= 0xffu8 << pad;
    }
}

impl fmt::Display for BitVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn parses_postgres_bit_text() {
        let b = BitVector::parse("101", Some(3)).unwrap();
        assert_eq!(b.bytes(), &[0b1010_0000]);
        assert_eq!(b.to_text(), "101");
        assert_eq!(BitVector::parse("B1", None).unwrap().to_text(), "1");
        assert_eq!(BitVector::parse("X5f", None).unwrap().to_text(), "01011111");
        assert_eq!(BitVector::parse("", None).unwrap().len(), 0);
        assert_eq!(BitVector::parse("x1", Some(4)).unwrap().bytes(), &[0x10]);
    }

    #[test]
    fn errors_match_postgres() {
        let e = BitVector::parse("101", Some(4)).unwrap_err();
        assert_eq!(e.message, "bit string length 3 does not match type bit(4)");
        assert_eq!(e.kind.sqlstate(), "22026");
        let e = BitVector::parse("12", None).unwrap_err();
        assert_eq!(e.message, "\"2\" is not a valid binary digit");
        assert_eq!(e.kind.sqlstate(), "22P02");
        assert_eq!(
            BitVector::parse("1é", None).unwrap_err().message,
            "\"é\" is not a valid binary digit"
        );
        assert_eq!(
            BitVector::parse("xg", None).unwrap_err().message,
            "\"g\" is not a valid hexadecimal digit"
        );
        let e = BitVector::from_binary(&(-1i32).to_be_bytes(), None).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("22P03", "invalid length in external bit string")
        );
        let e = BitVector::from_binary(&[0, 0, 0, 3, 0xff], Some(4)).unwrap_err();
        assert_eq!(e.message, "bit string length 3 does not match type bit(4)");
        assert!(BitVector::from_binary(&[0, 0, 0, 9, 0xff], None).is_err());
        assert!(BitVector::from_binary(&[0x7f, 0xff, 0xff, 0xf8], None).is_err());
        assert!(BitVector::new(9, vec![0]).is_err());
    }

    #[test]
    fn round_trips_and_pads() {
        let mut rng = Rng::new(3);
        for len in [1u32, 15, 17, 1539, 64_000] {
            let b = BitVector::from_bits((0..len).map(|i| rng.below(3 + (i % 2) as u64) == 0));
            assert_eq!(BitVector::parse(&b.to_text(), Some(len)).unwrap(), b);
            assert_eq!(
                BitVector::from_binary(&b.to_binary(), Some(len)).unwrap(),
                b
            );
        }
        // Receive clears stray padding bits, as VARBIT_PAD does.
        let b = BitVector::from_binary(&[0, 0, 0, 3, 0xff], None).unwrap();
        assert_eq!(b.bytes(), &[0xe0]);
        assert_eq!(b.to_binary(), vec![0, 0, 0, 3, 0xe0]);
        assert_eq!(
            BitVector::parse("10", None)
                .unwrap()
                .cmp_pg(&BitVector::parse("100", None).unwrap()),
            Ordering::Less
        );
        assert_eq!(
            BitVector::parse("11", None)
                .unwrap()
                .cmp_pg(&BitVector::parse("100", None).unwrap()),
            Ordering::Greater
        );
    }
}
