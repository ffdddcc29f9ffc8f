//! pgbench with a custom KNN script (`-f`) against the embedded binary's
//! proxy, in each query mode (simple, extended, prepared): a short bounded
//! load of 4 clients on 2 threads, `\set` random ids bound into a point
//! lookup and a filtered KNN with a vector literal. Asserts pgbench's exit
//! status, every transaction processed and none failed.
//! (scripts/test.sh installs pgbench when missing.)

mod embedded_support;

use std::process::Command;

use embedded_support::{load_vectors, EmbeddedProxy};

const SCRIPT: &str = r"\set id random(0, 999)
\set lo random(0, 900)
SELECT embedding FROM items WHERE id = :id;
SELECT id, embedding <-> '[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]' AS d FROM items WHERE id >= :lo ORDER BY embedding <-> '[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]' LIMIT 10;
";

/// The number after `label` on a line of pgbench's report.
fn figure(report: &str, label: &str) -> Option<String> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_knn_script_in_every_query_mode() {
    let proxy = EmbeddedProxy::start("pgbench");
    let client = proxy.connect().await;
    load_vectors(&client, "items", 1000, 8).await;
    let script = proxy.dir.join("knn.sql");
    std::fs::write(&script, SCRIPT).unwrap();
    for mode in ["simple", "extended", "prepared"] {
        let out = Command::new("pgbench")
            .args(["-n", "-c", "4", "-j", "2", "-t", "50", "-M", mode])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(proxy.port.to_string())
            .arg("-f")
            .arg(&script)
            .arg("postgres")
            .output()
            .expect("pgbench is installed");
        let report = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "-M {mode}: {report}\n{errors}");
        assert_eq!(
            figure(&report, "number of transactions actually processed: ").as_deref(),
            Some("200/200"),
            "-M {mode}: {report}"
        );
        assert_eq!(
            figure(&report, "number of failed transactions: ").as_deref(),
            Some("0"),
            "-M {mode}: {report}"
        );
        assert_eq!(
            figure(&report, "query mode: ").as_deref(),
            Some(mode),
            "{report}"
        );
    }
}
