//! COPY through the proxy.
//!
//! `COPY table FROM STDIN` ([`from_stdin`]) reads the client's CopyData
//! as it arrives, cuts it into records with the same reader the shard
//! uses ([`crate::sql::RecordReader`]), reads only each record's shard key,
//! and streams the records unchanged, in ~64 KiB CopyData batches, to one
//! `COPY … FROM STDIN` per shard that receives rows (started on its first
//! row). Outside a transaction each shard's COPY runs inside its own
//! BEGIN, and the proxy commits them (two-phase across several shards,
//! [`crate::proxy::txn`]) only after every shard accepted its part, so a
//! bad row anywhere applies nothing anywhere. Inside a client
//! transaction the rows go to the block's transaction on each shard.
//!
//! `COPY table TO STDOUT` and `COPY (plain scan) TO STDOUT`
//! ([`to_stdout`]) concatenate every shard's output (binary: one header,
//! one trailer; a CSV HEADER line once).

mod from_stdin;
mod to_stdout;

use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption, Statement};

use super::backend::{BackendMessage, Request, ShardChannel};
use super::cluster::Cluster;
use super::execute::shard_stream::ShardStream;
use super::txn::Block;
use crate::sql::{self, CopyDirection, CopyInfo};
use crate::wire::{FieldDescription, PgError, Responder, TransactionStatus};

/// Runs a COPY statement through the proxy.
pub async fn copy(
    cluster: &Cluster,
    statement: &sql::Statement,
    info: &CopyInfo,
    block: &mut Block,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    if !info.stdio {
        return Err(PgError::feature_not_supported(
            "COPY to or from a file or program is not supported through the proxy; use STDIN or STDOUT (psql's \\copy)",
        ));
    }
    let in_transaction = out.session().transaction_status() == TransactionStatus::InTransaction;
    match info.direction {
        CopyDirection::From => {
            let block = in_transaction.then_some(block);
            from_stdin::copy_from(cluster, statement, info, block, out).await
        }
        // Fresh pooled connections would not see the transaction's writes.
        CopyDirection::To if block.wrote() => Err(PgError::feature_not_supported(
            "COPY TO STDOUT inside a transaction that wrote is not supported through the proxy",
        )
        .with_hint("Commit first, or read the rows with a SELECT.")),
        CopyDirection::To => to_stdout::copy_to(cluster, statement, info, out).await,
    }
}

/// The result columns of `sql` as shard `shard` describes them (the
/// proxy's type OIDs).
async fn describe(
    cluster: &Cluster,
    shard: usize,
    sql: &str,
) -> Result<Vec<FieldDescription>, PgError> {
    let node = &cluster.shards[shard];
    let mut chan = node.checkout().await?;
    chan.send(&Request::Describe {
        sql: sql.to_string(),
        param_types: Vec::new(),
    })
    .await?;
    let mut stream = ShardStream::new(shard, chan, node.oids());
    stream.finish().await?;
    Ok(stream.columns.unwrap_or_default())
}

/// Waits for a shard's CopyInResponse (FROM) or CopyOutResponse (TO) to
/// the COPY just sent, or returns the shard's error.
async fn started(chan: &mut dyn ShardChannel, direction: CopyDirection) -> Result<(), PgError> {
    let mut error = None;
    loop {
        match (chan.recv().await?, direction) {
            (BackendMessage::CopyIn, CopyDirection::From)
            | (BackendMessage::CopyOut, CopyDirection::To) => return Ok(()),
            (BackendMessage::Error(e), _) => error = error.or(Some(e)),
            (BackendMessage::ReadyForQuery(_), _) => {
                return Err(error.unwrap_or_else(|| {
                    PgError::protocol_violation("the shard did not start the COPY")
                }))
            }
            _ => {}
        }
    }
}

/// The statement's text with its header option removed (for every shard
/// but the first of a COPY TO) or with `extra` appended to its column
/// list (a proxy-generated key for COPY FROM).
fn rewritten(statement: &sql::Statement, drop_header: bool, extra: Option<&str>) -> String {
    crate::stack::with_tree(statement.depth, || {
        let mut ast = statement.ast.clone();
        if let Statement::Copy {
            source,
            options,
            legacy_options,
            ..
        } = &mut ast
        {
            if drop_header {
                options.retain(|o| !matches!(o, CopyOption::Header(_)));
                legacy_options.retain(|o| !matches!(o, CopyLegacyOption::Header));
                for o in legacy_options.iter_mut() {
                    if let CopyLegacyOption::Csv(csv) = o {
                        csv.retain(|c| !matches!(c, CopyLegacyCsvOption::Header));
                    }
                }
            }
            if let (Some(column), sqlparser::ast::CopySource::Table { columns, .. }) =
                (extra, source)
            {
                columns.push(sqlparser::ast::Ident::with_quote('"', column));
            }
        }
        ast.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_statements_drop_the_header_or_add_the_key() {
        let s = sql::parse_single("COPY items (v) TO STDOUT WITH (FORMAT csv, HEADER)").unwrap();
        assert_eq!(
            rewritten(&s, true, None),
            "COPY items (v) TO STDOUT (FORMAT csv)"
        );
        let s = sql::parse_single("COPY items TO STDOUT WITH (HEADER)").unwrap();
        assert_eq!(rewritten(&s, true, None), "COPY items TO STDOUT");
        let s = sql::parse_single("COPY items (v) FROM STDIN CSV HEADER").unwrap();
        assert_eq!(
            rewritten(&s, false, Some("id")),
            "COPY items (v, \"id\") FROM STDIN CSV HEADER"
        );
    }
}
