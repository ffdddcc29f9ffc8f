//! `pgvshard shard`: one shard process — storage opened from a data
//! directory, the executor served on the PostgreSQL protocol, and a clean
//! shutdown (drain sessions, then a final checkpoint) on SIGINT/SIGTERM.

use super::executor::{Shard, ShardFactory};
use super::metrics::collector;
use super::replication::recovery_conf::{self, AutoConf};
use super::replication::sync::SyncStandbys;
use super::replication::upstream::StandbyOf;
use super::replication::{receiver, Replication};
use super::storage::timeline::Timeline;
use super::storage::{Database, StorageOptions};
use crate::metrics::{MetricsServer, Registry};
use crate::wire::{self, AuthMethod, TlsConfig, WireConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The shard's configuration file (YAML); every field is optional and
/// documented in `config/shard.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardConfig {
    /// Address to listen on.
    pub listen: String,
    /// Directory of a Unix-domain socket to listen on as well,
    /// `.s.PGSQL.<port>` (PostgreSQL's `unix_socket_directories`, one
    /// directory); absent: TCP only.
    pub unix_socket_dir: Option<PathBuf>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// `trust` or `scram-sha-256`.
    pub auth: String,
    /// With trust auth, accept non-loopback clients too.
    pub trust_remote: bool,
    /// Users and passwords for SCRAM.
    pub users: BTreeMap<String, String>,
    /// Most concurrent sessions (one more gets FATAL 53300).
    pub max_connections: usize,
    /// Seconds from connect to the end of authentication before a client
    /// is disconnected (PostgreSQL's `authentication_timeout`).
    pub authentication_timeout: u64,
    /// Seconds between checkpoints while there are writes (0: by size only).
    pub checkpoint_interval_secs: u64,
    /// MiB of WAL that trigger a checkpoint.
    pub checkpoint_wal_mb: u64,
    /// MiB a WAL segment grows to before the next starts (a checkpoint
    /// removes whole segments only).
    pub wal_segment_mb: u64,
    /// TLS for clients that ask for it; absent: plain TCP only.
    pub tls: Option<TlsConfig>,
    /// Address of the /metrics endpoint (none: no endpoint).
    pub metrics_listen: Option<String>,
    /// Most transactions prepared (PREPARE TRANSACTION) at once; 0
    /// disables two-phase commit, which the proxy needs across shards.
    pub max_prepared_transactions: usize,
    /// Share of ANN reads (0 to 1) the recall monitor runs again as exact
    /// scans in the background (`SHOW pgvshard.recall`).
    pub recall_sample_rate: f64,
    /// Users that may open replication connections (stream WAL, take a
    /// base copy).
    pub replication_users: Vec<String>,
    /// Users that are superusers: only they may run ALTER SYSTEM and the
    /// recovery control functions (`pg_promote()`, …).
    pub superusers: Vec<String>,
    /// Run as a hot standby of this primary (absent: a primary).
    pub standby_of: Option<StandbyOf>,
    /// Standbys a commit waits for, as PostgreSQL's setting
    /// (`FIRST n (…)`, `ANY n (…)`, `name, …`, `*`; empty: none).
    pub synchronous_standby_names: String,
    /// MiB of WAL kept before the last checkpoint for standbys that are
    /// disconnected (connected ones hold what they still need).
    pub wal_keep_mb: u64,
    /// Milliseconds between the WAL writer's flushes of asynchronous
    /// commits (`wal_writer_delay`, 1 to 10000).
    pub wal_writer_delay_ms: u64,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            listen: "127.0.0.1:5433".into(),
            unix_socket_dir: None,
            data_dir: PathBuf::from("pgvshard-data"),
            auth: "trust".into(),
            trust_remote: false,
            users: BTreeMap::new(),
            max_connections: 100,
            authentication_timeout: 60,
            checkpoint_interval_secs: 300,
            checkpoint_wal_mb: 256,
            wal_segment_mb: 16,
            tls: None,
            metrics_listen: None,
            max_prepared_transactions: 100,
            recall_sample_rate: crate::shard::executor::DEFAULT_RECALL_SAMPLE_RATE,
            replication_users: vec!["postgres".into()],
            superusers: vec!["postgres".into()],
            standby_of: None,
            synchronous_standby_names: String::new(),
            wal_keep_mb: 0,
            wal_writer_delay_ms: 200,
        }
    }
}

impl ShardConfig {
    /// Reads a YAML file, replaces its `${NAME}` / `${NAME:-default}`
    /// references with environment variables (as the proxy's file) and
    /// validates it; errors name the file and field.
    pub fn load(path: &Path) -> Result<ShardConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = crate::proxy::config_env::expand(&text, |name| std::env::var(name).ok())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let c: ShardConfig =
            serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        match self.auth.as_str() {
            "trust" => {}
            "scram-sha-256" if !self.users.is_empty() => {}
            "scram-sha-256" => {
                return Err("auth: scram-sha-256 needs at least one entry in users".into())
            }
            other => {
                return Err(format!(
                    "auth: unknown method \"{other}\" (trust or scram-sha-256)"
                ))
            }
        }
        if self.max_connections == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        if !(1..=600).contains(&self.authentication_timeout) {
            return Err("authentication_timeout: give seconds from 1 to 600".into());
        }
        if !(0.0..=1.0).contains(&self.recall_sample_rate) {
            return Err("recall_sample_rate: give a share from 0 to 1".into());
        }
        if self.checkpoint_wal_mb == 0 {
            return Err("checkpoint_wal_mb: must be at least 1".into());
        }
        if !(1..=1024).contains(&self.wal_segment_mb) {
            return Err("wal_segment_mb: give MiB from 1 to 1024".into());
        }
        if let Some(m) = &self.metrics_listen {
            m.parse::<SocketAddr>()
                .map_err(|e| format!("metrics_listen: \"{m}\" is not an address: {e}"))?;
        }
        if !(1..=10_000).contains(&self.wal_writer_delay_ms) {
            return Err("wal_writer_delay_ms: give milliseconds from 1 to 10000".into());
        }
        SyncStandbys::parse(&self.synchronous_standby_names)?;
        if let Some(s) = &self.standby_of {
            if s.host.is_empty() || s.port == 0 {
                return Err("standby_of: give the primary's host and port".into());
            }
        }
        Ok(())
    }

    /// The protocol server's settings; reads the `tls:` files, so a
    /// missing or mismatched one is reported (naming its field) at start.
    fn wire(&self) -> Result<WireConfig, String> {
        let tls = self
            .tls
            .as_ref()
            .map(|t| t.load().map_err(|e| format!("tls.{e}")))
            .transpose()?;
        let mut w = WireConfig {
            tls,
            auth: if self.auth == "trust" {
                AuthMethod::Trust
            } else {
                AuthMethod::ScramSha256
            },
            trust_remote: self.trust_remote,
            max_connections: self.max_connections,
            authentication_timeout: Duration::from_secs(self.authentication_timeout),
            superusers: Some(self.superusers.iter().cloned().collect()),
            ..WireConfig::default()
        };
        for (user, password) in &self.users {
            w = w.with_user(user.clone(), password);
        }
        Ok(w)
    }

    fn storage(&self) -> StorageOptions {
        StorageOptions {
            checkpoint_wal_bytes: self.checkpoint_wal_mb << 20,
            wal_segment_bytes: self.wal_segment_mb << 20,
            checkpoint_interval: (self.checkpoint_interval_secs > 0)
                .then(|| Duration::from_secs(self.checkpoint_interval_secs)),
            max_prepared_transactions: self.max_prepared_transactions,
            wal_keep_bytes: self.wal_keep_mb << 20,
            wal_writer_delay: Duration::from_millis(self.wal_writer_delay_ms),
        }
    }
}

/// The primary this shard streams from, if it is a standby:
/// `standby.signal` in the data directory makes it one, and so does
/// `standby_of:` unless the data directory was promoted since
/// ([`recovery_conf::PROMOTED`]); `primary_conninfo` (`ALTER SYSTEM`)
/// amends `standby_of:`.
fn standby_source(config: &ShardConfig) -> Result<Option<StandbyOf>, String> {
    let data = &config.data_dir;
    let conf = AutoConf::load(data)?;
    let signal = recovery_conf::standby_signal(data);
    if config.standby_of.is_some() && !signal {
        if let Some(timeline) = promoted_to(data)? {
            tracing::warn!(
                timeline,
                "this data directory was promoted: starting as a primary, not as the standby \
                 standby_of: names (make it a standby with pgvshard_rejoin_as_standby() or {})",
                recovery_conf::STANDBY_SIGNAL
            );
            return Ok(None);
        }
    }
    let base = match (&config.standby_of, signal) {
        (Some(s), _) => s.clone(),
        (None, true) if conf.get("primary_conninfo").is_some() => StandbyOf::default(),
        (None, true) => {
            return Err(format!(
                "{}: {} is present but primary_conninfo is not set",
                data.display(),
                recovery_conf::STANDBY_SIGNAL
            ))
        }
        (None, false) => return Ok(None),
    };
    conf.primary(&base).map(Some)
}

/// The timeline `data` was promoted to, if its promotion completed (its
/// timeline reached the one recorded).
fn promoted_to(data: &Path) -> Result<Option<u32>, String> {
    let Some(promoted) = recovery_conf::promoted(data) else {
        return Ok(None);
    };
    let current = Timeline::load(data)
        .map_err(|e| format!("cannot open {}: {e}", data.display()))?
        .current;
    Ok((current >= promoted).then_some(promoted))
}

/// Opens the data directory. A standby's is first filled with a base
/// copy when empty; one whose WAL diverged from its primary's (an old
/// primary after a promotion) is discarded for a fresh copy, so it never
/// serves what the new primary does not have.
async fn open_database(
    config: &ShardConfig,
    standby_of: Option<&StandbyOf>,
) -> Result<Database, String> {
    let open = || {
        let (dir, options) = (config.data_dir.clone(), config.storage());
        async move {
            tokio::task::spawn_blocking(move || Database::open(&dir, options))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot open {}: {e}", config.data_dir.display()))
        }
    };
    let Some(primary) = standby_of else {
        return open().await;
    };
    receiver::prepare_data_dir(&config.data_dir, primary).await?;
    let db = open().await?;
    db.set_in_recovery(true);
    let Some(why) = receiver::diverged(&db, primary).await? else {
        return Ok(db);
    };
    tracing::warn!(reason = %why, "WAL diverged from the primary's: taking a fresh base copy");
    drop(db);
    receiver::discard_copy(&config.data_dir)
        .map_err(|e| format!("cannot discard {}: {e}", config.data_dir.display()))?;
    receiver::prepare_data_dir(&config.data_dir, primary).await?;
    let db = open().await?;
    db.set_in_recovery(true);
    Ok(db)
}

/// Why one start of the shard ended.
enum Ended {
    /// `shutdown` completed.
    Shutdown,
    /// `pgvshard_rejoin_as_standby()`: start again, as a standby.
    Rejoin,
}

/// Runs a shard until `shutdown` completes, then checkpoints and closes.
/// An old primary asked to rejoin as a standby closes and starts again
/// in the same process, on the same listening sockets (clients and
/// scrapes keep their addresses).
pub async fn run(config: ShardConfig, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let listener = bind(&config.listen).await?;
    let unix = match &config.unix_socket_dir {
        Some(dir) => {
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            Some(wire::UnixSocketFile::bind(dir, port)?)
        }
        None => None,
    };
    let metrics = match &config.metrics_listen {
        Some(at) => Some((
            at.as_str(),
            bind(at).await.map_err(|e| format!("metrics_listen: {e}"))?,
        )),
        None => None,
    };
    tokio::pin!(shutdown);
    loop {
        let socket = reuse(&listener, &config.listen)?;
        let unix = unix.as_ref().map(|u| u.listener()).transpose()?;
        let socket = wire::Listeners::new(socket, unix);
        let metrics = match &metrics {
            Some((at, l)) => Some(reuse(l, at)?),
            None => None,
        };
        match run_once(&config, socket, metrics, &mut shutdown).await? {
            Ended::Shutdown => return Ok(()),
            Ended::Rejoin => tracing::info!("starting again as a standby"),
        }
    }
}

/// Binds `addr`, kept as a std listener that each start of the shard
/// clones.
async fn bind(addr: &str) -> Result<std::net::TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .and_then(TcpListener::into_std)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// A handle of `listener` (bound to `addr`) for one start of the shard.
fn reuse(listener: &std::net::TcpListener, addr: &str) -> Result<TcpListener, String> {
    listener
        .try_clone()
        .and_then(TcpListener::from_std)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

async fn run_once(
    config: &ShardConfig,
    listener: wire::Listeners,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<Ended, String> {
    let wire = config.wire()?;
    let standby_of = standby_source(config)?;
    let db = open_database(config, standby_of.as_ref()).await?;
    let report = db.recovery_report().clone();
    tracing::info!(
        data_dir = %config.data_dir.display(),
        checkpoint_lsn = %report.checkpoint_lsn,
        end_lsn = %report.end_lsn,
        "storage opened"
    );
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(dir) = &config.unix_socket_dir {
        let path = wire::unix_socket_path(dir, addr.port());
        tracing::info!(path = %path.display(), "listening on a Unix-domain socket too");
    }
    tracing::info!(%addr, "pgvshard shard listening");
    let db = Arc::new(db);
    let replication = Arc::new(
        Replication::new(config.replication_users.clone())
            .with_synchronous_standby_names(&config.synchronous_standby_names)?
            .with_recovery(standby_of.clone(), &AutoConf::load(&config.data_dir)?),
    );
    let shard = Arc::new(
        Shard::with_recall_sample_rate(Arc::clone(&db), config.recall_sample_rate)
            .with_replication(Arc::clone(&replication)),
    );
    let receiver =
        standby_of.map(|_| receiver::spawn(db, Arc::clone(&replication), config.data_dir.clone()));
    let _metrics = metrics.map(|l| metrics_endpoint(l, &shard)).transpose()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = wire::serve(listener, ShardFactory::new(shard.clone()), wire, async {
        let _ = stopped.await;
    });
    tokio::pin!(serve);
    let asked = tokio::select! {
        r = &mut serve => {
            r.map_err(|e| e.to_string())?;
            None
        }
        () = shutdown => Some(Ended::Shutdown),
        () = replication.rejoin_requested() => Some(Ended::Rejoin),
    };
    replication.stop();
    let ended = match asked {
        None => Ended::Shutdown,
        Some(ended) => {
            let _ = stop.send(());
            serve.await.map_err(|e| e.to_string())?;
            ended
        }
    };
    if let Some(r) = receiver {
        r.await.map_err(|e| e.to_string())?;
    }
    tracing::info!("sessions drained; writing the final checkpoint");
    tokio::task::spawn_blocking(move || close(shard))
        .await
        .map_err(|e| e.to_string())??;
    Ok(ended)
}

/// The /metrics endpoint on `listener`, serving a registry of this
/// shard's families until dropped.
fn metrics_endpoint(listener: TcpListener, shard: &Arc<Shard>) -> Result<MetricsServer, String> {
    let registry = Registry::new();
    let families = collector(shard).map_err(|e| format!("metrics: {e}"))?;
    registry
        .register(Box::new(families))
        .map_err(|e| format!("metrics: {e}"))?;
    let server = MetricsServer::on(listener, registry).map_err(|e| format!("metrics: {e}"))?;
    tracing::info!(addr = %server.addr, "metrics endpoint listening");
    Ok(server)
}

/// Closes the shard's storage with a final checkpoint (only a checkpoint
/// when other handles to the database remain).
pub fn close(shard: Arc<Shard>) -> Result<(), String> {
    let db = match Arc::try_unwrap(shard) {
        Ok(s) => s.db,
        Err(s) => s.db.clone(),
    };
    match Arc::try_unwrap(db) {
        Ok(db) => db.close().map_err(|e| e.to_string()),
        Err(db) => db.checkpoint().map(drop).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_mistakes_name_the_field() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/shard.yaml");
        let c = ShardConfig::load(&sample).unwrap();
        assert_eq!(c.listen, "127.0.0.1:5433");
        let e = serde_norway::from_str::<ShardConfig>("listn: x").unwrap_err();
        assert!(e.to_string().contains("unknown field `listn`"), "{e}");
        let bad = ShardConfig {
            auth: "scram-sha-256".into(),
            ..ShardConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("auth:"));
    }
}
