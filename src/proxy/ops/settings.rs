//! The configuration as settings: one `name = value` per leaf of the
//! file (`shards[0].pool.size`, `cache.ttl_seconds`, …), which of them a
//! reload applies, and the running configuration after a reload.
//!
//! Applied by a reload (SIGHUP, `SELECT pgvshard.reload()`): client
//! authentication (`auth.*`, `tls.*`, `authentication_timeout`),
//! `max_client_connections` (open sessions stay when it is lowered), every
//! node's pool and read weight, each shard's standbys (added, removed,
//! moved: `shards[].standbys`), the read policy, lag bounds, waits and
//! failover timings (`replication.*` but the poll interval and timeout),
//! the cache's TTL, largest result and uncached tables, and
//! `log_min_duration_ms`. Everything else — addresses, the shard list and
//! the shards' logins, slots, tables, reference_tables, enabling the
//! cache, its L1 size and Redis, metrics, `log_format` — needs a restart:
//! a reload keeps the running value and names the setting (a WARNING
//! 55P02 to `pgvshard.reload()`'s caller and a log line), as PostgreSQL
//! does for its `postmaster` settings.

use serde_json::Value as Json;

use crate::proxy::config::ProxyConfig;

/// Shown for secrets (passwords) instead of their value.
pub const MASK: &str = "********";

/// Settings a reload applies: exact names, or prefixes ending in `.`/`[`
/// (list positions are written `[]`).
const RELOADABLE: &[&str] = &[
    "auth.",
    "tls",
    "authentication_timeout",
    "max_client_connections",
    "shards[].pool",
    "shards[].weight",
    "shards[].standbys",
    "replication.read_from",
    "replication.max_replica_lag_bytes",
    "replication.max_replica_lag_ms",
    "replication.read_your_writes_wait_ms",
    "replication.failover_after_ms",
    "replication.failover_wait_ms",
    "replication.failover_lease_ms",
    "cache.ttl_seconds",
    "cache.max_result_bytes",
    "cache.uncached_tables",
    "log_min_duration_ms",
];

/// Whether a reload applies setting `name`.
pub fn is_reloadable(name: &str) -> bool {
    let general = without_positions(name);
    RELOADABLE.iter().any(|r| {
        general == *r
            || general
                .strip_prefix(r)
                .is_some_and(|rest| r.ends_with('.') || rest.starts_with(['.', '[']))
    })
}

/// Whether setting `name` holds a secret (a password).
pub fn is_secret(name: &str) -> bool {
    name.starts_with("auth.users.") || name.ends_with(".password")
}

/// `shards[1].pool.size` → `shards[].pool.size`.
fn without_positions(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_brackets = false;
    for c in name.chars() {
        match c {
            '[' => {
                in_brackets = true;
                out.push('[');
            }
            ']' => {
                in_brackets = false;
                out.push(']');
            }
            _ if in_brackets => {}
            c => out.push(c),
        }
    }
    out
}

/// Every setting of `config` with its value as text (`None`: not set),
/// sorted by name within each section; secrets are included as they are (see [`is_secret`]).
pub fn settings(config: &ProxyConfig) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    match serde_json::to_value(config) {
        Ok(json) => walk(String::new(), &json, &mut out),
        Err(e) => out.push(("error".to_string(), Some(e.to_string()))),
    }
    out
}

fn walk(name: String, value: &Json, out: &mut Vec<(String, Option<String>)>) {
    match value {
        Json::Object(fields) if !fields.is_empty() => {
            for (key, v) in fields {
                let sub = if name.is_empty() {
                    key.clone()
                } else {
                    format!("{name}.{key}")
                };
                walk(sub, v, out);
            }
        }
        Json::Array(items) if !items.is_empty() && !items.iter().all(is_scalar) => {
            for (i, v) in items.iter().enumerate() {
                walk(format!("{name}[{i}]"), v, out);
            }
        }
        Json::Null => out.push((name, None)),
        Json::String(s) => out.push((name, Some(s.clone()))),
        other => out.push((name, Some(other.to_string()))),
    }
}

fn is_scalar(v: &Json) -> bool {
    !matches!(v, Json::Object(_) | Json::Array(_))
}

/// The configuration to run after a reload of `file` over `running`: the
/// settings a reload applies from `file`, the others from `running`.
/// Shards are matched by name; a shard's standbys are the file's.
pub fn apply_reloadable(running: &ProxyConfig, file: &ProxyConfig) -> ProxyConfig {
    let mut next = running.clone();
    next.auth = file.auth.clone();
    next.tls = file.tls.clone();
    next.authentication_timeout = file.authentication_timeout;
    next.max_client_connections = file.max_client_connections;
    next.replication = crate::proxy::config::ReplicationConfig {
        health_check_interval_ms: running.replication.health_check_interval_ms,
        health_check_timeout_ms: running.replication.health_check_timeout_ms,
        ..file.replication.clone()
    };
    next.cache.ttl_seconds = file.cache.ttl_seconds;
    next.cache.max_result_bytes = file.cache.max_result_bytes;
    next.cache.uncached_tables = file.cache.uncached_tables.clone();
    next.log_min_duration_ms = file.log_min_duration_ms;
    for shard in &mut next.shards {
        let Some(new) = file.shards.iter().find(|s| s.name == shard.name) else {
            continue;
        };
        shard.pool = new.pool.clone();
        shard.weight = new.weight;
        shard.standbys = new.standbys.clone();
    }
    next
}

/// The settings whose value in `file` differs from `running`'s (for a
/// `running` from [`apply_reloadable`]: those waiting for a restart).
pub fn differing(running: &ProxyConfig, file: &ProxyConfig) -> Vec<String> {
    let now = settings(running);
    let wanted = settings(file);
    let mut names: Vec<String> = wanted
        .iter()
        .filter(|w| !now.contains(w))
        .map(|(n, _)| n.clone())
        .collect();
    for (n, _) in &now {
        if !wanted.iter().any(|(w, _)| w == n) {
            names.push(n.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: 5433\n    password: pw\n    standbys:\n      - host: h\n  - name: s1\n    port: 5434\n";

    #[test]
    fn every_leaf_is_a_setting_and_secrets_are_known() {
        let c = ProxyConfig::from_yaml(BASE).unwrap();
        let s = settings(&c);
        let get = |n: &str| s.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("shards[1].port"), Some(Some("5434".into())));
        assert_eq!(get("shards[0].standbys[0].host"), Some(Some("h".into())));
        assert_eq!(get("shards[0].standbys[0].pool"), Some(None));
        assert_eq!(get("cache.uncached_tables"), Some(Some("[]".into())));
        assert_eq!(get("log_format"), Some(Some("text".into())));
        assert!(is_secret("shards[0].password"));
        assert!(is_secret("auth.users.alice"));
        assert!(!is_secret("shards[0].port"));
    }

    #[test]
    fn reloadable_names() {
        for n in [
            "auth.method",
            "auth.users.bob",
            "tls.cert_file",
            "tls",
            "shards[3].pool.size",
            "shards[0].standbys[1].pool",
            "shards[0].standbys[1].weight",
            "shards[0].standbys[0].host",
            "shards[0].standbys",
            "replication.max_replica_lag_ms",
            "cache.uncached_tables[2]",
            "log_min_duration_ms",
        ] {
            assert!(is_reloadable(n), "{n}");
        }
        for n in [
            "listen",
            "shards[0].port",
            "shards[0].standbysx",
            "shards[0].pool_extra",
            "tlsx",
            "replication.health_check_interval_ms",
            "cache.enabled",
            "cache.l1_bytes",
            "log_format",
            "data_dir",
        ] {
            assert!(!is_reloadable(n), "{n}");
        }
    }

    #[test]
    fn a_reload_applies_exactly_the_reloadable_settings() {
        let running = ProxyConfig::from_yaml(BASE).unwrap();
        let edited = format!(
            "{}auth:\n  method: scram-sha-256\n  users:\n    u: p\ncache:\n  ttl_seconds: 9\n  uncached_tables: [t]\nreplication:\n  max_replica_lag_ms: 5\n  health_check_interval_ms: 7\nlog_min_duration_ms: 0\n",
            BASE.replace("    standbys:\n", "    weight: 3\n    pool:\n      size: 2\n    standbys:\n")
                .replace("      - host: h\n", "      - host: h\n        weight: 0\n")
                .replace("port: 5434", "port: 5435")
        );
        let file = ProxyConfig::from_yaml(&edited).unwrap();
        let next = apply_reloadable(&running, &file);
        assert_eq!(next.shards[0].pool.size, 2);
        assert_eq!(next.shards[0].standbys[0].weight, 0);
        assert_eq!(next.replication.max_replica_lag_ms, 5);
        assert_eq!(next.cache.uncached_tables, ["t"]);
        let mut pending = differing(&next, &file);
        pending.sort();
        assert_eq!(
            pending,
            ["replication.health_check_interval_ms", "shards[1].port"]
        );
        assert!(pending.iter().all(|n| !is_reloadable(n)));
        let applied = differing(&running, &next);
        assert!(applied.iter().all(|n| is_reloadable(n)), "{applied:?}");
    }
}
