//! `SHOW pgvshard.replicas`: every node of every shard with its role,
//! read eligibility, lag, the shard's current term and requests in flight.

use super::node::Role;
use super::Topology;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// The name `SHOW` answers.
pub const SHOW_NAME: &str = "pgvshard.replicas";

/// Its columns.
pub fn columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[
        ("shard", oid::TEXT),
        ("node", oid::TEXT),
        ("addr", oid::TEXT),
        ("role", oid::TEXT),
        ("state", oid::TEXT),
        ("lag_bytes", oid::INT8),
        ("lag_ms", oid::INT8),
        ("term", oid::INT8),
        ("in_flight", oid::INT4),
    ])
}

/// Answers it. Shards without standbys are not polled: their primary
/// shows the data-path pool's view (up, or down after a failed connect).
pub async fn show(topology: &Topology, out: &mut Responder<'_>) -> Result<(), PgError> {
    out.row_description(&columns());
    let mut n = 0;
    for g in topology.shards() {
        let leader = g.leader();
        for (i, node) in g.nodes().iter().enumerate() {
            if node.retired() {
                continue;
            }
            let text = |s: &str| Some(Value::Text(s.to_string()));
            let (role, state, lag) = if g.has_standbys() {
                let s = node.state();
                let role = match s.role {
                    Role::Unknown if i == leader.node => "primary",
                    Role::Unknown => "standby",
                    r => r.label(),
                };
                (role, s.health.label(), s.lag)
            } else {
                let down = node.data.status().down.is_some();
                ("primary", if down { "down" } else { "up" }, None)
            };
            let int8 = |v: u128| Some(Value::Int8(i64::try_from(v).unwrap_or(i64::MAX)));
            out.row(&[
                text(&g.name),
                text(&node.name),
                text(&node.addr),
                text(role),
                text(state),
                lag.and_then(|l| int8(u128::from(l.bytes))),
                lag.and_then(|l| int8(l.time.as_millis())),
                Some(Value::Int8(i64::try_from(leader.term).unwrap_or(i64::MAX))),
                Some(Value::Int4(
                    i32::try_from(node.in_flight()).unwrap_or(i32::MAX),
                )),
            ])
            .await?;
            n += 1;
        }
    }
    out.complete(&format!("SHOW {n}"));
    Ok(())
}
