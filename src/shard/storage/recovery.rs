//! Startup: load the last checkpoint (ANN indexes from their files), then
//! replay the WAL's committed transactions after the checkpoint LSN, cutting
//! a damaged or unfinished tail (see [`super::wal::reader`]).

use super::checkpoint;
use super::error::Result;
use super::tables::{Tables, Undo};
use super::wal::reader::replay;
use super::wal::record::WalRecord;
use super::wal::Lsn;
use std::path::Path;
use std::time::{Duration, Instant};

/// What startup found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// LSN of the checkpoint loaded (0 without one).
    pub checkpoint_lsn: Lsn,
    /// LSN where the WAL continues.
    pub end_lsn: Lsn,
    /// ANN indexes read from checkpoint files.
    pub indexes_loaded: u64,
    /// ANN indexes built while replaying (CREATE INDEX or TRUNCATE after
    /// the checkpoint).
    pub indexes_built: u64,
    /// Committed transactions replayed.
    pub transactions_replayed: u64,
    /// Where the WAL was cut, and why.
    pub wal_cut: Option<(Lsn, String)>,
    /// Time taken.
    pub duration: Duration,
}

fn ann_builds(tables: &Tables, rec: &WalRecord) -> u64 {
    match rec {
        WalRecord::CreateIndex { index, .. } => Tables::is_ann(index.method) as u64,
        WalRecord::Truncate { table } => tables.by_oid(*table).map_or(0, |t| {
            t.indexes()
                .iter()
                .filter(|i| Tables::is_ann(i.def.method))
                .count() as u64
        }),
        _ => 0,
    }
}

/// Rebuilds the tables of data directory `data` (whose WAL is in `wal`).
pub fn recover(data: &Path, wal: &Path) -> Result<(Tables, RecoveryReport)> {
    let started = Instant::now();
    let loaded = checkpoint::load(data)?;
    let mut tables = loaded.tables;
    let mut report = RecoveryReport {
        checkpoint_lsn: loaded.lsn,
        indexes_loaded: loaded.indexes_loaded,
        ..RecoveryReport::default()
    };
    let outcome = replay(wal, loaded.lsn, |_, records| {
        for rec in &records {
            report.indexes_built += ann_builds(&tables, rec);
            let _: Undo = tables.apply(rec, &ann::BuildProgress::new(), None)?;
        }
        Ok(())
    })?;
    report.end_lsn = outcome.end;
    report.transactions_replayed = outcome.transactions;
    report.wal_cut = outcome.cut;
    report.duration = started.elapsed();
    tracing::info!(
        checkpoint = %report.checkpoint_lsn,
        end = %report.end_lsn,
        transactions = report.transactions_replayed,
        indexes_loaded = report.indexes_loaded,
        indexes_built = report.indexes_built,
        ms = report.duration.as_millis() as u64,
        "storage recovered"
    );
    Ok((tables, report))
}
