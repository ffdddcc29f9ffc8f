//! The control plane of one node: a small deadpool-postgres pool of
//! tokio-postgres clients, separate from the pools client statements
//! travel through, for what the proxy asks on its own behalf (role,
//! replication positions). Connections are opened by the same [`Dialer`]
//! as the data path's, so TLS (`sslmode`) and in-process shards work
//! alike; tokio-postgres then runs its startup and authentication over
//! the negotiated stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::proxy::backend::Dialer;
use crate::proxy::config::ShardConfig;
use crate::wire::responder::ClientIo;
use crate::wire::{sqlstate, PgError};

/// Connections each node's control pool keeps at most.
const CONTROL_POOL_SIZE: usize = 2;

/// One poll's answer from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `pg_is_in_recovery()`: the node is a standby.
    pub in_recovery: bool,
    /// A primary's `pg_current_wal_insert_lsn()`.
    pub insert_lsn: Option<u64>,
    /// A standby's `pg_last_wal_receive_lsn()`.
    pub receive_lsn: Option<u64>,
    /// A standby's `pg_last_wal_replay_lsn()`.
    pub replay_lsn: Option<u64>,
    /// A standby's `pg_last_xact_replay_timestamp()`.
    pub replay_time: Option<SystemTime>,
    /// The timeline: a primary's current one (of its WAL insert
    /// position), a standby's last restartpoint's.
    pub timeline: Option<u32>,
    /// A primary's standbys that acknowledge commits now
    /// (`pg_stat_replication.application_name` of those in state `sync`
    /// or `quorum`).
    pub sync_standbys: Vec<String>,
    /// A primary's `synchronous_standby_names` is set: commits wait for
    /// standbys.
    pub sync_on: bool,
}

/// Positions travel as text (`pg_lsn` in PostgreSQL; a `pgvshard shard`
/// has no such type), the timeline as a standby's
/// `pg_control_checkpoint()` gives it or as the first eight hex digits of
/// a primary's current WAL file name, so both kinds of shard answer the
/// same query.
const PROBE_SQL: &str = "SELECT pg_is_in_recovery(), \
     CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END, \
     pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(), \
     CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint()) END, \
     CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END, \
     current_setting('synchronous_standby_names') <> ''";

/// A primary's standbys that acknowledge commits now.
const SYNC_STANDBYS_SQL: &str = "SELECT application_name::text FROM pg_stat_replication \
     WHERE sync_state IN ('sync', 'quorum')";

/// Reads an LSN as PostgreSQL prints it (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Why the control plane could not get an answer.
pub type ControlError = String;

/// A node's control-plane pool.
pub struct ControlPool {
    pool: Pool,
    timeout: Duration,
}

/// Opens control connections through the data path's dialer.
struct NodeConnect {
    config: ShardConfig,
    dialer: Dialer,
}

impl deadpool_postgres::Connect for NodeConnect {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> crate::proxy::backend::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let stream = match self.dialer.dial(&self.config).await {
                Ok(s) => s,
                Err(e) => Box::new(FailedDial(e.message)) as Box<dyn ClientIo>,
            };
            let (client, connection) = pg_config.connect_raw(stream, NoTls).await?;
            let task = tokio::spawn(async move {
                connection.await.ok();
            });
            Ok((client, task))
        })
    }
}

/// The stream of a dial that failed: tokio-postgres' first write returns
/// the dial's error, so it reaches the caller in its own error type.
struct FailedDial(String);

impl AsyncRead for FailedDial {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(std::io::Error::other(self.0.clone())))
    }
}

impl AsyncWrite for FailedDial {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::Error::other(self.0.clone())))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl ControlPool {
    /// A pool for the node `config` describes; every call gives up after
    /// `timeout` (a checkout, a connect, a query).
    pub fn new(config: &ShardConfig, dialer: Dialer, timeout: Duration) -> Result<Self, String> {
        let mut pg = tokio_postgres::Config::new();
        pg.user(&config.user)
            .dbname(&config.dbname)
            .application_name("pgvshard-control")
            .ssl_mode(tokio_postgres::config::SslMode::Disable);
        if let Some(p) = &config.password {
            pg.password(p);
        }
        let manager = Manager::from_connect(
            pg,
            NodeConnect {
                config: config.clone(),
                dialer,
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(CONTROL_POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ControlPool { pool, timeout })
    }

    /// Closes the pool for good (its node left the configuration).
    pub fn close(&self) {
        self.pool.close();
    }

    /// Runs one single-row query on a pooled client, within the timeout.
    async fn row(&self, sql: &str) -> Result<tokio_postgres::Row, ControlError> {
        let mut rows = self.rows(sql).await?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(format!("{n} rows where one was expected")),
        }
    }

    /// Runs one query on a pooled client, within the timeout.
    async fn rows(&self, sql: &str) -> Result<Vec<tokio_postgres::Row>, ControlError> {
        let ask = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            let statement = client
                .prepare_cached(sql)
                .await
                .map_err(|e| e.to_string())?;
            client
                .query(&statement, &[])
                .await
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(self.timeout, ask)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", self.timeout.as_millis())))
    }

    /// The node's role and positions.
    pub async fn probe(&self) -> Result<Probe, ControlError> {
        let row = self.row(PROBE_SQL).await?;
        let lsn = |i: usize| lsn_at(&row, i);
        let in_recovery: bool = row.try_get(0).map_err(|e| e.to_string())?;
        let standby_timeline: Option<i32> = row.try_get(5).map_err(|e| e.to_string())?;
        let walfile: Option<String> = row.try_get(6).map_err(|e| e.to_string())?;
        let timeline = match (standby_timeline, walfile) {
            (Some(t), _) => u32::try_from(t).ok(),
            (None, Some(w)) => w.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok()),
            (None, None) => None,
        };
        let sync_on: bool = row.try_get(7).map_err(|e| e.to_string())?;
        let sync_standbys = if in_recovery || !sync_on {
            Vec::new()
        } else {
            self.rows(SYNC_STANDBYS_SQL)
                .await?
                .iter()
                .map(|r| r.try_get::<_, String>(0).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?
        };
        Ok(Probe {
            in_recovery,
            insert_lsn: lsn(1)?,
            receive_lsn: lsn(2)?,
            replay_lsn: lsn(3)?,
            replay_time: row.try_get(4).map_err(|e| e.to_string())?,
            timeline,
            sync_standbys,
            sync_on,
        })
    }

    /// Promotes the standby (`pg_promote()`, waiting up to `wait` for it
    /// to leave recovery).
    pub async fn promote(&self, wait: Duration) -> Result<(), ControlError> {
        let secs = i32::try_from(wait.as_secs().max(1)).unwrap_or(i32::MAX);
        let ask = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            // A literal: a `pgvshard shard` types an unhinted parameter
            // as text.
            let row = client
                .query_one(&format!("SELECT pg_promote(true, {secs})"), &[])
                .await
                .map_err(|e| e.to_string())?;
            match row.try_get::<_, bool>(0) {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!("still in recovery after {secs} s")),
                Err(e) => Err(e.to_string()),
            }
        };
        tokio::time::timeout(wait + self.timeout, ask)
            .await
            .unwrap_or_else(|_| Err(format!("pg_promote did not answer within {secs} s")))
    }

    /// Points the standby's WAL receiver at `conninfo` (`primary_conninfo`
    /// through ALTER SYSTEM, then a configuration reload).
    pub async fn follow(&self, conninfo: &str) -> Result<(), PgError> {
        self.set_primary_conninfo(conninfo).await?;
        self.simple("SELECT pg_reload_conf()").await.map(drop)
    }

    /// Makes this old primary a standby of `conninfo`: `primary_conninfo`
    /// set, then `pgvshard_rejoin_as_standby()` (a `pgvshard shard`
    /// restarts as a standby, discarding WAL the new primary lacks). A
    /// real PostgreSQL server has no such function (42883).
    pub async fn rejoin(&self, conninfo: &str) -> Result<(), PgError> {
        self.set_primary_conninfo(conninfo).await?;
        self.simple("SELECT pgvshard_rejoin_as_standby()")
            .await
            .map(drop)
    }

    // ALTER SYSTEM refuses a transaction block: a statement of its own.
    async fn set_primary_conninfo(&self, conninfo: &str) -> Result<(), PgError> {
        self.simple(&format!(
            "ALTER SYSTEM SET primary_conninfo = '{}'",
            conninfo.replace('\'', "''")
        ))
        .await
        .map(drop)
    }

    /// A primary's WAL insert position now: every commit acknowledged
    /// before this call ends at or before it.
    pub async fn insert_lsn(&self) -> Result<u64, ControlError> {
        self.lsn("SELECT pg_current_wal_insert_lsn()::text")
            .await?
            .ok_or_else(|| "no WAL insert position".to_string())
    }

    /// A standby's replay position now (`None`: not in recovery).
    pub async fn replay_lsn(&self) -> Result<Option<u64>, ControlError> {
        self.lsn("SELECT pg_last_wal_replay_lsn()::text").await
    }

    async fn lsn(&self, sql: &str) -> Result<Option<u64>, ControlError> {
        lsn_at(&self.row(sql).await?, 0)
    }
}

/// Column `i` of `row`: an LSN as text, or NULL.
fn lsn_at(row: &tokio_postgres::Row, i: usize) -> Result<Option<u64>, ControlError> {
    match row
        .try_get::<_, Option<String>>(i)
        .map_err(|e| e.to_string())?
    {
        None => Ok(None),
        Some(t) => parse_lsn(&t)
            .map(Some)
            .ok_or_else(|| format!("not an LSN: \"{t}\"")),
    }
}

impl ControlPool {
    /// Runs `sql` (one or more statements, simple protocol, outside any
    /// transaction block) and returns the rows it answered, as text. An error keeps the node's SQLSTATE (08006 when no answer
    /// came), so callers can tell a unique violation from a node down.
    pub async fn simple(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let ask = async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| PgError::new(sqlstate::CONNECTION_FAILURE, e.to_string()))?;
            let messages = client
                .simple_query(sql)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => PgError::new(db.code().code().to_string(), db.message()),
                    None => PgError::new(sqlstate::CONNECTION_FAILURE, e.to_string()),
                })?;
            let mut rows = Vec::new();
            for m in messages {
                if let SimpleQueryMessage::Row(r) = m {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                }
            }
            Ok(rows)
        };
        tokio::time::timeout(self.timeout, ask)
            .await
            .unwrap_or_else(|_| {
                Err(PgError::new(
                    sqlstate::CONNECTION_FAILURE,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                ))
            })
    }
}

/// An LSN as PostgreSQL prints it (`16/B374D848`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}
