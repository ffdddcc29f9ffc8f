//! The proxy (two in-process shards) with a `tls:` section: psql with
//! sslmode=verify-full and tokio-postgres over rustls get the right KNN
//! rows over TLS, sslmode=disable still works unless `required`, and
//! mistakes in the certificate files stop the proxy at start naming the
//! field. And the proxy's own connections to a remote `pgvshard shard`
//! that requires TLS follow each shard's `sslmode`.

mod shard_support;
mod tls_support;

use pgvshard::proxy::config::ProxyConfig;
use pgvshard::proxy::{self, ProxyError, RunningProxy};
use tls_support::{conninfo, conninfo_says_tls13, fresh_dir, ok, psql, refused, Certs};
use tokio_postgres::config::SslMode;

fn yaml(dir: &std::path::Path, tls: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nshards:\n  - name: s0\n    kind: embedded\n  - name: s1\n    kind: embedded\n{tls}",
        dir.join("data").display()
    )
}

async fn start(name: &str, required: bool) -> (RunningProxy, Certs) {
    let dir = fresh_dir(name);
    let certs = Certs::generate(&dir, "proxy");
    let config = ProxyConfig::from_yaml(&yaml(&dir, &certs.yaml(required))).unwrap();
    (proxy::start(config).await.unwrap(), certs)
}

/// 200 rows `[i, 0, 0]`: the nearest to `[100.4, 0, 0]` are 100, 101, 99,
/// 102, 98, at distinct distances.
fn load_statements() -> Vec<String> {
    let values: Vec<String> = (1..=200).map(|i| format!("({i}, '[{i},0,0]')")).collect();
    vec![
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))".to_string(),
        format!("INSERT INTO items VALUES {}", values.join(", ")),
    ]
}

const KNN: &str = "SELECT id FROM items ORDER BY embedding <-> '[100.4,0,0]' LIMIT 5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knn_over_tls_with_psql_and_tokio_postgres() {
    let (proxy, certs) = start("knn", false).await;
    let port = proxy.addr.port();
    let verify = format!("sslmode=verify-full sslrootcert={}", certs.cert.display());
    let load = load_statements();
    let mut commands: Vec<&str> = vec!["\\conninfo"];
    commands.extend(load.iter().map(String::as_str));
    commands.extend(["SELECT count(*) FROM items", KNN]);
    let out = ok(&psql(&conninfo(port, &verify), &commands).await);
    assert!(conninfo_says_tls13(&out), "{out}");
    assert!(out.ends_with("200\n100\n101\n99\n102\n98\n"), "{out}");

    let out = ok(&psql(&conninfo(port, "sslmode=disable"), &["\\conninfo", KNN]).await);
    assert!(!conninfo_says_tls13(&out), "{out}");
    assert!(out.ends_with("100\n101\n99\n102\n98\n"), "{out}");

    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .hostaddr([127, 0, 0, 1].into())
        .port(port)
        .user("postgres")
        .dbname("db")
        .ssl_mode(SslMode::Require);
    let (client, conn) = config.connect(certs.connector()).await.unwrap();
    tokio::spawn(conn);
    let query = pgvector::Vector::from(vec![100.4, 0.0, 0.0]);
    let rows = client
        .query(
            "SELECT id, embedding FROM items ORDER BY embedding <-> $1 LIMIT $2",
            &[&query, &5i64],
        )
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [100, 101, 99, 102, 98]);
    let first: pgvector::Vector = rows[0].get(1);
    assert_eq!(first.to_vec(), [100.0, 0.0, 0.0]);
    proxy.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_refuses_sslmode_disable() {
    let (proxy, certs) = start("required", true).await;
    let port = proxy.addr.port();
    let err = refused(&psql(&conninfo(port, "sslmode=disable"), &["SELECT 1"]).await);
    assert!(
        err.contains("no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", database \"db\", no encryption"),
        "{err}"
    );
    let verify = format!("sslmode=verify-full sslrootcert={}", certs.cert.display());
    let out = ok(&psql(&conninfo(port, &verify), &["SELECT 1"]).await);
    assert_eq!(out, "1\n");
    // prefer tries TLS first, so it gets in too.
    let out = ok(&psql(&conninfo(port, "sslmode=prefer"), &["SELECT 2"]).await);
    assert_eq!(out, "2\n");
    proxy.shutdown().await.unwrap();
}

/// The field and problem of the error `proxy::start` gives for `tls`.
async fn start_error(dir: &std::path::Path, tls: &str) -> (String, String) {
    let config = ProxyConfig::from_yaml(&yaml(dir, tls)).unwrap();
    match proxy::start(config).await {
        Err(ProxyError::Config(e)) => (e.path, e.problem),
        Err(e) => panic!("not a configuration error: {e}"),
        Ok(_) => panic!("the proxy started with {tls}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_file_mistakes_name_the_field() {
    let dir = fresh_dir("mistakes");
    let certs = Certs::generate(&dir, "a");
    let other = Certs::generate(&dir, "b");
    let section = |cert: &std::path::Path, key: &std::path::Path| {
        Certs {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }
        .yaml(false)
    };
    let missing = dir.join("missing.crt");
    let (field, problem) = start_error(&dir, &section(&missing, &certs.key)).await;
    assert_eq!(field, "tls.cert_file");
    assert!(
        problem.contains("cannot read") && problem.contains("missing.crt"),
        "{problem}"
    );
    let (field, problem) = start_error(&dir, &section(&certs.key, &certs.key)).await;
    assert_eq!(field, "tls.cert_file");
    assert!(problem.contains("holds no certificate"), "{problem}");
    let (field, problem) = start_error(&dir, &section(&certs.cert, &certs.cert)).await;
    assert_eq!(field, "tls.key_file");
    assert!(problem.contains("holds no private key"), "{problem}");
    let (field, problem) = start_error(&dir, &section(&certs.cert, &other.key)).await;
    assert_eq!(field, "tls.key_file");
    assert!(
        problem.contains("is not the private key of the certificate"),
        "{problem}"
    );
    let e = ProxyConfig::from_yaml(&yaml(&dir, "tls:\n  cert: x\n")).unwrap_err();
    assert!(e.to_string().contains("unknown field `cert`"), "{e}");
}

/// A proxy in front of the one remote shard on `port` with `shard_tls`
/// (sslmode and sslrootcert lines), and a plain client of it.
async fn proxy_of(port: u16, shard_tls: &str) -> (RunningProxy, tokio_postgres::Client) {
    let yaml = format!(
        "listen: 127.0.0.1:0\nshards:\n  - name: remote\n    host: 127.0.0.1\n    port: {port}\n    dbname: db\n{shard_tls}"
    );
    let proxy = proxy::start(ProxyConfig::from_yaml(&yaml).unwrap())
        .await
        .unwrap();
    let plain = format!(
        "host=127.0.0.1 port={} user=postgres dbname=db",
        proxy.addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    (proxy, client)
}

/// The ids a simple-protocol query returns.
async fn ids(client: &tokio_postgres::Client, sql: &str) -> Result<Vec<String>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{} {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reaches_a_tls_only_shard_with_its_sslmode() {
    let dir = fresh_dir("remote");
    let certs = Certs::generate(&dir, "shard");
    let other = Certs::generate(&dir, "other");
    let config = dir.join("shard.yaml");
    std::fs::write(&config, certs.yaml(true)).unwrap();
    let shard = shard_support::Shard::start_with(
        &dir.join("shard-data"),
        &["--config", config.to_str().unwrap()],
    );
    let want = ["100", "101", "99", "102", "98"];
    let root = |c: &Certs| {
        format!(
            "    sslmode: verify-full\n    sslrootcert: {}\n",
            c.cert.display()
        )
    };
    let (proxy, client) = proxy_of(shard.port, "    sslmode: require\n").await;
    for sql in load_statements() {
        ids(&client, &sql).await.unwrap();
    }
    assert_eq!(ids(&client, KNN).await.unwrap(), want);
    proxy.shutdown().await.unwrap();
    for tls in ["    sslmode: prefer\n".to_string(), root(&certs)] {
        let (proxy, client) = proxy_of(shard.port, &tls).await;
        assert_eq!(ids(&client, KNN).await.unwrap(), want, "{tls}");
        proxy.shutdown().await.unwrap();
    }
    let (proxy, client) = proxy_of(shard.port, "").await;
    let err = ids(&client, KNN).await.unwrap_err();
    assert!(err.contains("no encryption"), "{err}");
    proxy.shutdown().await.unwrap();
    let (proxy, client) = proxy_of(shard.port, &root(&other)).await;
    let err = ids(&client, KNN).await.unwrap_err();
    assert!(
        err.starts_with("08006") && err.contains("TLS handshake failed"),
        "{err}"
    );
    proxy.shutdown().await.unwrap();
    shard.stop();
}
