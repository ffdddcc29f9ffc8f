//! Limits and hardening (issue 10): connection limits, the startup and
//! authentication timeout, protocol versions, wide Binds, type modifiers,
//! key spellings and smaller PostgreSQL behaviours, each checked on real
//! PostgreSQL (the control), a `pgvshard shard` process and the proxy.

mod limits_support;
mod pg_support;
mod shard_support;

use limits_support::{error_code, first_column, wide_bind, Raw};
use pg_support::PgServer;
use shard_support::{fresh_dir, Shard};

/// `n` empty shard processes for test `name`.
fn shards(name: &str, n: usize) -> Vec<Shard> {
    (0..n)
        .map(|i| Shard::start(&fresh_dir(&format!("limits-{name}-{i}"))))
        .collect()
}

/// A proxy over shard servers on `ports` (database `db`), with extra YAML.
async fn proxy(ports: &[u16], db: &str, extra: &str) -> pgvshard::proxy::RunningProxy {
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, port) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    dbname: {db}\n    pool:\n      connect_timeout_ms: 1000\n"
        ));
    }
    yaml.push_str(extra);
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Defect 5: PostgreSQL reads a Bind's counts as unsigned 16-bit words,
/// so 65,535 parameters work; so must they on a shard and through the
/// proxy (which binds them again on a shard).
#[tokio::test]
async fn bind_takes_65535_parameters_as_postgres_does() {
    let pg = PgServer::start().await;
    let shards = shards("bind", 1);
    let proxy = proxy(&[shards[0].port], "db", "").await;
    let targets = [
        ("postgres", pg.port, "postgres"),
        ("shard", shards[0].port, "db"),
        ("proxy", proxy.addr.port(), "db"),
    ];
    for (who, port, db) in targets {
        let mut s = Raw::session(port, db).await;
        s.send(&wide_bind("SELECT $65535 + $40000", 65_535)).await;
        let msgs = s.until_ready().await;
        assert_eq!(
            first_column(&msgs),
            vec!["105535"],
            "{who}: {:?}",
            error_code(&msgs)
        );
    }
}
