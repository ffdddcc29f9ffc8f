//! `SHOW pgvshard.stats`: per statement class (knn, point, scatter,
//! write, ddl, other) the calls, errors, rows, total/mean/max time since
//! the proxy started or since `SELECT pgvshard.stats_reset()` (named after
//! PostgreSQL's `pg_stat_statements_reset()`, and like it in PostgreSQL 17
//! answering the time of the reset). Rows are those a statement returned
//! or changed, as its command tag tells (pg_stat_statements' `rows`).
//!
//! A `std::sync::Mutex` guards the counters: it is held for a few
//! additions per statement, never across an await.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::metrics::StatementClass;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// The name `SHOW` answers.
pub const SHOW_NAME: &str = "pgvshard.stats";
/// The function that zeroes the counters.
pub const RESET_FUNCTION: &str = "pgvshard.stats_reset";

#[derive(Debug, Clone, Copy, Default)]
struct ClassStats {
    calls: u64,
    errors: u64,
    rows: u64,
    total: Duration,
    max: Duration,
}

/// The counters of one proxy.
#[derive(Debug)]
pub struct StatementStats {
    inner: Mutex<(Vec<ClassStats>, SystemTime)>,
}

impl Default for StatementStats {
    fn default() -> Self {
        StatementStats {
            inner: Mutex::new((
                vec![ClassStats::default(); StatementClass::ALL.len()],
                SystemTime::now(),
            )),
        }
    }
}

/// The rows a command tag reports: its last number (`SELECT 3`,
/// `INSERT 0 5`), 0 for tags without one.
pub fn tag_rows(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl StatementStats {
    /// Counts one statement.
    pub fn record(&self, class: StatementClass, took: Duration, rows: u64, failed: bool) {
        let i = StatementClass::ALL
            .iter()
            .position(|c| *c == class)
            .unwrap_or(0);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut inner.0[i];
        s.calls += 1;
        s.errors += u64::from(failed);
        s.rows += rows;
        s.total += took;
        s.max = s.max.max(took);
    }

    /// Zeroes every counter; returns when.
    pub fn reset(&self) -> SystemTime {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        *inner = (vec![ClassStats::default(); StatementClass::ALL.len()], now);
        now
    }

    /// Answers `SHOW pgvshard.stats`: one row per class.
    pub async fn show(&self, out: &mut Responder<'_>) -> Result<(), PgError> {
        let (rows, since) = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            (inner.0.clone(), inner.1)
        };
        out.row_description(&columns());
        let int = |n: u64| Some(Value::Int8(i64::try_from(n).unwrap_or(i64::MAX)));
        let ms = |d: Duration| Some(Value::Float8(d.as_secs_f64() * 1000.0));
        for (class, s) in StatementClass::ALL.iter().zip(&rows) {
            let mean = if s.calls == 0 {
                Duration::ZERO
            } else {
                s.total / u32::try_from(s.calls).unwrap_or(u32::MAX)
            };
            out.row(&[
                Some(Value::Text(class.label().to_string())),
                int(s.calls),
                int(s.errors),
                int(s.rows),
                ms(s.total),
                ms(mean),
                ms(s.max),
                Some(timestamp(since)),
            ])
            .await?;
        }
        out.complete(&format!("SHOW {}", rows.len()));
        Ok(())
    }
}

/// The columns of `SHOW pgvshard.stats`.
pub fn columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[
        ("class", oid::TEXT),
        ("calls", oid::INT8),
        ("errors", oid::INT8),
        ("rows", oid::INT8),
        ("total_time_ms", oid::FLOAT8),
        ("mean_time_ms", oid::FLOAT8),
        ("max_time_ms", oid::FLOAT8),
        ("stats_reset", oid::TIMESTAMPTZ),
    ])
}

/// The columns of `SELECT pgvshard.stats_reset()`.
pub fn reset_columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[("stats_reset", oid::TIMESTAMPTZ)])
}

/// A time as PostgreSQL's timestamptz.
pub fn timestamp(at: SystemTime) -> Value {
    Value::Timestamptz(pg_micros(at))
}

/// Microseconds since 2000-01-01 UTC (PostgreSQL's epoch).
pub fn pg_micros(at: SystemTime) -> i64 {
    const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
    let unix_us = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    };
    unix_us - PG_EPOCH_UNIX_SECS * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_the_tag() {
        assert_eq!(tag_rows("SELECT 3"), 3);
        assert_eq!(tag_rows("INSERT 0 5"), 5);
        assert_eq!(tag_rows("SET"), 0);
        assert_eq!(tag_rows("COPY 7"), 7);
    }

    #[test]
    fn record_and_reset() {
        let s = StatementStats::default();
        s.record(StatementClass::Knn, Duration::from_millis(4), 10, false);
        s.record(StatementClass::Knn, Duration::from_millis(2), 10, true);
        {
            let inner = s.inner.lock().unwrap();
            let knn = inner.0[0];
            assert_eq!((knn.calls, knn.errors, knn.rows), (2, 1, 20));
            assert_eq!(knn.max, Duration::from_millis(4));
        }
        s.reset();
        assert_eq!(s.inner.lock().unwrap().0[0].calls, 0);
    }
}
