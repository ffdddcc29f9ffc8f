//! psycopg 3 with the pgvector package's `register_vector` through the
//! embedded binary's proxy: runs tests/proxy_psycopg.py (scripts/test.sh
//! installs psycopg, pgvector and numpy when missing).

mod embedded_support;

use std::process::Command;

use embedded_support::EmbeddedProxy;

#[test]
fn psycopg_with_register_vector_through_the_proxy() {
    let proxy = EmbeddedProxy::start("psycopg");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proxy_psycopg.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(proxy.port.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "psycopg through the proxy ok\n"
    );
    // psycopg reports what failed in its own housekeeping (such as the
    // DEALLOCATE ALL after a rolled-back transaction) only on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Error ignored"), "{stderr}");
}
