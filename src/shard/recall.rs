//! The live recall monitor: a sampled share of the reads answered by an
//! ANN index (`recall_sample_rate`) is run again in the background as an
//! exact scan (`enable_indexscan = off`), and the share of the exact
//! answer's rows the index had returned — recall@k, k the query's
//! LIMIT + OFFSET — is recorded per table and index: in the histogram
//! `pgvshard_recall_at_k{table,index}` and in `SHOW pgvshard.recall`.
//!
//! Off the hot path and bounded: the sampled query itself only clones its
//! rows; the exact run happens on the blocking pool, one at a time per
//! shard (a sample drawn while one runs is skipped). Rows are compared as
//! whole output rows (a multiset), so the statement's own filter,
//! parameters and projection apply to both runs. Rows committed between
//! the two runs can lower a sample's recall slightly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::RecallHistogram;
use crate::shard::datum::Datum;

/// One output row.
pub type Row = Vec<Datum>;

/// Recall figures of one index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexRecall {
    /// Samples taken.
    pub samples: u64,
    /// Sum of their recall.
    pub sum: f64,
    /// The last sample's recall.
    pub last: f64,
    /// The smallest sample's recall.
    pub min: f64,
}

/// A shard's recall monitor.
#[derive(Debug)]
pub struct RecallMonitor {
    rate: f64,
    running: AtomicBool,
    by_index: Mutex<BTreeMap<(String, String), IndexRecall>>,
    /// The histogram the metrics endpoint exports.
    pub histogram: RecallHistogram,
}

/// The exact run in progress: clears the monitor's busy flag when dropped.
#[derive(Debug)]
pub struct SampleTicket(Arc<RecallMonitor>);

impl SampleTicket {
    /// The monitor the sample is for.
    pub fn monitor(&self) -> &RecallMonitor {
        &self.0
    }
}

impl Drop for SampleTicket {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

impl RecallMonitor {
    /// A monitor sampling `rate` (0 to 1) of the ANN reads.
    pub fn new(rate: f64) -> Self {
        RecallMonitor {
            rate: rate.clamp(0.0, 1.0),
            running: AtomicBool::new(false),
            by_index: Mutex::new(BTreeMap::new()),
            histogram: RecallHistogram::new(),
        }
    }

    /// Draws whether this ANN read is sampled; a ticket while no other
    /// sample runs.
    pub fn draw(self: &Arc<Self>) -> Option<SampleTicket> {
        if self.rate <= 0.0 || rand_unit() >= self.rate {
            return None;
        }
        self.running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| SampleTicket(Arc::clone(self)))
    }

    /// Records one sample: `ann` rows against the `exact` answer (no
    /// sample when the exact answer is empty).
    pub fn record(&self, table: &str, index: &str, ann: &[Row], exact: &[Row]) {
        let Some(recall) = recall(ann, exact) else {
            return;
        };
        self.histogram.observe(table, index, recall);
        let mut by_index = self.by_index.lock().unwrap_or_else(|e| e.into_inner());
        let entry = by_index
            .entry((table.to_string(), index.to_string()))
            .or_insert(IndexRecall {
                min: 1.0,
                ..IndexRecall::default()
            });
        entry.samples += 1;
        entry.sum += recall;
        entry.last = recall;
        entry.min = entry.min.min(recall);
    }

    /// Figures per (table, index), in name order.
    pub fn report(&self) -> Vec<((String, String), IndexRecall)> {
        let by_index = self.by_index.lock().unwrap_or_else(|e| e.into_inner());
        by_index
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The share of `exact`'s rows found in `ann` (as multisets); `None` when
/// `exact` is empty.
pub fn recall(ann: &[Row], exact: &[Row]) -> Option<f64> {
    if exact.is_empty() {
        return None;
    }
    let mut unmatched: Vec<&Row> = ann.iter().collect();
    let mut found = 0usize;
    for row in exact {
        if let Some(at) = unmatched.iter().position(|r| *r == row) {
            unmatched.swap_remove(at);
            found += 1;
        }
    }
    Some(found as f64 / exact.len() as f64)
}

/// A uniform draw in [0, 1) from the OS generator.
fn rand_unit() -> f64 {
    let bytes = crate::wire::scram::random_bytes::<8>();
    (u64::from_ne_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Value;

    fn rows(ids: &[i64]) -> Vec<Row> {
        ids.iter().map(|&i| vec![Some(Value::Int8(i))]).collect()
    }

    #[test]
    fn recall_counts_exact_rows_the_index_found() {
        assert_eq!(
            recall(&rows(&[1, 2, 3, 4]), &rows(&[1, 2, 3, 4])),
            Some(1.0)
        );
        assert_eq!(
            recall(&rows(&[1, 2, 9, 8]), &rows(&[1, 2, 3, 4])),
            Some(0.5)
        );
        assert_eq!(recall(&rows(&[1, 1]), &rows(&[1, 2])), Some(0.5));
        assert_eq!(recall(&rows(&[1]), &rows(&[])), None);
    }

    #[test]
    fn one_sample_at_a_time_and_none_at_rate_zero() {
        let m = Arc::new(RecallMonitor::new(1.0));
        let ticket = m.draw().expect("rate 1 samples");
        assert!(m.draw().is_none(), "a second sample while one runs");
        drop(ticket);
        assert!(m.draw().is_some());
        assert!(Arc::new(RecallMonitor::new(0.0)).draw().is_none());
        m.record("t", "i", &rows(&[1, 5]), &rows(&[1, 2]));
        m.record("t", "i", &rows(&[1, 2]), &rows(&[1, 2]));
        let report = m.report();
        assert_eq!(report.len(), 1);
        let r = &report[0].1;
        assert_eq!((r.samples, r.sum, r.last, r.min), (2, 1.5, 1.0, 0.5));
    }
}
