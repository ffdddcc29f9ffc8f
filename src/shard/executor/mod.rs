//! The shard's SQL executor: a [`QueryHandler`] that plans each statement
//! against storage's tables and ANN indexes and answers it as PostgreSQL
//! with pgvector would.
//!
//! Reads and writes run on tokio's blocking pool (a statement holds the
//! tables' read lock while it runs; a commit takes the write lock and
//! fsyncs), never on the async workers. A session outside a transaction
//! block commits each write statement on its own; inside `BEGIN … COMMIT`
//! its writes collect in a [`Transaction`] that commits all at once, so
//! other sessions never see part of it; its own queries see them (see
//! `overlay`), and its UPDATE and DELETE reach the rows it inserted.

mod absent_catalogs;
mod advisory_locks;
mod aggregate;
mod arrays;
mod catalog;
mod coerce;
mod copy;
mod cte;
mod datetime;
mod ddl;
mod distinct_on;
mod dml;
mod explain;
mod expr;
mod functions;
mod index_expr;
mod infer;
mod information_schema;
mod json_build;
mod json_ops;
mod json_sets;
mod jsonb_paths;
mod jsonpath_eval;
mod maintenance;
mod overlay;
mod pg_catalog;
mod plan;
mod prepared_knn;
mod referential;
mod regex_match;
mod replication_views;
mod scalar_functions;
mod select;
mod sequence_ddl;
mod sequences;
mod session;
mod setop;
mod signatures;
mod srf;
mod to_char;
mod types;
mod upsert;
mod window;

pub use sequences::Sequences;
pub use session::{ShardFactory, ShardSession};

use crate::metrics::QueryTimings;
use crate::shard::recall::RecallMonitor;
use crate::shard::replication::Replication;
use crate::shard::storage::{Database, StorageError};
use crate::wire::{PgError, Severity};
use ann::BuildProgress;
use select::Relation;
use std::sync::{Arc, Mutex};

/// What a statement produced: its command tag, rows (for statements that
/// return rows) and notices.
#[derive(Debug, Default)]
pub struct Outcome {
    /// CommandComplete tag.
    pub tag: String,
    /// Result rows, with their columns.
    pub rows: Option<Relation>,
    /// Notices to send before the rows.
    pub notices: Vec<PgError>,
}

impl Outcome {
    /// An outcome with `tag` and nothing else.
    pub fn tag(tag: &str) -> Self {
        Outcome {
            tag: tag.to_string(),
            ..Outcome::default()
        }
    }

    /// Adds a notice.
    pub fn with_notice(mut self, n: PgError) -> Self {
        self.notices.push(n);
        self
    }

    /// An outcome returning `rows` with tag `SELECT n`.
    pub fn select(rows: Relation) -> Self {
        Outcome {
            tag: format!("SELECT {}", rows.rows.len()),
            rows: Some(rows),
            notices: Vec::new(),
        }
    }
}

/// A storage error as the client sees it.
pub fn storage_error(e: StorageError) -> PgError {
    let mut p = PgError::new(e.sqlstate, e.message);
    p.detail = e.detail;
    p.hint = e.hint;
    p
}

/// An index build in progress, for `pg_stat_progress_create_index`.
#[derive(Debug, Clone)]
pub struct BuildEntry {
    /// The building session's pid.
    pub pid: i32,
    /// Table name.
    pub table: String,
    /// Index name.
    pub index: String,
    /// Counters of the build.
    pub progress: Arc<BuildProgress>,
}

/// The share of ANN reads the recall monitor samples by default.
pub const DEFAULT_RECALL_SAMPLE_RATE: f64 = 0.01;

/// State shared by every session of one shard.
#[derive(Debug)]
pub struct Shard {
    /// The tables.
    pub db: Arc<Database>,
    /// The sequences' values.
    pub sequences: Arc<Sequences>,
    /// Index builds running now.
    pub builds: Mutex<Vec<BuildEntry>>,
    /// Latency of reads by plan.
    pub queries: QueryTimings,
    /// The live recall monitor.
    pub recall: Arc<RecallMonitor>,
    /// WAL senders and the WAL receiver.
    pub replication: Arc<Replication>,
    /// The sessions' advisory locks.
    pub advisory_locks: Arc<advisory_locks::AdvisoryLocks>,
}

impl Shard {
    /// A shard over `db`, sampling the default 1 % of ANN reads for the
    /// recall monitor.
    pub fn new(db: Arc<Database>) -> Self {
        Self::with_recall_sample_rate(db, DEFAULT_RECALL_SAMPLE_RATE)
    }

    /// A shard over `db` sampling `rate` (0 to 1) of its ANN reads.
    pub fn with_recall_sample_rate(db: Arc<Database>, rate: f64) -> Self {
        Shard {
            db,
            sequences: Arc::default(),
            builds: Mutex::new(Vec::new()),
            queries: QueryTimings::new(),
            recall: Arc::new(RecallMonitor::new(rate)),
            replication: Arc::new(Replication::default()),
            advisory_locks: Arc::default(),
        }
    }

    /// The shard with `replication` as its replication state.
    pub fn with_replication(self, replication: Arc<Replication>) -> Self {
        Shard {
            replication,
            ..self
        }
    }

    /// The builds running now.
    pub fn builds(&self) -> Vec<BuildEntry> {
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A warning with `code`.
pub fn warning(code: &'static str, message: &str) -> PgError {
    PgError::new(code, message).with_severity(Severity::Warning)
}
