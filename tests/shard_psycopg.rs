//! psycopg 3 and the pgvector Python package (`register_vector`) against
//! a real shard, in text and binary: runs tests/shard_psycopg.py
//! (scripts/test.sh installs psycopg and pgvector when missing).

mod python_support;
mod shard_support;

use shard_support::{fresh_dir, Shard};

#[test]
fn psycopg_with_register_vector_text_and_binary() {
    let dir = fresh_dir("psycopg");
    let shard = Shard::start(&dir);
    python_support::run_script("shard_psycopg.py", shard.port, "psycopg ok\n");
    shard.stop();
}
