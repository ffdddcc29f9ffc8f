//! psycopg 3 and the pgvector Python package (`register_vector`) against
//! a real shard, in text and binary: runs tests/shard_psycopg.py
//! (scripts/test.sh installs psycopg and pgvector when missing).

mod shard_support;

use shard_support::{fresh_dir, Shard};
use std::process::Command;

#[test]
fn psycopg_with_register_vector_text_and_binary() {
    let dir = fresh_dir("psycopg");
    let shard = Shard::start(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shard_psycopg.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(shard.port.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "psycopg ok\n");
    shard.stop();
}
