//! The proxy's own views in SQL: `SHOW pgvshard.shards` (each node, its
//! state, slot count and rows), `SHOW pgvshard.pools` (pool counters) and
//! `SHOW pgvshard.recall` (each `pgvshard shard`'s recall monitor, asked
//! of every shard at each SHOW; PostgreSQL shards have none and add no
//! rows).
//!
//! Rows are asked of every shard at each SHOW, in parallel, with one query
//! both kinds of shard answer: the sum of `pg_stat_user_tables.n_live_tup`
//! (PostgreSQL's estimate from its statistics, which trail writes by up to
//! a second or so; a `pgvshard shard` gives exact counts). A shard that is
//! down or does not answer within [`ROWS_TIMEOUT`] shows NULL.

use std::time::Duration;

use futures_util::future::join_all;

use crate::proxy::backend::messages::fields;
use crate::proxy::backend::{BackendMessage, Request, SharedBackend};
use crate::proxy::cluster::Cluster;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// How long `SHOW pgvshard.shards` waits for a shard's row count.
pub const ROWS_TIMEOUT: Duration = Duration::from_secs(2);

const ROWS_SQL: &str = "SELECT sum(n_live_tup)::int8 FROM pg_stat_user_tables";

const SHARDS: &str = "pgvshard.shards";
const POOLS: &str = "pgvshard.pools";
const RECALL: &str = "pgvshard.recall";

/// True for the names `SHOW` answers from the proxy's state.
pub fn is_admin(name: &str) -> bool {
    name == SHARDS || name == POOLS || name == RECALL
}

/// The columns of an admin view.
pub fn columns(name: &str) -> Vec<FieldDescription> {
    if name == RECALL {
        FieldDescription::builtins(&[
            ("shard", oid::TEXT),
            ("table", oid::TEXT),
            ("index", oid::TEXT),
            ("samples", oid::INT8),
            ("recall", oid::FLOAT8),
            ("min_recall", oid::FLOAT8),
            ("last_recall", oid::FLOAT8),
        ])
    } else if name == SHARDS {
        FieldDescription::builtins(&[
            ("shard", oid::TEXT),
            ("node", oid::TEXT),
            ("state", oid::TEXT),
            ("slots", oid::INT4),
            ("rows", oid::INT8),
        ])
    } else {
        FieldDescription::builtins(&[
            ("shard", oid::TEXT),
            ("size", oid::INT4),
            ("active", oid::INT4),
            ("idle", oid::INT4),
            ("waiting", oid::INT4),
            ("opened", oid::INT8),
        ])
    }
}

fn int(n: usize) -> Option<Value> {
    Some(Value::Int4(i32::try_from(n).unwrap_or(i32::MAX)))
}

/// The rows `sql` answers on a shard, as text; `None` when it fails or
/// does not answer within [`ROWS_TIMEOUT`].
async fn ask(shard: &SharedBackend, sql: &str) -> Option<Vec<Vec<Option<String>>>> {
    let ask = async {
        let mut chan = shard.checkout().await.ok()?;
        chan.send(&Request::Simple(sql.to_string())).await.ok()?;
        let (mut rows, mut failed) = (Vec::new(), false);
        loop {
            match chan.recv().await.ok()? {
                BackendMessage::DataRow(row) => rows.push(
                    fields(&row)
                        .ok()?
                        .iter()
                        .map(|f| f.map(|v| String::from_utf8_lossy(v).into_owned()))
                        .collect(),
                ),
                BackendMessage::Error(_) => failed = true,
                BackendMessage::ReadyForQuery(_) => return (!failed).then_some(rows),
                _ => {}
            }
        }
    };
    tokio::time::timeout(ROWS_TIMEOUT, ask).await.ok().flatten()
}

/// The rows in a shard's user tables; `None` when it cannot tell.
async fn shard_rows(shard: &SharedBackend) -> Option<i64> {
    let rows = ask(shard, ROWS_SQL).await?;
    match rows.first().and_then(|r| r.first()) {
        Some(Some(v)) => v.parse().ok(),
        _ => Some(0),
    }
}

/// `SHOW pgvshard.recall`: every shard's recall monitor, shard by shard.
async fn show_recall(cluster: &Cluster, out: &mut Responder<'_>) -> Result<(), PgError> {
    out.row_description(&columns(RECALL));
    let sql = format!("SHOW {RECALL}");
    let answers = join_all(cluster.shards.iter().map(|s| ask(s, &sql))).await;
    let mut n = 0;
    for (shard, rows) in cluster.shards.iter().zip(answers) {
        for r in rows.unwrap_or_default() {
            let text = |i: usize| r.get(i).cloned().flatten();
            let float = |i: usize| text(i).and_then(|v| v.parse().ok()).map(Value::Float8);
            out.row(&[
                Some(Value::Text(shard.name().to_string())),
                text(0).map(Value::Text),
                text(1).map(Value::Text),
                text(2).and_then(|v| v.parse().ok()).map(Value::Int8),
                float(3),
                float(4),
                float(5),
            ])
            .await?;
            n += 1;
        }
    }
    out.complete(&format!("SHOW {n}"));
    Ok(())
}

/// Answers `SHOW pgvshard.shards`, `pgvshard.pools` or `pgvshard.recall`.
pub async fn show(cluster: &Cluster, name: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
    if name == RECALL {
        return show_recall(cluster, out).await;
    }
    out.row_description(&columns(name));
    let rows = if name == SHARDS {
        join_all(cluster.shards.iter().map(shard_rows)).await
    } else {
        Vec::new()
    };
    for (i, shard) in cluster.shards.iter().enumerate() {
        let st = shard.status();
        let label = Some(Value::Text(shard.name().to_string()));
        let row = if name == SHARDS {
            let state = match &st.down {
                None => "up".to_string(),
                Some(why) => format!("down: {why}"),
            };
            vec![
                label,
                Some(Value::Text(st.address.clone())),
                Some(Value::Text(state)),
                int(cluster.slots.slots_of(i)),
                rows.get(i).copied().flatten().map(Value::Int8),
            ]
        } else {
            vec![
                label,
                int(st.size),
                int(st.active),
                int(st.idle),
                int(st.waiting),
                Some(Value::Int8(i64::try_from(st.opened).unwrap_or(i64::MAX))),
            ]
        };
        out.row(&row).await?;
    }
    out.complete(&format!("SHOW {}", cluster.shards.len()));
    Ok(())
}
