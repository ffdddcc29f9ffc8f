//! Runs a Python client script of tests/ (psycopg + pgvector, installed
//! by scripts/test.sh) against a server port.

use std::process::Command;

/// Runs `tests/<script> <port>`, asserts it succeeded and printed exactly
/// `expected`; returns its stderr (clients log ignored errors there).
pub fn run_script(script: &str, port: u16, expected: &str) -> String {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&path)
        .arg(port.to_string())
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{script}: stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{script}");
    stderr
}
