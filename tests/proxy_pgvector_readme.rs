//! What a pgvector user types, section by section of pgvector's README
//! (sql/readme/pgvector_readme.sql), through the proxy: the embedded
//! default (four in-process shards) and a proxy over two `pgvshard shard`
//! processes, each against real PostgreSQL + pgvector as the control.
//! Every statement must answer as the control does (columns, rows as text,
//! affected-row counts, SQLSTATE and message), except the ones the script
//! marks refused: those must fail with 0A000 naming the feature.

mod embedded_support;
mod pg_support;
mod script_support;
mod shard_support;

use embedded_support::EmbeddedProxy;

#[test]
fn pgvector_readme_through_the_proxy_matches_postgres() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/readme/pgvector_readme.sql"
    );
    let mismatches = script_support::mismatches_through_proxies("pgvector-readme", path);
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
