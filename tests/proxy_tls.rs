//! The proxy (two in-process shards) with a `tls:` section: psql with
//! sslmode=verify-full and tokio-postgres over rustls get the right KNN
//! rows over TLS, sslmode=disable still works unless `required`, and
//! mistakes in the certificate files stop the proxy at start naming the
//! field.

mod tls_support;

use pgvshard::proxy::config::ProxyConfig;
use pgvshard::proxy::{self, ProxyError, RunningProxy};
use tls_support::{conninfo, fresh_dir, ok, psql, refused, Certs};
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
    assert!(out.contains("SSL connection (protocol: TLSv1.3"), "{out}");
    assert!(out.ends_with("200\n100\n101\n99\n102\n98\n"), "{out}");

    let out = ok(&psql(&conninfo(port, "sslmode=disable"), &["\\conninfo", KNN]).await);
    assert!(!out.contains("SSL"), "{out}");
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
