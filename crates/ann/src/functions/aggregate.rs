//! `avg` and `sum` over `vector`/`halfvec` columns, as states that can be
//! merged, so each shard aggregates its rows and the proxy combines them.
//!
//! pgvector's `avg` keeps a `float8[]` state `{n, sum_1, …, sum_d}`
//! (`vector_accum`, `vector_combine`, `vector_avg`); [`AvgAccumulator`] is
//! that state. pgvector's `sum` has no such state: it adds values with the
//! element type's own `+` (`vector_add`, also its combine function), so
//! [`SumAccumulator`] does the same, overflow checks included.

use crate::error::Result;
use crate::functions::dense;
use crate::types::{check_dense_dim, check_expected_dim, overflow_error, DenseVector, Element};

/// pgvector's `avg` state: a count and per-dimension f64 sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AvgAccumulator {
    count: f64,
    sums: Vec<f64>,
}

impl AvgAccumulator {
    /// An empty state (`'{0}'`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a state from pgvector's `float8[]` layout `{n, sums…}`.
    pub fn from_state(state: &[f64]) -> Option<Self> {
        let (count, sums) = state.split_first()?;
        Some(AvgAccumulator {
            count: *count,
            sums: sums.to_vec(),
        })
    }

    /// The state in pgvector's `float8[]` layout `{n, sums…}`.
    pub fn state(&self) -> Vec<f64> {
        let mut s = Vec::with_capacity(1 + self.sums.len());
        s.push(self.count);
        s.extend_from_slice(&self.sums);
        s
    }

    /// Number of values added.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Adds `v` (`vector_accum` / `halfvec_accum`); the state is unchanged
    /// on error.
    pub fn add<E: Element>(&mut self, v: &DenseVector<E>) -> Result<()> {
        let x = v.as_slice();
        if self.sums.is_empty() {
            self.sums = x.iter().map(|e| e.to_f32() as f64).collect();
        } else {
            check_expected_dim(Some(self.sums.len() as u32), x.len())?;
            Self::add_checked(&mut self.sums, x.iter().map(|e| e.to_f32() as f64))?;
        }
        self.count += 1.0;
        Ok(())
    }

    /// Combines another partial state into this one (`vector_combine`).
    pub fn merge(&mut self, other: &AvgAccumulator) -> Result<()> {
        if self.count == 0.0 {
            *self = other.clone();
        } else if other.count != 0.0 {
            check_expected_dim(Some(self.sums.len() as u32), other.sums.len())?;
            Self::add_checked(&mut self.sums, other.sums.iter().copied())?;
            self.count += other.count;
        }
        Ok(())
    }

    fn add_checked(sums: &mut [f64], x: impl Iterator<Item = f64> + Clone) -> Result<()> {
        if sums
            .iter()
            .zip(x.clone())
            .any(|(s, v)| (s + v).is_infinite())
        {
            return Err(overflow_error());
        }
        for (s, v) in sums.iter_mut().zip(x) {
            *s += v;
        }
        Ok(())
    }

    /// The average (`vector_avg` / `halfvec_avg`); `None` for no rows, as
    /// SQL's AVG of nothing is NULL.
    pub fn avg<E: Element>(&self) -> Result<Option<DenseVector<E>>> {
        if self.count == 0.0 {
            return Ok(None);
        }
        check_dense_dim::<E>(self.sums.len() as i64)?;
        let mut out = Vec::with_capacity(self.sums.len());
        for s in &self.sums {
            let e = E::from_f32_checked((s / self.count) as f32)?;
            e.check()?;
            out.push(e);
        }
        Ok(Some(DenseVector(out)))
    }
}

/// pgvector's `sum`: element-type addition with overflow checks.
#[derive(Debug, Clone, PartialEq)]
pub struct SumAccumulator<E: Element> {
    sum: Option<DenseVector<E>>,
}

impl<E: Element> Default for SumAccumulator<E> {
    fn default() -> Self {
        SumAccumulator { sum: None }
    }
}

impl<E: Element> SumAccumulator<E> {
    /// An empty sum (SQL NULL).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `v` (`vector_add` as the transition function).
    pub fn add(&mut self, v: &DenseVector<E>) -> Result<()> {
        self.sum = Some(match &self.sum {
            None => v.clone(),
            Some(s) => dense::add(s, v)?,
        });
        Ok(())
    }

    /// Combines another partial sum (`vector_add` as the combine function).
    pub fn merge(&mut self, other: &SumAccumulator<E>) -> Result<()> {
        if let Some(o) = &other.sum {
            self.add(o)?;
        }
        Ok(())
    }

    /// The sum so far; `None` for no rows.
    pub fn sum(&self) -> Option<&DenseVector<E>> {
        self.sum.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::types::{HalfVector, Vector};
    use half::f16;

    fn rows(seed: u64, n: usize, dim: usize) -> Vec<Vector> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                let centre = (i % 3) as f64 * 4.0;
                Vector::new(
                    (0..dim)
                        .map(|_| (centre + rng.normal()).round() as f32)
                        .collect(),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn merged_partials_equal_one_accumulation() {
        let data = rows(1, 300, 17);
        let mut whole = AvgAccumulator::new();
        let mut whole_sum = SumAccumulator::new();
        for v in &data {
            whole.add(v).unwrap();
            whole_sum.add(v).unwrap();
        }
        let mut merged = AvgAccumulator::new();
        let mut merged_sum = SumAccumulator::new();
        for shard in data.chunks(70) {
            let mut part = AvgAccumulator::new();
            let mut part_sum = SumAccumulator::new();
            for v in shard {
                part.add(v).unwrap();
                part_sum.add(v).unwrap();
            }
            // Partials travel as pgvector's float8[] state.
            merged
                .merge(&AvgAccumulator::from_state(&part.state()).unwrap())
                .unwrap();
            merged_sum.merge(&part_sum).unwrap();
        }
        merged.merge(&AvgAccumulator::new()).unwrap();
        assert_eq!(merged, whole);
        assert_eq!(merged.count(), 300.0);
        assert_eq!(merged.avg::<f32>().unwrap(), whole.avg::<f32>().unwrap());
        assert_eq!(merged_sum, whole_sum);
        // Integer data: the sums are exact, so check one against f64 math.
        let col0: f64 = data.iter().map(|v| v.as_slice()[0] as f64).sum();
        assert_eq!(
            merged.avg::<f32>().unwrap().unwrap().as_slice()[0],
            (col0 / 300.0) as f32
        );
        assert_eq!(merged_sum.sum().unwrap().as_slice()[0], col0 as f32);
    }

    #[test]
    fn avg_of_pgvector_examples() {
        let mut acc = AvgAccumulator::new();
        assert_eq!(acc.avg::<f32>().unwrap(), None);
        acc.add(&Vector::parse("[1,2,3]", None).unwrap()).unwrap();
        acc.add(&Vector::parse("[3,5,7]", None).unwrap()).unwrap();
        assert_eq!(acc.avg::<f32>().unwrap().unwrap().to_text(), "[2,3.5,5]");
        let e = acc.add(&Vector::parse("[1,2]", None).unwrap()).unwrap_err();
        assert_eq!(e.message, "expected 3 dimensions, not 2");
        let mut h = AvgAccumulator::new();
        h.add(&HalfVector::parse("[1,2]", None).unwrap()).unwrap();
        h.add(&HalfVector::parse("[2,4]", None).unwrap()).unwrap();
        assert_eq!(h.avg::<f16>().unwrap().unwrap().to_text(), "[1.5,3]");
        let mut s = SumAccumulator::<f16>::new();
        s.add(&HalfVector::parse("[65504]", None).unwrap()).unwrap();
        assert_eq!(
            s.add(&HalfVector::parse("[65504]", None).unwrap())
                .unwrap_err()
                .message,
            "value out of range: overflow"
        );
        let mut big = AvgAccumulator::from_state(&[1.0, f64::MAX]).unwrap();
        let before = big.clone();
        assert!(big.merge(&before.clone()).is_err());
        assert_eq!(big, before);
    }
}
