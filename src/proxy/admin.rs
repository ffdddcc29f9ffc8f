//! The proxy's own views in SQL: `SHOW pgvshard.shards` (each node, its
//! state and slot count) and `SHOW pgvshard.pools` (pool counters).

use super::route::Cluster;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

const SHARDS: &str = "pgvshard.shards";
const POOLS: &str = "pgvshard.pools";

/// True for the names `SHOW` answers from the proxy's state.
pub fn is_admin(name: &str) -> bool {
    name == SHARDS || name == POOLS
}

fn column(name: &str, ty: u32) -> FieldDescription {
    FieldDescription::builtin(name, ty)
}

/// The columns of an admin view.
pub fn columns(name: &str) -> Vec<FieldDescription> {
    if name == SHARDS {
        vec![
            column("shard", oid::TEXT),
            column("node", oid::TEXT),
            column("state", oid::TEXT),
            column("slots", oid::INT4),
        ]
    } else {
        vec![
            column("shard", oid::TEXT),
            column("size", oid::INT4),
            column("active", oid::INT4),
            column("idle", oid::INT4),
            column("opened", oid::INT8),
        ]
    }
}

fn int(n: usize) -> Option<Value> {
    Some(Value::Int4(i32::try_from(n).unwrap_or(i32::MAX)))
}

/// Answers `SHOW pgvshard.shards` or `SHOW pgvshard.pools`.
pub async fn show(cluster: &Cluster, name: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
    out.row_description(&columns(name));
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
            ]
        } else {
            vec![
                label,
                int(st.size),
                int(st.active),
                int(st.idle),
                Some(Value::Int8(i64::try_from(st.opened).unwrap_or(i64::MAX))),
            ]
        };
        out.row(&row).await?;
    }
    out.complete(&format!("SHOW {}", cluster.shards.len()));
    Ok(())
}
