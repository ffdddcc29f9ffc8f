//! The proxy's own views in SQL: `SHOW pgvshard.shards` (each node, its
//! state, slot count and rows) and `SHOW pgvshard.pools` (pool counters).
//!
//! Rows are asked of every shard at each SHOW, in parallel, with one query
//! both kinds of shard answer: the sum of `pg_stat_user_tables.n_live_tup`
//! (PostgreSQL's estimate from its statistics, which trail writes by up to
//! a second or so; a `pgvshard shard` gives exact counts). A shard that is
//! down or does not answer within [`ROWS_TIMEOUT`] shows NULL.

use std::time::Duration;

use futures_util::future::join_all;

use super::backend::messages::fields;
use super::backend::{BackendMessage, Request, SharedBackend};
use super::route::Cluster;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// How long `SHOW pgvshard.shards` waits for a shard's row count.
pub const ROWS_TIMEOUT: Duration = Duration::from_secs(2);

const ROWS_SQL: &str = "SELECT sum(n_live_tup)::int8 FROM pg_stat_user_tables";

const SHARDS: &str = "pgvshard.shards";
const POOLS: &str = "pgvshard.pools";

/// True for the names `SHOW` answers from the proxy's state.
pub fn is_admin(name: &str) -> bool {
    name == SHARDS || name == POOLS
}

/// The columns of an admin view.
pub fn columns(name: &str) -> Vec<FieldDescription> {
    if name == SHARDS {
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

/// The rows in a shard's user tables; `None` when it cannot tell.
async fn shard_rows(shard: &SharedBackend) -> Option<i64> {
    let ask = async {
        let mut chan = shard.checkout().await.ok()?;
        chan.send(&Request::Simple(ROWS_SQL.to_string()))
            .await
            .ok()?;
        let mut rows = None;
        loop {
            match chan.recv().await.ok()? {
                BackendMessage::DataRow(row) => {
                    rows = match fields(&row).ok()?.first() {
                        Some(Some(v)) => std::str::from_utf8(v).ok()?.parse().ok(),
                        _ => Some(0),
                    };
                }
                BackendMessage::ReadyForQuery(_) => return rows,
                _ => {}
            }
        }
    };
    tokio::time::timeout(ROWS_TIMEOUT, ask).await.ok().flatten()
}

/// Answers `SHOW pgvshard.shards` or `SHOW pgvshard.pools`.
pub async fn show(cluster: &Cluster, name: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
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
