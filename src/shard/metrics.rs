//! A shard's metrics as a collector: at each scrape it reads the tables
//! (under the read lock, as a statement does), the running index builds
//! (`pg_stat_progress_create_index`'s state) and the WAL position, and
//! hands over the histograms the executor and storage record into. It
//! holds the shard weakly, so a registry outliving the shard only stops
//! reporting it.

use std::sync::{Arc, Weak};

use super::executor::Shard;
use super::storage::table::IndexData;
use crate::metrics::{BuildSample, ShardCollector, ShardSample, TableSample};

/// The collector of `shard`'s families, every series labelled
/// `shard="<label>"` when a label is given (embedded shards).
pub fn collector(
    shard: &Arc<Shard>,
    label: Option<&str>,
) -> Result<ShardCollector, prometheus::Error> {
    let weak: Weak<Shard> = Arc::downgrade(shard);
    ShardCollector::new(label, move || weak.upgrade().map(|s| sample(&s)))
}

fn sample(shard: &Shard) -> ShardSample {
    let db = &shard.db;
    let tables = db
        .read()
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
    }
}
