//! `sparsevec` functions. Distances walk both sorted index lists once,
//! adding terms in index order with f32 accumulators, as pgvector does.

use crate::distance;
use crate::error::{AnnError, Result};
use crate::types::SparseVector;

fn check_same_dims(a: &SparseVector, b: &SparseVector) -> Result<()> {
    if a.dim != b.dim {
        return Err(AnnError::data(format!(
            "different sparsevec dimensions {} and {}",
            a.dim, b.dim
        )));
    }
    Ok(())
}

/// Folds `term(x, y)` over the union of both index lists in index order,
/// with 0 for a missing side.
fn merge(a: &SparseVector, b: &SparseVector, term: impl Fn(f32, f32) -> f32) -> f32 {
    let (mut i, mut j, mut acc) = (0, 0, 0.0f32);
    while i < a.nnz() || j < b.nnz() {
        let ai = a.indices.get(i).copied().unwrap_or(u32::MAX);
        let bj = b.indices.get(j).copied().unwrap_or(u32::MAX);
        if ai == bj {
            acc += term(a.values[i], b.values[j]);
            i += 1;
            j += 1;
        } else if ai < bj {
            acc += term(a.values[i], 0.0);
            i += 1;
        } else {
            acc += term(0.0, b.values[j]);
            j += 1;
        }
    }
    acc
}

/// Squared L2 over the merged indices (f32, as the index searches use it).
pub(crate) fn l2_squared_f32(a: &SparseVector, b: &SparseVector) -> f32 {
    merge(a, b, |x, y| (x - y) * (x - y))
}

/// Inner product over the shared indices (f32).
pub(crate) fn dot_f32(a: &SparseVector, b: &SparseVector) -> f32 {
    let (mut i, mut j, mut acc) = (0, 0, 0.0f32);
    while i < a.nnz() && j < b.nnz() {
        match a.indices[i].cmp(&b.indices[j]) {
            std::cmp::Ordering::Equal => {
                acc += a.values[i] * b.values[j];
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    acc
}

/// L1 over the merged indices (f32).
pub(crate) fn l1_f32(a: &SparseVector, b: &SparseVector) -> f32 {
    merge(a, b, |x, y| (x - y).abs())
}

/// Squared norm accumulated in f32 (the cosine denominator).
pub(crate) fn norm_squared_f32(a: &SparseVector) -> f32 {
    a.values.iter().map(|x| x * x).sum()
}

/// `<->` for sparsevec.
pub fn l2_distance(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    Ok(l2_squared_distance(a, b)?.sqrt())
}

/// Squared Euclidean distance for sparsevec.
pub fn l2_squared_distance(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(l2_squared_f32(a, b) as f64)
}

/// `inner_product` for sparsevec.
pub fn inner_product(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(dot_f32(a, b) as f64)
}

/// `<#>` for sparsevec.
pub fn negative_inner_product(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(-dot_f32(a, b) as f64)
}

/// `<=>` for sparsevec; NaN when either vector is zero.
pub fn cosine_distance(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(distance::cosine_from_parts(
        dot_f32(a, b),
        norm_squared_f32(a),
        norm_squared_f32(b),
    ))
}

/// `<+>` for sparsevec.
pub fn l1_distance(a: &SparseVector, b: &SparseVector) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(l1_f32(a, b) as f64)
}

/// `l2_norm` for sparsevec, accumulated in f64.
pub fn l2_norm(a: &SparseVector) -> f64 {
    // A fold from +0.0: an empty float sum is -0.0, which prints as "-0".
    a.values
        .iter()
        .fold(0.0, |sum, x| sum + (*x as f64) * (*x as f64))
        .sqrt()
}

/// `l2_normalize` for sparsevec; values that become zero are dropped.
pub fn l2_normalize(a: &SparseVector) -> Result<SparseVector> {
    let norm = l2_norm(a);
    if norm <= 0.0 {
        return Ok(a.clone());
    }
    let mut out = SparseVector {
        dim: a.dim,
        indices: Vec::with_capacity(a.nnz()),
        values: Vec::with_capacity(a.nnz()),
    };
    for (i, x) in a.indices.iter().zip(&a.values) {
        let r = (*x as f64 / norm) as f32;
        if r.is_infinite() {
            return Err(crate::types::overflow_error());
        }
        if r != 0.0 {
            out.indices.push(*i);
            out.values.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn s(t: &str) -> SparseVector {
        SparseVector::parse(t, None).unwrap()
    }

    fn dense(v: &SparseVector) -> Vec<f64> {
        let mut d = vec![0.0; v.dim as usize];
        for (i, x) in v.indices.iter().zip(&v.values) {
            d[*i as usize] = *x as f64;
        }
        d
    }

    #[test]
    fn distances_match_hand_computed_values() {
        let (a, b) = (s("{1:1,3:3}/4"), s("{2:2,3:1,4:-2}/4"));
        assert_eq!(
            l2_distance(&a, &b).unwrap(),
            (1.0f64 + 4.0 + 4.0 + 4.0).sqrt()
        );
        assert_eq!(inner_product(&a, &b).unwrap(), 3.0);
        assert_eq!(negative_inner_product(&a, &b).unwrap(), -3.0);
        assert_eq!(l1_distance(&a, &b).unwrap(), 1.0 + 2.0 + 2.0 + 2.0);
        let want = 1.0 - 3.0 / (10f64 * 9.0).sqrt();
        assert!((cosine_distance(&a, &b).unwrap() - want).abs() < 1e-7);
        assert!(cosine_distance(&a, &s("{}/4")).unwrap().is_nan());
        assert_eq!(l2_norm(&s("{1:3,2:4}/2")), 5.0);
        assert_eq!(
            l2_normalize(&s("{1:3,2:4}/2")).unwrap().to_text(),
            "{1:0.6,2:0.8}/2"
        );
        assert_eq!(l2_normalize(&s("{}/2")).unwrap().to_text(), "{}/2");
        assert_eq!(
            l2_distance(&a, &s("{}/3")).unwrap_err().message,
            "different sparsevec dimensions 4 and 3"
        );
    }

    #[test]
    fn merge_agrees_with_dense_arithmetic() {
        let mut rng = Rng::new(9);
        for _ in 0..50 {
            let mk = |rng: &mut Rng| {
                let idx: Vec<u32> = (0..40u32).filter(|_| rng.below(3) == 0).collect();
                let vals = idx.iter().map(|_| (rng.below(9) as f32) - 4.0).collect();
                SparseVector::new(40, idx, vals).unwrap()
            };
            let (a, b) = (mk(&mut rng), mk(&mut rng));
            let (da, db) = (dense(&a), dense(&b));
            let l2: f64 = da.iter().zip(&db).map(|(x, y)| (x - y) * (x - y)).sum();
            let ip: f64 = da.iter().zip(&db).map(|(x, y)| x * y).sum();
            let l1: f64 = da.iter().zip(&db).map(|(x, y)| (x - y).abs()).sum();
            // Small integers: every f32 sum is exact.
            assert_eq!(l2_squared_distance(&a, &b).unwrap(), l2);
            assert_eq!(inner_product(&a, &b).unwrap(), ip);
            assert_eq!(l1_distance(&a, &b).unwrap(), l1);
        }
    }
}
