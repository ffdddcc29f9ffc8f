//! PgBouncer in front of the embedded binary's proxy, in session and in
//! transaction pool mode: tokio-postgres simple queries, a KNN answer equal
//! to the proxy's own, a transaction, and (session mode) prepared queries
//! with binary vectors. PgBouncer runs as a plain process with a generated
//! ini (trust auth, a userlist) in the test's directory.
//! (scripts/test.sh installs pgbouncer when missing.)

mod embedded_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use embedded_support::{connect_to, load_vectors, EmbeddedProxy};
use tokio_postgres::SimpleQueryMessage;

/// A running PgBouncer; killed when dropped.
struct Bouncer {
    port: u16,
    child: Child,
}

impl Bouncer {
    fn start(dir: &Path, mode: &str, upstream: u16) -> Bouncer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let users = dir.join(format!("users-{mode}.txt"));
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        let ini = dir.join(format!("pgbouncer-{mode}.ini"));
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={upstream}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = {mode}\nignore_startup_parameters = extra_float_digits\n",
                users.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("pgbouncer-{mode}.log"))).unwrap();
        let mut cmd = Command::new("pgbouncer");
        // PgBouncer refuses to run as root: it reads its ini, then switches.
        if runs_as_root() {
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pgbouncer is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bouncer { port, child }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn runs_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The first column of every row of a simple query.
async fn column(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect()
}

const KNN: &str =
    "SELECT id FROM items ORDER BY embedding <-> '[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]' LIMIT 10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_session_and_transaction_modes() {
    let proxy = EmbeddedProxy::start("pgbouncer");
    if runs_as_root() {
        // The switched-to user reads the ini and userlist.
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&proxy.dir)
            .status()
            .ok();
    }
    let direct = proxy.connect().await;
    load_vectors(&direct, "items", 500, 8).await;
    let want = column(&direct, KNN).await;
    assert_eq!(want.len(), 10);
    for (round, (mode, base)) in [("session", 10_000), ("transaction", 20_000)]
        .into_iter()
        .enumerate()
    {
        let bouncer = Bouncer::start(&proxy.dir, mode, proxy.port);
        let client = connect_to(bouncer.port).await;
        let rows = |added: usize| vec![(500 + added).to_string()];
        assert_eq!(
            column(&client, "SELECT count(*) FROM items").await,
            rows(round)
        );
        assert_eq!(column(&client, KNN).await, want, "{mode}");
        client
            .batch_execute(&format!(
                "BEGIN; INSERT INTO items VALUES ({base}, '[9,9,9,9,9,9,9,9]'); COMMIT"
            ))
            .await
            .unwrap();
        assert_eq!(
            column(&client, &format!("SELECT id FROM items WHERE id = {base}")).await,
            [base.to_string()],
            "{mode}"
        );
        let rolled_back = base + 1;
        client
            .batch_execute(&format!(
                "BEGIN; INSERT INTO items VALUES ({rolled_back}, '[9,9,9,9,9,9,9,9]'); ROLLBACK"
            ))
            .await
            .unwrap();
        assert!(column(
            &client,
            &format!("SELECT id FROM items WHERE id = {rolled_back}")
        )
        .await
        .is_empty());
        if mode == "session" {
            let q = pgvector::Vector::from(vec![0.5f32; 8]);
            let rows = client
                .query(
                    "SELECT id, embedding FROM items ORDER BY embedding <-> $1 LIMIT 10",
                    &[&q],
                )
                .await
                .unwrap();
            let ids: Vec<String> = rows
                .iter()
                .map(|r| r.get::<_, i32>(0).to_string())
                .collect();
            assert_eq!(ids, want);
            let v: pgvector::Vector = rows[0].get(1);
            assert_eq!(v.as_slice().len(), 8);
        }
        // Another client of the same pool sees the committed row.
        let other = connect_to(bouncer.port).await;
        assert_eq!(
            column(&other, "SELECT count(*) FROM items").await,
            rows(round + 1)
        );
    }
}
