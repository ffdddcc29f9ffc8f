//! A shard's metrics as a collector: at each scrape it reads the tables
//! (under the read lock, as a statement does), the running index builds
//! (`pg_stat_progress_create_index`'s state), the WAL position and its
//! file system's free space, and
//! hands over the histograms the executor and storage record into. It
//! holds the shard weakly, so a registry outliving the shard only stops
//! reporting it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::executor::Shard;
use super::storage::table::IndexData;
use crate::metrics::{
    BuildSample, ReplicationSample, Sampler, ShardCollector, ShardSample, StandbySample,
    TableSample,
};

/// The collector of a standalone shard's families.
pub fn collector(shard: &Arc<Shard>) -> Result<ShardCollector, prometheus::Error> {
    ShardCollector::unlabelled(sampler(shard))
}

/// The collector of a process's embedded shards, each series labelled
/// `shard="<name>"`.
pub fn labelled_collector<'a>(
    shards: impl IntoIterator<Item = (&'a str, &'a Arc<Shard>)>,
) -> Result<ShardCollector, prometheus::Error> {
    ShardCollector::labelled(
        shards
            .into_iter()
            .map(|(name, shard)| (name.to_string(), sampler(shard)))
            .collect(),
    )
}

fn sampler(shard: &Arc<Shard>) -> Sampler {
    let weak: Weak<Shard> = Arc::downgrade(shard);
    Box::new(move || weak.upgrade().map(|s| sample(&s)))
}

fn sample(shard: &Shard) -> ShardSample {
    let db = &shard.db;
    let tables = db
        .read_applied()
        .iter()
        .map(|t| TableSample {
            name: t.def().name.clone(),
            rows: t.len() as u64,
            indexes: t
                .indexes()
                .iter()
                .map(|i| {
                    let entries = match &i.data {
                        IndexData::BTree(set) => set.len(),
                        IndexData::Ann(ann) => ann.len(),
                        IndexData::Expression => 0,
                    };
                    (i.def.name.clone(), entries as u64)
                })
                .collect(),
        })
        .collect();
    let builds = shard
        .builds()
        .into_iter()
        .map(|b| {
            let (done, total) = b.progress.get();
            BuildSample {
                table: b.table,
                index: b.index,
                done,
                total,
            }
        })
        .collect();
    let recovery = db.recovery_report();
    ShardSample {
        tables,
        builds,
        wal_written_bytes: db.wal_written_since_open(),
        recovery: recovery.duration,
        recovery_transactions: recovery.transactions_replayed,
        storage: db.timings().clone(),
        queries: shard.queries.clone(),
        recall: shard.recall.histogram.clone(),
        recall_cpu: shard.recall.cpu_time(),
        wal_fs: super::disk::space(db.wal_dir()).map(|s| (s.available, s.total)),
        replication: replication(shard),
    }
}

fn replication(shard: &Shard) -> ReplicationSample {
    let (db, r) = (&shard.db, &shard.replication);
    let flushed = db.flushed_lsn();
    ReplicationSample {
        is_standby: db.in_recovery(),
        timeline: db.timeline().current,
        wal_sent_bytes: r.wal_sent_bytes.load(Ordering::Relaxed),
        wal_replayed_bytes: r.wal_replayed_bytes.load(Ordering::Relaxed),
        standbys: r
            .senders()
            .iter()
            .map(|s| {
                let p = s.progress();
                StandbySample {
                    name: s.application_name.clone(),
                    lag_bytes: flushed.0.saturating_sub(p.status.apply.0),
                    lags: p.lags,
                }
            })
            .collect(),
    }
}
