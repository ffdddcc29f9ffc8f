//! The proxy's YAML configuration: where it listens, who may connect, the
//! shards behind it and how tables are keyed. Unknown fields are refused
//! (a misspelt key would otherwise silently keep a default), and
//! [`ProxyConfig::validate`] names the field path and the fix for every
//! mistake, so a bad file fails at start rather than at the first query.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::slots::SLOTS;
use crate::wire::{ClientTls, ServerTls, SslMode, TlsConfig, TlsConfigError};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address the proxy listens on (`127.0.0.1:6432`; port 0 picks one).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of a Unix-domain socket clients may connect to as well,
    /// `.s.PGSQL.<listen port>` (PgBouncer's `unix_socket_dir`); absent:
    /// TCP only.
    #[serde(default)]
    pub unix_socket_dir: Option<PathBuf>,
    /// Where the slot map is recorded (and embedded shards keep their data
    /// by default); absent: the slot map is not recorded.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// How clients authenticate.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Most concurrent client sessions; one more gets FATAL 53300 after
    /// its startup packet. A pooler serves far more clients than it holds
    /// shard connections, hence thousands by default.
    #[serde(default = "default_max_client_connections")]
    pub max_client_connections: usize,
    /// Seconds a client may take from connecting to the end of
    /// authentication before it is disconnected (PostgreSQL's
    /// `authentication_timeout`).
    #[serde(default = "default_authentication_timeout")]
    pub authentication_timeout: u64,
    /// TLS for clients that ask for it (sslmode); absent: plain TCP only.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Threads serving client sessions (`pgvshard proxy`, read at start);
    /// absent: half the CPUs, at least one (see [`Self::worker_threads`]).
    #[serde(default)]
    pub worker_threads: Option<usize>,
    /// The shards, in slot-map order.
    pub shards: Vec<ShardConfig>,
    /// Per-table shard keys that override the primary key.
    #[serde(default)]
    pub tables: BTreeMap<String, TableConfig>,
    /// Reference tables: small tables kept whole on every shard (written
    /// on all of them at once, read from one, joinable with a sharded
    /// table, the target of its foreign keys). Name them before they are
    /// created; changing the list needs a restart.
    #[serde(default)]
    pub reference_tables: Vec<String>,
    /// Slot ranges per shard name; absent means an even split.
    #[serde(default)]
    pub slots: Option<BTreeMap<String, Vec<SlotRange>>>,
    /// The hot-query result cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// How reads use standbys (see [`ReplicationConfig`]).
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// How log lines are written: `text` (the default) or `json`, one
    /// object per line.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Statements taking at least this many milliseconds are logged, one
    /// line each with their class, duration, rows and per-shard timings
    /// (PostgreSQL's `log_min_duration_statement`; absent: none, 0: all).
    #[serde(default)]
    pub log_min_duration_ms: Option<u64>,
}

/// The format of log lines (also `pgvshard shard --log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `tracing`'s human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: ts, level, target, message and the
    /// event's fields.
    Json,
}

/// The result cache: an in-process L1 and, with `redis_url`, a shared L2
/// in Redis that also holds the table generations every proxy sees.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether results are cached at all.
    #[serde(default)]
    pub enabled: bool,
    /// Bytes of results the in-process L1 holds (0 turns L1 off).
    #[serde(default = "default_l1_bytes")]
    pub l1_bytes: u64,
    /// Seconds an entry lives in L1 and L2.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// `redis://host:port/db` of the shared L2 and generations; absent: L1 only.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this cluster uses.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Results larger than this many bytes are not cached.
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: usize,
    /// Tables whose results are never cached.
    #[serde(default)]
    pub uncached_tables: Vec<String>,
}

fn default_l1_bytes() -> u64 {
    64 << 20
}
fn default_ttl() -> u64 {
    300
}
fn default_key_prefix() -> String {
    "pgvshard".to_string()
}
fn default_max_result_bytes() -> usize {
    1 << 20
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            l1_bytes: default_l1_bytes(),
            ttl_seconds: default_ttl(),
            redis_url: None,
            key_prefix: default_key_prefix(),
            max_result_bytes: default_max_result_bytes(),
            uncached_tables: Vec::new(),
        }
    }
}

impl CacheConfig {
    /// Entry lifetime.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }
}

/// Where `/metrics` is served, and how embedded shards sample recall.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` of the HTTP endpoint; absent: no endpoint.
    #[serde(default)]
    pub listen: Option<String>,
    /// Share of ANN reads (0 to 1) an embedded shard's recall monitor runs
    /// again as exact scans (`SHOW pgvshard.recall`).
    #[serde(default = "default_recall_sample_rate")]
    pub recall_sample_rate: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            recall_sample_rate: default_recall_sample_rate(),
        }
    }
}

fn default_recall_sample_rate() -> f64 {
    crate::shard::executor::DEFAULT_RECALL_SAMPLE_RATE
}

fn default_max_client_connections() -> usize {
    5000
}
fn default_authentication_timeout() -> u64 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:6432".to_string()
}

/// Client authentication.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `trust` (loopback clients only) or `scram-sha-256`.
    #[serde(default)]
    pub method: AuthMethodConfig,
    /// Users for `scram-sha-256`: name → password.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// The auth method names accepted in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuthMethodConfig {
    /// No password (loopback only).
    #[default]
    #[serde(rename = "trust")]
    Trust,
    /// SCRAM-SHA-256 with the configured users.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
}

/// One shard node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// Name used in errors and `SHOW pgvshard.shards`.
    pub name: String,
    /// What kind of server the shard is.
    #[serde(default)]
    pub kind: ShardKind,
    /// Host name or address; one that starts with `/` is the directory
    /// of the node's Unix-domain socket `.s.PGSQL.<port>` (libpq's rule).
    #[serde(default = "default_host")]
    pub host: String,
    /// TCP port (or the socket's number).
    #[serde(default = "default_port")]
    pub port: u16,
    /// User the proxy logs in as.
    #[serde(default = "default_user")]
    pub user: String,
    /// Password (trust, cleartext, md5 and SCRAM-SHA-256 are supported).
    #[serde(default)]
    pub password: Option<String>,
    /// Database name.
    #[serde(default = "default_user")]
    pub dbname: String,
    /// TLS to a `postgres` shard, as libpq's sslmode: `disable` (the
    /// default), `prefer`, `require` or `verify-full`.
    #[serde(default)]
    pub sslmode: SslMode,
    /// PEM file of the certificates `verify-full` trusts.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Data directory of an `embedded` shard (default: the proxy's
    /// `data_dir`/`name`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Connection pool of this node.
    #[serde(default)]
    pub pool: PoolConfig,
    /// The primary's share of reads when `replication.read_from` is `any`
    /// (relative to the standbys' weights; 0: never read from it there).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Streaming-replication standbys of this shard (read-only copies).
    #[serde(default)]
    pub standbys: Vec<StandbyConfig>,
}

/// One standby of a shard. Fields left out are the shard's (its primary's)
/// values: a standby usually shares the primary's login and database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StandbyConfig {
    /// Name in `SHOW pgvshard.replicas`, metrics and errors (default:
    /// `<shard>.standby<N>`, N from 1).
    #[serde(default)]
    pub name: Option<String>,
    /// Host name or address, or a socket directory (as the shard's).
    pub host: String,
    /// TCP port (or the socket's number).
    #[serde(default = "default_port")]
    pub port: u16,
    /// User the proxy logs in as.
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Database name.
    #[serde(default)]
    pub dbname: Option<String>,
    /// TLS to this node, as libpq's sslmode.
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// PEM file of the certificates `verify-full` trusts.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Share of reads relative to the shard's other readable nodes (0: no reads).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Connection pool of this node (default: the shard's).
    #[serde(default)]
    pub pool: Option<PoolConfig>,
}

fn default_weight() -> u32 {
    1
}

/// One node of a shard as the proxy connects to it: the shard's settings
/// with the node's address, login and pool.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Connection settings (`name` is the node's name).
    pub conn: ShardConfig,
    /// Configured as the shard's primary (the first node) or a standby.
    pub primary: bool,
    /// Share of reads.
    pub weight: u32,
}

/// Where reads go when the session does not say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// A standby within the lag bounds; the primary when none qualifies.
    #[default]
    Standbys,
    /// Any node, the primary included, by weight.
    Any,
    /// Always the primary.
    Primary,
}

/// Read/write splitting: how stale a standby may be to serve reads, how
/// long a read waits for a standby to replay the session's own write, and
/// how often every node's role and replication position are polled.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Where plain reads go: `standbys`, `any` or `primary`.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// A standby further behind its primary's WAL than this many bytes
    /// serves no reads (0: no byte bound).
    #[serde(default = "default_lag_bytes")]
    pub max_replica_lag_bytes: u64,
    /// A standby whose oldest unreplayed WAL is older than this serves no
    /// reads (0: no time bound).
    #[serde(default = "default_lag_ms")]
    pub max_replica_lag_ms: u64,
    /// After a session's write, how long its next read on that shard waits
    /// for a standby to replay it before going to the primary.
    #[serde(default = "default_ryw_ms")]
    pub read_your_writes_wait_ms: u64,
    /// Milliseconds between polls of each node's role and positions.
    #[serde(default = "default_health_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Milliseconds a poll may take before the node counts as down.
    #[serde(default = "default_health_timeout_ms")]
    pub health_check_timeout_ms: u64,
    /// A primary whose polls have failed this long is replaced by its most
    /// advanced eligible standby (0: never promote automatically).
    #[serde(default = "default_failover_after_ms")]
    pub failover_after_ms: u64,
    /// How long a write waits for a new primary while its shard's primary
    /// is unreachable, before failing with 08006.
    #[serde(default = "default_failover_wait_ms")]
    pub failover_wait_ms: u64,
    /// With Redis: how long the proxy coordinating a shard's failover holds
    /// the shard's lease; another proxy may take over only after it lapses.
    #[serde(default = "default_failover_lease_ms")]
    pub failover_lease_ms: u64,
}

fn default_lag_bytes() -> u64 {
    16 << 20
}
fn default_lag_ms() -> u64 {
    1_000
}
fn default_ryw_ms() -> u64 {
    200
}
fn default_health_interval_ms() -> u64 {
    250
}
fn default_health_timeout_ms() -> u64 {
    1_000
}
fn default_failover_after_ms() -> u64 {
    3_000
}
fn default_failover_wait_ms() -> u64 {
    10_000
}
fn default_failover_lease_ms() -> u64 {
    10_000
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            read_from: ReadFrom::default(),
            max_replica_lag_bytes: default_lag_bytes(),
            max_replica_lag_ms: default_lag_ms(),
            read_your_writes_wait_ms: default_ryw_ms(),
            health_check_interval_ms: default_health_interval_ms(),
            health_check_timeout_ms: default_health_timeout_ms(),
            failover_after_ms: default_failover_after_ms(),
            failover_wait_ms: default_failover_wait_ms(),
            failover_lease_ms: default_failover_lease_ms(),
        }
    }
}

impl ReplicationConfig {
    /// Time between polls.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.health_check_interval_ms)
    }

    /// Time a poll may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.health_check_timeout_ms)
    }

    /// The read-your-writes wait.
    pub fn read_your_writes_wait(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_wait_ms)
    }

    /// How long a primary may be unreachable before a standby replaces
    /// it; `None`: never.
    pub fn failover_after(&self) -> Option<Duration> {
        (self.failover_after_ms > 0).then(|| Duration::from_millis(self.failover_after_ms))
    }

    /// How long a write waits for a new primary.
    pub fn failover_wait(&self) -> Duration {
        Duration::from_millis(self.failover_wait_ms)
    }

    /// The failover lease's lifetime in Redis.
    pub fn failover_lease(&self) -> Duration {
        Duration::from_millis(self.failover_lease_ms.max(1))
    }
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}
fn default_port() -> u16 {
    5432
}
fn default_user() -> String {
    "postgres".to_string()
}

impl ShardConfig {
    /// How connections to this shard negotiate TLS (reads `sslrootcert`).
    pub fn client_tls(&self) -> Result<ClientTls, TlsConfigError> {
        ClientTls::new(self.sslmode, self.sslrootcert.as_deref())
    }

    /// The shard's nodes: the primary (this entry), then each standby with
    /// the primary's values for what it leaves out.
    pub fn nodes(&self) -> Vec<NodeConfig> {
        let primary = NodeConfig {
            conn: ShardConfig {
                standbys: Vec::new(),
                ..self.clone()
            },
            primary: true,
            weight: self.weight,
        };
        let standbys = self.standbys.iter().enumerate().map(|(i, s)| NodeConfig {
            conn: ShardConfig {
                name: s
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}.standby{}", self.name, i + 1)),
                kind: self.kind,
                host: s.host.clone(),
                port: s.port,
                user: s.user.clone().unwrap_or_else(|| self.user.clone()),
                password: s.password.clone().or_else(|| self.password.clone()),
                dbname: s.dbname.clone().unwrap_or_else(|| self.dbname.clone()),
                sslmode: s.sslmode.unwrap_or(self.sslmode),
                sslrootcert: s.sslrootcert.clone().or_else(|| self.sslrootcert.clone()),
                data_dir: None,
                pool: s.pool.clone().unwrap_or_else(|| self.pool.clone()),
                weight: s.weight,
                standbys: Vec::new(),
            },
            primary: false,
            weight: s.weight,
        });
        std::iter::once(primary).chain(standbys).collect()
    }
}

/// The kinds of shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardKind {
    /// A server reached over the PostgreSQL protocol: real PostgreSQL +
    /// pgvector, or a `pgvshard shard`.
    #[default]
    Postgres,
    /// A pgvshard shard inside the proxy's process (no network), over the
    /// data directory `data_dir`.
    Embedded,
}

/// Pool settings of one shard node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Most connections to the node.
    #[serde(default = "default_pool_size")]
    pub size: usize,
    /// Milliseconds to wait for a connection (to connect, or for a free one).
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds a shard may take for one statement (0: no limit).
    #[serde(default)]
    pub query_timeout_ms: u64,
    /// Milliseconds an idle connection is kept before it is closed.
    #[serde(default = "default_idle_ms")]
    pub idle_timeout_ms: u64,
}

fn default_pool_size() -> usize {
    16
}
fn default_connect_ms() -> u64 {
    2_000
}
fn default_idle_ms() -> u64 {
    300_000
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            size: default_pool_size(),
            connect_timeout_ms: default_connect_ms(),
            query_timeout_ms: 0,
            idle_timeout_ms: default_idle_ms(),
        }
    }
}

impl PoolConfig {
    /// Connect (and checkout) timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Per-statement timeout on the shard, if any.
    pub fn query_timeout(&self) -> Option<Duration> {
        (self.query_timeout_ms > 0).then(|| Duration::from_millis(self.query_timeout_ms))
    }

    /// Idle time after which a pooled connection is closed.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// Per-table settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The column whose value chooses the shard.
    pub shard_key: String,
}

/// An inclusive range of slots, `[first, last]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct SlotRange(pub u16, pub u16);

/// A configuration mistake: the field path and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// The field, e.g. `shards[1].pool.size`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn bad(path: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        problem: problem.into(),
    }
}

fn check_pool(pool: &PoolConfig, at: &str) -> Result<(), ConfigError> {
    if pool.size == 0 {
        return Err(bad(
            format!("{at}.size"),
            "0: a pool needs at least 1 connection",
        ));
    }
    if pool.connect_timeout_ms == 0 {
        return Err(bad(
            format!("{at}.connect_timeout_ms"),
            "0: give a positive number of milliseconds",
        ));
    }
    Ok(())
}

/// Checks the standbys of shard `s` (at path `at`); node names join the
/// shard names in `names`, which must stay unique.
fn validate_standbys<'a>(
    s: &'a ShardConfig,
    at: &str,
    names: &mut HashSet<&'a str>,
) -> Result<(), ConfigError> {
    if s.kind == ShardKind::Embedded && !s.standbys.is_empty() {
        return Err(bad(
            format!("{at}.standbys"),
            "an embedded shard has no replication: list standbys only for kind postgres",
        ));
    }
    for (j, sb) in s.standbys.iter().enumerate() {
        let at = format!("{at}.standbys[{j}]");
        if sb.host.is_empty() {
            return Err(bad(
                format!("{at}.host"),
                "empty: give a host name or address",
            ));
        }
        if let Some(name) = &sb.name {
            if name.is_empty() {
                return Err(bad(
                    format!("{at}.name"),
                    "empty: leave it out or give a name",
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(bad(
                    format!("{at}.name"),
                    format!("\"{name}\" is used twice: shard and node names must be unique"),
                ));
            }
        }
        if let Some(pool) = &sb.pool {
            check_pool(pool, &format!("{at}.pool"))?;
        }
        ClientTls::new(
            sb.sslmode.unwrap_or(s.sslmode),
            sb.sslrootcert.as_deref().or(s.sslrootcert.as_deref()),
        )
        .map_err(|e| bad(format!("{at}.{}", e.field), e.problem))?;
    }
    Ok(())
}

/// config/embedded.yaml: the configuration `pgvshard` runs with no
/// arguments (four in-process shards under ./pgvshard-data).
pub const EMBEDDED: &str = include_str!("../../config/embedded.yaml");

impl ProxyConfig {
    /// The embedded default ([`EMBEDDED`]).
    pub fn embedded() -> Self {
        Self::from_yaml(EMBEDDED).expect("config/embedded.yaml is valid")
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: ProxyConfig = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}", l.line(), l.column()))
                .unwrap_or_else(|| "config".to_string());
            bad(at, e.to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a file, replaces its `${NAME}` / `${NAME:-default}`
    /// references with environment variables (see `config_env`), parses
    /// and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path.display().to_string(), format!("cannot read: {e}")))?;
        let text = super::config_env::expand(&text, |name| std::env::var(name).ok())
            .map_err(|e| bad(format!("{}: {}", path.display(), e.path), e.problem))?;
        Self::from_yaml(&text)
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            bad(
                "listen",
                format!(
                    "\"{}\" is not host:port; write e.g. 127.0.0.1:6432",
                    self.listen
                ),
            )
        })
    }

    /// Threads of the proxy's runtime: `worker_threads`, else half the
    /// CPUs (at least one). A session's statement is mostly socket work in
    /// the kernel and hands nothing to other threads, so a second worker
    /// per CPU pair buys no throughput, only wake-ups: each task woken
    /// while a worker idles unparks it, and the two trade the tasks.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            (cpus / 2).max(1)
        })
    }

    /// Checks everything serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.max_client_connections == 0 {
            return Err(bad("max_client_connections", "0: allow at least 1"));
        }
        if self.worker_threads == Some(0) {
            return Err(bad(
                "worker_threads",
                "0: give at least 1, or leave it out for half the CPUs",
            ));
        }
        if !(1..=600).contains(&self.authentication_timeout) {
            return Err(bad(
                "authentication_timeout",
                "give seconds from 1 to 600, as PostgreSQL allows",
            ));
        }
        if !(0.0..=1.0).contains(&self.metrics.recall_sample_rate) {
            return Err(bad(
                "metrics.recall_sample_rate",
                "give a share from 0 to 1",
            ));
        }
        if self.shards.is_empty() {
            return Err(bad("shards", "no shards: list at least one"));
        }
        let mut names = HashSet::new();
        for (i, s) in self.shards.iter().enumerate() {
            let at = format!("shards[{i}]");
            if s.name.is_empty() {
                return Err(bad(format!("{at}.name"), "empty: give the shard a name"));
            }
            if !names.insert(s.name.as_str()) {
                return Err(bad(
                    format!("{at}.name"),
                    format!("\"{}\" is used twice: shard names must be unique", s.name),
                ));
            }
            if s.kind == ShardKind::Embedded && s.data_dir.is_none() && self.data_dir.is_none() {
                return Err(bad(
                    format!("{at}.data_dir"),
                    "an embedded shard needs a data directory: set it here or set the top-level data_dir",
                ));
            }
            if s.kind == ShardKind::Embedded && s.sslmode != SslMode::Disable {
                return Err(bad(
                    format!("{at}.sslmode"),
                    "an embedded shard is reached without a network: leave sslmode out",
                ));
            }
            s.client_tls()
                .map_err(|e| bad(format!("{at}.{}", e.field), e.problem))?;
            check_pool(&s.pool, &format!("{at}.pool"))?;
            validate_standbys(s, &at, &mut names)?;
        }
        if self.auth.method == AuthMethodConfig::ScramSha256 && self.auth.users.is_empty() {
            return Err(bad(
                "auth.users",
                "scram-sha-256 needs at least one user: add `name: password` under auth.users",
            ));
        }
        for (table, t) in &self.tables {
            if t.shard_key.is_empty() {
                return Err(bad(
                    format!("tables.{table}.shard_key"),
                    "empty: name a column",
                ));
            }
        }
        self.validate_reference_tables()?;
        if let Some(slots) = &self.slots {
            self.validate_slots(slots)?;
        }
        self.validate_cache()?;
        self.validate_replication()?;
        self.metrics_addr()?;
        Ok(())
    }

    fn validate_reference_tables(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, name) in self.reference_tables.iter().enumerate() {
            let at = format!("reference_tables[{i}]");
            if name.trim().is_empty() {
                return Err(bad(at, "empty: name a table"));
            }
            if !seen.insert(name) {
                return Err(bad(at, format!("\"{name}\" is listed twice")));
            }
            if self.tables.contains_key(name) {
                return Err(bad(
                    at,
                    format!("\"{name}\" also has tables.{name}.shard_key: a reference table is not sharded, remove one of them"),
                ));
            }
        }
        Ok(())
    }

    fn validate_replication(&self) -> Result<(), ConfigError> {
        let r = &self.replication;
        if r.health_check_interval_ms == 0 {
            return Err(bad(
                "replication.health_check_interval_ms",
                "0: give a positive number of milliseconds",
            ));
        }
        if r.health_check_timeout_ms == 0 {
            return Err(bad(
                "replication.health_check_timeout_ms",
                "0: give a positive number of milliseconds",
            ));
        }
        Ok(())
    }

    /// Loads the `tls:` files: `None` without the section; a missing,
    /// unreadable or mismatched file is an error naming its field.
    pub fn server_tls(&self) -> Result<Option<ServerTls>, ConfigError> {
        self.tls
            .as_ref()
            .map(|t| {
                t.load()
                    .map_err(|e| bad(format!("tls.{}", e.field), e.problem))
            })
            .transpose()
    }

    /// The data directory of embedded shard `shard`.
    pub fn shard_data_dir(&self, shard: &ShardConfig) -> Option<PathBuf> {
        shard
            .data_dir
            .clone()
            .or_else(|| Some(self.data_dir.as_ref()?.join(&shard.name)))
    }

    /// The metrics endpoint's address, parsed.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(listen) = &self.metrics.listen else {
            return Ok(None);
        };
        listen.parse().map(Some).map_err(|_| {
            bad(
                "metrics.listen",
                format!("\"{listen}\" is not host:port; write e.g. 127.0.0.1:9187"),
            )
        })
    }

    fn validate_cache(&self) -> Result<(), ConfigError> {
        let c = &self.cache;
        if c.ttl_seconds == 0 {
            return Err(bad(
                "cache.ttl_seconds",
                "0: give a positive number of seconds",
            ));
        }
        if c.key_prefix.is_empty() {
            return Err(bad(
                "cache.key_prefix",
                "empty: Redis keys need a prefix, e.g. pgvshard",
            ));
        }
        if let Some(url) = &c.redis_url {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return Err(bad(
                    "cache.redis_url",
                    format!("\"{url}\" is not a Redis URL; write e.g. redis://127.0.0.1:6379/0"),
                ));
            }
        }
        Ok(())
    }

    fn validate_slots(&self, slots: &BTreeMap<String, Vec<SlotRange>>) -> Result<(), ConfigError> {
        let mut owner = vec![None::<&str>; SLOTS];
        for (name, ranges) in slots {
            if !self.shards.iter().any(|s| &s.name == name) {
                return Err(bad(
                    format!("slots.{name}"),
                    "no shard has this name: use a name from `shards`",
                ));
            }
            for (i, SlotRange(a, b)) in ranges.iter().enumerate() {
                let at = format!("slots.{name}[{i}]");
                if a > b || usize::from(*b) >= SLOTS {
                    return Err(bad(
                        at,
                        format!("[{a}, {b}] is not a range within 0..={}", SLOTS - 1),
                    ));
                }
                for slot in *a..=*b {
                    if let Some(other) = owner[usize::from(slot)].replace(name) {
                        return Err(bad(
                            at,
                            format!(
                                "slot {slot} is also given to {other}: ranges must not overlap"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(slot) = owner.iter().position(Option::is_none) {
            return Err(bad(
                "slots",
                format!(
                    "slot {slot} belongs to no shard: the ranges must cover 0..={}",
                    SLOTS - 1
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: 5433\n  - name: s1\n    port: 5434\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let c = ProxyConfig::from_yaml(TWO).unwrap();
        assert_eq!(c.shards.len(), 2);
        assert_eq!(c.shards[1].pool.size, 16);
        assert_eq!(c.shards[0].kind, ShardKind::Postgres);
        assert_eq!(c.auth.method, AuthMethodConfig::Trust);
        assert!(c.tls.is_none() && c.server_tls().unwrap().is_none());
        let c = ProxyConfig::from_yaml(&format!(
            "{TWO}tls:\n  cert_file: c.pem\n  key_file: k.pem\n"
        ))
        .unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("c.pem"));
        assert!(!tls.required);
        assert_eq!(c.server_tls().unwrap_err().path, "tls.cert_file");
    }

    #[test]
    fn worker_threads_default_to_half_the_cpus() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let c = ProxyConfig::from_yaml(TWO).unwrap();
        assert_eq!(c.worker_threads(), (cpus / 2).max(1));
        let c = ProxyConfig::from_yaml(&format!("{TWO}worker_threads: 3\n")).unwrap();
        assert_eq!(c.worker_threads(), 3);
        let e = ProxyConfig::from_yaml(&format!("{TWO}worker_threads: 0\n")).unwrap_err();
        assert_eq!(e.path, "worker_threads");
    }

    #[test]
    fn the_sample_file_is_valid() {
        let text = include_str!("../../config/proxy-2-remote-shards.yaml");
        let c = ProxyConfig::from_yaml(text).unwrap();
        assert_eq!(c.shards.len(), 2);
        assert_eq!(c.auth.method, AuthMethodConfig::ScramSha256);
        assert_eq!(c.tables["events"].shard_key, "tenant_id");
        assert_eq!(c.reference_tables, ["langchain_pg_collection"]);
        assert!(c.cache.enabled);
        assert_eq!(c.metrics_addr().unwrap().unwrap().port(), 9187);
    }

    #[test]
    fn the_standbys_sample_is_valid() {
        let text = include_str!("../../config/proxy-shards-with-standbys.yaml");
        let c = ProxyConfig::from_yaml(text).unwrap();
        assert_eq!(c.shards.len(), 2);
        assert_eq!(c.replication.read_from, ReadFrom::Standbys);
        let nodes = c.shards[0].nodes();
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].primary && !nodes[1].primary);
        assert_eq!(nodes[0].conn.name, "s0");
        assert_eq!(nodes[1].conn.name, "s0-replica-a");
        assert_eq!(nodes[1].weight, 2);
        assert_eq!(nodes[1].conn.password.as_deref(), Some("shard-secret"));
        assert_eq!(nodes[1].conn.pool.size, 16);
        assert_eq!(nodes[2].conn.name, "s0.standby2");
        assert_eq!(nodes[2].conn.pool.size, 8);
        assert_eq!(c.shards[1].nodes()[1].conn.host, "10.0.0.21");
    }

    #[test]
    fn reference_table_mistakes_name_the_field() {
        let e = ProxyConfig::from_yaml(&format!("{TWO}reference_tables: [a, \"\"]\n")).unwrap_err();
        assert_eq!(e.path, "reference_tables[1]");
        let e = ProxyConfig::from_yaml(&format!("{TWO}reference_tables: [a, a]\n")).unwrap_err();
        assert_eq!(e.path, "reference_tables[1]");
        let e = ProxyConfig::from_yaml(&format!(
            "{TWO}reference_tables: [a]\ntables:\n  a:\n    shard_key: id\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "reference_tables[0]");
    }

    #[test]
    fn replication_mistakes_name_the_field() {
        let standby = "    standbys:\n      - host: h\n";
        let e =
            ProxyConfig::from_yaml(&format!("{TWO}{standby}        pool:\n          size: 0\n"))
                .unwrap_err();
        assert_eq!(e.path, "shards[1].standbys[0].pool.size");
        let e = ProxyConfig::from_yaml(&format!("{TWO}{standby}        name: s0\n")).unwrap_err();
        assert_eq!(e.path, "shards[1].standbys[0].name");
        let e = ProxyConfig::from_yaml(&format!("{TWO}{standby}        sslmode: verify-full\n"))
            .unwrap_err();
        assert_eq!(e.path, "shards[1].standbys[0].sslrootcert");
        let e = ProxyConfig::from_yaml(&format!("{TWO}{standby}        lag: 1\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `lag`"), "{e}");
        let e = ProxyConfig::from_yaml(&format!("{TWO}replication:\n  read_from: replicas\n"))
            .unwrap_err();
        assert!(e.to_string().contains("unknown variant `replicas`"), "{e}");
        let e = ProxyConfig::from_yaml(&format!(
            "{TWO}replication:\n  health_check_interval_ms: 0\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "replication.health_check_interval_ms");
        let e = ProxyConfig::from_yaml(
            "data_dir: d\nshards:\n  - name: a\n    kind: embedded\n    standbys:\n      - host: h\n",
        )
        .unwrap_err();
        assert_eq!(e.path, "shards[0].standbys");
    }

    #[test]
    fn the_embedded_default_is_four_in_process_shards() {
        let c = ProxyConfig::embedded();
        assert_eq!(c.shards.len(), 4);
        assert!(c.shards.iter().all(|s| s.kind == ShardKind::Embedded));
        assert_eq!(
            c.shard_data_dir(&c.shards[2]),
            Some(PathBuf::from("pgvshard-data/shard2"))
        );
        assert_eq!(c.listen, "127.0.0.1:6432");
        assert_eq!(c.metrics_addr().unwrap().unwrap().port(), 9632);
        assert!(c.cache.enabled);
        assert_eq!(c.reference_tables, ["langchain_pg_collection"]);
        let e = ProxyConfig::from_yaml("shards:\n  - name: a\n    kind: embedded\n").unwrap_err();
        assert_eq!(e.path, "shards[0].data_dir");
    }

    #[test]
    fn mistakes_name_the_field() {
        let e = ProxyConfig::from_yaml(&format!("{TWO}    poool: {{}}\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `poool`"), "{e}");
        let e = ProxyConfig::from_yaml(&TWO.replace("s1", "s0")).unwrap_err();
        assert_eq!(e.path, "shards[1].name");
        let e = ProxyConfig::from_yaml(&format!("{TWO}    pool:\n      size: 0\n")).unwrap_err();
        assert_eq!(e.path, "shards[1].pool.size");
        let e = ProxyConfig::from_yaml(&format!(
            "{TWO}slots:\n  s0: [[0, 100]]\n  s1: [[100, 4095]]\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, "slots.s1[0]");
        let e = ProxyConfig::from_yaml(&format!("{TWO}slots:\n  s0: [[0, 100]]\n")).unwrap_err();
        assert!(e.problem.contains("slot 101 belongs to no shard"), "{e}");
        let e = ProxyConfig::from_yaml(&TWO.replace("127.0.0.1:0", "nowhere")).unwrap_err();
        assert_eq!(e.path, "listen");
        let e =
            ProxyConfig::from_yaml(&format!("{TWO}auth:\n  method: scram-sha-256\n")).unwrap_err();
        assert_eq!(e.path, "auth.users");
        let e = ProxyConfig::from_yaml(&format!("{TWO}cache:\n  ttl_seconds: 0\n")).unwrap_err();
        assert_eq!(e.path, "cache.ttl_seconds");
        let e =
            ProxyConfig::from_yaml(&format!("{TWO}cache:\n  redis_url: localhost\n")).unwrap_err();
        assert_eq!(e.path, "cache.redis_url");
        let e = ProxyConfig::from_yaml(&format!("{TWO}metrics:\n  listen: nine\n")).unwrap_err();
        assert_eq!(e.path, "metrics.listen");
        let e = ProxyConfig::from_yaml(&format!("{TWO}    sslmode: verify-full\n")).unwrap_err();
        assert_eq!(e.path, "shards[1].sslrootcert");
        let e = ProxyConfig::from_yaml(&format!("{TWO}    sslmode: allow\n")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `allow`"), "{e}");
        let e = ProxyConfig::from_yaml(
            "data_dir: d\nshards:\n  - name: a\n    kind: embedded\n    sslmode: require\n",
        )
        .unwrap_err();
        assert_eq!(e.path, "shards[0].sslmode");
    }
}
