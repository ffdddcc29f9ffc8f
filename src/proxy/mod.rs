//! The proxy: one PostgreSQL endpoint in front of N shards. A client's
//! statement is parsed with the pgvector dialect ([`crate::sql`]), planned
//! into a route (one shard, a scatter with a merge, a broadcast), run on
//! the shards through [`backend::Backend`] channels, and answered through
//! the wire layer with the shards' row bytes passed on undecoded.
//!
//! All state lives in values handed to [`serve`]: there are no process
//! globals, so tests run many proxies in one process in parallel.

pub mod backend;
pub mod cache;
mod canonical_key;
pub mod cluster;
pub mod config;
pub(crate) mod config_env;
pub mod slots;
pub mod topology;

mod copy;
pub mod execute;
mod explain;
mod generated_keys;
pub mod ops;
pub mod plan;
pub mod session;
pub mod slot_record;
mod txn;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::backend::{Dialer, LocalShard, SharedBackend};
use self::cache::QueryCache;
use self::cluster::Cluster;
use self::config::{AuthMethodConfig, ConfigError, ProxyConfig, ShardKind};
use self::session::ProxyFactory;
use self::topology::membership::NodeBuilder;
use self::topology::record::TermRecord;
use self::topology::writer::ShardWriter;
use self::topology::{ReplicaMetrics, Topology};
use crate::metrics::{MetricsServer, ProxyMetrics, Registry};
use crate::wire::{AuthMethod, LiveWireConfig, WireConfig};

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The cache or the metrics could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// A proxy serving in the background; dropping it shuts it down.
pub struct RunningProxy {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The registry its metrics are in.
    pub registry: Registry,
    /// Its operations state (configuration reload, statistics).
    pub ops: Arc<ops::Operations>,
    _metrics: Option<MetricsServer>,
    _poller: Option<topology::Poller>,
    _resolver: Option<txn::Resolver>,
    embedded: Vec<Arc<LocalShard>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningProxy {
    /// Stops accepting, lets running statements finish, then closes the
    /// embedded shards with a final checkpoint each.
    pub async fn shutdown(mut self) -> Result<(), ProxyError> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        let served = (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        for shard in &self.embedded {
            shard.close().await.map_err(ProxyError::Setup)?;
        }
        Ok(served?)
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

/// The wire layer's settings from a configuration (loads the TLS files).
pub(crate) fn wire_config(config: &ProxyConfig) -> Result<WireConfig, ConfigError> {
    let mut wire = WireConfig {
        tls: config.server_tls()?,
        max_connections: config.max_client_connections,
        authentication_timeout: std::time::Duration::from_secs(config.authentication_timeout),
        ..WireConfig::default()
    };
    if config.auth.method == AuthMethodConfig::ScramSha256 {
        wire.auth = AuthMethod::ScramSha256;
        for (user, password) in &config.auth.users {
            wire = wire.with_user(user.clone(), password);
        }
    }
    Ok(wire)
}

/// Binds the configured address and serves in a background task, with
/// its own metrics registry.
pub async fn start(config: ProxyConfig) -> Result<RunningProxy, ProxyError> {
    start_with_registry(config, Registry::new()).await
}

/// Like [`start`], registering the proxy's metrics in `registry` (a
/// process that also runs shards passes one registry to both). Each
/// embedded shard's families go into the same registry, every series
/// labelled `shard="<configured name>"`, so one /metrics shows them all.
pub async fn start_with_registry(
    config: ProxyConfig,
    registry: Registry,
) -> Result<RunningProxy, ProxyError> {
    start_from(config, None, registry).await
}

/// [`start_with_registry`] for a configuration read from `source`, the
/// file a reload reads again (`None`: the proxy has no file to reload).
pub async fn start_from(
    mut config: ProxyConfig,
    source: Option<std::path::PathBuf>,
    registry: Registry,
) -> Result<RunningProxy, ProxyError> {
    config.validate()?;
    let wire = wire_config(&config)?;
    slot_record::settle(&mut config)?;
    let setup = |e: prometheus::Error| ProxyError::Setup(format!("metrics: {e}"));
    let metrics = ProxyMetrics::register(&registry).map_err(setup)?;
    let listener = TcpListener::bind(config.listen_addr()?).await?;
    let addr = listener.local_addr()?;
    let socket_error = |e: String| ProxyError::Setup(format!("unix_socket_dir: {e}"));
    let unix = (config.unix_socket_dir.as_ref())
        .map(|dir| crate::wire::UnixSocketFile::bind(dir, addr.port()))
        .transpose()
        .map_err(socket_error)?;
    let unix_listener = (unix.as_ref().map(|u| u.listener()))
        .transpose()
        .map_err(socket_error)?;
    let listener = crate::wire::Listeners::new(listener, unix_listener);
    let mut embedded = Vec::new();
    let builder = NodeBuilder::new(metrics.clone());
    let mut groups = Vec::with_capacity(config.shards.len());
    for s in &config.shards {
        let dialer = match s.kind {
            ShardKind::Postgres => Dialer::Tcp,
            ShardKind::Embedded => {
                let dir = config.shard_data_dir(s).unwrap_or_default();
                let rate = config.metrics.recall_sample_rate;
                let shard = LocalShard::open(&dir, rate)
                    .await
                    .map_err(ProxyError::Setup)?;
                embedded.push(Arc::clone(&shard));
                Dialer::Local(shard)
            }
        };
        let nodes = s
            .nodes()
            .into_iter()
            .map(|n| builder.parts(n, dialer.clone()))
            .collect();
        groups.push((s.name.clone(), nodes));
    }
    if !embedded.is_empty() {
        let names = config
            .shards
            .iter()
            .filter(|s| s.kind == ShardKind::Embedded);
        let families = crate::shard::metrics::labelled_collector(
            names
                .zip(&embedded)
                .map(|(s, e)| (s.name.as_str(), e.shard())),
        );
        registry
            .register(Box::new(families.map_err(setup)?))
            .map_err(setup)?;
    }
    let cache = QueryCache::new(&config.cache, &registry)
        .map_err(|e| ProxyError::Setup(format!("cache: {e}")))?;
    let metrics_server = match config.metrics_addr()? {
        Some(at) => Some(MetricsServer::start(at, registry.clone()).await?),
        None => None,
    };
    let key_link = generated_keys::key_link(&config.cache, cache.as_deref(), &registry)
        .map_err(|e| ProxyError::Setup(format!("cache.redis_url: {e}")))?;
    let replicas = ReplicaMetrics::register(&registry).map_err(setup)?;
    let shared_cache = cache.as_ref().is_some_and(|c| c.redis().is_some());
    let record = key_link.clone().map(TermRecord::new);
    let topology = Topology::new(&config.replication, groups, shared_cache, record, replicas)
        .map_err(|e| ProxyError::Setup(format!("replication: {e}")))?;
    topology::metrics::register_gauges(&registry, &topology).map_err(setup)?;
    // A remote shard writes through whichever node is its primary (it
    // may have standbys, or gain some at a reload); an embedded one
    // through its only node.
    let shards: Vec<SharedBackend> = topology
        .shards()
        .iter()
        .zip(&config.shards)
        .enumerate()
        .map(|(i, (g, s))| -> SharedBackend {
            match s.kind {
                ShardKind::Postgres => Arc::new(ShardWriter::new(Arc::clone(&topology), i)),
                ShardKind::Embedded => Arc::clone(&g.nodes()[0].data),
            }
        })
        .collect();
    txn::check_shards(&topology)
        .await
        .map_err(ProxyError::Setup)?;
    let poller = topology.start_polling();
    let two_phase = txn::TwoPhase::new(
        shards.len(),
        txn::TxnMetrics::register(&registry).map_err(setup)?,
    );
    let cluster = Arc::new(Cluster::new(
        &config,
        shards,
        Arc::clone(&topology),
        key_link,
        two_phase,
    ));
    let resolver = txn::start_resolver(Arc::clone(&cluster));
    let (stop, stopped) = oneshot::channel::<()>();
    let wire = LiveWireConfig::new(wire);
    let slow_log = Arc::new(ops::slow_log::SlowLog::new(config.log_min_duration_ms));
    let parts = ops::LiveParts {
        wire: Arc::clone(&wire),
        nodes: builder,
        topology,
        cache: cache.clone(),
        slow_log: Arc::clone(&slow_log),
        metrics: ops::metrics::ReloadMetrics::register(&registry).map_err(setup)?,
    };
    let ops = Arc::new(ops::Operations {
        reloader: ops::Reloader::new(config, source, parts),
        stats: ops::stats::StatementStats::default(),
        slow_log,
    });
    let factory = ProxyFactory::new(cluster, cache, metrics, Arc::clone(&ops));
    let task = tokio::spawn(async move {
        let shutdown = async move {
            stopped.await.ok();
        };
        let served = crate::wire::serve_live(listener, factory, wire, shutdown).await;
        drop(unix);
        served
    });
    Ok(RunningProxy {
        addr,
        metrics_addr: metrics_server.as_ref().map(|m| m.addr),
        registry,
        ops,
        _metrics: metrics_server,
        _poller: poller,
        _resolver: resolver,
        embedded,
        stop: Some(stop),
        task,
    })
}

/// `pgvshard proxy --config <path>`: loads the file and serves until
/// `shutdown` completes (then closes cleanly, see [`serve_until`]).
/// SIGHUP re-reads the file ([`ops::Reloader`]).
pub async fn run(config_path: &Path, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
    let config = ProxyConfig::load(config_path)?;
    let proxy = start_from(config, Some(config_path.to_path_buf()), Registry::new()).await?;
    tracing::info!(addr = %proxy.addr, "pgvshard proxy listening");
    if let Some(at) = proxy.metrics_addr {
        tracing::info!(addr = %at, "metrics endpoint listening");
    }
    let _reloads = reload_on_hangup(&proxy);
    shutdown.await;
    tracing::info!("draining sessions; checkpointing embedded shards");
    proxy.shutdown().await
}

/// Each SIGHUP reloads the proxy's file (without one, the reload logs
/// that there is nothing to reload).
fn reload_on_hangup(proxy: &RunningProxy) -> crate::signals::OnHangup {
    let ops = Arc::clone(&proxy.ops);
    crate::signals::on_hangup(move || {
        let ops = Arc::clone(&ops);
        async move {
            tracing::info!("received SIGHUP, reloading configuration file");
            ops::reload_off_workers(&ops).await.ok();
        }
    })
}

/// Serves `config` until `shutdown` completes: `started` is told where
/// the proxy listens; at shutdown the proxy stops accepting, drains its
/// sessions, and checkpoints its embedded shards.
pub async fn serve_until(
    config: ProxyConfig,
    started: impl FnOnce(&RunningProxy),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let proxy = start(config).await?;
    tracing::info!(addr = %proxy.addr, "pgvshard proxy listening");
    started(&proxy);
    let _reloads = reload_on_hangup(&proxy);
    shutdown.await;
    tracing::info!("draining sessions; checkpointing embedded shards");
    proxy.shutdown().await
}
