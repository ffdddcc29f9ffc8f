//! `vector` and `halfvec` functions: distances, norms, arithmetic,
//! `subvector`, `||`, `binary_quantize`.

use crate::distance::{self, kernels};
use crate::error::{AnnError, Result};
use crate::types::{BitVector, DenseVector, Element};

/// pgvector's `CheckDims`: `different vector dimensions 3 and 2`.
pub(crate) fn check_same_dims<E: Element>(a: &[E], b: &[E]) -> Result<()> {
    if a.len() != b.len() {
        return Err(AnnError::data(format!(
            "different {} dimensions {} and {}",
            E::TYPE_NAME,
            a.len(),
            b.len()
        )));
    }
    Ok(())
}

fn pair<'v, E: Element>(
    a: &'v DenseVector<E>,
    b: &'v DenseVector<E>,
) -> Result<(&'v [E], &'v [E])> {
    check_same_dims(a.as_slice(), b.as_slice())?;
    Ok((a.as_slice(), b.as_slice()))
}

/// `<->`: Euclidean distance.
pub fn l2_distance<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    Ok(l2_squared_distance(a, b)?.sqrt())
}

/// Squared Euclidean distance (`vector_l2_squared_distance`).
pub fn l2_squared_distance<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    let (a, b) = pair(a, b)?;
    Ok(E::l2_squared_kernel(kernels())(a, b) as f64)
}

/// `inner_product`.
pub fn inner_product<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    let (a, b) = pair(a, b)?;
    Ok(E::dot_kernel(kernels())(a, b) as f64)
}

/// `<#>`: negative inner product.
pub fn negative_inner_product<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    let (a, b) = pair(a, b)?;
    Ok(-E::dot_kernel(kernels())(a, b) as f64)
}

/// `<=>`: cosine distance, NaN when either vector is zero.
pub fn cosine_distance<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    let (a, b) = pair(a, b)?;
    let dot = E::dot_kernel(kernels());
    Ok(distance::cosine_from_parts(dot(a, b), dot(a, a), dot(b, b)))
}

/// `<+>`: taxicab distance.
pub fn l1_distance<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<f64> {
    let (a, b) = pair(a, b)?;
    Ok(E::l1_kernel(kernels())(a, b) as f64)
}

/// `vector_norm` / `l2_norm`, accumulated in f64.
pub fn l2_norm<E: Element>(a: &DenseVector<E>) -> f64 {
    a.as_slice()
        .iter()
        .map(|x| {
            let x = x.to_f32() as f64;
            x * x
        })
        .sum::<f64>()
        .sqrt()
}

/// `l2_normalize`: the vector divided by its norm; a zero vector stays zero.
pub fn l2_normalize<E: Element>(a: &DenseVector<E>) -> Result<DenseVector<E>> {
    let norm = l2_norm(a);
    let zero = E::from_f32_unchecked(0.0);
    if norm <= 0.0 {
        return Ok(DenseVector(vec![zero; a.dims()]));
    }
    let out: Vec<E> = a
        .as_slice()
        .iter()
        .map(|x| E::from_f32_unchecked((x.to_f32() as f64 / norm) as f32))
        .collect();
    if out.iter().any(|x| x.to_f32().is_infinite()) {
        return Err(crate::types::overflow_error());
    }
    Ok(DenseVector(out))
}

/// `binary_quantize`: bit i is set when element i is positive.
pub fn binary_quantize<E: Element>(a: &DenseVector<E>) -> BitVector {
    BitVector::from_bits(a.as_slice().iter().map(|x| x.to_f32() > 0.0))
}

/// `subvector(v, start, count)`: `count` elements from 1-based `start`,
/// clipped to the vector like `substring`; an empty result is an error.
pub fn subvector<E: Element>(a: &DenseVector<E>, start: i32, count: i32) -> Result<DenseVector<E>> {
    let at_least_one =
        || AnnError::data(format!("{} must have at least 1 dimension", E::TYPE_NAME));
    if count < 1 {
        return Err(at_least_one());
    }
    let dim = a.dims() as i64;
    let (start, count) = (start as i64, count as i64);
    let end = if start > dim - count {
        dim + 1
    } else {
        start + count
    };
    let start = if start < 1 {
        1
    } else if start > dim {
        return Err(at_least_one());
    } else {
        start
    };
    let n = end - start;
    crate::types::check_dense_dim::<E>(n)?;
    let from = (start - 1) as usize;
    Ok(DenseVector(a.as_slice()[from..from + n as usize].to_vec()))
}

/// Element-wise operation with pgvector's overflow (and, for `*`,
/// underflow) checks, computed in f32 and rounded to the element type.
fn elementwise<E: Element>(
    a: &DenseVector<E>,
    b: &DenseVector<E>,
    op: impl Fn(f32, f32) -> f32,
    check_underflow: bool,
) -> Result<DenseVector<E>> {
    let (a, b) = pair(a, b)?;
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_f32(), y.to_f32());
        let r = E::from_f32_unchecked(op(x, y));
        let rf = r.to_f32();
        if rf.is_infinite() {
            return Err(crate::types::overflow_error());
        }
        if check_underflow && rf == 0.0 && x != 0.0 && y != 0.0 {
            return Err(crate::types::underflow_error());
        }
        out.push(r);
    }
    Ok(DenseVector(out))
}

/// `+`.
pub fn add<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<DenseVector<E>> {
    elementwise(a, b, |x, y| x + y, false)
}

/// `-`.
pub fn sub<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<DenseVector<E>> {
    elementwise(a, b, |x, y| x - y, false)
}

/// `*` (element-wise).
pub fn mul<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<DenseVector<E>> {
    elementwise(a, b, |x, y| x * y, true)
}

/// `||`: concatenation, within the 16,000-dimension limit.
pub fn concat<E: Element>(a: &DenseVector<E>, b: &DenseVector<E>) -> Result<DenseVector<E>> {
    crate::types::check_dense_dim::<E>((a.dims() + b.dims()) as i64)?;
    let mut out = a.as_slice().to_vec();
    out.extend_from_slice(b.as_slice());
    Ok(DenseVector(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::types::{HalfVector, Vector};

    fn v(s: &str) -> Vector {
        Vector::parse(s, None).unwrap()
    }
    fn h(s: &str) -> HalfVector {
        HalfVector::parse(s, None).unwrap()
    }

    #[test]
    fn distances_match_hand_computed_values() {
        let (a, b) = (v("[1,2,3]"), v("[4,6,3]"));
        assert_eq!(l2_distance(&a, &b).unwrap(), 5.0);
        assert_eq!(l2_squared_distance(&a, &b).unwrap(), 25.0);
        assert_eq!(inner_product(&a, &b).unwrap(), 25.0);
        assert_eq!(negative_inner_product(&a, &b).unwrap(), -25.0);
        assert_eq!(l1_distance(&a, &b).unwrap(), 7.0);
        let want = 1.0 - 25.0 / (14f64 * 61.0).sqrt();
        assert!((cosine_distance(&a, &b).unwrap() - want).abs() < 1e-7);
        assert_eq!(cosine_distance(&v("[1,2]"), &v("[2,4]")).unwrap(), 0.0);
        assert!(cosine_distance(&v("[0,0]"), &v("[1,1]")).unwrap().is_nan());
        assert_eq!(l2_distance(&h("[1,2]"), &h("[4,6]")).unwrap(), 5.0);
        assert_eq!(
            negative_inner_product(&h("[1,2]"), &h("[3,4]")).unwrap(),
            -11.0
        );
        assert_eq!(l1_distance(&h("[1,2]"), &h("[4,7]")).unwrap(), 8.0);
        assert_eq!(cosine_distance(&h("[1,2]"), &h("[2,4]")).unwrap(), 0.0);
        let e = l2_distance(&v("[1,2,3]"), &v("[1,2]")).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                ErrorKind::DataException,
                "different vector dimensions 3 and 2"
            )
        );
        assert_eq!(
            inner_product(&h("[1]"), &h("[1,2]")).unwrap_err().message,
            "different halfvec dimensions 1 and 2"
        );
    }

    #[test]
    fn norms_and_quantize() {
        assert_eq!(l2_norm(&v("[3,4]")), 5.0);
        assert_eq!(l2_normalize(&v("[3,4]")).unwrap().to_text(), "[0.6,0.8]");
        assert_eq!(
            l2_normalize(&h("[3,4]")).unwrap().to_text(),
            "[0.60009766,0.7998047]"
        );
        assert_eq!(l2_normalize(&v("[0,0]")).unwrap().to_text(), "[0,0]");
        assert_eq!(binary_quantize(&v("[1,-1,0,2]")).to_text(), "1001");
        assert_eq!(binary_quantize(&h("[1,-1,0]")).to_text(), "100");
    }

    #[test]
    fn subvector_bounds_like_pgvector() {
        let a = v("[1,2,3,4,5]");
        assert_eq!(subvector(&a, 1, 3).unwrap().to_text(), "[1,2,3]");
        assert_eq!(subvector(&a, 3, 2).unwrap().to_text(), "[3,4]");
        assert_eq!(subvector(&a, -1, 3).unwrap().to_text(), "[1]");
        assert_eq!(subvector(&a, 3, 9).unwrap().to_text(), "[3,4,5]");
        assert_eq!(
            subvector(&a, i32::MAX, i32::MAX).unwrap_err().message,
            "vector must have at least 1 dimension"
        );
        assert_eq!(
            subvector(&a, 1, 0).unwrap_err().message,
            "vector must have at least 1 dimension"
        );
        assert_eq!(
            subvector(&a, 6, 1).unwrap_err().message,
            "vector must have at least 1 dimension"
        );
        assert_eq!(
            subvector(&a, -5, 3).unwrap_err().message,
            "vector must have at least 1 dimension"
        );
        assert_eq!(
            subvector(&a, i32::MIN, i32::MAX).unwrap_err().message,
            "vector must have at least 1 dimension"
        );
        assert_eq!(subvector(&a, -2, 5).unwrap().to_text(), "[1,2]");
        assert_eq!(
            subvector(&h("[1,2]"), 3, 1).unwrap_err().message,
            "halfvec must have at least 1 dimension"
        );
    }

    #[test]
    fn arithmetic_with_overflow_checks() {
        assert_eq!(add(&v("[1,2]"), &v("[3,4]")).unwrap().to_text(), "[4,6]");
        assert_eq!(sub(&v("[1,2]"), &v("[3,5]")).unwrap().to_text(), "[-2,-3]");
        assert_eq!(mul(&v("[1,2]"), &v("[3,4]")).unwrap().to_text(), "[3,8]");
        assert_eq!(add(&h("[1,2]"), &h("[3,4]")).unwrap().to_text(), "[4,6]");
        let e = add(&v("[3e38]"), &v("[3e38]")).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("22003", "value out of range: overflow")
        );
        assert_eq!(
            sub(&v("[-3e38]"), &v("[3e38]")).unwrap_err().message,
            "value out of range: overflow"
        );
        assert_eq!(
            mul(&v("[1e-30]"), &v("[1e-30]")).unwrap_err().message,
            "value out of range: underflow"
        );
        assert_eq!(
            add(&h("[65504]"), &h("[65504]")).unwrap_err().message,
            "value out of range: overflow"
        );
        assert_eq!(
            mul(&h("[0.0001]"), &h("[0.0001]")).unwrap_err().message,
            "value out of range: underflow"
        );
        assert_eq!(
            add(&v("[1]"), &v("[1,2]")).unwrap_err().message,
            "different vector dimensions 1 and 2"
        );
    }

    #[test]
    fn concat_respects_the_limit() {
        assert_eq!(concat(&v("[1,2]"), &v("[3]")).unwrap().to_text(), "[1,2,3]");
        let big = Vector::new(vec![1.0; 16_000]).unwrap();
        let e = concat(&big, &v("[1]")).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("54000", "vector cannot have more than 16000 dimensions")
        );
    }
}
