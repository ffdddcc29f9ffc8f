//! What the server reports about itself beyond the system catalog of
//! [`super::pg_catalog`]: `version()`, index build progress
//! (`pg_stat_progress_create_index`) and rows per table (`pg_stat_user_tables`).

use super::select::{Column, Relation};
use super::Shard;
use crate::shard::storage::Tables;
use crate::wire::guc::SERVER_VERSION;
use crate::wire::types::oid;
use crate::wire::Value;

/// `version()`.
pub fn version() -> String {
    format!("PostgreSQL {SERVER_VERSION} on x86_64-pc-linux-gnu, compiled by rustc, 64-bit")
}

/// Columns from (name, type) pairs.
fn columns(spec: &[(&str, u32)]) -> Vec<Column> {
    spec.iter()
        .map(|&(n, t)| Column {
            name: n.to_string(),
            ty: (t, -1),
        })
        .collect()
}

/// Columns of `pg_stat_progress_create_index` (PostgreSQL's, less the
/// locker and partition counters).
fn progress_columns() -> Vec<Column> {
    columns(&[
        ("pid", oid::INT4),
        ("datname", oid::NAME),
        ("relid", oid::OID),
        ("index_relid", oid::OID),
        ("relname", oid::NAME),
        ("index_relname", oid::NAME),
        ("command", oid::TEXT),
        ("phase", oid::TEXT),
        ("tuples_total", oid::INT8),
        ("tuples_done", oid::INT8),
    ])
}

/// The rows of `pg_stat_progress_create_index`: one per running build.
pub fn progress_view(shard: &Shard, tables: &Tables, database: &str) -> Relation {
    let rows = shard
        .builds()
        .into_iter()
        .map(|b| {
            let (done, total) = b.progress.get();
            let relid = tables.get(&b.table).map_or(0, |t| t.def().oid);
            let text = |s: &str| Some(Value::Text(s.to_string()));
            vec![
                Some(Value::Int4(b.pid)),
                text(database),
                Some(Value::Oid(relid)),
                Some(Value::Oid(0)),
                text(&b.table),
                text(&b.index),
                text("CREATE INDEX"),
                text(if total == 0 {
                    "initializing"
                } else {
                    "building index: loading tuples"
                }),
                Some(Value::Int8(total as i64)),
                Some(Value::Int8(done as i64)),
            ]
        })
        .collect();
    Relation {
        columns: progress_columns(),
        rows,
    }
}

/// The name a query reads the table statistics view under.
pub const TABLE_STATS_VIEW: &str = "pg_stat_user_tables";

/// `pg_stat_user_tables` with the columns tools read most (PostgreSQL's
/// `n_live_tup` is an estimate; here it is the exact row count).
pub fn table_stats_view(tables: &Tables) -> Relation {
    let columns = columns(&[
        ("relid", oid::OID),
        ("schemaname", oid::NAME),
        ("relname", oid::NAME),
        ("n_live_tup", oid::INT8),
    ]);
    let rows = tables
        .iter()
        .map(|t| {
            vec![
                Some(Value::Oid(t.def().oid)),
                Some(Value::Text("public".to_string())),
                Some(Value::Text(t.def().name.clone())),
                Some(Value::Int8(i64::try_from(t.len()).unwrap_or(i64::MAX))),
            ]
        })
        .collect();
    Relation { columns, rows }
}

/// The name a query reads the prepared transactions under.
pub const PREPARED_XACTS_VIEW: &str = "pg_prepared_xacts";

/// `pg_prepared_xacts`: one row per prepared transaction. `transaction`
/// is a sequence number shown as bigint (there are no xids here).
pub fn prepared_xacts_view(tables: &Tables) -> Relation {
    let columns = columns(&[
        ("transaction", oid::INT8),
        ("gid", oid::TEXT),
        ("prepared", oid::TIMESTAMPTZ),
        ("owner", oid::NAME),
        ("database", oid::NAME),
    ]);
    let rows = tables
        .prepared()
        .enumerate()
        .map(|(i, p)| {
            let r = &p.record;
            vec![
                Some(Value::Int8(i as i64 + 1)),
                Some(Value::Text(r.gid.clone())),
                Some(Value::Timestamptz(r.prepared_at)),
                Some(Value::Text(r.owner.clone())),
                Some(Value::Text(r.database.clone())),
            ]
        })
        .collect();
    Relation { columns, rows }
}

/// The name a query reads the progress view under.
pub const PROGRESS_VIEW: &str = "pg_stat_progress_create_index";
