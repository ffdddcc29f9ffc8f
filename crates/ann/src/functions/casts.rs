//! Casts between the vector types and from/to arrays, with the dimension
//! and range checks pgvector's cast functions make.

use crate::error::{AnnError, ErrorKind, Result};
use crate::types::{
    check_dense_dim, check_expected_dim, check_f32_element, check_sparse_dim, DenseVector, Element,
    SparseVector,
};

/// The elements of a one-dimensional SQL array without NULLs (the SQL layer
/// rejects multi-dimensional arrays with "array must be 1-D" and NULLs with
/// "array must not contain nulls" before calling here).
#[derive(Debug, Clone, Copy)]
pub enum ArrayElements<'a> {
    /// `integer[]`.
    Int4(&'a [i32]),
    /// `real[]`.
    Float4(&'a [f32]),
    /// `double precision[]`.
    Float8(&'a [f64]),
    /// `numeric[]`, each value carried as the nearest f64.
    Numeric(&'a [f64]),
}

/// PostgreSQL's `numeric_float4`: values beyond f32 range, or non-zero
/// values that round to zero, are errors.
fn numeric_to_f32(x: f64) -> Result<f32> {
    let f = x as f32;
    if x.is_finite() && (f.is_infinite() || (f == 0.0 && x != 0.0)) {
        return Err(AnnError::new(
            ErrorKind::NumericValueOutOfRange,
            format!("\"{x}\" is out of range for type real"),
        ));
    }
    Ok(f)
}

/// The elements as pgvector reads them: each converted to `float`.
fn to_f32(array: ArrayElements<'_>) -> Result<Vec<f32>> {
    Ok(match array {
        ArrayElements::Int4(a) => a.iter().map(|x| *x as f32).collect(),
        ArrayElements::Float4(a) => a.to_vec(),
        ArrayElements::Float8(a) => a.iter().map(|x| *x as f32).collect(),
        ArrayElements::Numeric(a) => a
            .iter()
            .map(|x| numeric_to_f32(*x))
            .collect::<Result<_>>()?,
    })
}

/// `array_to_vector` / `array_to_halfvec`.
pub fn array_to_dense<E: Element>(
    array: ArrayElements<'_>,
    typmod: Option<u32>,
) -> Result<DenseVector<E>> {
    let values = to_f32(array)?;
    check_dense_dim::<E>(values.len() as i64)?;
    check_expected_dim(typmod, values.len())?;
    let elements: Vec<E> = values
        .into_iter()
        .map(E::from_f32_checked)
        .collect::<Result<_>>()?;
    for e in &elements {
        e.check()?;
    }
    Ok(DenseVector(elements))
}

/// `vector::real[]` / `halfvec::real[]`.
pub fn dense_to_f32_array<E: Element>(v: &DenseVector<E>) -> Vec<f32> {
    v.as_slice().iter().map(|x| x.to_f32()).collect()
}

/// `vector_to_halfvec` / `halfvec_to_vector` (and the typmod-only
/// `vector(n)` cast when `F == T`): out-of-range values are errors.
pub fn cast_dense<F: Element, T: Element>(
    v: &DenseVector<F>,
    typmod: Option<u32>,
) -> Result<DenseVector<T>> {
    check_dense_dim::<T>(v.dims() as i64)?;
    check_expected_dim(typmod, v.dims())?;
    let out = v
        .as_slice()
        .iter()
        .map(|x| T::from_f32_checked(x.to_f32()))
        .collect::<Result<_>>()?;
    Ok(DenseVector(out))
}

/// `vector_to_sparsevec` / `halfvec_to_sparsevec`: zeros dropped.
pub fn dense_to_sparse<E: Element>(
    v: &DenseVector<E>,
    typmod: Option<u32>,
) -> Result<SparseVector> {
    check_sparse_dim(v.dims() as i64)?;
    check_expected_dim(typmod, v.dims())?;
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for (i, x) in v.as_slice().iter().enumerate() {
        let x = x.to_f32();
        if x != 0.0 {
            indices.push(i as u32);
            values.push(x);
        }
    }
    Ok(SparseVector {
        dim: v.dims() as u32,
        indices,
        values,
    })
}

/// `array_to_sparsevec`: the non-zero elements, after the dimension
/// checks; a NaN or infinite element (a float8 beyond real's range
/// becomes one) is an error, as pgvector checks them.
pub fn array_to_sparse(array: ArrayElements<'_>, typmod: Option<u32>) -> Result<SparseVector> {
    let values = to_f32(array)?;
    check_sparse_dim(values.len() as i64)?;
    check_expected_dim(typmod, values.len())?;
    let (mut indices, mut kept) = (Vec::new(), Vec::new());
    for (i, x) in values.iter().enumerate() {
        if *x != 0.0 {
            indices.push(i as u32);
            kept.push(*x);
        }
    }
    for x in &kept {
        check_f32_element(*x, "sparsevec")?;
    }
    Ok(SparseVector {
        dim: values.len() as u32,
        indices,
        values: kept,
    })
}

/// `sparsevec_to_vector` / `sparsevec_to_halfvec`: the dense type's
/// dimension limit applies.
pub fn sparse_to_dense<E: Element>(
    v: &SparseVector,
    typmod: Option<u32>,
) -> Result<DenseVector<E>> {
    check_dense_dim::<E>(v.dim as i64)?;
    check_expected_dim(typmod, v.dim as usize)?;
    let mut out = vec![E::from_f32_unchecked(0.0); v.dim as usize];
    for (i, x) in v.indices.iter().zip(&v.values) {
        out[*i as usize] = E::from_f32_checked(*x)?;
    }
    Ok(DenseVector(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{HalfVector, Vector};
    use half::f16;

    #[test]
    fn arrays_to_vectors() {
        let v: Vector = array_to_dense(ArrayElements::Int4(&[1, 2, 3]), Some(3)).unwrap();
        assert_eq!(v.to_text(), "[1,2,3]");
        let h: HalfVector = array_to_dense(ArrayElements::Float8(&[0.1, 2.0]), None).unwrap();
        assert_eq!(h.to_text(), "[0.099975586,2]");
        let v: Vector = array_to_dense(ArrayElements::Numeric(&[1.5]), None).unwrap();
        assert_eq!(dense_to_f32_array(&v), vec![1.5]);
        let e = array_to_dense::<f32>(ArrayElements::Float4(&[]), None).unwrap_err();
        assert_eq!(e.message, "vector must have at least 1 dimension");
        let e = array_to_dense::<f32>(ArrayElements::Float4(&[1.0]), Some(2)).unwrap_err();
        assert_eq!(e.message, "expected 2 dimensions, not 1");
        let e = array_to_dense::<f32>(ArrayElements::Float8(&[1e300]), None).unwrap_err();
        assert_eq!(e.message, "infinite value not allowed in vector");
        let e = array_to_dense::<f32>(ArrayElements::Float4(&[f32::NAN]), None).unwrap_err();
        assert_eq!(e.message, "NaN not allowed in vector");
        let e = array_to_dense::<f16>(ArrayElements::Int4(&[70_000]), None).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("22003", "\"70000\" is out of range for type halfvec")
        );
        let e = array_to_dense::<f32>(ArrayElements::Numeric(&[1e39]), None).unwrap_err();
        assert_eq!(
            e.message,
            "\"1000000000000000000000000000000000000000\" is out of range for type real"
        );
    }

    #[test]
    fn arrays_to_sparse_vectors() {
        let s = array_to_sparse(ArrayElements::Int4(&[1, 0, 2, 0]), Some(4)).unwrap();
        assert_eq!(s.to_text(), "{1:1,3:2}/4");
        let e = array_to_sparse(ArrayElements::Float4(&[]), None).unwrap_err();
        assert_eq!(e.message, "sparsevec must have at least 1 dimension");
        let e = array_to_sparse(ArrayElements::Float4(&[1.0]), Some(2)).unwrap_err();
        assert_eq!(e.message, "expected 2 dimensions, not 1");
        let e = array_to_sparse(ArrayElements::Float8(&[4e38]), None).unwrap_err();
        assert_eq!(e.message, "infinite value not allowed in sparsevec");
        let e = array_to_sparse(ArrayElements::Float4(&[f32::NAN]), None).unwrap_err();
        assert_eq!(e.message, "NaN not allowed in sparsevec");
    }

    #[test]
    fn casts_between_types() {
        let v = Vector::parse("[1,0,65520]", None).unwrap();
        let e = cast_dense::<f32, f16>(&v, None).unwrap_err();
        assert_eq!(e.message, "\"65520\" is out of range for type halfvec");
        let v = Vector::parse("[1,0,2.5]", None).unwrap();
        let h: HalfVector = cast_dense(&v, Some(3)).unwrap();
        let back: Vector = cast_dense(&h, None).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            cast_dense::<f32, f32>(&v, Some(2)).unwrap_err().message,
            "expected 2 dimensions, not 3"
        );
        let s = dense_to_sparse(&v, None).unwrap();
        assert_eq!(s.to_text(), "{1:1,3:2.5}/3");
        assert_eq!(dense_to_sparse(&h, Some(3)).unwrap(), s);
        assert_eq!(sparse_to_dense::<f32>(&s, Some(3)).unwrap(), v);
        assert_eq!(sparse_to_dense::<f16>(&s, None).unwrap(), h);
        let wide = SparseVector::parse("{1:1}/16001", None).unwrap();
        let e = sparse_to_dense::<f32>(&wide, None).unwrap_err();
        assert_eq!(
            (e.kind.sqlstate(), e.message.as_str()),
            ("54000", "vector cannot have more than 16000 dimensions")
        );
        let big = SparseVector::parse("{1:1e6}/2", None).unwrap();
        assert_eq!(
            sparse_to_dense::<f16>(&big, None).unwrap_err().message,
            "\"1e+06\" is out of range for type halfvec"
        );
    }
}
