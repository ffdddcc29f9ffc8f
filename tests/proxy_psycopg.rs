//! psycopg 3 with the pgvector package's `register_vector` through the
//! embedded binary's proxy: runs tests/proxy_psycopg.py (scripts/test.sh
//! installs psycopg, pgvector and numpy when missing).

mod embedded_support;
mod python_support;

use embedded_support::EmbeddedProxy;

#[test]
fn psycopg_with_register_vector_through_the_proxy() {
    let proxy = EmbeddedProxy::start("psycopg");
    let stderr = python_support::run_script(
        "proxy_psycopg.py",
        proxy.port,
        "psycopg through the proxy ok\n",
    );
    // psycopg reports what failed in its own housekeeping (such as the
    // DEALLOCATE ALL after a rolled-back transaction) only on stderr.
    assert!(!stderr.contains("Error ignored"), "{stderr}");
}
