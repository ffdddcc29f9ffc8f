//! Timing a query workload: recall@k, single-thread QPS and latency
//! percentiles, measured the way ../shared/benchmarks measures the anchors
//! (warm-up, then the best of two timed passes).

use pgvshard::metrics::thread_cpu_time;
use std::time::{Duration, Instant};

/// What one setting measured.
pub struct Measured {
    /// Mean recall@k against the ground truth.
    pub recall: f64,
    /// Queries per second, one thread, one query at a time.
    pub qps: f64,
    /// Queries per CPU second of the searching thread (best pass): what
    /// `qps` would be on a machine where nothing else runs, as time spent
    /// waiting for a core does not count.
    pub cpu_qps: f64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency in microseconds.
    pub p99_us: f64,
}

/// Warm-up queries run untimed before each setting.
const WARMUP: usize = 200;
/// Timed passes per setting; the fastest is kept.
const PASSES: usize = 2;

/// Runs `search(i)` for queries `0..n` and scores the returned ids against
/// `truth[i][..k]`.
pub fn run(
    n: usize,
    k: usize,
    truth: &[Vec<u32>],
    mut search: impl FnMut(usize) -> Vec<u32>,
) -> Measured {
    for i in 0..WARMUP.min(n) {
        std::hint::black_box(search(i));
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut least_cpu = f64::MAX;
    let mut hits = 0usize;
    for _ in 0..PASSES {
        let mut lat = Vec::with_capacity(n);
        hits = 0;
        let cpu = thread_cpu_time();
        let start = Instant::now();
        for (i, row) in truth.iter().enumerate().take(n) {
            let t = Instant::now();
            let found = search(i);
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            let want = &row[..k.min(row.len())];
            hits += found.iter().take(k).filter(|id| want.contains(id)).count();
        }
        let wall = start.elapsed().as_secs_f64();
        least_cpu = least_cpu.min((thread_cpu_time() - cpu).as_secs_f64());
        if best.as_ref().is_none_or(|(w, _)| wall < *w) {
            best = Some((wall, lat));
        }
    }
    let (wall, mut lat) = best.expect("at least one pass");
    lat.sort_by(f64::total_cmp);
    Measured {
        recall: hits as f64 / (n * k) as f64,
        qps: n as f64 / wall,
        cpu_qps: n as f64 / least_cpu.max(f64::MIN_POSITIVE),
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
    }
}

/// The value at quantile `p` of `sorted` (0 when empty).
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Latency percentiles (µs) and throughput of a run.
pub struct Timing {
    /// Completed requests per second of wall time.
    pub qps: f64,
    /// Median latency, µs.
    pub p50: f64,
    /// 99th percentile latency, µs.
    pub p99: f64,
}

impl Timing {
    /// The timing of `micros` (one latency per request) completed in `wall`.
    pub fn from(mut micros: Vec<f64>, wall: Duration) -> Timing {
        micros.sort_by(f64::total_cmp);
        Timing {
            qps: micros.len() as f64 / wall.as_secs_f64(),
            p50: percentile(&micros, 0.5),
            p99: percentile(&micros, 0.99),
        }
    }
}

/// The round with the median p50.
pub fn median(mut rounds: Vec<Timing>) -> Timing {
    rounds.sort_by(|a, b| a.p50.total_cmp(&b.p50));
    rounds.swap_remove(rounds.len() / 2)
}
