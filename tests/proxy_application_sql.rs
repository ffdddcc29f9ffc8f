//! SQL that applications and dashboards send (sql/apps/*.sql: date and
//! time filters and buckets, document metadata) through the proxy — the embedded default
//! and a proxy over two shards — against real PostgreSQL + pgvector as
//! the control (tests/script_support).

mod embedded_support;
mod pg_support;
mod script_support;
mod shard_support;

#[test]
fn dates_and_intervals_through_the_proxy_match_postgres() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/apps/dates.sql");
    let mismatches = script_support::mismatches_through_proxies("app-dates", path);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn document_metadata_through_the_proxy_matches_postgres() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/apps/documents.sql");
    let mismatches = script_support::mismatches_through_proxies("app-documents", path);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
