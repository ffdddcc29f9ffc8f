//! Runs a Python client script of tests/ (psycopg + pgvector and the
//! drivers of tests/drivers, installed by scripts/test.sh) against server
//! ports.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Runs `tests/<script>` with `name=port` arguments, one per target (the
/// control first), killing it after `deadline`; returns its stdout, or
/// panics with its output when it failed or ran out of time.
pub fn run_against(script: &str, targets: &[(&str, u16)], deadline: Duration) -> String {
    run_against_with("python3", script, targets, deadline)
}

/// [`run_against`] with the interpreter `python` (a virtual
/// environment's).
pub fn run_against_with(
    python: &str,
    script: &str,
    targets: &[(&str, u16)],
    deadline: Duration,
) -> String {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(&path)
        .args(targets.iter().map(|(name, port)| format!("{name}={port}")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                p.read_to_string(&mut text).ok();
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            break Some(status);
        }
        if start.elapsed() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(s) if s.success() => out,
        Some(_) => panic!("{script} failed:\n{out}\nstderr:\n{err}"),
        None => panic!(
            "{script} still running after {deadline:?} (a client hangs):\n{out}\nstderr:\n{err}"
        ),
    }
}
