//! What may be cached and under which key.
//!
//! Cacheable: a plain read-only SELECT (no FOR UPDATE/SHARE, no INTO) of
//! ordinary tables (not catalogs, none opted out in the config), calling
//! only functions known to be immutable or stable (pgvector's, casts and
//! common aggregates; now(), random(), nextval() or any user function
//! make it uncacheable), in a session with `pgvshard.cache = on` and not
//! inside a transaction that wrote.
//!
//! The key is a SHA-256 over everything the answer's bytes depend on: the
//! statement's text as the client sent it, its bound parameters with their types and formats, the
//! protocol and the client's result formats, the session's pgvector
//! settings (`hnsw.*`, `ivfflat.*`), database and user, and the stamp:
//! the generation of every table read plus the schema generation (and
//! the Redis epoch).

use std::collections::HashSet;
use std::ops::ControlFlow;

use sha2::{Digest, Sha256};
use sqlparser::ast::{visit_expressions, Expr, SetExpr, Statement as Ast};

use super::generations::SCHEMA;
use crate::sql::{Statement, StatementKind};
use crate::wire::{Params, Responder};

/// Why a read did not use the cache (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// `SET pgvshard.cache = off`.
    SessionOff,
    /// The transaction wrote.
    Transaction,
    /// A volatile or unknown function.
    Volatile,
    /// Locking, INTO, catalogs, no table, or not a query.
    NotPlain,
    /// A table opted out in the config.
    OptedOut,
    /// Redis unreachable: generations unknown.
    Unavailable,
}

impl Bypass {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Bypass::SessionOff => "session_off",
            Bypass::Transaction => "transaction",
            Bypass::Volatile => "volatile",
            Bypass::NotPlain => "not_plain",
            Bypass::OptedOut => "opted_out",
            Bypass::Unavailable => "unavailable",
        }
    }
}

/// Functions whose result depends only on their arguments (and the
/// data): pgvector's, and common SQL ones.
const STABLE_FUNCTIONS: &[&str] = &[
    "l2_distance",
    "inner_product",
    "cosine_distance",
    "l1_distance",
    "hamming_distance",
    "jaccard_distance",
    "vector_dims",
    "vector_norm",
    "l2_norm",
    "l2_normalize",
    "binary_quantize",
    "subvector",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "abs",
    "round",
    "floor",
    "ceil",
    "sqrt",
    "lower",
    "upper",
    "length",
    "coalesce",
    "greatest",
    "least",
    "nullif",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "to_json",
    "to_jsonb",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_typeof",
    "jsonb_typeof",
    "json_array_length",
    "jsonb_array_length",
    "bool_and",
    "bool_or",
    "cardinality",
    "array_length",
    "replace",
    "split_part",
    "substr",
    "left",
    "right",
    "btrim",
    "ltrim",
    "rtrim",
    "repeat",
    "reverse",
    "initcap",
    "lpad",
    "rpad",
    "starts_with",
    "strpos",
    "char_length",
    "character_length",
    "octet_length",
    "md5",
    "ascii",
    "chr",
    "translate",
    "concat",
    "concat_ws",
    "ceiling",
    "sign",
    "cbrt",
    "exp",
    "ln",
    "log",
    "log10",
    "power",
    "pow",
    "pi",
    "trunc",
    "degrees",
    "radians",
    "mod",
    "array_append",
    "array_prepend",
    "array_remove",
    "array_position",
    "date_trunc",
    "date_part",
    "to_char",
    "to_timestamp",
    "justify_hours",
    "justify_days",
    "justify_interval",
    "jsonb_set",
    "jsonb_insert",
    "jsonb_strip_nulls",
];

/// Functions that change nothing although their results vary: reads
/// calling them are not cached, but they are not writes either.
const READ_ONLY_VOLATILE: &[&str] = &[
    "now",
    "random",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "current_timestamp",
    "current_date",
    "timeofday",
    "gen_random_uuid",
    "current_setting",
    "pg_sleep",
    "pg_backend_pid",
    "version",
    "inet_server_addr",
    "inet_server_port",
    "pg_is_in_recovery",
    // age(ts) counts from today.
    "age",
];

/// Whether `statement` calls a function `known` does not accept (it gets
/// lower-case names; qualified names are never known).
fn calls_function_outside(statement: &Statement, known: impl Fn(&str) -> bool) -> bool {
    crate::stack::with_tree(statement.depth, || {
        visit_expressions(&statement.ast, |e| match e {
            Expr::Function(f) => {
                let listed = f.name.0.len() == 1
                    && f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| known(&i.value.to_ascii_lowercase()));
                if listed {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    })
}

/// Whether a read may write through a function it calls (one neither
/// known stable nor known read-only, e.g. a user's `purge_old()`): its
/// tables cannot be known, so it bumps the schema generation like DDL.
pub fn may_write_through_functions(statement: &Statement) -> bool {
    calls_function_outside(statement, |f| {
        STABLE_FUNCTIONS.contains(&f) || READ_ONLY_VOLATILE.contains(&f)
    })
}

fn is_catalog(schema: Option<&str>, name: &str) -> bool {
    matches!(schema, Some("pg_catalog" | "information_schema")) || name.starts_with("pg_")
}

/// The generation names a cacheable read depends on (its tables and
/// [`SCHEMA`]), or why it is not cacheable. `wrote`: the session's
/// transaction has written.
pub fn cacheable(
    statement: &Statement,
    kind: &StatementKind,
    session_on: bool,
    wrote: bool,
    uncached: &HashSet<String>,
) -> Result<Vec<String>, Bypass> {
    crate::stack::with_tree(statement.depth, || {
        let StatementKind::Select(info) = kind else {
            return Err(Bypass::NotPlain);
        };
        if !session_on {
            return Err(Bypass::SessionOff);
        }
        if wrote {
            return Err(Bypass::Transaction);
        }
        let Ast::Query(query) = &statement.ast else {
            return Err(Bypass::NotPlain);
        };
        let into = matches!(query.body.as_ref(), SetExpr::Select(s) if s.into.is_some());
        if info.locking || into || info.tables.is_empty() {
            return Err(Bypass::NotPlain);
        }
        if info
            .tables
            .iter()
            .any(|t| is_catalog(t.schema.as_deref(), &t.name))
        {
            return Err(Bypass::NotPlain);
        }
        if info.tables.iter().any(|t| uncached.contains(&t.name)) {
            return Err(Bypass::OptedOut);
        }
        if calls_function_outside(statement, |f| STABLE_FUNCTIONS.contains(&f)) {
            return Err(Bypass::Volatile);
        }
        let mut names: Vec<String> = info.tables.iter().map(|t| t.name.clone()).collect();
        names.push(SCHEMA.to_string());
        names.sort();
        names.dedup();
        Ok(names)
    })
}

/// A cache key: the digest (L1) and its hex form (the L2 key's tail).
#[derive(Debug, Clone)]
pub struct CacheKey {
    /// SHA-256 of everything the answer depends on.
    pub digest: [u8; 32],
}

impl CacheKey {
    /// Hex of the digest.
    pub fn hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The key of `statement` with `params`, answered through `out`, under
/// `stamp` (the generations).
pub fn key(
    statement: &Statement,
    params: Option<&Params>,
    visible: Option<usize>,
    out: &mut Responder<'_>,
    stamp: &str,
) -> CacheKey {
    crate::stack::with_tree(statement.depth, || {
        let mut h = Sha256::new();
        field(&mut h, stamp.as_bytes());
        field(&mut h, statement.text.as_bytes());
        match params {
            None => field(&mut h, b"simple"),
            Some(p) => {
                field(&mut h, b"extended");
                for (i, v) in p.values.iter().enumerate() {
                    h.update(p.types.get(i).copied().unwrap_or(0).to_le_bytes());
                    h.update(p.formats.get(i).map_or(0, |f| f.code()).to_le_bytes());
                    match v {
                        Some(b) => field(&mut h, b),
                        None => h.update(u64::MAX.to_le_bytes()),
                    }
                }
            }
        }
        let formats: Vec<u8> = (0..visible.unwrap_or(0))
            .map(|i| out.result_format(i).code() as u8)
            .collect();
        field(&mut h, &formats);
        let session = out.session();
        field(&mut h, session.user.as_bytes());
        field(&mut h, session.database.as_bytes());
        for (name, value, _) in session.show_all() {
            if name.starts_with("hnsw.") || name.starts_with("ivfflat.") {
                field(&mut h, name.as_bytes());
                field(&mut h, value.as_bytes());
            }
        }
        CacheKey {
            digest: h.finalize().into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{classify, parse_single};

    fn check(sql: &str) -> Result<Vec<String>, Bypass> {
        let s = parse_single(sql).unwrap();
        let uncached = HashSet::from(["secret".to_string()]);
        cacheable(&s, &classify(&s), true, false, &uncached)
    }

    #[test]
    fn unknown_functions_may_write() {
        let writes = |sql: &str| may_write_through_functions(&parse_single(sql).unwrap());
        assert!(writes("SELECT purge_old_items()"));
        assert!(writes("SELECT id FROM items WHERE app.touch(id)"));
        assert!(!writes("SELECT now(), random(), count(*) FROM items"));
        assert!(!writes(
            "SELECT current_timestamp, current_date, id FROM items"
        ));
        assert!(!writes(
            "SELECT date_trunc('day', at), to_char(at, 'YYYY'), age(at) FROM items \
             WHERE at > now() - interval '1 day' AND date_part('hour', at) > 1 \
             AND jsonb_set(meta, '{a}', '1') #>> '{a}' = '1'"
        ));
        assert!(!writes(
            "SELECT id FROM items ORDER BY embedding <-> '[1,2]' LIMIT 5"
        ));
    }

    #[test]
    fn only_plain_reads_of_tables_are_cacheable() {
        assert_eq!(
            check("SELECT id FROM items ORDER BY embedding <-> '[1,2]' LIMIT 5").unwrap(),
            vec!["*".to_string(), "items".to_string()]
        );
        assert!(check("SELECT count(*), l2_distance(embedding, '[1,2]') FROM items").is_ok());
        assert_eq!(check("SELECT now(), id FROM items"), Err(Bypass::Volatile));
        assert_eq!(
            check("SELECT current_date, id FROM items"),
            Err(Bypass::Volatile)
        );
        assert_eq!(
            check("SELECT id FROM items ORDER BY random() LIMIT 3"),
            Err(Bypass::Volatile)
        );
        assert_eq!(
            check("SELECT my_func(id) FROM items"),
            Err(Bypass::Volatile)
        );
        assert_eq!(
            check("SELECT id FROM items FOR UPDATE"),
            Err(Bypass::NotPlain)
        );
        assert_eq!(check("SELECT 1"), Err(Bypass::NotPlain));
        assert_eq!(check("SELECT * FROM pg_class"), Err(Bypass::NotPlain));
        assert_eq!(check("SELECT * FROM secret"), Err(Bypass::OptedOut));
        assert_eq!(check("INSERT INTO items VALUES (1)"), Err(Bypass::NotPlain));
        let s = parse_single("SELECT id FROM items").unwrap();
        let none = HashSet::new();
        let kind = classify(&s);
        assert_eq!(
            cacheable(&s, &kind, false, false, &none),
            Err(Bypass::SessionOff)
        );
        assert_eq!(
            cacheable(&s, &kind, true, true, &none),
            Err(Bypass::Transaction)
        );
    }
}
