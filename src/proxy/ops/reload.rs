//! Re-reading the configuration file while serving (SIGHUP or
//! `SELECT pgvshard.reload()`, PostgreSQL's `pg_reload_conf()`).
//!
//! A reload is all or nothing for the file: the new file is read, has its
//! `${NAME}` references expanded and is validated as at start (TLS files
//! loaded, SCRAM secrets derived) before anything changes; a file that
//! fails is refused with the reason and the running configuration stays.
//! A valid file's reloadable settings ([`super::settings`]) are applied
//! at once — to new client connections (authentication, TLS), to every
//! node's pool (busy connections are not interrupted), to each shard's
//! standbys (added and removed as
//! [`membership`](crate::proxy::topology::membership) says), to the read
//! policy, the cache and the slow log — and its other changed settings are
//! named as waiting for a restart. No client is disconnected.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::metrics::ReloadMetrics;
use super::settings::{apply_reloadable, differing};
use super::slow_log::SlowLog;
use crate::proxy::backend::Dialer;
use crate::proxy::cache::QueryCache;
use crate::proxy::config::{ConfigError, ProxyConfig};
use crate::proxy::topology::membership::{NodeBuilder, StandbyChanges};
use crate::proxy::topology::Topology;
use crate::wire::{LiveWireConfig, PgError};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The proxy was started without a file (the embedded default).
    #[error("the proxy runs without a configuration file (the embedded default): there is nothing to reload")]
    NoFile,
    /// The reload's task ended before it finished (the proxy is stopping).
    #[error("the reload was interrupted: {0}")]
    Interrupted(String),
    /// The file cannot be read or is invalid.
    #[error("configuration file \"{path}\" contains errors; no changes were applied")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        error: ConfigError,
    },
}

impl From<&ReloadError> for PgError {
    fn from(e: &ReloadError) -> Self {
        match e {
            ReloadError::NoFile => PgError::new("55000", e.to_string()),
            ReloadError::Interrupted(_) => PgError::new("57P01", e.to_string()),
            ReloadError::Invalid { error, .. } => PgError::new("F0000", e.to_string())
                .with_detail(error.to_string())
                .with_hint("Fix the file and reload again; the running configuration is kept."),
        }
    }
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Settings whose new value is in force now.
    pub applied: Vec<String>,
    /// Settings changed in the file that need a restart (running value kept).
    pub pending_restart: Vec<String>,
}

/// Logs what a reload did to a shard's standbys.
fn log_standbys(shard: &str, changes: &StandbyChanges) {
    if changes.is_empty() {
        return;
    }
    tracing::info!(
        shard,
        added = %changes.added.join(" "),
        removed = %changes.removed.join(" "),
        "standbys reconfigured"
    );
    for name in &changes.kept {
        tracing::warn!(
            shard,
            node = %name,
            "standby \"{name}\" is no longer configured but is the shard's primary now: it stays until the proxy restarts"
        );
    }
}

/// The running configuration and the parts a reload changes.
pub struct Reloader {
    source: Option<PathBuf>,
    /// The configuration in force and the settings waiting for a restart;
    /// the lock also makes reloads one at a time.
    state: Mutex<(ProxyConfig, Vec<String>)>,
    wire: Arc<LiveWireConfig>,
    nodes: NodeBuilder,
    topology: Arc<Topology>,
    cache: Option<Arc<QueryCache>>,
    slow_log: Arc<SlowLog>,
    metrics: ReloadMetrics,
}

/// The live parts of a running proxy a reload reconfigures.
pub struct LiveParts {
    /// Client authentication and TLS.
    pub wire: Arc<LiveWireConfig>,
    /// Builds the pools of standbys a reload adds.
    pub nodes: NodeBuilder,
    /// Read policy, lag bounds, weights.
    pub topology: Arc<Topology>,
    /// The result cache, when enabled.
    pub cache: Option<Arc<QueryCache>>,
    /// The slow-statement log.
    pub slow_log: Arc<SlowLog>,
    /// Where reloads are counted.
    pub metrics: ReloadMetrics,
}

impl Reloader {
    /// A reloader for a proxy running `config` (as settled at start),
    /// read from `source` (`None`: not from a file).
    pub fn new(config: ProxyConfig, source: Option<PathBuf>, parts: LiveParts) -> Self {
        Reloader {
            source,
            state: Mutex::new((config, Vec::new())),
            wire: parts.wire,
            nodes: parts.nodes,
            topology: parts.topology,
            cache: parts.cache,
            slow_log: parts.slow_log,
            metrics: parts.metrics,
        }
    }

    /// The configuration in force and the settings waiting for a restart.
    pub fn running(&self) -> (ProxyConfig, Vec<String>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the file and applies it (see the module doc); logs the
    /// outcome either way.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let result = self.reload_quietly();
        if !matches!(result, Err(ReloadError::NoFile)) {
            self.metrics.reloaded(result.is_ok());
        }
        match &result {
            Ok(r) => {
                for name in &r.pending_restart {
                    tracing::warn!(
                        setting = %name,
                        "setting \"{name}\" cannot be changed without restarting the proxy; the running value is kept"
                    );
                }
                tracing::info!(
                    applied = %r.applied.join(" "),
                    "configuration reloaded ({} settings changed)",
                    r.applied.len()
                );
            }
            Err(ReloadError::Invalid { error, .. }) => {
                tracing::error!(problem = %error, "{}", result.as_ref().err().map(ToString::to_string).unwrap_or_default());
            }
            Err(e) => tracing::warn!("{e}"),
        }
        result
    }

    fn reload_quietly(&self) -> Result<Reloaded, ReloadError> {
        let path = self.source.as_ref().ok_or(ReloadError::NoFile)?;
        let invalid = |error| ReloadError::Invalid {
            path: path.display().to_string(),
            error,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = ProxyConfig::load(path).map_err(invalid)?;
        let running = &state.0;
        if file.slots.is_none() {
            // The map settled at start (recorded or even) stays.
            file.slots = running.slots.clone();
        }
        let wire = crate::proxy::wire_config(&file).map_err(invalid)?;
        let next = apply_reloadable(running, &file);
        let applied = differing(running, &next);
        let pending_restart = differing(&next, &file);
        // Standbys to add are built (no connection yet) before anything
        // changes.
        let plans = next
            .shards
            .iter()
            .filter_map(|s| {
                let wanted = s.nodes().into_iter().skip(1).collect();
                self.topology
                    .plan_standbys(&s.name, wanted, |n| self.nodes.parts(n, Dialer::Tcp))
                    .map(|plan| plan.map(|p| (s.name.clone(), p)))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| {
                invalid(ConfigError {
                    path: "shards[].standbys".into(),
                    problem: e,
                })
            })?;
        self.wire.replace(wire);
        for (shard, plan) in plans {
            log_standbys(&shard, &self.topology.apply_standbys(plan));
        }
        for shard in &next.shards {
            for node in shard.nodes() {
                self.topology.resize_pool(&node.conn.name, node.conn.pool);
            }
        }
        let weights: Vec<(String, u32)> = next
            .shards
            .iter()
            .flat_map(|s| s.nodes())
            .map(|n| (n.conn.name, n.weight))
            .collect();
        self.topology.reconfigure(&next.replication, |node| {
            weights.iter().find(|(n, _)| n == node).map(|(_, w)| *w)
        });
        if let Some(cache) = &self.cache {
            cache.reconfigure(&next.cache);
        }
        self.slow_log.set(next.log_min_duration_ms);
        *state = (next, pending_restart.clone());
        Ok(Reloaded {
            applied,
            pending_restart,
        })
    }
}
