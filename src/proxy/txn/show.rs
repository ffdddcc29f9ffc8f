//! `SHOW pgvshard.transactions`: the two-phase commits the in-doubt
//! resolver's last pass found prepared (state `in_doubt`, on the shard
//! holding them), then this proxy's most recent two-phase commits, newest
//! first, with how they ended (`committed`, `rolled_back`, `unknown`).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::proxy::cluster::Cluster;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// The view's name.
pub const SHOW_NAME: &str = "pgvshard.transactions";

/// Recent two-phase commits kept for the view.
const RECENT: usize = 100;

/// One row: gid, state, the shards involved.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The global transaction id.
    pub gid: String,
    /// How it stands.
    pub state: &'static str,
    /// Shard names, comma-separated.
    pub shards: String,
}

/// What the view shows, kept by the commits and the resolver.
#[derive(Default)]
pub struct TxnLog {
    state: Mutex<(Vec<Entry>, VecDeque<Entry>)>,
}

impl TxnLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Entry>, VecDeque<Entry>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A two-phase commit of this proxy ended.
    pub fn record(&self, entry: Entry) {
        let mut s = self.lock();
        s.1.push_front(entry);
        s.1.truncate(RECENT);
    }

    /// The resolver's last pass found these prepared.
    pub fn set_in_doubt(&self, entries: Vec<Entry>) {
        self.lock().0 = entries;
    }
}

/// The view's columns.
pub fn columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[
        ("gid", oid::TEXT),
        ("state", oid::TEXT),
        ("shards", oid::TEXT),
    ])
}

/// Answers `SHOW pgvshard.transactions`.
pub async fn show(cluster: &Cluster, out: &mut Responder<'_>) -> Result<(), PgError> {
    let rows: Vec<Entry> = {
        let s = cluster.two_phase.log.lock();
        s.0.iter().chain(s.1.iter()).cloned().collect()
    };
    out.row_description(&columns());
    for e in &rows {
        let text = |t: &str| Some(Value::Text(t.to_string()));
        out.row(&[text(&e.gid), text(e.state), text(&e.shards)])
            .await?;
    }
    out.complete(&format!("SHOW {}", rows.len()));
    Ok(())
}
