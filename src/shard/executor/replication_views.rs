//! `pg_stat_replication` (a primary's WAL senders, one row per standby)
//! and `pg_stat_wal_receiver` (a standby's receiver, one row while it
//! runs), with PostgreSQL's columns. LSNs are text in `X/X` form, as
//! `pg_current_wal_lsn()` is here; `client_addr` is text and the lags are
//! intervals in PostgreSQL's text form (`00:00:00.001234`), as text.

use super::select::{Column, Relation};
use crate::shard::replication::Replication;
use crate::wire::types::oid;
use crate::wire::Value;
use std::time::Duration;

/// The name a query reads the WAL senders under.
pub const REPLICATION_VIEW: &str = "pg_stat_replication";
/// The name a query reads the WAL receiver under.
pub const WAL_RECEIVER_VIEW: &str = "pg_stat_wal_receiver";

fn columns(spec: &[(&str, u32)]) -> Vec<Column> {
    spec.iter()
        .map(|&(n, t)| Column {
            name: n.to_string(),
            ty: (t, -1),
        })
        .collect()
}

fn text(s: impl Into<String>) -> Option<Value> {
    Some(Value::Text(s.into()))
}

/// An interval as PostgreSQL prints one under a day: `HH:MM:SS[.ffffff]`.
fn interval_text(d: Duration) -> String {
    let micros = d.as_micros();
    let secs = micros / 1_000_000;
    let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let frac = micros % 1_000_000;
    if frac != 0 {
        let digits = format!("{frac:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// `pg_stat_replication`.
pub fn replication_view(replication: &Replication) -> Relation {
    let columns = columns(&[
        ("pid", oid::INT4),
        ("usesysid", oid::OID),
        ("usename", oid::NAME),
        ("application_name", oid::TEXT),
        ("client_addr", oid::TEXT),
        ("client_hostname", oid::TEXT),
        ("client_port", oid::INT4),
        ("backend_start", oid::TIMESTAMPTZ),
        ("backend_xmin", oid::TEXT),
        ("state", oid::TEXT),
        ("sent_lsn", oid::TEXT),
        ("write_lsn", oid::TEXT),
        ("flush_lsn", oid::TEXT),
        ("replay_lsn", oid::TEXT),
        ("write_lag", oid::TEXT),
        ("flush_lag", oid::TEXT),
        ("replay_lag", oid::TEXT),
        ("sync_priority", oid::INT4),
        ("sync_state", oid::TEXT),
        ("reply_time", oid::TIMESTAMPTZ),
    ]);
    let senders = replication.senders();
    let sync = replication.sync_states(&senders);
    let rows = senders
        .iter()
        .zip(sync)
        .map(|(s, (priority, state))| {
            let p = s.progress();
            let reported = p.reply_time.is_some();
            let lsn = |l: crate::shard::storage::Lsn| reported.then(|| Value::Text(l.to_string()));
            let mut row = vec![
                Some(Value::Int4(s.pid)),
                Some(Value::Oid(10)),
                text(&s.user),
                text(&s.application_name),
                s.client_addr.map(|a| Value::Text(a.ip().to_string())),
                None,
                s.client_addr.map(|a| Value::Int4(i32::from(a.port()))),
                Some(Value::Timestamptz(s.backend_start)),
                None,
                text(p.state),
                text(p.sent.to_string()),
                lsn(p.status.write),
                lsn(p.status.flush),
                lsn(p.status.apply),
            ];
            row.extend(
                p.lags
                    .iter()
                    .map(|l| l.map(|d| Value::Text(interval_text(d)))),
            );
            row.extend([
                Some(Value::Int4(priority)),
                text(state),
                p.reply_time.map(Value::Timestamptz),
            ]);
            row
        })
        .collect();
    Relation { columns, rows }
}

/// `pg_stat_wal_receiver`.
pub fn wal_receiver_view(replication: &Replication, timeline: u32) -> Relation {
    let columns = columns(&[
        ("pid", oid::INT4),
        ("status", oid::TEXT),
        ("receive_start_lsn", oid::TEXT),
        ("receive_start_tli", oid::INT4),
        ("written_lsn", oid::TEXT),
        ("flushed_lsn", oid::TEXT),
        ("received_tli", oid::INT4),
        ("last_msg_send_time", oid::TIMESTAMPTZ),
        ("last_msg_receipt_time", oid::TIMESTAMPTZ),
        ("latest_end_lsn", oid::TEXT),
        ("latest_end_time", oid::TIMESTAMPTZ),
        ("slot_name", oid::TEXT),
        ("sender_host", oid::TEXT),
        ("sender_port", oid::INT4),
        ("conninfo", oid::TEXT),
    ]);
    let r = replication.receiver();
    let rows = if r.status.is_empty() {
        Vec::new()
    } else {
        let tli = Some(Value::Int4(timeline as i32));
        vec![vec![
            Some(Value::Int4(std::process::id() as i32)),
            text(r.status),
            text(r.receive_start_lsn.to_string()),
            tli.clone(),
            text(r.flushed_lsn.to_string()),
            text(r.flushed_lsn.to_string()),
            tli,
            r.last_msg_send_time.map(Value::Timestamptz),
            r.last_msg_receipt_time.map(Value::Timestamptz),
            text(r.latest_end_lsn.to_string()),
            r.latest_end_time.map(Value::Timestamptz),
            None,
            text(r.sender_host),
            Some(Value::Int4(i32::from(r.sender_port))),
            text(r.conninfo),
        ]]
    };
    Relation { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_print_as_postgres_prints_them() {
        assert_eq!(
            interval_text(Duration::from_micros(1234)),
            "00:00:00.001234"
        );
        assert_eq!(interval_text(Duration::from_millis(1500)), "00:00:01.5");
        assert_eq!(interval_text(Duration::from_secs(3723)), "01:02:03");
    }
}
