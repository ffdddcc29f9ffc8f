//! The binary with no subcommand (the embedded default: proxy + four
//! in-process shards) started in a fresh directory on free ports: psql
//! runs sql/quickstart.sql through it, a corpus of exact-scan and
//! aggregate queries (combined across shards) returns what one
//! `pgvshard shard` holding every row returns, and after a clean restart
//! the data is still there.

mod shard_support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shard_support::{fresh_dir, Shard};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pgvshard` with no subcommand, in `dir`, with its data under `dir/data`.
struct Embedded {
    port: u16,
    child: Child,
}

impl Embedded {
    fn start(dir: &Path, port: u16) -> Embedded {
        let log = std::fs::File::create(dir.join("embedded.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pgvshard"))
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgvshard did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Embedded { port, child }
    }

    /// SIGINT (Ctrl-C), a clean exit, and what it printed.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "exit {}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a script through psql: (stdout, stderr).
    fn psql_file(&self, file: &Path) -> (String, String) {
        let out = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-f"])
            .arg(file)
            .output()
            .expect("psql is installed");
        assert!(out.status.success());
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a script (COPY data inline) through psql, stopping at the
    /// first error: Ok(stdout) or Err(stderr).
    fn psql_script(&self, script: &str) -> Result<String, String> {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql is installed");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(text(&out.stderr))
        }
    }

    async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("anyone")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Rows = Vec<Vec<Option<String>>>;

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Rows {
    let mut out = Vec::new();
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            out.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    out
}

const SCHEMA: &str =
    "CREATE TABLE docs (id bigint PRIMARY KEY, cat int, score float8, embedding vector(4))";

fn inserts() -> Vec<String> {
    let mut x = 7u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f64 / 100.0
    };
    (0..4)
        .map(|chunk| {
            let values: Vec<String> = (0..100)
                .map(|i| {
                    let id = chunk * 100 + i;
                    let v: Vec<String> = (0..4).map(|_| format!("{}", next())).collect();
                    format!("({id}, {}, {}, '[{}]')", id % 5, next(), v.join(","))
                })
                .collect();
            format!("INSERT INTO docs VALUES {}", values.join(", "))
        })
        .collect()
}

fn corpus() -> Vec<String> {
    let q = "'[1.5,2,0.5,3]'";
    let mut c: Vec<String> = ["<->", "<#>", "<=>", "<+>"]
        .iter()
        .flat_map(|op| {
            [
                format!("SELECT id, embedding {op} {q} AS d FROM docs ORDER BY embedding {op} {q} LIMIT 10"),
                format!("SELECT id, cat FROM docs WHERE cat = 2 ORDER BY embedding {op} {q} LIMIT 7"),
                format!("SELECT id FROM docs ORDER BY embedding {op} {q} LIMIT 5 OFFSET 12"),
            ]
        })
        .collect();
    c.extend(
        [
            "SELECT id, score FROM docs ORDER BY score DESC, id LIMIT 15",
            "SELECT id, cat FROM docs WHERE id IN (3, 77, 150, 399) ORDER BY id",
            "SELECT * FROM docs WHERE id = 42",
            // Float sums depend on the order of addition (last bits differ
            // between one server and four partial sums), so sum/avg here
            // are over integers; min/max are exact for floats too.
            "SELECT count(*) FROM docs",
            "SELECT count(*), sum(cat), min(score), max(score), avg(cat) FROM docs WHERE id < 250",
            "SELECT cat, count(*), count(score), sum(id), avg(id), min(score), max(score) FROM docs GROUP BY cat ORDER BY cat",
            "SELECT cat, count(*) AS n, sum(id) FROM docs WHERE score > 5 GROUP BY cat ORDER BY n DESC, cat LIMIT 3",
            "SELECT cat, avg(id) FROM docs GROUP BY cat ORDER BY 2 DESC LIMIT 2 OFFSET 1",
            "SELECT avg(embedding), count(*) FROM docs WHERE id < 0",
        ]
        .map(String::from),
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_arguments_runs_four_shards_that_answer_like_one_and_keep_data() {
    let dir = fresh_dir("embedded-default");
    let port = free_port();
    let proxy = Embedded::start(&dir, port);
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/quickstart.sql");
    let (out, errors) = proxy.psql_file(&quickstart);
    assert_eq!(errors, "", "{errors}");
    assert!(out.contains("        1 |     2 | [1,1.5,2]"), "{out}");
    assert!(out.contains("hnsw (embedding vector_l2_ops)"), "{out}");
    assert!(out.contains("INSERT 0 3"), "{out}");
    assert!(out.contains("  1 |                 0"), "{out}");
    assert!(
        out.contains("pgvshard route: KNN merge on shard0, shard1, shard2, shard3"),
        "{out}"
    );

    let reference_dir = fresh_dir("embedded-reference");
    let reference = Shard::start(&reference_dir);
    let (one, many) = (reference.connect().await, proxy.connect().await);
    for sql in std::iter::once(SCHEMA.to_string()).chain(inserts()) {
        rows(&one, &sql).await;
        rows(&many, &sql).await;
    }
    for sql in corpus() {
        let (want, got) = (rows(&one, &sql).await, rows(&many, &sql).await);
        assert!(!want.is_empty(), "{sql}");
        assert_eq!(got, want, "{sql}");
    }
    for shard in 0..4 {
        let n = std::fs::read_dir(dir.join(format!("pgvshard-data/shard{shard}")))
            .unwrap()
            .count();
        assert!(n > 0, "shard{shard} has a data directory");
    }
    assert_vector_avgs_close(&one, &many).await;
    drop(many);
    let printed = proxy.stop();
    assert!(
        printed.contains(&format!("psql -h 127.0.0.1 -p {port} -U postgres")),
        "{printed}"
    );
    assert!(printed.contains("development default"), "{printed}");

    let again = Embedded::start(&dir, port);
    let client = again.connect().await;
    let ids = rows(&client, "SELECT id FROM docs ORDER BY id").await;
    assert_eq!(ids.len(), 400);
    for sql in corpus() {
        assert_eq!(rows(&client, &sql).await, rows(&one, &sql).await, "{sql}");
    }
    drop(client);
    again.stop();
}

/// avg(vector) across shards is within two float4 ulps of one server's
/// (shards' partial sums add in float4; pgvector's avg in float8); sums,
/// added in float4 in another order, within 16 ulps (80 rows a group).
async fn assert_vector_avgs_close(one: &tokio_postgres::Client, many: &tokio_postgres::Client) {
    let sql = "SELECT cat, avg(embedding), sum(embedding) FROM docs GROUP BY cat ORDER BY cat";
    let (want, got) = (rows(one, sql).await, rows(many, sql).await);
    assert_eq!(got.len(), 5);
    let parse = |v: &Option<String>| -> Vec<f32> {
        let t = v.as_deref().unwrap().trim_matches(|c| c == '[' || c == ']');
        t.split(',').map(|x| x.parse().unwrap()).collect()
    };
    let mut differing = 0;
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0], w[0]);
        for (column, ulps) in [(1, 2.0), (2, 16.0)] {
            for (a, b) in parse(&g[column]).iter().zip(parse(&w[column])) {
                let close = (a - b).abs() <= ulps * f32::EPSILON * b.abs();
                assert!(close, "{sql}: {g:?} vs {w:?}");
                differing += usize::from(column == 1 && *a != b);
            }
        }
    }
    // Most avg elements are equal to one server's (4 of 20 differ here).
    assert!(differing < 10, "{differing} of 20 avg elements differ");
}

/// The rows of [`inserts`] as COPY text lines and as CSV lines.
fn copy_lines() -> (String, String) {
    let (mut text, mut csv) = (String::new(), String::from("id,cat,score,embedding\n"));
    for insert in inserts() {
        let values = insert.trim_start_matches("INSERT INTO docs VALUES (");
        for row in values.trim_end_matches(')').split("), (") {
            let (head, vector) = row.split_once(", '").unwrap();
            let vector = vector.trim_end_matches('\'');
            let f: Vec<&str> = head.split(", ").collect();
            text.push_str(&format!("{}\t{}\t{}\t{vector}\n", f[0], f[1], f[2]));
            csv.push_str(&format!("{},{},{},\"{vector}\"\n", f[0], f[1], f[2]));
        }
    }
    (text, csv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_through_four_shards_equals_one_shard() {
    let dir = fresh_dir("embedded-copy");
    let proxy = Embedded::start(&dir, free_port());
    let reference = Shard::start(&fresh_dir("embedded-copy-reference"));
    let (text, csv) = copy_lines();
    // The first half inline as text, the second half as a CSV file with a
    // header, loaded by psql's \copy.
    let first: String = text.lines().take(200).flat_map(|l| [l, "\n"]).collect();
    let second_csv: String = csv
        .lines()
        .take(1)
        .chain(csv.lines().skip(201))
        .flat_map(|l| [l, "\n"])
        .collect();
    let csv_path = dir.join("second.csv");
    std::fs::write(&csv_path, &second_csv).unwrap();
    let script = format!(
        "{SCHEMA};\nCOPY docs FROM STDIN;\n{first}\\.\n\\copy docs FROM '{}' WITH (FORMAT csv, HEADER)\n",
        csv_path.display()
    );
    proxy.psql_script(&script).unwrap();
    reference.psql(&script).unwrap();
    let (one, many) = (reference.connect().await, proxy.connect().await);
    for sql in corpus() {
        assert_eq!(rows(&many, &sql).await, rows(&one, &sql).await, "{sql}");
    }
    // Every shard holds part of the rows (SHOW pgvshard.shards counts them).
    let shards = rows(&many, "SHOW pgvshard.shards").await;
    let per_shard: Vec<i64> = shards
        .iter()
        .map(|r| r[4].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(per_shard.iter().sum::<i64>(), 400, "{shards:?}");
    assert!(per_shard.iter().all(|&n| n > 50), "{shards:?}");
    // A malformed line (a vector missing its bracket) applies nothing, not
    // even the good line before it that went to another shard.
    let slots = pgvshard::proxy::slots::SlotMap::even(4);
    let other = (1001..)
        .find(|id: &i32| slots.shard_of(&id.to_string()) != slots.shard_of("1000"))
        .unwrap();
    let bad = format!("COPY docs FROM STDIN;\n1000\t1\t1\t[1,2,3,4]\n{other}\t1\t1\t[1,2\n\\.\n");
    let err = proxy.psql_script(&bad).unwrap_err();
    assert!(err.contains("ERROR"), "{err}");
    assert_eq!(
        rows(&many, "SELECT count(*) FROM docs").await[0][0].as_deref(),
        Some("400")
    );
    // COPY TO: every shard's lines once (sorted: shards answer in turn).
    let out = proxy
        .psql_script("COPY docs TO STDOUT WITH (FORMAT csv, HEADER)")
        .unwrap();
    let want = reference
        .psql("COPY docs TO STDOUT WITH (FORMAT csv, HEADER)")
        .unwrap();
    let sorted = |s: &str| {
        let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
        lines[1..].sort();
        lines
    };
    assert_eq!(sorted(&out), sorted(&want));
    assert_eq!(out.lines().count(), 401);
    drop(many);
    proxy.stop();
}
