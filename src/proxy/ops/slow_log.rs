//! The slow-statement log: one line (target `pgvshard::slow`) per
//! statement that took at least `log_min_duration_ms`, with its session
//! (user, database, pid), class, duration, rows, outcome, per-node
//! timings and text (cut at
//! [`TEXT_LIMIT`] bytes), as structured fields so `log_format: json`
//! gives each its own key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::StatementClass;

/// Longest statement text logged.
pub const TEXT_LIMIT: usize = 1024;

const OFF: u64 = u64::MAX;

/// The threshold, changed by a reload.
#[derive(Debug)]
pub struct SlowLog {
    min_ms: AtomicU64,
}

/// One statement as the log reports it.
pub struct Finished<'a> {
    /// Its class.
    pub class: StatementClass,
    /// How long it took.
    pub took: Duration,
    /// Rows returned or changed.
    pub rows: u64,
    /// Its SQLSTATE when it failed.
    pub sqlstate: Option<&'a str>,
    /// Its text.
    pub text: &'a str,
    /// Time per node.
    pub shards: &'a [(String, Duration)],
    /// The session's user, database and process id (as PostgreSQL's
    /// `log_line_prefix` `%u`, `%d`, `%p`).
    pub session: (&'a str, &'a str, i32),
}

impl SlowLog {
    /// Logs statements of at least `min_ms` (`None`: none).
    pub fn new(min_ms: Option<u64>) -> Self {
        SlowLog {
            min_ms: AtomicU64::new(min_ms.unwrap_or(OFF)),
        }
    }

    /// Changes the threshold.
    pub fn set(&self, min_ms: Option<u64>) {
        self.min_ms.store(min_ms.unwrap_or(OFF), Ordering::Relaxed);
    }

    /// Whether statements are logged at all (timings are collected only then).
    pub fn enabled(&self) -> bool {
        self.min_ms.load(Ordering::Relaxed) != OFF
    }

    /// Logs `s` if it was slow enough.
    pub fn finished(&self, s: &Finished<'_>) {
        let min = self.min_ms.load(Ordering::Relaxed);
        if min == OFF || s.took < Duration::from_millis(min) {
            return;
        }
        let shards: Vec<String> = s
            .shards
            .iter()
            .map(|(node, t)| format!("{node}={:.3}ms", t.as_secs_f64() * 1000.0))
            .collect();
        let mut end = s.text.len().min(TEXT_LIMIT);
        while !s.text.is_char_boundary(end) {
            end -= 1;
        }
        tracing::info!(
            target: "pgvshard::slow",
            user = s.session.0,
            database = s.session.1,
            pid = s.session.2,
            class = s.class.label(),
            duration_ms = s.took.as_secs_f64() * 1000.0,
            rows = s.rows,
            sqlstate = s.sqlstate.unwrap_or("00000"),
            shards = %shards.join(" "),
            statement = &s.text[..end],
            "slow statement"
        );
    }
}
