//! `bit` distances (`bitvec.c`): Hamming and Jaccard over popcounts.

use crate::distance::kernels;
use crate::error::{AnnError, Result};
use crate::types::BitVector;

fn check_same_len(a: &BitVector, b: &BitVector) -> Result<()> {
    if a.len != b.len {
        return Err(AnnError::data(format!(
            "different bit lengths {} and {}",
            a.len, b.len
        )));
    }
    Ok(())
}

/// Jaccard distance from the popcounts of `a & b`, `a` and `b`.
pub(crate) fn jaccard_from_counts(ab: u64, aa: u64, bb: u64) -> f64 {
    if ab == 0 {
        1.0
    } else {
        1.0 - ab as f64 / (aa + bb - ab) as f64
    }
}

/// `<~>`: number of differing bits.
pub fn hamming_distance(a: &BitVector, b: &BitVector) -> Result<f64> {
    check_same_len(a, b)?;
    Ok((kernels().hamming)(&a.bytes, &b.bytes) as f64)
}

/// `<%>`: `1 - |a ∧ b| / |a ∨ b|`, 1 when no bit is shared.
pub fn jaccard_distance(a: &BitVector, b: &BitVector) -> Result<f64> {
    check_same_len(a, b)?;
    let k = kernels();
    Ok(jaccard_from_counts(
        (k.and_popcount)(&a.bytes, &b.bytes),
        (k.popcount)(&a.bytes),
        (k.popcount)(&b.bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(t: &str) -> BitVector {
        BitVector::parse(t, None).unwrap()
    }

    #[test]
    fn values_match_hand_computed_ones() {
        assert_eq!(
            hamming_distance(&b("111000111"), &b("101010101")).unwrap(),
            3.0
        );
        // a∧b = 4 bits, a∨b = 7 bits.
        assert_eq!(
            jaccard_distance(&b("111000111"), &b("101010101")).unwrap(),
            1.0 - 4.0 / 7.0
        );
        assert_eq!(jaccard_distance(&b("000"), &b("000")).unwrap(), 1.0);
        assert_eq!(jaccard_distance(&b("110"), &b("110")).unwrap(), 0.0);
        let e = hamming_distance(&b("1"), &b("10")).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("22000", "different bit lengths 1 and 2")
        );
        assert_eq!(
            jaccard_distance(&b("1"), &b("10")).unwrap_err().message,
            "different bit lengths 1 and 2"
        );
    }
}
