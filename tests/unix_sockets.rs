//! Unix-domain sockets as PostgreSQL and libpq use them: a shard listens
//! on `<dir>/.s.PGSQL.<port>` beside TCP, and psql and tokio-postgres reach
//! it with the directory as their host exactly as they reach real
//! PostgreSQL's `-k` socket (the control, in the same test); a proxy
//! reaches shards of both kinds through their sockets, on the data path
//! and the control plane, and takes clients on a socket of its own.

mod pg_support;
mod shard_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use pg_support::{text_rows, PgServer, TWO_PHASE};
use shard_support::{fresh_dir, Shard};

/// psql to the socket in `dir` (unaligned, tuples only): stdout, or
/// stderr on failure.
fn psql_at(dir: &Path, port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
        .args(["-d", "postgres", "-p", &port.to_string(), "-h"])
        .arg(dir)
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A tokio-postgres client of the socket in `dir`.
async fn connect_at(dir: &Path, port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::Config::new()
        .host_path(dir)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", dir.display()));
    tokio::spawn(conn);
    client
}

/// A fresh socket directory beside a test's data directory.
fn socket_dir(name: &str) -> PathBuf {
    let dir = fresh_dir(&format!("{name}-sock"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A shard of test `name` listening on a socket too: the shard and its
/// socket directory.
fn socket_shard(name: &str) -> (Shard, PathBuf) {
    let sock = socket_dir(name);
    let shard = Shard::start_with(
        &fresh_dir(name),
        &["--unix-socket-dir", sock.to_str().unwrap()],
    );
    (shard, sock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reach_a_shard_socket_as_a_postgresql_socket() {
    let (shard, sock) = socket_shard("unix-clients");
    let pg = PgServer::start().await;
    // Over a socket there is no server address or port (NULL), where TCP
    // has them.
    let sql = "SELECT 1 AS one, inet_server_port() IS NULL AS no_port";
    let (shard_port, pg_port, pg_dir) = (shard.port, pg.port, pg.socket_dir().to_path_buf());
    let (ours, theirs) = tokio::task::spawn_blocking(move || {
        (
            psql_at(&sock, shard_port, sql).map(|o| (o, sock)),
            psql_at(&pg_dir, pg_port, sql),
        )
    })
    .await
    .unwrap();
    let ((ours, sock), theirs) = (ours.unwrap(), theirs.unwrap());
    assert_eq!(ours, theirs);
    assert_eq!(ours, "1|t\n");
    assert_eq!(shard.psql(sql).unwrap(), "1|f\n", "TCP has a port");

    for (dir, port) in [
        (&sock, shard.port),
        (&pg.socket_dir().to_path_buf(), pg.port),
    ] {
        let client = connect_at(dir, port).await;
        let rows = text_rows(&client, "SELECT inet_server_port() IS NULL, 2 + 2")
            .await
            .unwrap();
        assert_eq!(rows, [[Some("t".to_string()), Some("4".to_string())]]);
    }

    // The socket goes with a clean stop; a killed shard's is replaced at
    // the next start on the same port.
    let file = sock.join(format!(".s.PGSQL.{}", shard.port));
    assert!(file.exists());
    let (dir, port) = (shard.dir.clone(), shard.port);
    shard.stop();
    assert!(!file.exists(), "{} left behind", file.display());
    let flag = ["--unix-socket-dir", sock.to_str().unwrap()];
    let again = Shard::start_on(&dir, port, &flag);
    again.kill9();
    assert!(file.exists());
    let again = Shard::start_on(&dir, port, &flag);
    assert_eq!(psql_at(&sock, port, "SELECT 7").unwrap(), "7\n");
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_reaches_both_kinds_of_shard_through_their_sockets() {
    let (shard, shard_sock) = socket_shard("unix-proxy");
    let (pg, reference) = tokio::join!(PgServer::start_with(TWO_PHASE), PgServer::start());
    let proxy_sock = socket_dir("unix-proxy-own");
    let yaml = format!(
        "listen: 127.0.0.1:0\nunix_socket_dir: {}\nshards:\n  \
         - name: s0\n    host: {}\n    port: {}\n  \
         - name: s1\n    host: {}\n    port: {}\n",
        proxy_sock.display(),
        shard_sock.display(),
        shard.port,
        pg.socket_dir().display(),
        pg.port
    );
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).unwrap();
    let proxy = pgvshard::proxy::start(config).await.expect("proxy starts");
    let port = proxy.addr.port();

    // A client on the proxy's own socket.
    let client = connect_at(&proxy_sock, port).await;
    let schema = "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))";
    let rows: Vec<String> = (0..40)
        .map(|i| format!("({i}, '[{},{},{}]')", i % 7, i % 5, i % 3))
        .collect();
    let insert = format!("INSERT INTO items VALUES {}", rows.join(","));
    let r = reference.connect().await.unwrap();
    for sql in [schema, &insert] {
        client.batch_execute(sql).await.unwrap();
        r.batch_execute(sql).await.unwrap();
    }
    let knn = "SELECT id, embedding <-> '[1,2,1]' AS d FROM items ORDER BY d, id LIMIT 6";
    assert_eq!(
        text_rows(&client, knn).await.unwrap(),
        text_rows(&r, knn).await.unwrap()
    );
    // A statement larger than a socket's buffer waits for room on the way
    // to the shard (the proxy registers the socket for writes only then).
    let big = format!("SELECT length('{}')", "x".repeat(1 << 20));
    assert_eq!(
        text_rows(&client, &big).await.unwrap(),
        text_rows(&r, &big).await.unwrap()
    );
    // Both shards hold rows, each reached through its socket; the row
    // counts come over the control plane.
    let shown = text_rows(&client, "SHOW pgvshard.shards").await.unwrap();
    for (row, (dir, port)) in shown.iter().zip([
        (&shard_sock, shard.port),
        (&pg.socket_dir().to_path_buf(), pg.port),
    ]) {
        let address = format!("postgres {}/.s.PGSQL.{port}", dir.display());
        assert!(
            row.contains(&Some(address.clone())),
            "{row:?} lacks {address}"
        );
    }
    let counts = [
        shard.psql("SELECT count(*) FROM items").unwrap(),
        psql_at(pg.socket_dir(), pg.port, "SELECT count(*) FROM items").unwrap(),
    ];
    assert!(counts.iter().all(|c| c.trim() != "0"), "{counts:?}");

    // psql through the proxy's socket prints what it prints on PostgreSQL's.
    let (proxy_sock2, ref_dir, ref_port) = (
        proxy_sock.clone(),
        reference.socket_dir().to_path_buf(),
        reference.port,
    );
    let (ours, theirs) = tokio::task::spawn_blocking(move || {
        (
            psql_at(&proxy_sock2, port, knn),
            psql_at(&ref_dir, ref_port, knn),
        )
    })
    .await
    .unwrap();
    assert_eq!(ours.unwrap(), theirs.unwrap());
    let socket_file = proxy_sock.join(format!(".s.PGSQL.{port}"));
    drop(client);
    proxy.shutdown().await.unwrap();
    assert!(
        !socket_file.exists(),
        "the proxy's socket is removed at shutdown"
    );

    // The control plane reaches a socket too: a real PostgreSQL shard
    // without two-phase commit is refused at start, as over TCP.
    let plain = PgServer::start().await;
    let yaml = format!(
        "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    host: {}\n    port: {}\n  \
         - name: s1\n    host: {}\n    port: {}\n",
        shard_sock.display(),
        shard.port,
        plain.socket_dir().display(),
        plain.port
    );
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).unwrap();
    let refused = pgvshard::proxy::start(config).await.err().expect("refused");
    assert!(
        refused
            .to_string()
            .contains("max_prepared_transactions = 0"),
        "{refused}"
    );
    shard.stop();
}
