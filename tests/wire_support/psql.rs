//! `psql` against a [`TestServer`], run on the blocking pool.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::TestServer;

impl TestServer {
    /// `psql -h 127.0.0.1 -p PORT -U user -d db -X` (-X: no ~/.psqlrc);
    /// callers add the rest of the arguments and the environment.
    pub fn psql(&self, user: &str) -> Command {
        let mut command = Command::new("psql");
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            user,
            "-d",
            "db",
            "-X",
        ]);
        command
    }

    /// [`TestServer::psql`] running one statement, with unaligned,
    /// tuples-only output (`-A -t -c sql`).
    pub fn psql_query(&self, user: &str, sql: &str) -> Command {
        let mut command = self.psql(user);
        command.args(["-A", "-t", "-c", sql]);
        command
    }
}

/// Runs `command` (no stdin) and waits for its output.
pub async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("psql is installed"))
        .await
        .unwrap()
}

/// Runs `command` with `input` on its stdin and waits for its output.
pub async fn output_with_input(mut command: Command, input: &'static [u8]) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql is installed");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}
