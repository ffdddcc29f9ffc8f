//! A shard's families. Two kinds of value:
//! - timed on the hot path ([`QueryTimings`], [`StorageTimings`]):
//!   prometheus' histograms are lock-free (atomic adds), and the
//!   per-plan children are resolved once at start, so recording a query
//!   neither hashes a label nor takes the family's lock;
//! - read at scrape time ([`ShardSample`]): rows and index entries per
//!   table, index builds and their progress, WAL bytes, recovery. They
//!   live in storage already, so nothing is counted per insert.
//!
//! [`ShardCollector`] turns samples into families. A standalone shard's
//! series carry no shard label; a process with embedded shards registers
//! one collector for all of them in its one registry, each series
//! labelled `shard` with the configured shard name (bounded by the
//! config).

use std::collections::HashMap;
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{LabelPair, MetricFamily};
use prometheus::{
    Counter, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge,
    IntGaugeVec, Opts,
};

use super::LATENCY_BUCKETS;

/// How a read found its rows: the `plan` label of query latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryPlan {
    /// No KNN ordering: a scan (or btree lookup) with a filter.
    Scan,
    /// A KNN query that compared every (matching) row.
    Exact,
    /// A KNN query answered by an ANN index (HNSW, IVFFlat).
    Ann,
}

impl QueryPlan {
    /// Every plan, in declaration order.
    pub const ALL: [QueryPlan; 3] = [QueryPlan::Scan, QueryPlan::Exact, QueryPlan::Ann];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            QueryPlan::Ann => "ann",
            QueryPlan::Exact => "exact",
            QueryPlan::Scan => "scan",
        }
    }
}

/// Latency of reads by plan, and the CPU time their ANN index searches
/// took, recorded by the executor.
#[derive(Clone, Debug)]
pub struct QueryTimings {
    family: HistogramVec,
    by_plan: [Histogram; 3],
    ann_search_cpu: Counter,
}

impl QueryTimings {
    /// Histograms with zero counts for every plan.
    pub fn new() -> Self {
        let opts = HistogramOpts::new(
            "pgvshard_shard_query_duration_seconds",
            "Latency of a read on the shard, by plan: ann (index search), exact (KNN by comparing rows), scan (no KNN).",
        )
        .buckets(LATENCY_BUCKETS.to_vec());
        let family = HistogramVec::new(opts, &["plan"]).expect("valid histogram options");
        let by_plan = QueryPlan::ALL.map(|p| family.with_label_values(&[p.label()]));
        let ann_search_cpu = Counter::with_opts(Opts::new(
            "pgvshard_shard_ann_search_cpu_seconds_total",
            "CPU time of the ANN index searches of reads (the engine's share of a query; the rest is protocol, planning and output); a prepared KNN statement's searches are measured one in eight at random and counted eightfold.",
        ))
        .expect("valid counter options");
        QueryTimings {
            family,
            by_plan,
            ann_search_cpu,
        }
    }

    /// Records one read.
    pub fn observe(&self, plan: QueryPlan, took: Duration) {
        self.by_plan[plan as usize].observe(took.as_secs_f64());
    }

    /// Counts CPU time spent searching ANN indexes.
    pub fn add_ann_search_cpu(&self, cpu: Duration) {
        self.ann_search_cpu.inc_by(cpu.as_secs_f64());
    }
}

impl Default for QueryTimings {
    fn default() -> Self {
        Self::new()
    }
}

/// Recall@k of sampled ANN reads against an exact run (the recall
/// monitor, `src/shard/recall.rs`), by table and index.
#[derive(Clone, Debug)]
pub struct RecallHistogram {
    family: HistogramVec,
}

impl RecallHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let opts = HistogramOpts::new(
            "pgvshard_recall_at_k",
            "Recall@k of sampled ANN reads: the share of an exact scan's rows (same statement, enable_indexscan off) that the index returned.",
        )
        .buckets(vec![0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0]);
        RecallHistogram {
            family: HistogramVec::new(opts, &["table", "index"]).expect("valid histogram options"),
        }
    }

    /// Records one sample.
    pub fn observe(&self, table: &str, index: &str, recall: f64) {
        self.family
            .with_label_values(&[table, index])
            .observe(recall);
    }
}

impl Default for RecallHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Latency of the storage's own work, recorded by the WAL writer and the
/// checkpointer.
#[derive(Clone, Debug)]
pub struct StorageTimings {
    /// One group-commit fsync of the WAL (its count is the fsyncs issued).
    pub wal_fsync: Histogram,
    /// One checkpoint, from taking the read lock to removing old WAL.
    pub checkpoint: Histogram,
}

impl StorageTimings {
    /// Empty histograms.
    pub fn new() -> Self {
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
                .expect("valid histogram options")
        };
        StorageTimings {
            wal_fsync: histogram(
                "pgvshard_shard_wal_fsync_duration_seconds",
                "Latency of one WAL fsync (group commit: one fsync covers every commit waiting for it).",
                LATENCY_BUCKETS,
            ),
            checkpoint: histogram(
                "pgvshard_shard_checkpoint_duration_seconds",
                "Time to write one checkpoint (tables, ANN indexes, manifest, old WAL removed).",
                &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0],
            ),
        }
    }
}

impl Default for StorageTimings {
    fn default() -> Self {
        Self::new()
    }
}

/// One table at scrape time.
#[derive(Debug, Clone)]
pub struct TableSample {
    /// Table name.
    pub name: String,
    /// Live rows.
    pub rows: u64,
    /// Entries of each index, by index name.
    pub indexes: Vec<(String, u64)>,
}

/// One running index build at scrape time.
#[derive(Debug, Clone)]
pub struct BuildSample {
    /// Table name.
    pub table: String,
    /// Index name.
    pub index: String,
    /// Tuples done and to do (0 to do: still initializing).
    pub done: u64,
    /// Tuples to do.
    pub total: u64,
}

/// What a shard reports at one scrape.
pub struct ShardSample {
    /// Every table.
    pub tables: Vec<TableSample>,
    /// Index builds running now.
    pub builds: Vec<BuildSample>,
    /// WAL bytes appended since the shard opened.
    pub wal_written_bytes: u64,
    /// How long startup recovery took.
    pub recovery: Duration,
    /// Committed transactions replayed from the WAL at startup.
    pub recovery_transactions: u64,
    /// The storage's histograms.
    pub storage: StorageTimings,
    /// The executor's histograms.
    pub queries: QueryTimings,
    /// The recall monitor's histogram.
    pub recall: RecallHistogram,
    /// CPU time of the recall monitor's exact runs so far.
    pub recall_cpu: Duration,
    /// Available and total bytes of the WAL directory's file system, when
    /// they could be read.
    pub wal_fs: Option<(u64, u64)>,
    /// Streaming replication.
    pub replication: ReplicationSample,
}

/// A shard's replication at scrape time.
#[derive(Debug, Clone, Default)]
pub struct ReplicationSample {
    /// It is a standby.
    pub is_standby: bool,
    /// Its timeline.
    pub timeline: u32,
    /// WAL bytes sent to standbys since start.
    pub wal_sent_bytes: u64,
    /// WAL bytes replayed from a primary since start.
    pub wal_replayed_bytes: u64,
    /// Each connected standby (a primary's).
    pub standbys: Vec<StandbySample>,
}

/// One standby as its primary sees it.
#[derive(Debug, Clone)]
pub struct StandbySample {
    /// Its `application_name`.
    pub name: String,
    /// WAL bytes the primary flushed that it has not yet applied.
    pub lag_bytes: u64,
    /// Write, flush and replay lag, once measured.
    pub lags: [Option<Duration>; 3],
}

/// Takes a shard's sample at scrape time (`None` once the shard is gone).
pub type Sampler = Box<dyn Fn() -> Option<ShardSample> + Send + Sync>;

/// The families of a process's shards, filled from a [`ShardSample`] of
/// each taken at every scrape. One collector for all of them: the
/// registry tells collectors apart by a sum of hashes, which near-equal
/// labels like `shard0`/`shard1` can make collide.
pub struct ShardCollector {
    descs: Vec<Desc>,
    shards: Vec<(Option<String>, Sampler)>,
}
/// (name, help, labels) of the families built at scrape time.
const SAMPLED: &[(&str, &str, &[&str])] = &[
    ("pgvshard_shard_rows", "Live rows per table.", &["table"]),
    (
        "pgvshard_shard_index_entries",
        "Entries per secondary index (ANN and btree; the primary key has one per row).",
        &["table", "index"],
    ),
    (
        "pgvshard_shard_index_builds_in_progress",
        "CREATE INDEX builds running now.",
        &[],
    ),
    (
        "pgvshard_shard_index_build_progress_ratio",
        "Share of tuples a running index build has done (0 while initializing).",
        &["table", "index"],
    ),
    (
        "pgvshard_shard_wal_written_bytes_total",
        "WAL bytes appended since the shard started.",
        &[],
    ),
    (
        "pgvshard_shard_recovery_duration_seconds",
        "Time startup recovery took (checkpoint load and WAL replay).",
        &[],
    ),
    (
        "pgvshard_shard_recovery_replayed_transactions",
        "Committed transactions replayed from the WAL at startup.",
        &[],
    ),
    (
        "pgvshard_shard_wal_fs_avail_bytes",
        "Bytes still writable on the file system of the shard's WAL directory (statvfs f_bavail).",
        &[],
    ),
    (
        "pgvshard_shard_wal_fs_size_bytes",
        "Size of the file system of the shard's WAL directory.",
        &[],
    ),
    (
        "pgvshard_recall_monitor_cpu_seconds_total",
        "CPU time of the recall monitor's exact runs.",
        &[],
    ),
    (
        "pgvshard_shard_replication_lag_bytes",
        "WAL bytes the primary has flushed that a standby has not applied yet.",
        &["standby"],
    ),
    (
        "pgvshard_shard_replication_lag_seconds",
        "Time from the primary sending WAL to a standby reporting it written, flushed, replayed.",
        &["standby", "kind"],
    ),
    (
        "pgvshard_shard_wal_sent_bytes_total",
        "WAL bytes sent to standbys since the shard started.",
        &[],
    ),
    (
        "pgvshard_shard_wal_replayed_bytes_total",
        "WAL bytes replayed from the primary since the shard started.",
        &[],
    ),
    (
        "pgvshard_shard_is_standby",
        "1 while the shard is a standby (in recovery), 0 on a primary.",
        &[],
    ),
    ("pgvshard_shard_timeline", "The shard's timeline.", &[]),
];

impl ShardCollector {
    /// The families of the one shard of this process, without a shard
    /// label.
    pub fn unlabelled(sample: Sampler) -> Result<Self, prometheus::Error> {
        Self::new(false, vec![(None, sample)])
    }

    /// The families of several shards, each series labelled
    /// `shard="<name>"`.
    pub fn labelled(shards: Vec<(String, Sampler)>) -> Result<Self, prometheus::Error> {
        Self::new(
            true,
            shards.into_iter().map(|(n, s)| (Some(n), s)).collect(),
        )
    }

    fn new(
        labelled: bool,
        shards: Vec<(Option<String>, Sampler)>,
    ) -> Result<Self, prometheus::Error> {
        let desc = |name: &str, help: &str, labels: &[String]| {
            let shard = labelled.then(|| "shard".to_string());
            let labels = shard.into_iter().chain(labels.iter().cloned()).collect();
            Desc::new(name.to_string(), help.to_string(), labels, HashMap::new())
        };
        let timings = StorageTimings::new();
        let mut descs = Vec::new();
        for (name, help, labels) in SAMPLED {
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            descs.push(desc(name, help, &labels)?);
        }
        for d in timings
            .wal_fsync
            .desc()
            .into_iter()
            .chain(timings.checkpoint.desc())
            .chain(QueryTimings::new().family.desc())
            .chain(QueryTimings::new().ann_search_cpu.desc())
            .chain(RecallHistogram::new().family.desc())
        {
            descs.push(desc(&d.fq_name, &d.help, &d.variable_labels)?);
        }
        Ok(ShardCollector { descs, shards })
    }

    fn families(sample: &ShardSample) -> Result<Vec<MetricFamily>, prometheus::Error> {
        let opts = |i: usize| Opts::new(SAMPLED[i].0, SAMPLED[i].1);
        let rows = IntGaugeVec::new(opts(0), SAMPLED[0].2)?;
        let entries = IntGaugeVec::new(opts(1), SAMPLED[1].2)?;
        for t in &sample.tables {
            rows.with_label_values(&[&t.name]).set(clamp(t.rows));
            for (index, n) in &t.indexes {
                entries
                    .with_label_values(&[t.name.as_str(), index.as_str()])
                    .set(clamp(*n));
            }
        }
        let builds = IntGauge::with_opts(opts(2))?;
        builds.set(clamp(sample.builds.len() as u64));
        let progress = GaugeVec::new(opts(3), SAMPLED[3].2)?;
        for b in &sample.builds {
            let ratio = if b.total == 0 {
                0.0
            } else {
                (b.done as f64 / b.total as f64).min(1.0)
            };
            progress
                .with_label_values(&[b.table.as_str(), b.index.as_str()])
                .set(ratio);
        }
        let wal = IntCounter::with_opts(opts(4))?;
        wal.inc_by(sample.wal_written_bytes);
        let recovery = Gauge::with_opts(opts(5))?;
        recovery.set(sample.recovery.as_secs_f64());
        let replayed = IntGauge::with_opts(opts(6))?;
        replayed.set(clamp(sample.recovery_transactions));
        let mut disk = Vec::new();
        if let Some((avail, size)) = sample.wal_fs {
            for (i, bytes) in [(7, avail), (8, size)] {
                let g = IntGauge::with_opts(opts(i))?;
                g.set(clamp(bytes));
                disk.extend(g.collect());
            }
        }
        let recall_cpu = Counter::with_opts(opts(9))?;
        recall_cpu.inc_by(sample.recall_cpu.as_secs_f64());
        let r = &sample.replication;
        let lag_bytes = IntGaugeVec::new(opts(10), SAMPLED[10].2)?;
        let lag_seconds = GaugeVec::new(opts(11), SAMPLED[11].2)?;
        for s in &r.standbys {
            lag_bytes
                .with_label_values(&[&s.name])
                .set(clamp(s.lag_bytes));
            for (kind, lag) in ["write", "flush", "replay"].iter().zip(s.lags) {
                if let Some(d) = lag {
                    lag_seconds
                        .with_label_values(&[s.name.as_str(), kind])
                        .set(d.as_secs_f64());
                }
            }
        }
        let sent = IntCounter::with_opts(opts(12))?;
        sent.inc_by(r.wal_sent_bytes);
        let replayed_bytes = IntCounter::with_opts(opts(13))?;
        replayed_bytes.inc_by(r.wal_replayed_bytes);
        let is_standby = IntGauge::with_opts(opts(14))?;
        is_standby.set(i64::from(r.is_standby));
        let timeline = IntGauge::with_opts(opts(15))?;
        timeline.set(i64::from(r.timeline));
        let collectors: [&dyn Collector; 19] = [
            &lag_bytes,
            &lag_seconds,
            &sent,
            &replayed_bytes,
            &is_standby,
            &timeline,
            &rows,
            &entries,
            &builds,
            &progress,
            &wal,
            &recovery,
            &replayed,
            &recall_cpu,
            &sample.storage.wal_fsync,
            &sample.storage.checkpoint,
            &sample.queries.family,
            &sample.queries.ann_search_cpu,
            &sample.recall.family,
        ];
        Ok(collectors
            .iter()
            .flat_map(|c| c.collect())
            .chain(disk)
            .collect())
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for ShardCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        for (label, sample) in &self.shards {
            let Some(sample) = sample() else { continue };
            let mut families = match Self::families(&sample) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "shard metrics not collected");
                    continue;
                }
            };
            if let Some(shard) = label {
                let mut pair = LabelPair::default();
                pair.set_name("shard".to_string());
                pair.set_value(shard.clone());
                for m in families.iter_mut().flat_map(|f| f.mut_metric().iter_mut()) {
                    let mut labels = m.take_label();
                    labels.insert(0, pair.clone());
                    m.set_label(labels);
                }
            }
            out.extend(families);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: u64) -> Sampler {
        Box::new(move || {
            Some(ShardSample {
                tables: vec![TableSample {
                    name: "items".into(),
                    rows,
                    indexes: Vec::new(),
                }],
                builds: vec![BuildSample {
                    table: "items".into(),
                    index: "items_hnsw".into(),
                    done: rows,
                    total: 8,
                }],
                wal_written_bytes: 0,
                recovery: Duration::ZERO,
                recovery_transactions: 0,
                storage: StorageTimings::new(),
                queries: QueryTimings::new(),
                recall: RecallHistogram::new(),
                recall_cpu: Duration::ZERO,
                wal_fs: Some((1, 2)),
                replication: ReplicationSample::default(),
            })
        })
    }

    #[test]
    fn labelled_shards_register_beside_the_proxy() {
        let registry = prometheus::Registry::new();
        crate::metrics::ProxyMetrics::register(&registry).unwrap();
        let shards = vec![
            ("shard0".to_string(), sample(3)),
            ("shard1".to_string(), sample(4)),
            ("gone".to_string(), Box::new(|| None) as Sampler),
        ];
        let c = ShardCollector::labelled(shards).unwrap();
        registry.register(Box::new(c)).unwrap();
        let text = crate::metrics::render(&registry);
        assert!(text.contains("pgvshard_shard_rows{shard=\"shard0\",table=\"items\"} 3"));
        assert!(text.contains("pgvshard_shard_rows{shard=\"shard1\",table=\"items\"} 4"));
        assert!(!text.contains("gone"), "a closed shard reports nothing");
        assert!(text.contains("pgvshard_shard_index_builds_in_progress{shard=\"shard1\"} 1"));
        assert!(text.contains(
            "pgvshard_shard_index_build_progress_ratio{shard=\"shard1\",index=\"items_hnsw\",table=\"items\"} 0.5"
        ));
        assert_eq!(text.matches("# TYPE pgvshard_shard_rows gauge").count(), 1);
        assert!(text.contains("pgvshard_shard_wal_fs_avail_bytes{shard=\"shard0\"} 1"));
        assert!(text.contains("pgvshard_shard_wal_fs_size_bytes{shard=\"shard1\"} 2"));
    }
}
