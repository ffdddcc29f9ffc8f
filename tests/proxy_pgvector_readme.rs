//! What a pgvector user types, section by section of pgvector's README
//! (sql/readme/pgvector_readme.sql), through the proxy: the embedded
//! default (four in-process shards) and a proxy over two `pgvshard shard`
//! processes, each against real PostgreSQL + pgvector as the control.
//! Every statement must answer as the control does (columns, rows as text,
//! affected-row counts, SQLSTATE and message), except the ones the script
//! marks refused: those must fail with 0A000 naming the feature.

mod embedded_support;
mod pg_support;
mod shard_support;

use embedded_support::EmbeddedProxy;
use pg_support::{connect_to, PgServer};
use shard_support::{fresh_dir, proxy_over, Shard};
use tokio_postgres::SimpleQueryMessage;

/// One statement of the script with its section and markers.
struct Statement {
    section: String,
    sql: String,
    /// Words the proxy's 0A000 message must contain, if it is refused.
    refused: Option<String>,
    /// Rows at equal distance may come in another order: compare sorted.
    ties: bool,
}

/// The statements of the script: split at `;` ending a line; `-- # name`
/// starts a section; `-- refused: words` and `-- ties` mark the next one.
fn script() -> Vec<Statement> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/readme/pgvector_readme.sql"
    );
    let text = std::fs::read_to_string(path).expect("the README script");
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
enum Outcome {
    Done {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        counts: Vec<u64>,
    },
    Failed {
        code: String,
        message: String,
    },
}

async fn outcome(client: &tokio_postgres::Client, statement: &Statement) -> Outcome {
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
fn agrees(statement: &Statement, proxy: &Outcome, control: &Outcome) -> bool {
    match (&statement.refused, proxy) {
        (Some(words), Outcome::Failed { code, message }) => {
            code == "0A000" && message.contains(words.as_str())
        }
        (Some(_), Outcome::Done { .. }) => false,
        (None, _) => proxy == control,
    }
}

#[test]
fn pgvector_readme_through_the_proxy_matches_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let control = runtime.block_on(PgServer::start());
    let embedded = EmbeddedProxy::start("pgvector-readme");
    let shards = [
        Shard::start(&fresh_dir("pgvector-readme-s0")),
        Shard::start(&fresh_dir("pgvector-readme-s1")),
    ];
    let two = proxy_over("pgvector-readme-2", &[shards[0].port, shards[1].port], "");
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
        let statements = script();
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
        println!(
            "| README section | statements | identical: embedded | 2-shard | refused (0A000) |"
        );
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
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A WITH query or scalar subquery with a parameter is not run first (it
/// would run without the client's parameters): it keeps its 0A000.
#[test]
fn parts_with_parameters_keep_their_refusal() {
    let proxy = EmbeddedProxy::start("pgvector-readme-params");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let client = proxy.connect().await;
            client
                .batch_execute(
                    "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3)); \
                     INSERT INTO items VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, '[1,1,1]')",
                )
                .await
                .expect("schema");
            for sql in [
                "WITH n AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS d FROM items ORDER BY d LIMIT $1) SELECT * FROM n ORDER BY d",
                "SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = $1) LIMIT 2",
            ] {
                let e = client.query(sql, &[&1i64]).await.unwrap_err();
                let code = e.as_db_error().map(|d| d.code().code().to_string());
                assert_eq!(code.as_deref(), Some("0A000"), "{sql}: {e}");
            }
        });
}
