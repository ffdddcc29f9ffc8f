//! A real `pgvshard shard` with its /metrics endpoint (address from the
//! YAML config, then from `--metrics-listen`, port 0 and read back from
//! the log) after a known workload through psql: rows and index entries
//! per table, query latency counts by plan, WAL bytes growing, fsyncs and
//! checkpoints timed, recovery reported after restarts.

mod shard_support;

use std::time::{Duration, Instant};

use shard_support::{fresh_dir, metrics_port, scrape, value, Shard};

const N: usize = 200;
const K: usize = 5;
const M: usize = 3;

fn vector(i: usize) -> String {
    format!("[{},{},{},{}]", i % 7, i % 11, i % 13, i % 5)
}

fn workload_sql() -> String {
    let mut sql = String::from(
        "CREATE TABLE items (id int PRIMARY KEY, embedding vector(4));\nINSERT INTO items VALUES ",
    );
    let rows: Vec<String> = (0..N).map(|i| format!("({i}, '{}')", vector(i))).collect();
    sql.push_str(&rows.join(", "));
    sql.push_str(";\nCREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops);\n");
    for i in 0..K {
        sql.push_str(&format!(
            "SELECT id FROM items ORDER BY embedding <-> '{}' LIMIT 3;\n",
            vector(i)
        ));
    }
    // No index serves cosine distance here: exact scans.
    for i in 0..M {
        sql.push_str(&format!(
            "SELECT id FROM items ORDER BY embedding <=> '{}' LIMIT 3;\n",
            vector(i + 1)
        ));
    }
    sql.push_str("SELECT count(*) FROM items;\n");
    sql
}

/// Scrapes until `ready` holds for the text (at most a few seconds).
fn scrape_until(port: u16, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port);
        if ready(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shard_metrics_follow_a_known_workload_and_restarts() {
    let dir = fresh_dir("metrics-shard");
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "metrics_listen: \"127.0.0.1:0\"\ncheckpoint_interval_secs: 1\n",
    )
    .unwrap();
    let shard = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let port = metrics_port(&dir, 1);
    let before = scrape(port);
    assert_eq!(
        value(&before, "pgvshard_shard_wal_written_bytes_total", &[]),
        0.0
    );
    assert_eq!(
        value(&before, "pgvshard_shard_index_builds_in_progress", &[]),
        0.0
    );

    shard.psql(&workload_sql()).unwrap();
    // The checkpointer runs within a second of the writes.
    let m = scrape_until(port, |t| {
        t.contains("pgvshard_shard_checkpoint_duration_seconds_count 1")
            || t.contains("pgvshard_shard_checkpoint_duration_seconds_count 2")
    });
    let table = ["table=\"items\""];
    assert_eq!(value(&m, "pgvshard_shard_rows", &table), N as f64);
    assert_eq!(
        value(
            &m,
            "pgvshard_shard_index_entries",
            &["table=\"items\"", "index=\"items_hnsw\""]
        ),
        N as f64
    );
    let count = |plan: &str| {
        value(
            &m,
            "pgvshard_shard_query_duration_seconds_count",
            &[&format!("plan=\"{plan}\"")],
        )
    };
    assert_eq!(count("ann"), K as f64);
    assert_eq!(count("exact"), M as f64);
    assert_eq!(count("scan"), 1.0);
    let wal = value(&m, "pgvshard_shard_wal_written_bytes_total", &[]);
    assert!(wal > (N * 16) as f64, "{wal} WAL bytes for {N} vectors");
    assert!(value(&m, "pgvshard_shard_wal_fsync_duration_seconds_count", &[]) >= 3.0);
    // The WAL directory's file system, as df(1) sees it.
    let df = |field: &str| -> f64 {
        let out = std::process::Command::new("df")
            .args(["-B1", &format!("--output={field}")])
            .arg(dir.join("wal"))
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(
        value(&m, "pgvshard_shard_wal_fs_size_bytes", &[]),
        df("size")
    );
    let avail = value(&m, "pgvshard_shard_wal_fs_avail_bytes", &[]);
    // Other processes write to the same disk between the two readings.
    assert!((avail - df("avail")).abs() < (256 << 20) as f64, "{avail}");
    assert!(value(&m, "pgvshard_shard_checkpoint_duration_seconds_count", &[]) >= 1.0);
    assert!(value(&m, "pgvshard_shard_checkpoint_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(
        value(&m, "pgvshard_shard_index_builds_in_progress", &[]),
        0.0
    );
    assert!(!m.contains("[1,"), "no vectors in the metrics");
    assert!(
        !m.contains("shard=\""),
        "a standalone shard has no shard label"
    );

    shard
        .psql("INSERT INTO items VALUES (1000, '[1,1,1,1]');")
        .unwrap();
    let grown = value(&scrape(port), "pgvshard_shard_wal_written_bytes_total", &[]);
    assert!(grown > wal, "WAL bytes grow: {wal} then {grown}");
    shard.stop();

    // Clean restart (final checkpoint): nothing to replay. The address
    // now comes from the command line.
    let shard = Shard::start_with(&dir, &["--metrics-listen", "127.0.0.1:0"]);
    let port = metrics_port(&dir, 2);
    let m = scrape(port);
    assert_eq!(value(&m, "pgvshard_shard_rows", &table), (N + 1) as f64);
    assert_eq!(
        value(
            &m,
            "pgvshard_shard_index_entries",
            &["index=\"items_hnsw\""]
        ),
        (N + 1) as f64
    );
    assert!(value(&m, "pgvshard_shard_recovery_duration_seconds", &[]) > 0.0);
    assert_eq!(
        value(&m, "pgvshard_shard_recovery_replayed_transactions", &[]),
        0.0
    );
    assert_eq!(
        value(&m, "pgvshard_shard_wal_written_bytes_total", &[]),
        0.0
    );
    for i in 0..3 {
        shard
            .psql(&format!(
                "INSERT INTO items VALUES ({}, '[2,2,2,2]');",
                2000 + i
            ))
            .unwrap();
    }
    shard.kill9();

    // After a crash the three commits are replayed from the WAL.
    let shard = Shard::start_with(&dir, &["--metrics-listen", "127.0.0.1:0"]);
    let m = scrape(metrics_port(&dir, 3));
    assert_eq!(
        value(&m, "pgvshard_shard_recovery_replayed_transactions", &[]),
        3.0
    );
    assert_eq!(value(&m, "pgvshard_shard_rows", &table), (N + 4) as f64);
    shard.stop();
}

/// Waits until `SHOW pgvshard.recall` has `samples` for `table`; its row.
fn recall_row(shard: &Shard, table: &str, samples: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = shard
            .psql_with(&["-At", "-F", ","], "SHOW pgvshard.recall")
            .unwrap();
        let row: Option<Vec<String>> = out
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
            .find(|r| r[0] == table);
        if let Some(r) = row.filter(|r| r[2].parse::<usize>().unwrap() >= samples) {
            return r;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pseudo-random vector of 16 dimensions.
fn random_vector(seed: usize) -> String {
    let mut x = (seed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let parts: Vec<String> = (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:.3}", (x % 2000) as f64 / 1000.0 - 1.0)
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// The live recall monitor (issue 13): with every ANN read sampled, an
/// exact scan in the background finds recall near 1 with a well-built
/// index and a wide ef_search, and far lower at `hnsw.ef_search = 1`, per table and index,
/// in `SHOW pgvshard.recall` and `pgvshard_recall_at_k`; `enable_indexscan
/// = off` (what the exact run uses) gives the exact answer.
#[test]
fn the_recall_monitor_measures_ann_reads_against_exact_scans() {
    let dir = fresh_dir("metrics-recall");
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "metrics_listen: \"127.0.0.1:0\"\nrecall_sample_rate: 1.0\n",
    )
    .unwrap();
    let shard = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let port = metrics_port(&dir, 1);
    let mut setup = String::new();
    for (table, m, ef) in [("good", 16, 64), ("low", 4, 8)] {
        let rows: Vec<String> = (0..1500)
            .map(|i| format!("({i}, '{}')", random_vector(i)))
            .collect();
        setup.push_str(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v vector(16));\n\
             INSERT INTO {table} VALUES {};\n\
             CREATE INDEX {table}_hnsw ON {table} USING hnsw (v vector_l2_ops) WITH (m = {m}, ef_construction = {ef});\n",
            rows.join(", ")
        ));
    }
    shard.psql(&setup).unwrap();
    let knn = |table: &str, i: usize| {
        format!(
            "SELECT id FROM {table} ORDER BY v <-> '{}' LIMIT 10",
            random_vector(10_000 + i)
        )
    };
    for i in 0..5 {
        shard
            .psql(&format!("SET hnsw.ef_search = 200; {}", knn("good", i)))
            .unwrap();
        recall_row(&shard, "good", i + 1);
        shard
            .psql(&format!("SET hnsw.ef_search = 1; {}", knn("low", i)))
            .unwrap();
        recall_row(&shard, "low", i + 1);
    }
    let good = recall_row(&shard, "good", 5);
    let low = recall_row(&shard, "low", 5);
    assert_eq!(good[1], "good_hnsw");
    let mean = |r: &[String]| r[3].parse::<f64>().unwrap();
    assert!(mean(&good) >= 0.97, "{good:?}");
    assert!(mean(&low) <= 0.3, "{low:?}");
    let m = scrape(port);
    let count = |table: &str| {
        value(
            &m,
            "pgvshard_recall_at_k_count",
            &[
                &format!("table=\"{table}\""),
                &format!("index=\"{table}_hnsw\""),
            ],
        )
    };
    assert_eq!((count("good"), count("low")), (5.0, 5.0));
    // The CPU split: the index searches (the engine) and the exact runs.
    for family in [
        "pgvshard_shard_ann_search_cpu_seconds_total",
        "pgvshard_recall_monitor_cpu_seconds_total",
    ] {
        assert!(value(&m, family, &[]) > 0.0, "{family} in\n{m}");
    }
    // The exact run's setting, as PostgreSQL plans it: a sequential scan.
    let plan = shard
        .psql(&format!(
            "SET enable_indexscan = off; EXPLAIN {}",
            knn("good", 0)
        ))
        .unwrap();
    assert!(!plan.contains("Index Scan"), "{plan}");
}
