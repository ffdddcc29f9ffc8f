//! The live recall monitor: a sampled share of the reads answered by an
//! ANN index (`recall_sample_rate`) is run again in the background as an
//! exact scan (`enable_indexscan = off`), and the share of the exact
//! answer's rows the index had returned — recall@k, k the query's
//! LIMIT + OFFSET — is recorded per table and index: in the histogram
//! `pgvshard_recall_at_k{table,index}` and in `SHOW pgvshard.recall`.
//!
//! Off the hot path and bounded: the sampled query itself only draws a
//! number from a thread-local generator and clones its rows; the exact run
//! happens on the monitor's own thread, one at a time per shard (a sample
//! drawn while one runs is skipped), and its CPU time is budgeted: after a
//! run that took `t` of CPU no sample is taken for `t × (1 / share − 1)`,
//! so the exact runs use at most [`MAX_CPU_SHARE`] of one core however
//! large the table and busy the shard (an exact scan of 50,000 vectors
//! costs as much as a hundred ANN reads). Rows are compared as
//! whole output rows (a multiset), so the statement's own filter,
//! parameters and projection apply to both runs. Rows committed between
//! the two runs can lower a sample's recall slightly.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::metrics::{thread_cpu_time, RecallHistogram};
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

/// Most of one core the exact runs take, averaged over time.
///
/// 2 %: after an exact scan of 50,000 `vector(384)` rows (~17 million
/// instructions) sampling pauses 49 times as long, so a busy shard still
/// takes a few samples a second; at 5 % the monitor took 7 % of a shard's
/// CPU per KNN read (pypi-minilm-384 at ef_search 36, 3,800 reads a second).
pub const MAX_CPU_SHARE: f64 = 0.02;

/// A shard's recall monitor.
#[derive(Debug)]
pub struct RecallMonitor {
    rate: f64,
    running: AtomicBool,
    /// When the monitor was made: the origin of `resume_at`.
    epoch: Instant,
    /// Nanoseconds after `epoch` before which no sample is drawn (the
    /// CPU budget's pause after the last exact run).
    resume_at: AtomicU64,
    /// CPU time of every exact run so far, in nanoseconds.
    cpu_nanos: AtomicU64,
    /// The one thread exact runs use (made at the first sample).
    worker: OnceLock<Option<rayon::ThreadPool>>,
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

    /// Runs `exact` (the sample's exact run: its rows, `None` if it
    /// failed) on the monitor's thread — one core at most, whatever
    /// parallelism the exact scan would use elsewhere — and records the
    /// recall of `ann` (the index's rows) on `table`'s `index` against
    /// it. Its CPU time is counted and pauses the drawing of samples (see
    /// the module doc).
    pub fn run(
        self,
        table: String,
        index: String,
        ann: Vec<Row>,
        exact: impl FnOnce() -> Option<Vec<Row>> + Send + 'static,
    ) {
        let monitor = Arc::clone(&self.0);
        let Some(pool) = monitor.worker() else {
            return;
        };
        pool.spawn(move || {
            let started = thread_cpu_time();
            let rows = exact();
            let monitor = self.monitor();
            monitor.spent(thread_cpu_time().saturating_sub(started));
            if let Some(rows) = rows {
                monitor.record(&table, &index, &ann, &rows);
            }
        });
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
            epoch: Instant::now(),
            resume_at: AtomicU64::new(0),
            cpu_nanos: AtomicU64::new(0),
            worker: OnceLock::new(),
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
        if self.since_epoch() < self.resume_at.load(Ordering::Acquire) {
            return None;
        }
        self.running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| SampleTicket(Arc::clone(self)))
    }

    /// CPU time the exact runs took so far.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    fn since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts an exact run's CPU time and pauses sampling for long enough
    /// to keep the runs within [`MAX_CPU_SHARE`].
    fn spent(&self, cpu: Duration) {
        let nanos = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
        let pause = nanos as f64 * (1.0 / MAX_CPU_SHARE - 1.0);
        self.resume_at.store(
            self.since_epoch().saturating_add(pause as u64),
            Ordering::Release,
        );
    }

    /// The exact runs' thread; `None` (no samples) if it cannot be started.
    fn worker(&self) -> Option<&rayon::ThreadPool> {
        self.worker
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(|_| "pgvshard-recall".into())
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "recall monitor not started"))
                    .ok()
            })
            .as_ref()
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

/// A uniform draw in [0, 1): xorshift64* on a per-thread state seeded
/// once from the OS generator (a draw per ANN read must cost nothing
/// like a system call).
fn rand_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> =
            Cell::new(u64::from_ne_bytes(crate::wire::scram::random_bytes::<8>()) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
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
        m.spent(Duration::from_secs(3600));
        assert!(m.draw().is_none(), "paused by the CPU budget");
        assert_eq!(m.cpu_time(), Duration::from_secs(3600));
        let r = &report[0].1;
        assert_eq!((r.samples, r.sum, r.last, r.min), (2, 1.5, 1.0, 0.5));
    }
}
