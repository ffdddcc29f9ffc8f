//! `sparsevec`: text (`{1:1.5,3:2}/5`, 1-based indices) and binary formats.
//!
//! Binary layout (pgvector's `sparsevec_send`):
//! ```text
//! int32 dim | int32 nnz | int32 unused (0) | nnz × int32 index (0-based) | nnz × float4
//! ```
//! all big-endian.

use super::float_text::{is_c_space, push_shortest, scan_float};
use super::wire::WireReader;
use super::{
    check_expected_dim, check_f32_element, invalid_syntax, out_of_range, SPARSEVEC_MAX_DIM,
    SPARSEVEC_MAX_NNZ,
};
use crate::error::{AnnError, Result};
use std::cmp::Ordering;
use std::fmt;

const NAME: &str = "sparsevec";

/// A sparse vector: `dim` dimensions (1 ..= 1e9), at most 16,000 non-zero
/// finite values at strictly increasing 0-based indices below `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseVector {
    pub(crate) dim: u32,
    pub(crate) indices: Vec<u32>,
    pub(crate) values: Vec<f32>,
}

/// pgvector's `CheckDim` for sparsevec.
pub(crate) fn check_dim(dim: i64) -> Result<()> {
    if dim < 1 {
        return Err(AnnError::data("sparsevec must have at least 1 dimension"));
    }
    if dim > SPARSEVEC_MAX_DIM as i64 {
        return Err(AnnError::limit(format!(
            "sparsevec cannot have more than {SPARSEVEC_MAX_DIM} dimensions"
        )));
    }
    Ok(())
}

/// pgvector's `CheckNnz`.
fn check_nnz(nnz: i64, dim: i64) -> Result<()> {
    if nnz < 0 {
        return Err(AnnError::data(
            "sparsevec cannot have negative number of elements",
        ));
    }
    if nnz > SPARSEVEC_MAX_NNZ as i64 {
        return Err(too_many_nnz());
    }
    if nnz > dim {
        return Err(AnnError::limit(
            "sparsevec cannot have more elements than dimensions",
        ));
    }
    Ok(())
}

fn too_many_nnz() -> AnnError {
    AnnError::limit(format!(
        "sparsevec cannot have more than {SPARSEVEC_MAX_NNZ} non-zero elements"
    ))
}

/// pgvector's `CheckIndex` for `indices[i]`.
fn check_index(indices: &[i64], i: usize, dim: i64) -> Result<()> {
    let index = indices[i];
    if index < 0 || index >= dim {
        return Err(AnnError::data("sparsevec index out of bounds"));
    }
    if i > 0 {
        if index < indices[i - 1] {
            return Err(AnnError::data(
                "sparsevec indices must be in ascending order",
            ));
        }
        if index == indices[i - 1] {
            return Err(AnnError::data(
                "sparsevec indices must not contain duplicates",
            ));
        }
    }
    Ok(())
}

/// C `strtol` over the digits at the start of `s` (after whitespace):
/// (value clamped to i64, bytes consumed), `None` if no digits.
fn scan_long(s: &[u8]) -> Option<(i64, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let negative = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_start = i;
    let mut value: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        value = value
            .saturating_mul(10)
            .saturating_add((s[i] - b'0') as i64);
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some((if negative { -value } else { value }, i))
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    i
}

impl SparseVector {
    /// A value from 0-based `indices` and `values` with pgvector's checks;
    /// zero values are dropped as text input drops them.
    pub fn new(dim: u32, indices: Vec<u32>, values: Vec<f32>) -> Result<Self> {
        if indices.len() != values.len() {
            return Err(AnnError::data(
                "sparsevec indices and values must have the same length",
            ));
        }
        check_dim(dim as i64)?;
        let (mut kept_i, mut kept_v) = (Vec::new(), Vec::new());
        for (i, v) in indices.into_iter().zip(values) {
            check_f32_element(v, NAME)?;
            if v != 0.0 {
                kept_i.push(i as i64);
                kept_v.push(v);
            }
        }
        check_nnz(kept_i.len() as i64, dim as i64)?;
        for i in 0..kept_i.len() {
            check_index(&kept_i, i, dim as i64)?;
        }
        Ok(SparseVector {
            dim,
            indices: kept_i.into_iter().map(|i| i as u32).collect(),
            values: kept_v,
        })
    }

    /// Number of dimensions.
    pub fn dims(&self) -> u32 {
        self.dim
    }

    /// 0-based indices of the non-zero elements, strictly increasing.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The non-zero values, parallel to [`Self::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of non-zero elements.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The typmod check a cast to `sparsevec(n)` makes.
    pub fn check_dims(&self, expected: u32) -> Result<()> {
        check_expected_dim(Some(expected), self.dim as usize)
    }

    /// Parses text input (`sparsevec_in`), checking against `typmod`.
    /// Indices may come in any order; duplicates and zero or too large
    /// indices are errors; zero values are dropped.
    pub fn parse(lit: &str, typmod: Option<u32>) -> Result<Self> {
        let s = lit.as_bytes();
        let max_nnz = 1 + s.iter().filter(|b| **b == b',').count();
        if max_nnz > SPARSEVEC_MAX_NNZ {
            return Err(too_many_nnz());
        }
        let mut elements: Vec<(i64, f32)> = Vec::new();
        let mut pt = skip_space(s, 0);
        if s.get(pt) != Some(&b'{') {
            return Err(
                invalid_syntax(NAME, lit).with_detail("Vector contents must start with \"{\".")
            );
        }
        pt = skip_space(s, pt + 1);
        if s.get(pt) == Some(&b'}') {
            pt += 1;
        } else {
            loop {
                pt = skip_space(s, pt);
                let (index, len) = scan_long(&s[pt..]).ok_or_else(|| invalid_syntax(NAME, lit))?;
                // Keep in int range, as pgvector does for its messages.
                let index = index.clamp(i32::MIN as i64 + 1, i32::MAX as i64);
                pt = skip_space(s, pt + len);
                if s.get(pt) != Some(&b':') {
                    return Err(invalid_syntax(NAME, lit));
                }
                pt = skip_space(s, pt + 1);
                let f = scan_float(&s[pt..]).ok_or_else(|| invalid_syntax(NAME, lit))?;
                if f.overflow || f.underflow {
                    let token = lit.get(pt..pt + f.len).unwrap_or(lit);
                    return Err(out_of_range(token, NAME));
                }
                check_f32_element(f.value, NAME)?;
                if f.value != 0.0 {
                    elements.push((index - 1, f.value));
                }
                pt = skip_space(s, pt + f.len);
                match s.get(pt) {
                    Some(b',') => pt += 1,
                    Some(b'}') => {
                        pt += 1;
                        break;
                    }
                    _ => return Err(invalid_syntax(NAME, lit)),
                }
            }
        }
        pt = skip_space(s, pt);
        if s.get(pt) != Some(&b'/') {
            return Err(invalid_syntax(NAME, lit).with_detail("Unexpected end of input."));
        }
        pt = skip_space(s, pt + 1);
        let (dim, len) = scan_long(&s[pt..]).ok_or_else(|| invalid_syntax(NAME, lit))?;
        let dim = dim.clamp(i32::MIN as i64, i32::MAX as i64);
        if skip_space(s, pt + len) != s.len() {
            return Err(invalid_syntax(NAME, lit).with_detail("Junk after closing."));
        }
        check_dim(dim)?;
        check_expected_dim(typmod, dim as usize)?;
        elements.sort_by_key(|e| e.0);
        let indices: Vec<i64> = elements.iter().map(|e| e.0).collect();
        for i in 0..indices.len() {
            check_index(&indices, i, dim)?;
        }
        Ok(SparseVector {
            dim: dim as u32,
            indices: indices.into_iter().map(|i| i as u32).collect(),
            values: elements.into_iter().map(|e| e.1).collect(),
        })
    }

    /// Text output (`sparsevec_out`): `{1:1.5,3:2}/5`.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(8 + self.nnz() * 12);
        out.push('{');
        for (n, (i, v)) in self.indices.iter().zip(&self.values).enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&(i + 1).to_string());
            out.push(':');
            push_shortest(&mut out, *v);
        }
        out.push_str("}/");
        out.push_str(&self.dim.to_string());
        out
    }

    /// Reads the binary format (`sparsevec_recv`), checking against `typmod`.
    pub fn from_binary(buf: &[u8], typmod: Option<u32>) -> Result<Self> {
        let mut r = WireReader::new(buf);
        let dim = r.i32()? as i64;
        let nnz = r.i32()? as i64;
        let unused = r.i32()?;
        check_dim(dim)?;
        check_nnz(nnz, dim)?;
        check_expected_dim(typmod, dim as usize)?;
        if unused != 0 {
            return Err(AnnError::data(format!(
                "expected unused to be 0, not {unused}"
            )));
        }
        let nnz = nnz as usize;
        let mut indices = Vec::with_capacity(nnz);
        for i in 0..nnz {
            indices.push(r.i32()? as i64);
            check_index(&indices, i, dim)?;
        }
        let mut values = Vec::with_capacity(nnz);
        for _ in 0..nnz {
            let v = r.f32()?;
            check_f32_element(v, NAME)?;
            if v == 0.0 {
                return Err(AnnError::data(
                    "binary representation of sparsevec cannot contain zero values",
                ));
            }
            values.push(v);
        }
        r.finish()?;
        Ok(SparseVector {
            dim: dim as u32,
            indices: indices.into_iter().map(|i| i as u32).collect(),
            values,
        })
    }

    /// Appends the binary format (`sparsevec_send`).
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        out.reserve(12 + 8 * self.nnz());
        out.extend_from_slice(&self.dim.to_be_bytes());
        out.extend_from_slice(&(self.nnz() as u32).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for i in &self.indices {
            out.extend_from_slice(&i.to_be_bytes());
        }
        for v in &self.values {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
    }

    /// The binary format as a new buffer.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_binary(&mut out);
        out
    }

    /// pgvector's btree order (`sparsevec_cmp`): as if both were dense,
    /// element by element, then by dimensions.
    pub fn cmp_pg(&self, other: &Self) -> Ordering {
        let (a, b) = (self, other);
        let nnz = a.nnz().min(b.nnz());
        let sign = |v: f32, neg: Ordering| if v < 0.0 { neg } else { neg.reverse() };
        for i in 0..nnz {
            if a.indices[i] < b.indices[i] {
                return sign(a.values[i], Ordering::Less);
            }
            if a.indices[i] > b.indices[i] {
                return sign(b.values[i], Ordering::Greater);
            }
            if a.values[i] < b.values[i] {
                return Ordering::Less;
            }
            if a.values[i] > b.values[i] {
                return Ordering::Greater;
            }
        }
        if a.nnz() < b.nnz() && b.indices[nnz] < a.dim {
            return sign(b.values[nnz], Ordering::Greater);
        }
        if a.nnz() > b.nnz() && a.indices[nnz] < b.dim {
            return sign(a.values[nnz], Ordering::Less);
        }
        a.dim.cmp(&b.dim)
    }
}

impl fmt::Display for SparseVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::rng::Rng;

    fn err(lit: &str) -> (ErrorKind, String, Option<String>) {
        let e = SparseVector::parse(lit, None).unwrap_err();
        (e.kind, e.message, e.detail)
    }

    #[test]
    fn parses_pgvector_text() {
        let v = SparseVector::parse(" { 3:2 , 1:1.5, 2:0 } / 5 ", None).unwrap();
        assert_eq!(v.indices(), &[0, 2]);
        assert_eq!(v.values(), &[1.5, 2.0]);
        assert_eq!(v.dims(), 5);
        assert_eq!(v.to_text(), "{1:1.5,3:2}/5");
        assert_eq!(
            SparseVector::parse("{}/3", Some(3)).unwrap().to_text(),
            "{}/3"
        );
        // A zero value at a bad index is dropped before the index check.
        assert_eq!(SparseVector::parse("{0:0}/3", None).unwrap().nnz(), 0);
    }

    #[test]
    fn text_errors_match_pgvector() {
        use ErrorKind::*;
        let syntax = |lit: &str| format!("invalid input syntax for type sparsevec: \"{lit}\"");
        assert_eq!(
            err("[1]/2"),
            (
                InvalidTextRepresentation,
                syntax("[1]/2"),
                Some("Vector contents must start with \"{\".".into())
            )
        );
        assert_eq!(
            err("{1:1}"),
            (
                InvalidTextRepresentation,
                syntax("{1:1}"),
                Some("Unexpected end of input.".into())
            )
        );
        assert_eq!(
            err("{1:1}/2x"),
            (
                InvalidTextRepresentation,
                syntax("{1:1}/2x"),
                Some("Junk after closing.".into())
            )
        );
        assert_eq!(err("{1 1}/2").1, syntax("{1 1}/2"));
        assert_eq!(err("{a:1}/2").1, syntax("{a:1}/2"));
        assert_eq!(err("{1:}/2").1, syntax("{1:}/2"));
        assert_eq!(
            err("{1:1}/"),
            (InvalidTextRepresentation, syntax("{1:1}/"), None)
        );
        assert_eq!(
            err("{0:1}/2"),
            (DataException, "sparsevec index out of bounds".into(), None)
        );
        assert_eq!(
            err("{3:1}/2"),
            (DataException, "sparsevec index out of bounds".into(), None)
        );
        assert_eq!(
            err("{1:1,1:2}/2").1,
            "sparsevec indices must not contain duplicates"
        );
        assert_eq!(
            err("{}/0"),
            (
                DataException,
                "sparsevec must have at least 1 dimension".into(),
                None
            )
        );
        assert_eq!(
            err("{}/1000000001"),
            (
                ProgramLimitExceeded,
                "sparsevec cannot have more than 1000000000 dimensions".into(),
                None
            )
        );
        assert_eq!(err("{1:NaN}/2").1, "NaN not allowed in sparsevec");
        assert_eq!(
            err("{1:inf}/2").1,
            "infinite value not allowed in sparsevec"
        );
        assert_eq!(
            err("{1:1e39}/2"),
            (
                NumericValueOutOfRange,
                "\"1e39\" is out of range for type sparsevec".into(),
                None
            )
        );
        assert_eq!(
            err("{1:1e-50}/2").1,
            "\"1e-50\" is out of range for type sparsevec"
        );
        let many = format!(
            "{{{}}}/20000",
            (1..=16_001)
                .map(|i| format!("{i}:1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            err(&many),
            (
                ProgramLimitExceeded,
                "sparsevec cannot have more than 16000 non-zero elements".into(),
                None
            )
        );
        assert_eq!(
            SparseVector::parse("{1:1}/2", Some(3)).unwrap_err().message,
            "expected 3 dimensions, not 2"
        );
    }

    fn random_sparse(rng: &mut Rng, dim: u32, nnz: usize) -> SparseVector {
        let mut idx: Vec<u32> = (0..nnz).map(|_| rng.below(dim as u64) as u32).collect();
        idx.sort_unstable();
        idx.dedup();
        let vals = idx
            .iter()
            .map(|_| (rng.normal() * 3.0) as f32 + 0.5)
            .collect();
        SparseVector::new(dim, idx, vals).unwrap()
    }

    #[test]
    fn round_trips_text_and_binary() {
        let mut rng = Rng::new(5);
        for (dim, nnz) in [
            (1, 1),
            (15, 7),
            (17, 17),
            (1539, 200),
            (1_000_000_000, 1000),
        ] {
            let v = random_sparse(&mut rng, dim, nnz);
            assert_eq!(SparseVector::parse(&v.to_text(), Some(dim)).unwrap(), v);
            assert_eq!(SparseVector::from_binary(&v.to_binary(), None).unwrap(), v);
        }
    }

    #[test]
    fn binary_layout_and_errors() {
        let mut buf = Vec::new();
        for x in [5i32, 2, 0, 0, 3] {
            buf.extend_from_slice(&x.to_be_bytes());
        }
        buf.extend_from_slice(&1.5f32.to_be_bytes());
        buf.extend_from_slice(&2.0f32.to_be_bytes());
        let v = SparseVector::from_binary(&buf, None).unwrap();
        assert_eq!(v.to_text(), "{1:1.5,4:2}/5");
        assert_eq!(v.to_binary(), buf);

        let header = |dim: i32, nnz: i32, unused: i32| {
            let mut b = Vec::new();
            for x in [dim, nnz, unused] {
                b.extend_from_slice(&x.to_be_bytes());
            }
            b
        };
        let msg = |b: &[u8]| SparseVector::from_binary(b, None).unwrap_err().message;
        assert_eq!(
            msg(&header(0, 0, 0)),
            "sparsevec must have at least 1 dimension"
        );
        assert_eq!(
            msg(&header(5, -1, 0)),
            "sparsevec cannot have negative number of elements"
        );
        assert_eq!(
            msg(&header(5, 6, 0)),
            "sparsevec cannot have more elements than dimensions"
        );
        assert_eq!(
            msg(&header(i32::MAX, i32::MAX, 0)),
            "sparsevec cannot have more than 1000000000 dimensions"
        );
        assert_eq!(
            msg(&header(100_000, 16_001, 0)),
            "sparsevec cannot have more than 16000 non-zero elements"
        );
        assert_eq!(msg(&header(5, 0, 1)), "expected unused to be 0, not 1");
        let mut unsorted = header(5, 2, 0);
        for x in [3i32, 1] {
            unsorted.extend_from_slice(&x.to_be_bytes());
        }
        assert_eq!(
            msg(&unsorted),
            "sparsevec indices must be in ascending order"
        );
        let mut zero = header(5, 1, 0);
        zero.extend_from_slice(&0i32.to_be_bytes());
        zero.extend_from_slice(&0f32.to_be_bytes());
        assert_eq!(
            msg(&zero),
            "binary representation of sparsevec cannot contain zero values"
        );
        for n in 0..buf.len() {
            assert!(SparseVector::from_binary(&buf[..n], None).is_err());
        }
    }

    #[test]
    fn order_matches_dense_order() {
        let s = |t: &str| SparseVector::parse(t, None).unwrap();
        assert_eq!(s("{1:1}/3").cmp_pg(&s("{2:1}/3")), Ordering::Greater); // [1,0,0] > [0,1,0]
        assert_eq!(s("{1:-1}/3").cmp_pg(&s("{2:1}/3")), Ordering::Less);
        assert_eq!(s("{1:1}/3").cmp_pg(&s("{1:1,2:1}/3")), Ordering::Less);
        assert_eq!(s("{1:1}/3").cmp_pg(&s("{1:1,2:-1}/3")), Ordering::Greater);
        assert_eq!(s("{1:1}/2").cmp_pg(&s("{1:1}/3")), Ordering::Less);
        assert_eq!(s("{1:2}/3").cmp_pg(&s("{1:2}/3")), Ordering::Equal);
    }
}
