//! Running a SQL script (sql/readme/, sql/apps/) through the proxy — the
//! embedded default (four in-process shards) and a proxy over two
//! `pgvshard shard` processes — against real PostgreSQL + pgvector as the
//! control: every statement must answer as the control does (columns,
//! rows as text, affected-row counts, SQLSTATE and message), except the
//! ones the script marks refused, which must fail with 0A000 naming the
//! feature. Prints a table per section.

#![allow(dead_code)]

use crate::embedded_support::EmbeddedProxy;
use crate::pg_support::{connect_to, PgServer};
use crate::shard_support::{fresh_dir, proxy_over, Shard};
use tokio_postgres::SimpleQueryMessage;

/// One statement of the script with its section and markers.
pub struct Statement {
    /// The section (`-- # name`) it is in.
    pub section: String,
    /// The statement.
    pub sql: String,
    /// Words the proxy's 0A000 message must contain, if it is refused.
    pub refused: Option<String>,
    /// Rows at equal distance may come in another order: compare sorted.
    pub ties: bool,
}

/// The statements of the script: split at `;` ending a line; `-- # name`
/// starts a section; `-- refused: words` and `-- ties` mark the next one.
pub fn script(path: &str) -> Vec<Statement> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut out, mut section, mut refused, mut ties, mut cur) =
        (Vec::new(), String::new(), None, false, String::new());
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("-- # ") {
            section = name.to_string();
        } else if let Some(words) = trimmed.strip_prefix("-- refused: ") {
            refused = Some(words.to_string());
        } else if trimmed == "-- ties" {
            ties = true;
        } else if !trimmed.starts_with("--") && !trimmed.is_empty() {
            cur.push_str(line);
            cur.push('\n');
            if trimmed.ends_with(';') {
                out.push(Statement {
                    section: section.clone(),
                    sql: std::mem::take(&mut cur).trim().to_string(),
                    refused: refused.take(),
                    ties: std::mem::take(&mut ties),
                });
            }
        }
    }
    out
}

/// What one statement returned: column names, rows as text and the
/// affected-row counts, or the error's SQLSTATE and message.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// It ran.
    Done {
        /// Column names.
        columns: Vec<String>,
        /// Rows as text.
        rows: Vec<Vec<Option<String>>>,
        /// Affected-row counts.
        counts: Vec<u64>,
    },
    /// It failed.
    Failed {
        /// SQLSTATE.
        code: String,
        /// Primary message.
        message: String,
    },
}

pub async fn outcome(client: &tokio_postgres::Client, statement: &Statement) -> Outcome {
    let messages = match client.simple_query(&statement.sql).await {
        Ok(m) => m,
        Err(e) => {
            return match e.as_db_error() {
                Some(db) => Outcome::Failed {
                    code: db.code().code().to_string(),
                    message: db.message().to_string(),
                },
                None => Outcome::Failed {
                    code: "connection".to_string(),
                    message: e.to_string(),
                },
            }
        }
    };
    let (mut columns, mut rows, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => counts.push(n),
            _ => {}
        }
    }
    let ordered = statement.sql.to_uppercase().contains("ORDER BY") && !statement.ties;
    if !ordered {
        rows.sort();
    }
    Outcome::Done {
        columns,
        rows,
        counts,
    }
}

/// Whether the proxy's answer is the one the script expects.
pub fn agrees(statement: &Statement, proxy: &Outcome, control: &Outcome) -> bool {
    match (&statement.refused, proxy) {
        (Some(words), Outcome::Failed { code, message }) => {
            code == "0A000" && message.contains(words.as_str())
        }
        (Some(_), Outcome::Done { .. }) => false,
        (None, _) => proxy == control,
    }
}

/// Runs the script at `path` (test name `name`) on the control and both
/// proxies; the statements that did not answer as expected.
pub fn mismatches_through_proxies(name: &str, path: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let control = runtime.block_on(PgServer::start());
    let embedded = EmbeddedProxy::start(name);
    let shards = [
        Shard::start(&fresh_dir(&format!("{name}-s0"))),
        Shard::start(&fresh_dir(&format!("{name}-s1"))),
    ];
    let two = proxy_over(&format!("{name}-2"), &[shards[0].port, shards[1].port], "");
    let targets = [("embedded", embedded.port), ("2-shard", two.port)];
    let mismatches = runtime.block_on(async {
        let control = control.connect().await.expect("control");
        let mut clients = Vec::new();
        for (name, port) in targets {
            let client = connect_to(port)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            clients.push(client);
        }
        let statements = script(path);
        let mut mismatches = Vec::new();
        // Per section: statements, identical to the control on each
        // target, refused as the script expects.
        let mut table: Vec<(String, usize, [usize; 2], usize)> = Vec::new();
        for s in &statements {
            let expected = outcome(&control, s).await;
            if table.last().map(|t| &t.0) != Some(&s.section) {
                table.push((s.section.clone(), 0, [0, 0], 0));
            }
            let row = table.last_mut().expect("a section");
            row.1 += 1;
            row.3 += usize::from(s.refused.is_some());
            for (i, client) in clients.iter().enumerate() {
                let got = outcome(client, s).await;
                row.2[i] += usize::from(got == expected);
                if !agrees(s, &got, &expected) {
                    mismatches.push(format!(
                        "{}: {}\n  proxy:   {got:?}\n  control: {expected:?}",
                        targets[i].0, s.sql
                    ));
                }
            }
        }
        println!("| section | statements | identical: embedded | 2-shard | refused (0A000) |");
        for (section, n, same, refused) in &table {
            println!(
                "| {section} | {n} | {} | {} | {refused} |",
                same[0], same[1]
            );
        }
        mismatches
    });
    for s in shards {
        s.stop();
    }
    mismatches
}
