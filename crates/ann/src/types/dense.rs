//! `vector` and `halfvec`: text (`[1,2,3]`) and binary formats.
//!
//! Binary layout (pgvector's `vector_send`/`halfvec_send`):
//! ```text
//! int16 dim | int16 unused (0) | dim × element, big-endian (float4 or float2)
//! ```

use super::element::Element;
use super::float_text::{is_c_space, push_shortest, scan_float};
use super::wire::WireReader;
use super::{check_expected_dim, invalid_syntax, out_of_range, DENSE_MAX_DIM};
use crate::error::{AnnError, Result};
use half::f16;
use std::cmp::Ordering;
use std::fmt;

/// A dense pgvector value: at least one, at most 16,000 finite elements.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseVector<E: Element>(pub(crate) Vec<E>);

/// pgvector's `vector`.
pub type Vector = DenseVector<f32>;
/// pgvector's `halfvec`.
pub type HalfVector = DenseVector<f16>;

/// pgvector's `CheckDim` for `E`'s type.
pub(crate) fn check_dim<E: Element>(dim: i64) -> Result<()> {
    if dim < 1 {
        return Err(AnnError::data(format!(
            "{} must have at least 1 dimension",
            E::TYPE_NAME
        )));
    }
    if dim > DENSE_MAX_DIM as i64 {
        return Err(AnnError::limit(format!(
            "{} cannot have more than {DENSE_MAX_DIM} dimensions",
            E::TYPE_NAME
        )));
    }
    Ok(())
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    i
}

impl<E: Element> DenseVector<E> {
    /// A value from its elements, with pgvector's dimension and element
    /// checks.
    pub fn new(elements: Vec<E>) -> Result<Self> {
        check_dim::<E>(elements.len() as i64)?;
        for e in &elements {
            e.check()?;
        }
        Ok(DenseVector(elements))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[E] {
        &self.0
    }

    /// The elements, by value.
    pub fn into_vec(self) -> Vec<E> {
        self.0
    }

    /// Number of dimensions (`vector_dims`).
    pub fn dims(&self) -> usize {
        self.0.len()
    }

    /// The typmod check a cast to `vector(n)` makes.
    pub fn check_dims(&self, expected: u32) -> Result<()> {
        check_expected_dim(Some(expected), self.dims())
    }

    /// Parses text input (`vector_in`), checking against `typmod` if given.
    pub fn parse(lit: &str, typmod: Option<u32>) -> Result<Self> {
        let name = E::TYPE_NAME;
        let s = lit.as_bytes();
        let mut pt = skip_space(s, 0);
        if s.get(pt) != Some(&b'[') {
            return Err(
                invalid_syntax(name, lit).with_detail("Vector contents must start with \"[\".")
            );
        }
        pt = skip_space(s, pt + 1);
        if s.get(pt) == Some(&b']') {
            return Err(AnnError::data(format!(
                "{name} must have at least 1 dimension"
            )));
        }
        let mut elements = Vec::new();
        loop {
            if elements.len() == DENSE_MAX_DIM {
                check_dim::<E>(DENSE_MAX_DIM as i64 + 1)?;
            }
            pt = skip_space(s, pt);
            let scanned = scan_float(&s[pt..]).ok_or_else(|| invalid_syntax(name, lit))?;
            let value = scanned.value;
            let e = E::from_f32_unchecked(value);
            if scanned.overflow || (e.to_f32().is_infinite() && !value.is_infinite()) {
                // The token is ASCII, so these are char boundaries.
                let token = lit.get(pt..pt + scanned.len).unwrap_or(lit);
                return Err(out_of_range(token, name));
            }
            e.check()?;
            elements.push(e);
            pt = skip_space(s, pt + scanned.len);
            match s.get(pt) {
                Some(b',') => pt += 1,
                Some(b']') => {
                    pt += 1;
                    break;
                }
                _ => return Err(invalid_syntax(name, lit)),
            }
        }
        if skip_space(s, pt) != s.len() {
            return Err(invalid_syntax(name, lit).with_detail("Junk after closing right brace."));
        }
        check_expected_dim(typmod, elements.len())?;
        Ok(DenseVector(elements))
    }

    /// Text output (`vector_out`): `[1,2.5,3e+38]`.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(2 + self.0.len() * 12);
        out.push('[');
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_shortest(&mut out, e.to_f32());
        }
        out.push(']');
        out
    }

    /// Reads the binary format (`vector_recv`), checking against `typmod`.
    pub fn from_binary(buf: &[u8], typmod: Option<u32>) -> Result<Self> {
        let mut r = WireReader::new(buf);
        let dim = r.i16()?;
        let unused = r.i16()?;
        check_dim::<E>(dim as i64)?;
        check_expected_dim(typmod, dim as usize)?;
        if unused != 0 {
            return Err(AnnError::data(format!(
                "expected unused to be 0, not {unused}"
            )));
        }
        let n = dim as usize;
        let elements = match r.remaining() >= n * E::WIRE_SIZE {
            // The common case, in vectorized passes without per-element
            // bounds checks or early exits; the first bad element fails as
            // in the loop below.
            true => {
                let elements = E::read_wire(r.bytes(n * E::WIRE_SIZE)?);
                let finite = elements
                    .iter()
                    .fold(true, |ok, e| ok & e.to_f32().is_finite());
                if !finite {
                    elements.iter().try_for_each(|e| e.check())?;
                }
                elements
            }
            // Short input: element by element, so a bad element before
            // the end fails with its own message, as pgvector's loop does.
            false => {
                let mut elements = Vec::with_capacity(n);
                for _ in 0..dim {
                    let e = E::from_wire(r.bytes(E::WIRE_SIZE)?);
                    e.check()?;
                    elements.push(e);
                }
                elements
            }
        };
        r.finish()?;
        Ok(DenseVector(elements))
    }

    /// Appends the binary format (`vector_send`).
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        out.reserve(4 + self.0.len() * E::WIRE_SIZE);
        // dims() <= 16,000, so it fits the int16 field.
        out.extend_from_slice(&(self.0.len() as i16).to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        for e in &self.0 {
            e.push_wire(out);
        }
    }

    /// The binary format as a new buffer.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_binary(&mut out);
        out
    }

    /// pgvector's btree order (`vector_cmp`): element by element, then the
    /// shorter vector first.
    pub fn cmp_pg(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(&other.0) {
            let (a, b) = (a.to_f32(), b.to_f32());
            if a < b {
                return Ordering::Less;
            }
            if a > b {
                return Ordering::Greater;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl<E: Element> fmt::Display for DenseVector<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::rng::Rng;

    fn err_of<T: fmt::Debug>(r: Result<T>) -> (ErrorKind, String, Option<String>) {
        let e = r.unwrap_err();
        (e.kind, e.message, e.detail)
    }

    #[test]
    fn parses_pgvector_text() {
        let v = Vector::parse(" [ 1 , -2.5e1,3 ] \n", None).unwrap();
        assert_eq!(v.as_slice(), &[1.0, -25.0, 3.0]);
        assert_eq!(v.to_text(), "[1,-25,3]");
        assert_eq!(Vector::parse("[1,2]", Some(2)).unwrap().dims(), 2);
        let h = HalfVector::parse("[0.1,1,1e-8]", None).unwrap();
        assert_eq!(h.to_text(), "[0.099975586,1,0]");
        assert_eq!(
            HalfVector::parse("[65504,-65504]", None).unwrap().to_text(),
            "[65504,-65504]"
        );
    }

    #[test]
    fn text_errors_match_pgvector() {
        use ErrorKind::*;
        let cases: Vec<(&str, ErrorKind, &str, Option<&str>)> = vec![
            (
                "1,2]",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"1,2]\"",
                Some("Vector contents must start with \"[\"."),
            ),
            (
                "[]",
                DataException,
                "vector must have at least 1 dimension",
                None,
            ),
            (
                "[ ]",
                DataException,
                "vector must have at least 1 dimension",
                None,
            ),
            (
                "[1,2",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"[1,2\"",
                None,
            ),
            (
                "[1,]",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"[1,]\"",
                None,
            ),
            (
                "[1 2]",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"[1 2]\"",
                None,
            ),
            (
                "[a]",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"[a]\"",
                None,
            ),
            (
                "[1]x",
                InvalidTextRepresentation,
                "invalid input syntax for type vector: \"[1]x\"",
                Some("Junk after closing right brace."),
            ),
            ("[NaN]", DataException, "NaN not allowed in vector", None),
            (
                "[-Infinity]",
                DataException,
                "infinite value not allowed in vector",
                None,
            ),
            (
                "[1e39]",
                NumericValueOutOfRange,
                "\"1e39\" is out of range for type vector",
                None,
            ),
        ];
        for (lit, kind, msg, detail) in cases {
            assert_eq!(
                err_of(Vector::parse(lit, None)),
                (kind, msg.to_string(), detail.map(String::from)),
                "{lit}"
            );
        }
        assert_eq!(
            err_of(Vector::parse("[1,2]", Some(3))),
            (DataException, "expected 3 dimensions, not 2".into(), None)
        );
        let long = format!("[{}]", vec!["1"; 16_001].join(","));
        assert_eq!(
            err_of(Vector::parse(&long, None)),
            (
                ProgramLimitExceeded,
                "vector cannot have more than 16000 dimensions".into(),
                None
            )
        );
        assert_eq!(
            err_of(HalfVector::parse("[65520]", None)),
            (
                NumericValueOutOfRange,
                "\"65520\" is out of range for type halfvec".into(),
                None
            )
        );
        assert_eq!(
            err_of(HalfVector::parse("[]", None)).1,
            "halfvec must have at least 1 dimension"
        );
        assert_eq!(
            err_of(HalfVector::parse("[nan]", None)).1,
            "NaN not allowed in halfvec"
        );
        assert_eq!(
            err_of(HalfVector::parse("x", None)).1,
            "invalid input syntax for type halfvec: \"x\""
        );
    }

    fn random_vector(rng: &mut Rng, dim: usize) -> Vec<f32> {
        // Clustered around a few centres, with a spread of magnitudes.
        let centre = (rng.below(3) as f64 - 1.0) * 10.0;
        (0..dim)
            .map(|_| ((centre + rng.normal()) * 10f64.powi(rng.below(7) as i32 - 3)) as f32)
            .collect()
    }

    #[test]
    fn round_trips_text_and_binary_at_awkward_lengths() {
        let mut rng = Rng::new(11);
        for dim in [1, 15, 17, 1539, 16_000] {
            let v = Vector::new(random_vector(&mut rng, dim)).unwrap();
            assert_eq!(Vector::parse(&v.to_text(), Some(dim as u32)).unwrap(), v);
            let bin = v.to_binary();
            assert_eq!(bin.len(), 4 + 4 * dim);
            assert_eq!(Vector::from_binary(&bin, None).unwrap(), v);
            let h =
                HalfVector::new(v.as_slice().iter().map(|x| f16::from_f32(*x)).collect()).unwrap();
            assert_eq!(HalfVector::parse(&h.to_text(), None).unwrap(), h);
            assert_eq!(
                HalfVector::from_binary(&h.to_binary(), Some(dim as u32)).unwrap(),
                h
            );
        }
    }

    #[test]
    fn binary_layout_matches_hand_built_bytes() {
        let mut buf = vec![0, 2, 0, 0];
        buf.extend_from_slice(&1.5f32.to_be_bytes());
        buf.extend_from_slice(&(-2.0f32).to_be_bytes());
        let v = Vector::from_binary(&buf, Some(2)).unwrap();
        assert_eq!(v.as_slice(), &[1.5, -2.0]);
        assert_eq!(v.to_binary(), buf);

        let half = [0u8, 1, 0, 0, 0x3c, 0x00]; // f16 1.0 is 0x3c00
        let h = HalfVector::from_binary(&half, None).unwrap();
        assert_eq!(h.as_slice(), &[f16::ONE]);
        assert_eq!(h.to_binary(), half);
    }

    #[test]
    fn binary_errors_never_panic() {
        let e = |b: &[u8]| err_of(Vector::from_binary(b, None));
        assert_eq!(e(&[0, 1]).1, "insufficient data left in message");
        assert_eq!(e(&[0, 1, 0, 0, 0]).1, "insufficient data left in message");
        assert_eq!(e(&[0, 0, 0, 0]).1, "vector must have at least 1 dimension");
        assert_eq!(
            e(&[0xff, 0xff, 0, 0]).1,
            "vector must have at least 1 dimension"
        );
        assert_eq!(
            e(&[0x3e, 0x81, 0, 0]),
            (
                ErrorKind::ProgramLimitExceeded,
                "vector cannot have more than 16000 dimensions".into(),
                None
            )
        );
        assert_eq!(
            e(&[0, 1, 0, 7, 0, 0, 0, 0]).1,
            "expected unused to be 0, not 7"
        );
        let mut nan = vec![0, 1, 0, 0];
        nan.extend_from_slice(&f32::NAN.to_be_bytes());
        assert_eq!(e(&nan).1, "NaN not allowed in vector");
        let mut trailing = vec![0, 1, 0, 0, 0, 0, 0, 0];
        trailing.push(1);
        assert_eq!(e(&trailing).0, ErrorKind::InvalidBinaryRepresentation);
        assert_eq!(
            err_of(Vector::from_binary(&[0, 1, 0, 0, 0, 0, 0, 0], Some(2))).1,
            "expected 2 dimensions, not 1"
        );
        let inf_half = [0u8, 1, 0, 0, 0x7c, 0x00];
        assert_eq!(
            err_of(HalfVector::from_binary(&inf_half, None)).1,
            "infinite value not allowed in halfvec"
        );
        // The first bad element wins, whether or not the input is short.
        let mut bad = vec![0, 3, 0, 0];
        for x in [1.0, f32::INFINITY, f32::NAN] {
            bad.extend_from_slice(&x.to_be_bytes());
        }
        assert_eq!(e(&bad).1, "infinite value not allowed in vector");
        assert_eq!(e(&bad[..10]).1, "insufficient data left in message");
        assert_eq!(e(&bad[..12]).1, "infinite value not allowed in vector");
        bad[1] = 4;
        assert_eq!(e(&bad).1, "infinite value not allowed in vector");
        // Every truncation of a valid value fails cleanly.
        let good = Vector::new(vec![1.0, 2.0, 3.0]).unwrap().to_binary();
        for n in 0..good.len() {
            assert!(Vector::from_binary(&good[..n], None).is_err());
        }
    }

    #[test]
    fn order_is_pgvector_btree_order() {
        let v = |s: &str| Vector::parse(s, None).unwrap();
        assert_eq!(v("[1,2]").cmp_pg(&v("[1,2,3]")), Ordering::Less);
        assert_eq!(v("[1,3]").cmp_pg(&v("[1,2,3]")), Ordering::Greater);
        assert_eq!(v("[-0]").cmp_pg(&v("[0]")), Ordering::Equal);
        assert_eq!(
            v("[1,2]").check_dims(3).unwrap_err().message,
            "expected 3 dimensions, not 2"
        );
    }
}
