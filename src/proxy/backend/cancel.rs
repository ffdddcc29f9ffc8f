//! What becomes of a shard connection whose reply nobody will read: the
//! client canceled, the proxy's `statement_timeout` fired, or the client
//! left, and the wire layer dropped the statement's future with channels
//! still mid-reply. Closing such a connection is not enough: PostgreSQL
//! keeps running a query after its client's socket closes (until it next
//! writes to it), and so does an in-process shard.
//!
//! So the pool hands the connection to [`recover`] on a task of its own:
//! a CancelRequest with the node's BackendKeyData goes over a new
//! connection through the same [`Dialer`] (TCP for a remote node, a pipe
//! into the in-process shard's wire server, whose cancel registry then
//! stops the statement, as for any client), then the reply is read to
//! ReadyForQuery and the connection goes back to the pool when it is idle
//! outside a transaction. A COPY FROM STDIN the node still waits on gets a
//! CopyFail instead of a cancel. A connection that cannot be brought back
//! within [`RECOVER_LIMIT`] (or whose last write was cut off midway) is
//! closed. The pool permit stays with the connection until then, so the
//! pool never holds more than its size.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::remote::{shard_unavailable, Dialer, PgConnection};
use crate::proxy::config::ShardConfig;
use crate::wire::PgError;

/// The CancelRequest code (1234 in the high 16 bits, 5678 in the low).
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// How long an abandoned connection gets to come back clean.
pub const RECOVER_LIMIT: Duration = Duration::from_secs(5);

/// The 16-byte CancelRequest packet for a session key.
fn cancel_packet((pid, secret): (i32, i32)) -> BytesMut {
    let mut packet = BytesMut::with_capacity(16);
    packet.put_i32(16);
    packet.put_i32(CANCEL_REQUEST_CODE);
    packet.put_i32(pid);
    packet.put_i32(secret);
    packet
}

/// Asks the node to cancel what the session with `key` runs, and waits
/// until the node closes the cancel connection (it has acted by then).
pub async fn send_cancel(
    dialer: &Dialer,
    config: &ShardConfig,
    key: (i32, i32),
) -> Result<(), PgError> {
    let mut io = dialer.dial(config).await?;
    let unavailable = |e| shard_unavailable(&config.name, e);
    io.write_all(&cancel_packet(key))
        .await
        .map_err(unavailable)?;
    io.flush().await.map_err(unavailable)?;
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).await.map_err(unavailable)?;
    Ok(())
}

/// Stops the statement an abandoned connection is running and brings the
/// connection back to idle; `None` when it must be closed instead.
pub async fn recover(
    mut conn: PgConnection,
    dialer: &Dialer,
    config: &ShardConfig,
) -> Option<PgConnection> {
    let usable = !conn.broken && !conn.writing;
    let work = async {
        if !(usable && conn.copy_in) {
            if let Some(key) = conn.key {
                if let Err(e) = send_cancel(dialer, config, key).await {
                    tracing::debug!(shard = %config.name, error = %e, "cancel request failed");
                }
            }
        }
        if !usable {
            return false;
        }
        conn.drain().await.is_ok()
    };
    let drained = tokio::time::timeout(RECOVER_LIMIT, work)
        .await
        .unwrap_or(false);
    (drained && conn.status == b'I').then_some(conn)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proxy::backend::{BackendMessage, LocalShard, Request, ShardChannel};

    /// The messages of one reply, up to ReadyForQuery.
    async fn reply(conn: &mut PgConnection, request: Request<'_>) -> Vec<BackendMessage> {
        conn.send(&request).await.unwrap();
        let mut out = Vec::new();
        loop {
            let m = conn.recv().await.unwrap();
            let done = matches!(m, BackendMessage::ReadyForQuery(_));
            out.push(m);
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn an_open_copy_is_failed_and_the_connection_comes_back_idle() {
        let dir = std::env::temp_dir().join(format!("pgvshard-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let shard = LocalShard::open(&dir, 0.0).await.unwrap();
        let config: ShardConfig = serde_norway::from_str("name: s0").unwrap();
        let dialer = Dialer::Local(Arc::clone(&shard));
        let mut conn = PgConnection::connect(&config, &dialer).await.unwrap();
        assert!(conn.key.is_some(), "BackendKeyData was kept");
        reply(
            &mut conn,
            Request::Simple("CREATE TABLE t (id int PRIMARY KEY)".into()),
        )
        .await;
        conn.send(&Request::Simple("COPY t FROM STDIN".into()))
            .await
            .unwrap();
        assert!(matches!(conn.recv().await.unwrap(), BackendMessage::CopyIn));
        conn.send(&Request::CopyData("1\n".into())).await.unwrap();
        assert!(conn.in_flight && conn.copy_in);

        let mut conn = recover(conn, &dialer, &config).await.expect("idle again");
        assert!(!conn.in_flight && !conn.copy_in && conn.status == b'I');
        let rows = reply(&mut conn, Request::Simple("SELECT count(*) FROM t".into())).await;
        let count = rows.iter().find_map(|m| match m {
            BackendMessage::DataRow(r) => crate::proxy::backend::messages::fields(r)
                .ok()
                .and_then(|f| f[0].map(|v| v.to_vec())),
            _ => None,
        });
        assert_eq!(
            count.as_deref(),
            Some(&b"0"[..]),
            "the COPY was rolled back"
        );
        drop(conn);
        shard.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cancel_packet_is_postgres_layout() {
        let p = cancel_packet((0x0102_0304, -1));
        assert_eq!(
            &p[..],
            &[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]
        );
    }
}
