//! The system catalog as data: `pg_catalog` and `information_schema`
//! relations generated from storage's table definitions, the type
//! registry and the session, and run by the same executor as user
//! tables, so a driver's introspection works whatever its exact text.
//! The catalog functions drivers call (`format_type`, `to_regtype`,
//! `pg_get_indexdef`, …) answer from the same data.
//!
//! OIDs: built-in types, namespaces and access methods have PostgreSQL's;
//! pgvector's types have the registry's fixed ones; a table's is its
//! storage id, a secondary index's its storage id, and a primary key's
//! index [`PKEY_OID_BASE`] plus the table's.

use super::information_schema;
use super::select::{Column, Relation};
use super::sequences;
use crate::shard::datum::Datum;
use crate::shard::storage::{
    ColumnDef, ColumnType, ForeignKey, IndexMethod, OnDelete, OnUpdate, Table, Tables,
};
use crate::wire::types::{self, oid, PgType};
use crate::wire::{Array, Session, Value};
use ann::{Metric, VectorType};
use std::collections::HashSet;

/// `pg_catalog`'s namespace OID.
pub const PG_CATALOG_OID: u32 = 11;
/// `public`'s namespace OID.
pub const PUBLIC_OID: u32 = 2200;
/// `information_schema`'s namespace OID (PostgreSQL's varies by build).
pub const INFORMATION_SCHEMA_OID: u32 = 13_000;
/// The bootstrap superuser's OID, which the session's user is shown as.
const OWNER_OID: u32 = 10;
/// A primary key's index OID is this plus the table's OID.
pub const PKEY_OID_BASE: u32 = 1_000_000_000;
const HNSW_AM_OID: u32 = 16_400;
const BTREE_AM_OID: u32 = 403;
const GIN_AM_OID: u32 = 2742;
/// `text[]`.
const TEXT_ARRAY: u32 = 1009;
/// `int2[]`.
const INT2_ARRAY: u32 = 1005;
/// PostgreSQL's fixed OIDs of the catalog relations, for
/// `'pg_class'::regclass` and friends.
const CATALOG_OIDS: &[(&str, u32)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_auth_members", 1261),
    ("pg_database", 1262),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_trigger", 2620),
    ("pg_sequence", 2224),
    ("pg_extension", 3079),
    ("pg_collation", 3456),
    ("pg_enum", 3501),
    ("pg_range", 3541),
    ("pg_tablespace", 1213),
    ("pg_policy", 3256),
    ("pg_rewrite", 2618),
    ("pg_publication", 6104),
    ("pg_statistic_ext", 3381),
];
const IVFFLAT_AM_OID: u32 = 16_401;

/// A relation being built: columns, then rows in column order.
pub(super) struct Builder {
    columns: Vec<Column>,
    rows: Vec<Vec<Datum>>,
}

impl Builder {
    pub(super) fn new(spec: &[(&str, u32)]) -> Self {
        Builder {
            columns: spec
                .iter()
                .map(|&(n, t)| Column {
                    name: n.to_string(),
                    ty: (t, -1),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, row: Vec<Datum>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub(super) fn done(self) -> Relation {
        Relation {
            columns: self.columns,
            rows: self.rows,
        }
    }
}

pub(super) fn text(s: &str) -> Datum {
    Some(Value::Text(s.to_string()))
}

fn o(v: u32) -> Datum {
    Some(Value::Oid(v))
}

fn b(v: bool) -> Datum {
    Some(Value::Bool(v))
}

fn ch(c: u8) -> Datum {
    Some(Value::Char(c))
}

fn i2(v: i16) -> Datum {
    Some(Value::Int2(v))
}

pub(super) fn i4(v: i32) -> Datum {
    Some(Value::Int4(v))
}

/// The relation `schema.name` of the system catalog (`schema` `None`:
/// unqualified, which finds `pg_catalog` first as PostgreSQL's search
/// path does), or `None` when there is none.
pub fn relation(
    schema: Option<&str>,
    name: &str,
    tables: &Tables,
    session: &Session,
) -> Option<Relation> {
    match schema {
        None | Some("pg_catalog") => pg_catalog_relation(name, tables, session),
        Some("information_schema") => information_schema::relation(name, tables, session),
        Some(_) => None,
    }
}

fn pg_catalog_relation(name: &str, tables: &Tables, session: &Session) -> Option<Relation> {
    Some(match name {
        "pg_type" => pg_type(),
        "pg_namespace" => pg_namespace(),
        "pg_class" => pg_class(tables),
        "pg_attribute" => pg_attribute(tables),
        "pg_attrdef" => pg_attrdef(tables),
        "pg_index" => pg_index(tables),
        "pg_am" => pg_am(),
        "pg_constraint" => pg_constraint(tables),
        "pg_extension" => pg_extension(),
        "pg_database" => pg_database(session),
        "pg_roles" => pg_roles(session),
        "pg_user" => pg_user(session),
        "pg_settings" => pg_settings(session),
        "pg_collation" => pg_collation(),
        "pg_opclass" => pg_opclass(),
        "pg_tables" => pg_tables(tables, session),
        "pg_indexes" => pg_indexes(tables),
        "pg_range" => Builder::new(&[
            ("rngtypid", oid::OID),
            ("rngsubtype", oid::OID),
            ("rngmultitypid", oid::OID),
            ("rngcollation", oid::OID),
            ("rngsubopc", oid::OID),
        ])
        .done(),
        "pg_enum" => Builder::new(&[
            ("oid", oid::OID),
            ("enumtypid", oid::OID),
            ("enumsortorder", oid::FLOAT4),
            ("enumlabel", oid::NAME),
        ])
        .done(),
        "pg_description" => Builder::new(&[
            ("objoid", oid::OID),
            ("classoid", oid::OID),
            ("objsubid", oid::INT4),
            ("description", oid::TEXT),
        ])
        .done(),
        // No role is a member of another.
        "pg_auth_members" => Builder::new(&[
            ("oid", oid::OID),
            ("roleid", oid::OID),
            ("member", oid::OID),
            ("grantor", oid::OID),
            ("admin_option", oid::BOOL),
            ("inherit_option", oid::BOOL),
            ("set_option", oid::BOOL),
        ])
        .done(),
        "pg_inherits" => Builder::new(&[
            ("inhrelid", oid::OID),
            ("inhparent", oid::OID),
            ("inhseqno", oid::INT4),
            ("inhdetachpending", oid::BOOL),
        ])
        .done(),
        "pg_sequence" => pg_sequence(tables),
        "pg_depend" => pg_depend(tables),
        "pg_tablespace" => pg_tablespace(),
        _ => return super::absent_catalogs::relation(name),
    })
}

/// `pg_sequence`: every sequence's options.
fn pg_sequence(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("seqrelid", oid::OID),
        ("seqtypid", oid::OID),
        ("seqstart", oid::INT8),
        ("seqincrement", oid::INT8),
        ("seqmax", oid::INT8),
        ("seqmin", oid::INT8),
        ("seqcache", oid::INT8),
        ("seqcycle", oid::BOOL),
    ]);
    let i8 = |v: i64| Some(Value::Int8(v));
    for s in sequences::all(tables) {
        let p = s.spec;
        r.row(vec![
            o(s.oid),
            o(p.type_oid()),
            i8(p.start),
            i8(p.increment),
            i8(p.max),
            i8(p.min),
            i8(p.cache),
            b(p.cycle),
        ]);
    }
    r.done()
}

/// `pg_depend`: the one kind of dependency a shard has, a serial
/// column's sequence on its column (deptype `a`, as psql's `\d` reads it).
fn pg_depend(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("classid", oid::OID),
        ("objid", oid::OID),
        ("objsubid", oid::INT4),
        ("refclassid", oid::OID),
        ("refobjid", oid::OID),
        ("refobjsubid", oid::INT4),
        ("deptype", oid::CHAR),
    ]);
    const PG_CLASS: u32 = 1259;
    for s in sequences::all(tables) {
        let Some((table, column)) = &s.owned_by else {
            continue;
        };
        let Some(def) = tables.get(table).map(|t| t.def()) else {
            continue;
        };
        let Some(at) = def.column_index(column) else {
            continue;
        };
        r.row(vec![
            o(PG_CLASS),
            o(s.oid),
            i4(0),
            o(PG_CLASS),
            o(def.oid),
            i4(at as i32 + 1),
            ch(b'a'),
        ]);
    }
    r.done()
}

/// `pg_tablespace`: PostgreSQL's two built-in tablespaces, the only ones
/// a shard has.
fn pg_tablespace() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("spcname", oid::NAME),
        ("spcowner", oid::OID),
        ("spcacl", oid::TEXT),
        ("spcoptions", TEXT_ARRAY),
    ]);
    for (id, name) in [(1663, "pg_default"), (1664, "pg_global")] {
        r.row(vec![o(id), text(name), o(OWNER_OID), None, None]);
    }
    r.done()
}

fn type_category(t: &PgType) -> u8 {
    if t.elem != 0 {
        return b'A';
    }
    match t.oid {
        oid::BOOL => b'B',
        oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8 | oid::OID => b'N',
        oid::TEXT | oid::VARCHAR | oid::NAME | oid::CHAR => b'S',
        oid::DATE | oid::TIMESTAMP | oid::TIMESTAMPTZ => b'D',
        oid::INTERVAL => b'T',
        oid::BIT | oid::VARBIT => b'V',
        oid::UNKNOWN => b'X',
        _ => b'U',
    }
}

fn namespace_oid(schema: &str) -> u32 {
    match schema {
        "pg_catalog" => PG_CATALOG_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        _ => PUBLIC_OID,
    }
}

/// `pg_type`: the type registry.
fn pg_type() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("typname", oid::NAME),
        ("typnamespace", oid::OID),
        ("typowner", oid::OID),
        ("typlen", oid::INT2),
        ("typbyval", oid::BOOL),
        ("typtype", oid::CHAR),
        ("typcategory", oid::CHAR),
        ("typispreferred", oid::BOOL),
        ("typisdefined", oid::BOOL),
        ("typdelim", oid::CHAR),
        ("typrelid", oid::OID),
        ("typsubscript", oid::TEXT),
        ("typelem", oid::OID),
        ("typarray", oid::OID),
        ("typinput", oid::TEXT),
        ("typoutput", oid::TEXT),
        ("typreceive", oid::TEXT),
        ("typsend", oid::TEXT),
        ("typalign", oid::CHAR),
        ("typstorage", oid::CHAR),
        ("typnotnull", oid::BOOL),
        ("typbasetype", oid::OID),
        ("typtypmod", oid::INT4),
        ("typndims", oid::INT4),
        ("typcollation", oid::OID),
        ("typdefault", oid::TEXT),
    ]);
    for t in types::TYPES {
        let base = if t.elem != 0 {
            "array"
        } else {
            t.name.trim_start_matches('_')
        };
        let collatable = matches!(t.oid, oid::TEXT | oid::VARCHAR | oid::NAME);
        r.row(vec![
            o(t.oid),
            text(t.name),
            o(namespace_oid(t.schema)),
            o(OWNER_OID),
            i2(t.len),
            b(matches!(t.len, 1 | 2 | 4 | 8)),
            ch(t.kind),
            ch(type_category(t)),
            b(matches!(
                t.oid,
                oid::BOOL | oid::FLOAT8 | oid::TEXT | oid::OID
            )),
            b(true),
            ch(b','),
            o(0),
            text(if t.elem != 0 {
                "array_subscript_handler"
            } else {
                "-"
            }),
            o(t.elem),
            o(t.array),
            text(&format!("{base}_in")),
            text(&format!("{base}_out")),
            text(&format!("{base}_recv")),
            text(&format!("{base}_send")),
            ch(match t.len {
                1 => b'c',
                2 => b's',
                8 => b'd',
                _ => b'i',
            }),
            ch(if t.len == -1 { b'x' } else { b'p' }),
            b(false),
            o(0),
            i4(-1),
            i4(0),
            o(if collatable { 100 } else { 0 }),
            None,
        ]);
    }
    r.done()
}

fn pg_namespace() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("nspname", oid::NAME),
        ("nspowner", oid::OID),
        ("nspacl", oid::TEXT),
    ]);
    for (id, name) in [
        (99, "pg_toast"),
        (PG_CATALOG_OID, "pg_catalog"),
        (PUBLIC_OID, "public"),
        (INFORMATION_SCHEMA_OID, "information_schema"),
    ] {
        r.row(vec![o(id), text(name), o(OWNER_OID), None]);
    }
    r.done()
}

/// Tables in OID order (as stored), each with its indexes: the primary
/// key's first, then the secondary ones by name.
pub(super) fn sorted_tables(tables: &Tables) -> Vec<&Table> {
    let mut v: Vec<&Table> = tables
        .iter()
        .filter(|t| !sequences::is_stored_sequence(&t.def().columns))
        .collect();
    v.sort_by_key(|t| t.def().oid);
    v
}

/// One index of a table as the catalog shows it.
pub struct IndexInfo {
    /// Index OID.
    pub oid: u32,
    /// Index name.
    pub name: String,
    /// Positions of the indexed columns.
    pub columns: Vec<usize>,
    /// The primary key's index.
    pub primary: bool,
    /// A unique index: the primary key's or a UNIQUE constraint's.
    pub unique: bool,
    /// Access method.
    pub method: IndexMethod,
    /// The indexed expression (`pg_get_expr` text), for an index on one.
    pub expression: Option<String>,
    /// A partial index's predicate (`pg_get_expr` text).
    pub predicate: Option<String>,
    /// The type of the indexed values (the expression's, for an index on
    /// one).
    pub value_type: ColumnType,
    /// The options `WITH (…)` gave.
    pub with: Vec<String>,
}

/// The indexes of `table`: the primary key's, the UNIQUE constraints'
/// (named as their constraints, as in PostgreSQL), then the secondary
/// ones by name.
pub fn indexes(table: &Table) -> Vec<IndexInfo> {
    let def = table.def();
    let mut out = Vec::new();
    let key_index = |oid, name: String, columns: &[usize], primary| IndexInfo {
        oid,
        name,
        columns: columns.to_vec(),
        primary,
        unique: true,
        method: IndexMethod::BTree,
        expression: None,
        predicate: None,
        value_type: def.columns[columns[0]].ty,
        with: Vec::new(),
    };
    if !def.primary_key.is_empty() {
        out.push(key_index(
            PKEY_OID_BASE + def.oid,
            def.pkey_name(),
            &def.primary_key,
            true,
        ));
    }
    out.extend(def.constraints.unique.iter().enumerate().map(|(i, u)| {
        key_index(
            unique_index_oid(def.oid, i),
            u.name.clone(),
            &u.columns,
            false,
        )
    }));
    let mut secondary: Vec<_> = table.indexes().iter().collect();
    secondary.sort_by(|a, b| a.def.name.cmp(&b.def.name));
    out.extend(secondary.into_iter().map(|i| IndexInfo {
        oid: i.def.oid,
        name: i.def.name.clone(),
        columns: vec![i.def.column],
        primary: false,
        unique: false,
        method: i.def.method,
        expression: i.def.expression.clone(),
        predicate: i.def.predicate.clone(),
        value_type: i.value_type(def),
        with: i.def.with.clone(),
    }));
    out
}

fn am_oid(method: IndexMethod) -> u32 {
    match method {
        IndexMethod::BTree => BTREE_AM_OID,
        IndexMethod::Gin { .. } => GIN_AM_OID,
        IndexMethod::Hnsw { .. } => HNSW_AM_OID,
        IndexMethod::IvfFlat { .. } => IVFFLAT_AM_OID,
    }
}

/// pgvector's operator class name for a vector type and metric.
pub fn opclass_name(ty: VectorType, metric: Metric) -> String {
    let t = match ty {
        VectorType::Vector => "vector",
        VectorType::HalfVec => "halfvec",
        VectorType::SparseVec => "sparsevec",
        VectorType::Bit => "bit",
    };
    let m = match metric {
        Metric::L2 => "l2",
        Metric::InnerProduct => "ip",
        Metric::Cosine => "cosine",
        Metric::L1 => "l1",
        Metric::Hamming => "hamming",
        Metric::Jaccard => "jaccard",
    };
    format!("{t}_{m}_ops")
}

/// The options `WITH (…)` gave an index, with their values, in order.
fn given_options(index: &IndexInfo) -> Vec<(&str, u32)> {
    index
        .with
        .iter()
        .filter_map(|name| {
            let value = match (index.method, name.as_str()) {
                (IndexMethod::Hnsw { m, .. }, "m") => m,
                (
                    IndexMethod::Hnsw {
                        ef_construction, ..
                    },
                    "ef_construction",
                ) => ef_construction,
                (IndexMethod::IvfFlat { lists, .. }, "lists") => lists,
                _ => return None,
            };
            Some((name.as_str(), value))
        })
        .collect()
}

/// `pg_class.reloptions` of an index: the options given, as
/// `{m=16,ef_construction=64}`; NULL when none were.
fn index_options(index: &IndexInfo) -> Datum {
    let options = given_options(index);
    (!options.is_empty()).then(|| {
        Value::Array(Array::new(
            oid::TEXT,
            options
                .into_iter()
                .map(|(k, v)| Some(Value::Text(format!("{k}={v}"))))
                .collect(),
        ))
    })
}

/// An `int2vector` / `oidvector` datum.
fn vector_of(elem: u32, items: impl IntoIterator<Item = Value>) -> Datum {
    Some(Value::Array(Array {
        elem,
        items: items.into_iter().map(Some).collect(),
        vector: true,
    }))
}

/// The operator class of column `column` in index `index` of `table`:
/// pgvector's for a vector index, PostgreSQL's default btree class of the
/// column's type otherwise (0 for a type without one here).
fn index_opclass(table: &Table, index: &IndexInfo, column: usize) -> u32 {
    let ty = match index.columns.as_slice() {
        [_] => index.value_type,
        _ => table.def().columns[column].ty,
    };
    let gin = match index.method {
        IndexMethod::Gin { path_ops: true } => Some("jsonb_path_ops"),
        IndexMethod::Gin { path_ops: false } => Some("jsonb_ops"),
        _ => None,
    };
    if let Some(name) = gin {
        return opclasses()
            .into_iter()
            .find(|c| c.am == GIN_AM_OID && c.name == name)
            .map_or(0, |c| c.oid);
    }
    match (index.method.metric(), ty.vector_type()) {
        (Some(metric), Some((vt, _))) => opclasses()
            .into_iter()
            .find(|c| c.am == am_oid(index.method) && c.name == opclass_name(vt, metric))
            .map_or(0, |c| c.oid),
        _ => {
            let type_oid = super::types::type_oid(ty);
            opclasses()
                .into_iter()
                .find(|c| c.am == BTREE_AM_OID && c.default && c.input == type_oid)
                .map_or(0, |c| c.oid)
        }
    }
}

/// `pg_get_indexdef(index, column, pretty)`: the indexed column's name
/// or expression (empty past the last column, as PostgreSQL answers).
pub fn index_column_by_oid(
    index: u32,
    column: i64,
    tables: &Tables,
    pretty: bool,
) -> Option<String> {
    for t in tables.iter() {
        if let Some(i) = indexes(t).into_iter().find(|i| i.oid == index) {
            let at = usize::try_from(column).ok()?.checked_sub(1)?;
            return Some(match (&i.expression, i.columns.get(at)) {
                (Some(e), Some(_)) => index_key(e, pretty),
                (None, Some(&c)) => t.def().columns[c].name.clone(),
                (_, None) => String::new(),
            });
        }
    }
    None
}

/// `pg_get_expr(text, relation, true)` of an index's expression or
/// predicate of `relation`: printed pretty; any other text (a column
/// default) as it is kept.
pub fn pretty_index_expr(text: &str, relation: u32, tables: &Tables) -> String {
    let is_index_text = tables.by_oid(relation).is_some_and(|t| {
        t.indexes().iter().any(|i| {
            i.def.expression.as_deref() == Some(text) || i.def.predicate.as_deref() == Some(text)
        })
    });
    match is_index_text {
        true => shown_expr(text, true).0,
        false => text.to_string(),
    }
}

/// An index expression as an index's key list shows it: a function call
/// alone, anything else in parentheses.
fn index_key(text: &str, pretty: bool) -> String {
    match shown_expr(text, pretty) {
        (text, true) => text,
        (text, false) => format!("({text})"),
    }
}

/// An index expression or predicate stored in `pg_get_expr` form, as
/// `pg_get_expr(…, pretty)` prints it.
fn shown_expr(text: &str, pretty: bool) -> (String, bool) {
    match super::ddl::parse_expr(text) {
        Ok(e) => (
            match pretty {
                true => super::index_expr::deparse_pretty(&e),
                false => text.to_string(),
            },
            super::index_expr::looks_like_function(&e),
        ),
        Err(_) => (text.to_string(), false),
    }
}

/// `CREATE [UNIQUE] INDEX …` as `pg_get_indexdef(index, 0, pretty)`
/// prints it.
pub fn index_definition(table: &Table, index: &IndexInfo, pretty: bool) -> String {
    let def = table.def();
    let keys: Vec<String> = index
        .columns
        .iter()
        .map(|&c| {
            let key = match &index.expression {
                Some(e) => index_key(e, pretty),
                None => def.columns[c].name.clone(),
            };
            // pgvector's operator class is shown unless it is the
            // access method's default for the type.
            let opclass = index_opclass(table, index, c);
            match opclasses().into_iter().find(|o| o.oid == opclass) {
                Some(o) if o.am != BTREE_AM_OID && !o.default => format!("{key} {}", o.name),
                _ => key,
            }
        })
        .collect();
    let given: Vec<String> = given_options(index)
        .into_iter()
        .map(|(k, v)| format!("{k}='{v}'"))
        .collect();
    let options = if given.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", given.join(", "))
    };
    let predicate = match &index.predicate {
        Some(p) => format!(" WHERE {}", shown_expr(p, pretty).0),
        None => String::new(),
    };
    format!(
        "CREATE {}INDEX {} ON public.{} USING {} ({}){options}{predicate}",
        if index.unique { "UNIQUE " } else { "" },
        index.name,
        def.name,
        index.method.name(),
        keys.join(", ")
    )
}

/// `PRIMARY KEY (a, b)` as `pg_get_constraintdef` prints it.
pub fn primary_key_definition(table: &Table) -> String {
    let def = table.def();
    format!("PRIMARY KEY ({})", def.column_list(&def.primary_key))
}

/// `UNIQUE (a, b)` as `pg_get_constraintdef` prints it.
pub fn unique_definition(table: &Table, columns: &[usize]) -> String {
    format!("UNIQUE ({})", table.def().column_list(columns))
}

fn pg_class(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("relname", oid::NAME),
        ("relnamespace", oid::OID),
        ("reltype", oid::OID),
        ("reloftype", oid::OID),
        ("relowner", oid::OID),
        ("relam", oid::OID),
        ("relfilenode", oid::OID),
        ("reltablespace", oid::OID),
        ("relpages", oid::INT4),
        ("reltuples", oid::FLOAT4),
        ("relallvisible", oid::INT4),
        ("reltoastrelid", oid::OID),
        ("relhasindex", oid::BOOL),
        ("relisshared", oid::BOOL),
        ("relpersistence", oid::CHAR),
        ("relkind", oid::CHAR),
        ("relnatts", oid::INT2),
        ("relchecks", oid::INT2),
        ("relhasrules", oid::BOOL),
        ("relhastriggers", oid::BOOL),
        ("relhassubclass", oid::BOOL),
        ("relrowsecurity", oid::BOOL),
        ("relforcerowsecurity", oid::BOOL),
        ("relispopulated", oid::BOOL),
        ("relreplident", oid::CHAR),
        ("relispartition", oid::BOOL),
        ("relacl", oid::TEXT),
        ("reloptions", TEXT_ARRAY),
        ("relpartbound", oid::TEXT),
    ]);
    // A foreign key is carried out by triggers on both of its tables in
    // PostgreSQL, and psql asks for constraints only where there are some.
    let with_triggers: HashSet<u32> = tables
        .iter()
        .flat_map(|t| {
            let def = t.def();
            def.constraints.foreign_keys.iter().flat_map(move |f| {
                let referenced = tables.get(&f.table).map(|r| r.def().oid);
                std::iter::once(def.oid).chain(referenced)
            })
        })
        .collect();
    let mut add =
        |id: u32, name: &str, kind: u8, am: u32, natts: usize, has_index: bool, options: Datum| {
            r.row(vec![
                o(id),
                text(name),
                o(PUBLIC_OID),
                o(0),
                o(0),
                o(OWNER_OID),
                o(am),
                o(id),
                o(0),
                i4(0),
                Some(Value::Float4(-1.0)),
                i4(0),
                o(0),
                b(has_index),
                b(false),
                ch(b'p'),
                ch(kind),
                i2(natts as i16),
                i2(0),
                b(false),
                b(with_triggers.contains(&id)),
                b(false),
                b(false),
                b(false),
                b(true),
                ch(if kind == b'r' { b'd' } else { b'n' }),
                b(false),
                None,
                options,
                None,
            ]);
        };
    for t in sorted_tables(tables) {
        let def = t.def();
        let idx = indexes(t);
        add(
            def.oid,
            &def.name,
            b'r',
            2,
            def.columns.len(),
            !idx.is_empty(),
            None,
        );
        for i in idx {
            add(
                i.oid,
                &i.name,
                b'i',
                am_oid(i.method),
                i.columns.len(),
                false,
                index_options(&i),
            );
        }
    }
    for s in sequences::all(tables) {
        add(s.oid, &s.name, b'S', 0, 3, false, None);
    }
    r.done()
}

/// The `pg_tables` view.
fn pg_tables(tables: &Tables, session: &Session) -> Relation {
    let mut r = Builder::new(&[
        ("schemaname", oid::NAME),
        ("tablename", oid::NAME),
        ("tableowner", oid::NAME),
        ("tablespace", oid::NAME),
        ("hasindexes", oid::BOOL),
        ("hasrules", oid::BOOL),
        ("hastriggers", oid::BOOL),
        ("rowsecurity", oid::BOOL),
    ]);
    for t in sorted_tables(tables) {
        r.row(vec![
            text("public"),
            text(&t.def().name),
            text(&session.user),
            None,
            b(!indexes(t).is_empty()),
            b(false),
            b(false),
            b(false),
        ]);
    }
    r.done()
}

/// The `pg_indexes` view.
fn pg_indexes(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("schemaname", oid::NAME),
        ("tablename", oid::NAME),
        ("indexname", oid::NAME),
        ("tablespace", oid::NAME),
        ("indexdef", oid::TEXT),
    ]);
    for t in sorted_tables(tables) {
        for i in indexes(t) {
            r.row(vec![
                text("public"),
                text(&t.def().name),
                text(&i.name),
                None,
                text(&index_definition(t, &i, false)),
            ]);
        }
    }
    r.done()
}

fn pg_attribute(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("attrelid", oid::OID),
        ("attname", oid::NAME),
        ("atttypid", oid::OID),
        ("attlen", oid::INT2),
        ("attnum", oid::INT2),
        ("atttypmod", oid::INT4),
        ("attndims", oid::INT2),
        ("attbyval", oid::BOOL),
        ("attalign", oid::CHAR),
        ("attstorage", oid::CHAR),
        ("attnotnull", oid::BOOL),
        ("atthasdef", oid::BOOL),
        ("atthasmissing", oid::BOOL),
        ("attidentity", oid::CHAR),
        ("attgenerated", oid::CHAR),
        ("attisdropped", oid::BOOL),
        ("attislocal", oid::BOOL),
        ("attinhcount", oid::INT2),
        ("attcollation", oid::OID),
        ("attacl", oid::TEXT),
        ("attoptions", oid::TEXT),
        ("attstattarget", oid::INT2),
        ("attcompression", oid::CHAR),
    ]);
    for t in sorted_tables(tables) {
        let def = t.def();
        // An index's column on an expression is named after it and has its
        // type, as in PostgreSQL.
        let mut add = |rel: u32, num: usize, c: usize, name: &str, ty: ColumnType| {
            let col = &def.columns[c];
            let type_oid = super::types::type_oid(ty);
            let len = types::by_oid(type_oid).map_or(-1, |t| t.len);
            let collatable = matches!(type_oid, oid::TEXT | oid::VARCHAR);
            r.row(vec![
                o(rel),
                text(name),
                o(type_oid),
                i2(len),
                i2(num as i16),
                i4(super::types::typmod(ty)),
                i2(0),
                b(matches!(len, 1 | 2 | 4 | 8)),
                ch(b'i'),
                // pgvector's types are stored out of line uncompressed.
                ch(match type_oid {
                    oid::VECTOR | oid::HALFVEC | oid::SPARSEVEC => b'e',
                    _ if len == -1 => b'x',
                    _ => b'p',
                }),
                b(col.not_null || def.primary_key.contains(&c)),
                b(col.shown_default().is_some() && rel == def.oid),
                b(false),
                ch(if col.is_identity() && rel == def.oid {
                    b'd'
                } else {
                    0
                }),
                ch(0),
                b(false),
                b(true),
                i2(0),
                o(if collatable { 100 } else { 0 }),
                None,
                None,
                None,
                ch(0),
            ]);
        };
        for (c, col) in def.columns.iter().enumerate() {
            add(def.oid, c + 1, c, &col.name, col.ty);
        }
        for i in indexes(t) {
            for (n, &c) in i.columns.iter().enumerate() {
                let name = match &i.expression {
                    Some(e) => super::ddl::parse_expr(e)
                        .ok()
                        .and_then(|e| super::index_expr::name_part(&e))
                        .unwrap_or_else(|| "expr".into()),
                    None => def.columns[c].name.clone(),
                };
                add(i.oid, n + 1, c, &name, i.value_type);
            }
        }
    }
    r.done()
}

fn pg_attrdef(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("adrelid", oid::OID),
        ("adnum", oid::INT2),
        ("adbin", oid::TEXT),
    ]);
    for t in sorted_tables(tables) {
        let def = t.def();
        for (i, c) in def.columns.iter().enumerate() {
            if let Some(d) = deparsed_default(c) {
                let id = PKEY_OID_BASE / 2 + def.oid * 64 + i as u32;
                r.row(vec![o(id), o(def.oid), i2(i as i16 + 1), text(&d)]);
            }
        }
    }
    r.done()
}

fn pg_index(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("indexrelid", oid::OID),
        ("indrelid", oid::OID),
        ("indnatts", oid::INT2),
        ("indnkeyatts", oid::INT2),
        ("indisunique", oid::BOOL),
        ("indnullsnotdistinct", oid::BOOL),
        ("indisprimary", oid::BOOL),
        ("indisexclusion", oid::BOOL),
        ("indimmediate", oid::BOOL),
        ("indisclustered", oid::BOOL),
        ("indisvalid", oid::BOOL),
        ("indcheckxmin", oid::BOOL),
        ("indisready", oid::BOOL),
        ("indislive", oid::BOOL),
        ("indisreplident", oid::BOOL),
        ("indkey", oid::INT2VECTOR),
        ("indcollation", oid::OIDVECTOR),
        ("indclass", oid::OIDVECTOR),
        ("indoption", oid::INT2VECTOR),
        ("indexprs", oid::TEXT),
        ("indpred", oid::TEXT),
    ]);
    for t in sorted_tables(tables) {
        for i in indexes(t) {
            let n = i.columns.len() as i16;
            r.row(vec![
                o(i.oid),
                o(t.def().oid),
                i2(n),
                i2(n),
                b(i.unique),
                b(false),
                b(i.primary),
                b(false),
                b(true),
                b(false),
                b(true),
                b(false),
                b(true),
                b(true),
                b(false),
                vector_of(
                    oid::INT2,
                    i.columns.iter().map(|&c| {
                        Value::Int2(if i.expression.is_some() {
                            0
                        } else {
                            c as i16 + 1
                        })
                    }),
                ),
                vector_of(
                    oid::OID,
                    i.columns.iter().map(|&c| {
                        let ty = super::types::type_oid(t.def().columns[c].ty);
                        Value::Oid(if matches!(ty, oid::TEXT | oid::VARCHAR) {
                            100
                        } else {
                            0
                        })
                    }),
                ),
                vector_of(
                    oid::OID,
                    i.columns
                        .iter()
                        .map(|&c| Value::Oid(index_opclass(t, &i, c))),
                ),
                vector_of(oid::INT2, i.columns.iter().map(|_| Value::Int2(0))),
                i.expression.as_deref().map(|e| Value::Text(e.to_string())),
                i.predicate.as_deref().map(|p| Value::Text(p.to_string())),
            ]);
        }
    }
    r.done()
}

/// A UNIQUE or FOREIGN KEY constraint's OID is this plus 64 times the
/// table's OID plus its position among the table's constraints.
const CONSTRAINT_OID_BASE: u32 = 3_000_000_000;
/// A UNIQUE constraint's index OID is this plus 64 times the table's OID
/// plus the constraint's position.
const UNIQUE_INDEX_OID_BASE: u32 = 3_600_000_000;

/// The OID of UNIQUE constraint `i`'s index (or constraint) from `base`.
fn keyed_oid(base: u32, table: u32, i: usize) -> u32 {
    base.wrapping_add(table.wrapping_mul(64))
        .wrapping_add(i as u32)
}

fn unique_index_oid(table: u32, i: usize) -> u32 {
    keyed_oid(UNIQUE_INDEX_OID_BASE, table, i)
}

/// One constraint of a table as `pg_constraint` shows it.
pub(super) struct ConstraintInfo<'a> {
    oid: u32,
    pub(super) name: String,
    /// `p`, `u` or `f`.
    pub(super) kind: u8,
    pub(super) columns: Vec<usize>,
    /// The FOREIGN KEY's definition, for `f`.
    pub(super) foreign: Option<&'a ForeignKey>,
}

/// The constraints of `table`: its primary key, then its UNIQUE
/// constraints, then its FOREIGN KEYs, each in declaration order.
pub(super) fn constraints(table: &Table) -> Vec<ConstraintInfo<'_>> {
    let def = table.def();
    let primary = (!def.primary_key.is_empty()).then(|| ConstraintInfo {
        oid: PKEY_OID_BASE / 4 + def.oid,
        name: def.pkey_name(),
        kind: b'p',
        columns: def.primary_key.clone(),
        foreign: None,
    });
    let unique = def
        .constraints
        .unique
        .iter()
        .map(|u| (u.name.clone(), b'u', &u.columns, None));
    let foreign = def
        .constraints
        .foreign_keys
        .iter()
        .map(|f| (f.name.clone(), b'f', &f.columns, Some(f)));
    primary
        .into_iter()
        .chain(
            unique
                .chain(foreign)
                .enumerate()
                .map(|(i, (name, kind, columns, foreign))| ConstraintInfo {
                    oid: keyed_oid(CONSTRAINT_OID_BASE, def.oid, i),
                    name,
                    kind,
                    columns: columns.clone(),
                    foreign,
                }),
        )
        .collect()
}

/// `FOREIGN KEY (a) REFERENCES p(id) ON DELETE CASCADE`, `UNIQUE (a, b)`
/// or `PRIMARY KEY (id)` as `pg_get_constraintdef` prints them.
fn constraint_definition(table: &Table, c: &ConstraintInfo, tables: &Tables) -> String {
    let def = table.def();
    let Some(fk) = c.foreign else {
        return match c.kind {
            b'p' => primary_key_definition(table),
            _ => unique_definition(table, &c.columns),
        };
    };
    let referenced = tables
        .get(&fk.table)
        .map(|p| p.def().column_list(&fk.referenced))
        .unwrap_or_default();
    let on_update = match fk.on_update {
        OnUpdate::NoAction => "",
        OnUpdate::Restrict => " ON UPDATE RESTRICT",
    };
    let on_delete = match fk.on_delete {
        OnDelete::NoAction => "",
        OnDelete::Restrict => " ON DELETE RESTRICT",
        OnDelete::Cascade => " ON DELETE CASCADE",
        OnDelete::SetNull => " ON DELETE SET NULL",
    };
    format!(
        "FOREIGN KEY ({}) REFERENCES {}({referenced}){on_update}{on_delete}",
        def.column_list(&c.columns),
        fk.table
    )
}

/// The OID of the index of `table`'s primary key or UNIQUE constraint
/// on `columns` (0 if none).
fn key_index_oid(table: &Table, columns: &[usize]) -> u32 {
    indexes(table)
        .iter()
        .find(|i| i.unique && i.columns == columns)
        .map_or(0, |i| i.oid)
}

fn int2_positions(columns: &[usize]) -> Datum {
    Some(Value::Array(Array::new(
        oid::INT2,
        columns
            .iter()
            .map(|&c| Some(Value::Int2(c as i16 + 1)))
            .collect(),
    )))
}

/// `confupdtype`: `a` NO ACTION, `r` RESTRICT.
fn update_action(action: OnUpdate) -> u8 {
    match action {
        OnUpdate::NoAction => b'a',
        OnUpdate::Restrict => b'r',
    }
}

/// `confdeltype`: `a` NO ACTION, `r` RESTRICT, `c` CASCADE, `n` SET NULL.
fn delete_action(action: OnDelete) -> u8 {
    match action {
        OnDelete::NoAction => b'a',
        OnDelete::Restrict => b'r',
        OnDelete::Cascade => b'c',
        OnDelete::SetNull => b'n',
    }
}

fn pg_constraint(tables: &Tables) -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("conname", oid::NAME),
        ("connamespace", oid::OID),
        ("contype", oid::CHAR),
        ("condeferrable", oid::BOOL),
        ("condeferred", oid::BOOL),
        ("convalidated", oid::BOOL),
        ("conrelid", oid::OID),
        ("contypid", oid::OID),
        ("conindid", oid::OID),
        ("conparentid", oid::OID),
        ("confrelid", oid::OID),
        ("confupdtype", oid::CHAR),
        ("confdeltype", oid::CHAR),
        ("confmatchtype", oid::CHAR),
        ("conkey", INT2_ARRAY),
        ("confkey", INT2_ARRAY),
    ]);
    for t in sorted_tables(tables) {
        let def = t.def();
        for c in constraints(t) {
            let parent = c.foreign.and_then(|f| tables.get(&f.table));
            let index = match (c.foreign, parent) {
                (Some(f), Some(p)) => key_index_oid(p, &f.referenced),
                _ => key_index_oid(t, &c.columns),
            };
            let (update, delete, matching) = match c.foreign {
                None => (b' ', b' ', b' '),
                Some(f) => (update_action(f.on_update), delete_action(f.on_delete), b's'),
            };
            r.row(vec![
                o(c.oid),
                text(&c.name),
                o(PUBLIC_OID),
                ch(c.kind),
                b(false),
                b(false),
                b(true),
                o(def.oid),
                o(0),
                o(index),
                o(0),
                o(parent.map_or(0, |p| p.def().oid)),
                ch(update),
                ch(delete),
                ch(matching),
                int2_positions(&c.columns),
                c.foreign.and_then(|f| int2_positions(&f.referenced)),
            ]);
        }
    }
    r.done()
}

fn pg_am() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("amname", oid::NAME),
        ("amhandler", oid::TEXT),
        ("amtype", oid::CHAR),
    ]);
    for (id, name, kind) in [
        (2, "heap", b't'),
        (403, "btree", b'i'),
        (405, "hash", b'i'),
        (783, "gist", b'i'),
        (GIN_AM_OID, "gin", b'i'),
        (4000, "spgist", b'i'),
        (3580, "brin", b'i'),
        (IVFFLAT_AM_OID, "ivfflat", b'i'),
        (HNSW_AM_OID, "hnsw", b'i'),
    ] {
        r.row(vec![
            o(id),
            text(name),
            text(&format!("{name}handler")),
            ch(kind),
        ]);
    }
    r.done()
}

/// One operator class.
struct OpClass {
    oid: u32,
    am: u32,
    name: String,
    input: u32,
    default: bool,
}

/// The btree classes of the column types here (PostgreSQL's OIDs) and
/// pgvector's classes for HNSW and IVFFlat (OIDs of our own, in a fixed
/// order; `vector_l2_ops` is the IVFFlat default, as in pgvector).
fn opclasses() -> Vec<OpClass> {
    let mut out: Vec<OpClass> = [
        (424, "bool_ops", oid::BOOL),
        (1979, "int2_ops", oid::INT2),
        (1978, "int4_ops", oid::INT4),
        (3124, "int8_ops", oid::INT8),
        (1970, "float4_ops", oid::FLOAT4),
        (3123, "float8_ops", oid::FLOAT8),
        (3126, "text_ops", oid::TEXT),
        (1981, "oid_ops", oid::OID),
        (3122, "date_ops", oid::DATE),
        (3127, "timestamptz_ops", oid::TIMESTAMPTZ),
        (10065, "uuid_ops", oid::UUID),
    ]
    .into_iter()
    .map(|(id, name, input)| OpClass {
        oid: id,
        am: BTREE_AM_OID,
        name: name.to_string(),
        input,
        default: true,
    })
    .chain(
        [(4036, "jsonb_ops", true), (4037, "jsonb_path_ops", false)].map(|(id, name, default)| {
            OpClass {
                oid: id,
                am: GIN_AM_OID,
                name: name.to_string(),
                input: oid::JSONB,
                default,
            }
        }),
    )
    .collect();
    let mut id = 16_500;
    for (ty, type_oid) in [
        (VectorType::Vector, oid::VECTOR),
        (VectorType::HalfVec, oid::HALFVEC),
        (VectorType::SparseVec, oid::SPARSEVEC),
        (VectorType::Bit, oid::BIT),
    ] {
        for metric in Metric::ALL {
            let fits =
                (ty == VectorType::Bit) == matches!(metric, Metric::Hamming | Metric::Jaccard);
            if !fits {
                continue;
            }
            for am in [HNSW_AM_OID, IVFFLAT_AM_OID] {
                id += 1;
                out.push(OpClass {
                    oid: id,
                    am,
                    name: opclass_name(ty, metric),
                    input: type_oid,
                    default: am == IVFFLAT_AM_OID
                        && ty == VectorType::Vector
                        && metric == Metric::L2,
                });
            }
        }
    }
    out
}

fn pg_opclass() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("opcmethod", oid::OID),
        ("opcname", oid::NAME),
        ("opcnamespace", oid::OID),
        ("opcintype", oid::OID),
        ("opcdefault", oid::BOOL),
    ]);
    for c in opclasses() {
        let schema = if c.am == BTREE_AM_OID {
            PG_CATALOG_OID
        } else {
            PUBLIC_OID
        };
        r.row(vec![
            o(c.oid),
            o(c.am),
            text(&c.name),
            o(schema),
            o(c.input),
            b(c.default),
        ]);
    }
    r.done()
}

fn pg_extension() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("extname", oid::NAME),
        ("extowner", oid::OID),
        ("extnamespace", oid::OID),
        ("extrelocatable", oid::BOOL),
        ("extversion", oid::TEXT),
    ]);
    r.row(vec![
        o(13_001),
        text("plpgsql"),
        o(OWNER_OID),
        o(PG_CATALOG_OID),
        b(false),
        text("1.0"),
    ]);
    r.row(vec![
        o(16_384),
        text("vector"),
        o(OWNER_OID),
        o(PUBLIC_OID),
        b(true),
        text("0.8.2"),
    ]);
    r.done()
}

fn pg_database(session: &Session) -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("datname", oid::NAME),
        ("datdba", oid::OID),
        ("encoding", oid::INT4),
        ("datlocprovider", oid::CHAR),
        ("datistemplate", oid::BOOL),
        ("datallowconn", oid::BOOL),
        ("datconnlimit", oid::INT4),
        ("dattablespace", oid::OID),
        ("datcollate", oid::TEXT),
        ("datctype", oid::TEXT),
        ("datacl", oid::TEXT),
    ]);
    let mut names = vec![(5, "postgres"), (1, "template1"), (4, "template0")];
    if !names.iter().any(|(_, n)| *n == session.database) {
        names.push((16_383, session.database.as_str()));
    }
    for (id, name) in names {
        r.row(vec![
            o(id),
            text(name),
            o(OWNER_OID),
            i4(6),
            ch(b'c'),
            b(name.starts_with("template")),
            b(name != "template0"),
            i4(-1),
            o(1663),
            text("C.UTF-8"),
            text("C.UTF-8"),
            None,
        ]);
    }
    r.done()
}

fn pg_roles(session: &Session) -> Relation {
    let mut r = Builder::new(&[
        ("rolname", oid::NAME),
        ("rolsuper", oid::BOOL),
        ("rolinherit", oid::BOOL),
        ("rolcreaterole", oid::BOOL),
        ("rolcreatedb", oid::BOOL),
        ("rolcanlogin", oid::BOOL),
        ("rolreplication", oid::BOOL),
        ("rolconnlimit", oid::INT4),
        ("rolpassword", oid::TEXT),
        ("rolvaliduntil", oid::TIMESTAMPTZ),
        ("rolbypassrls", oid::BOOL),
        ("rolconfig", TEXT_ARRAY),
        ("oid", oid::OID),
    ]);
    // A superuser's attributes are all true; another user has none of
    // the privileged ones.
    let (t, s) = (b(true), b(session.superuser));
    r.row(vec![
        text(&session.user),
        s.clone(),
        t.clone(),
        s.clone(),
        s.clone(),
        t,
        s.clone(),
        i4(-1),
        text("********"),
        None,
        s,
        None,
        o(OWNER_OID),
    ]);
    r.done()
}

fn pg_user(session: &Session) -> Relation {
    let mut r = Builder::new(&[
        ("usename", oid::NAME),
        ("usesysid", oid::OID),
        ("usecreatedb", oid::BOOL),
        ("usesuper", oid::BOOL),
        ("userepl", oid::BOOL),
        ("usebypassrls", oid::BOOL),
        ("passwd", oid::TEXT),
    ]);
    r.row(vec![
        text(&session.user),
        o(OWNER_OID),
        b(session.superuser),
        b(session.superuser),
        b(session.superuser),
        b(session.superuser),
        text("********"),
    ]);
    r.done()
}

fn pg_settings(session: &Session) -> Relation {
    let mut r = Builder::new(&[
        ("name", oid::TEXT),
        ("setting", oid::TEXT),
        ("unit", oid::TEXT),
        ("category", oid::TEXT),
        ("short_desc", oid::TEXT),
        ("context", oid::TEXT),
        ("vartype", oid::TEXT),
        ("source", oid::TEXT),
    ]);
    for (name, value, desc) in session.show_all() {
        r.row(vec![
            text(name),
            text(&value),
            None,
            text(""),
            text(desc),
            text("user"),
            text("string"),
            text("default"),
        ]);
    }
    r.done()
}

fn pg_collation() -> Relation {
    let mut r = Builder::new(&[
        ("oid", oid::OID),
        ("collname", oid::NAME),
        ("collnamespace", oid::OID),
        ("collowner", oid::OID),
        ("collprovider", oid::CHAR),
        ("collisdeterministic", oid::BOOL),
        ("collencoding", oid::INT4),
    ]);
    for (id, name, provider) in [
        (100, "default", b'd'),
        (950, "C", b'c'),
        (951, "POSIX", b'c'),
    ] {
        r.row(vec![
            o(id),
            text(name),
            o(PG_CATALOG_OID),
            o(OWNER_OID),
            ch(provider),
            b(true),
            i4(-1),
        ]);
    }
    r.done()
}

/// A column's default as `pg_get_expr` deparses it: a string constant
/// carries its column's type (`'x'::text`), as does a negative number
/// (`'-1'::integer`); anything else as written.
pub(super) fn deparsed_default(col: &ColumnDef) -> Option<String> {
    let d = col.shown_default()?;
    let type_oid = super::types::type_oid(col.ty);
    let typed = |literal: &str| {
        format_type(type_oid, None)
            .map_or_else(|| literal.to_string(), |t| format!("{literal}::{t}"))
    };
    let quoted = d.len() >= 2
        && d.starts_with('\'')
        && d.ends_with('\'')
        && !d[1..d.len() - 1].replace("''", "").contains('\'');
    let numeric_or_bool = matches!(
        type_oid,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8 | oid::BOOL
    );
    Some(if quoted && !numeric_or_bool {
        typed(d)
    } else if d.starts_with('-') && d[1..].parse::<f64>().is_ok() {
        typed(&format!("'{d}'"))
    } else {
        d.to_string()
    })
}

/// `format_type(type, typmod)`: the type's SQL name with its modifier.
pub fn format_type(type_oid: u32, typmod: Option<i32>) -> Option<String> {
    let t = types::by_oid(type_oid)?;
    let m = typmod.filter(|&m| m >= 0);
    let with = |base: &str, n: Option<i32>| match n {
        Some(n) => format!("{base}({n})"),
        None => base.to_string(),
    };
    Some(match type_oid {
        oid::BOOL => "boolean".into(),
        oid::INT2 => "smallint".into(),
        oid::INT4 => "integer".into(),
        oid::INT8 => "bigint".into(),
        oid::FLOAT4 => "real".into(),
        oid::FLOAT8 => "double precision".into(),
        oid::VARCHAR => with("character varying", m.map(|n| n - 4)),
        oid::TIMESTAMPTZ => "timestamp with time zone".into(),
        oid::TIMESTAMP => "timestamp without time zone".into(),
        oid::CHAR => "\"char\"".into(),
        oid::BIT => with("bit", m),
        oid::VARBIT => with("bit varying", m),
        oid::VECTOR | oid::HALFVEC | oid::SPARSEVEC => with(t.name, m),
        _ if t.elem != 0 => format!("{}[]", format_type(t.elem, typmod)?),
        _ => t.name.to_string(),
    })
}

/// The OID of the relation (table, index or catalog relation) named
/// `name` (`schema.name` allowed), for `::regclass` and `to_regclass`.
pub fn relation_oid(name: &str, tables: &Tables) -> Option<u32> {
    let name = name.trim().trim_matches('"');
    let (schema, rel) = match name.split_once('.') {
        Some((s, r)) => (Some(s.trim_matches('"')), r.trim_matches('"')),
        None => (None, name),
    };
    if schema.is_none_or(|s| s == "pg_catalog") {
        if let Some((_, id)) = CATALOG_OIDS.iter().find(|(n, _)| *n == rel) {
            return Some(*id);
        }
    }
    if schema.is_none_or(|s| s == "public") {
        if let Some(t) = tables.get(rel) {
            return Some(t.def().oid);
        }
        if let Some(s) = sequences::named(tables, rel) {
            return Some(s.oid);
        }
        for t in tables.iter() {
            if let Some(i) = indexes(t).into_iter().find(|i| i.name == rel) {
                return Some(i.oid);
            }
        }
    }
    None
}

/// The heap bytes a shard holds for relation `rel`: a table's rows, or an
/// index's entries; `None` when no relation has that OID.
pub fn relation_bytes(rel: u32, tables: &Tables) -> Option<usize> {
    match tables.by_oid(rel) {
        Some(t) => Some(t.heap_bytes()),
        None => tables.iter().find_map(|t| index_bytes(t, rel)),
    }
}

/// The heap bytes of every index of table `rel` (0 for an index);
/// `None` when no relation has that OID.
pub fn indexes_bytes(rel: u32, tables: &Tables) -> Option<usize> {
    match tables.by_oid(rel) {
        Some(t) => Some(
            indexes(t)
                .iter()
                .filter_map(|i| index_bytes(t, i.oid))
                .sum(),
        ),
        None => relation_bytes(rel, tables).map(|_| 0),
    }
}

/// The heap bytes of `table`'s index `index` (an OID as [`indexes`] gives
/// them), if it has that index.
fn index_bytes(table: &Table, index: u32) -> Option<usize> {
    let def = table.def();
    if index == PKEY_OID_BASE + def.oid && !def.primary_key.is_empty() {
        return Some(table.primary_key_bytes());
    }
    if let Some(i) =
        (0..def.constraints.unique.len()).find(|&i| unique_index_oid(def.oid, i) == index)
    {
        return Some(table.unique_bytes(i));
    }
    let mut secondary = table.indexes().iter();
    secondary
        .find(|i| i.def.oid == index)
        .map(|i| i.memory_bytes())
}

/// The name `::regclass::text` shows for `rel`, or the number as text.
pub fn relation_name(rel: u32, tables: &Tables) -> String {
    if let Some((name, _)) = CATALOG_OIDS.iter().find(|(_, id)| *id == rel) {
        return name.to_string();
    }
    if let Some(t) = tables.by_oid(rel) {
        return t.def().name.clone();
    }
    if let Some(s) = sequences::all(tables).into_iter().find(|s| s.oid == rel) {
        return s.name;
    }
    for t in tables.iter() {
        if let Some(i) = indexes(t).into_iter().find(|i| i.oid == rel) {
            return i.name;
        }
    }
    rel.to_string()
}

/// `pg_get_indexdef(index[, 0, pretty])`.
pub fn index_def_by_oid(index: u32, tables: &Tables, pretty: bool) -> Option<String> {
    tables.iter().find_map(|t| {
        indexes(t)
            .into_iter()
            .find(|i| i.oid == index)
            .map(|i| index_definition(t, &i, pretty))
    })
}

/// `pg_get_constraintdef(constraint)`.
pub fn constraint_def_by_oid(constraint: u32, tables: &Tables) -> Option<String> {
    let table = match constraint.checked_sub(CONSTRAINT_OID_BASE) {
        Some(rel) => tables.by_oid(rel / 64)?,
        None => tables.by_oid(constraint.checked_sub(PKEY_OID_BASE / 4)?)?,
    };
    constraints(table)
        .iter()
        .find(|c| c.oid == constraint)
        .map(|c| constraint_definition(table, c, tables))
}
