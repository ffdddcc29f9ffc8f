//! Schema changes: CREATE EXTENSION, CREATE/DROP TABLE, TRUNCATE, ALTER
//! TABLE ADD COLUMN, CREATE/DROP INDEX — checked as PostgreSQL and
//! pgvector check them (opclasses, options, dimensions) and added to the
//! transaction; indexes are built when it commits.

use super::expr::{eval, Env, NoRow};
use super::select::Ctx;
use super::select::{object_name, undefined_table};
use super::types::{column_type, type_oid, value_typmod};
use super::{dml, index_expr};
use super::{storage_error, Outcome};
use crate::shard::datum::Datum;
use crate::shard::storage::index_source::IndexSource;
use crate::shard::storage::{
    ColumnDef, ColumnType, Constraints, ForeignKey, IndexDef, IndexMethod, OnDelete, OnUpdate,
    Tables, Transaction, Unique, IDENTITY_MARK,
};
use crate::sql::fold;
use crate::wire::types::oid;
use crate::wire::{PgError, Severity};
use ann::{Metric, VectorType};
use sqlparser::ast::{
    AlterTable, AlterTableOperation, ColumnOption, CreateIndex, CreateTable, Expr,
    ForeignKeyConstraint, GeneratedAs, Ident, IndexType, NullsDistinctOption, ObjectName,
    ObjectType, ReferentialAction, TableConstraint, UniqueConstraint,
};

pub(super) fn notice(code: &'static str, message: String) -> PgError {
    PgError::new(code, message).with_severity(Severity::Notice)
}

/// `CREATE EXTENSION [IF NOT EXISTS] vector`: pgvector is built in.
pub fn create_extension(name: &str) -> Result<Outcome, PgError> {
    if fold_str(name) != "vector" {
        return Err(PgError::new(
            "0A000",
            format!("extension \"{name}\" is not available"),
        ));
    }
    Ok(Outcome::tag("CREATE EXTENSION"))
}

fn fold_str(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// The text of a serial column's default.
pub fn serial_default(table: &str, column: &str) -> String {
    format!("nextval('{table}_{column}_seq'::regclass)")
}

/// `CREATE TABLE`.
pub fn create_table(
    tables: &Tables,
    txn: &mut Transaction,
    ct: &CreateTable,
) -> Result<Outcome, PgError> {
    let name = object_name(&ct.name);
    if ct.query.is_some() || ct.like.is_some() || ct.temporary || ct.or_replace {
        return Err(PgError::feature_not_supported(
            "this form of CREATE TABLE is not supported",
        ));
    }
    if txn.relation_exists(tables, &name) {
        if ct.if_not_exists {
            return Ok(Outcome::tag("CREATE TABLE").with_notice(notice(
                "42P07",
                format!("relation \"{name}\" already exists, skipping"),
            )));
        }
        return Err(PgError::new(
            "42P07",
            format!("relation \"{name}\" already exists"),
        ));
    }
    let mut columns = Vec::new();
    let mut primary_key = Vec::new();
    // Constraints as declared, by column names: resolved once every
    // column is known.
    let mut uniques: Vec<(&UniqueConstraint, Vec<String>)> = Vec::new();
    let mut foreign_keys: Vec<(&ForeignKeyConstraint, Vec<String>)> = Vec::new();
    for (i, c) in ct.columns.iter().enumerate() {
        let col_name = fold(&c.name);
        let (ty, serial) = column_type(&c.data_type)?;
        let mut def = ColumnDef {
            name: col_name.clone(),
            ty,
            not_null: serial,
            default: serial.then(|| serial_default(&name, &col_name)),
        };
        for opt in &c.options {
            match &opt.option {
                ColumnOption::NotNull => def.not_null = true,
                ColumnOption::Null => {}
                ColumnOption::Default(e) => def.default = Some(e.to_string()),
                ColumnOption::PrimaryKey(_) => {
                    primary_key.push(i);
                    def.not_null = true;
                }
                ColumnOption::Unique(u) => uniques.push((u, vec![col_name.clone()])),
                ColumnOption::ForeignKey(fk) => foreign_keys.push((fk, vec![col_name.clone()])),
                ColumnOption::Generated {
                    generated_as: GeneratedAs::ByDefault,
                    sequence_options,
                    generation_expr: None,
                    ..
                } if sequence_options.as_ref().is_none_or(Vec::is_empty) => {
                    // An identity column (what Django and SQLAlchemy's
                    // Identity() declare) numbers rows as a serial column
                    // does; the catalog shows it as an identity.
                    if !matches!(type_oid(ty), oid::INT2 | oid::INT4 | oid::INT8) {
                        return Err(PgError::new(
                            "22023",
                            "identity column type must be smallint, integer, or bigint",
                        ));
                    }
                    def.not_null = true;
                    def.default = Some(format!(
                        "{IDENTITY_MARK}{}",
                        serial_default(&name, &col_name)
                    ));
                }
                other => {
                    return Err(PgError::feature_not_supported(format!(
                        "column option {other} is not supported"
                    )))
                }
            }
        }
        columns.push(def);
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) if primary_key.is_empty() => {
                for c in &pk.columns {
                    let Expr::Identifier(ident) = &c.column.expr else {
                        return Err(PgError::feature_not_supported(
                            "primary keys on expressions are not supported",
                        ));
                    };
                    let n = fold(ident);
                    let pos = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                        PgError::new(
                            "42703",
                            format!("column \"{n}\" named in key does not exist"),
                        )
                    })?;
                    columns[pos].not_null = true;
                    primary_key.push(pos);
                }
            }
            TableConstraint::PrimaryKey(_) => {
                return Err(PgError::new(
                    "42P16",
                    format!("multiple primary keys for table \"{name}\" are not allowed"),
                ))
            }
            TableConstraint::Unique(u) => {
                let names = u
                    .columns
                    .iter()
                    .map(|c| match &c.column.expr {
                        Expr::Identifier(ident) => Ok(fold(ident)),
                        _ => Err(PgError::feature_not_supported(
                            "UNIQUE constraints on expressions are not supported",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                uniques.push((u, names));
            }
            TableConstraint::ForeignKey(fk) => {
                foreign_keys.push((fk, fk.columns.iter().map(fold).collect()));
            }
            other => {
                return Err(PgError::feature_not_supported(format!(
                    "table constraint {other} is not supported"
                )))
            }
        }
    }
    let constraints = Constraints {
        unique: uniques
            .into_iter()
            .map(|(u, names)| unique_constraint(&name, &columns, u, &names))
            .collect::<Result<_, _>>()?,
        foreign_keys: foreign_keys
            .into_iter()
            .map(|(fk, names)| foreign_key(tables, txn, &name, &columns, fk, &names))
            .collect::<Result<_, _>>()?,
    };
    txn.create_table(tables, &name, columns, primary_key, constraints)
        .map_err(storage_error)?;
    Ok(Outcome::tag("CREATE TABLE"))
}

/// Positions of the columns `names` among `columns`; 42703 naming what
/// `role` the missing one had.
fn positions(columns: &[ColumnDef], names: &[String], role: &str) -> Result<Vec<usize>, PgError> {
    names
        .iter()
        .map(|n| {
            columns.iter().position(|c| &c.name == n).ok_or_else(|| {
                PgError::new("42703", format!("column \"{n}\" {role} does not exist"))
            })
        })
        .collect()
}

/// A declared UNIQUE constraint, named as PostgreSQL names it.
fn unique_constraint(
    table: &str,
    columns: &[ColumnDef],
    u: &UniqueConstraint,
    names: &[String],
) -> Result<Unique, PgError> {
    if u.nulls_distinct == NullsDistinctOption::NotDistinct {
        return Err(PgError::feature_not_supported(
            "UNIQUE NULLS NOT DISTINCT is not supported",
        ));
    }
    if u.characteristics.is_some() || !u.include.is_empty() {
        return Err(PgError::feature_not_supported(
            "deferrable UNIQUE constraints and INCLUDE columns are not supported",
        ));
    }
    Ok(Unique {
        name: constraint_name(table, names, u.name.as_ref(), "key"),
        columns: positions(columns, names, "named in key")?,
    })
}

/// PostgreSQL's name for a constraint: the given one, or
/// `<table>_<columns>_<suffix>`.
fn constraint_name(table: &str, columns: &[String], given: Option<&Ident>, suffix: &str) -> String {
    given.map_or_else(|| format!("{table}_{}_{suffix}", columns.join("_")), fold)
}

/// A declared FOREIGN KEY: the referenced columns default to the
/// referenced table's primary key; ON DELETE NO ACTION, RESTRICT,
/// CASCADE and SET NULL are kept, ON UPDATE only as NO ACTION or
/// RESTRICT.
fn foreign_key(
    tables: &Tables,
    txn: &Transaction,
    table: &str,
    columns: &[ColumnDef],
    fk: &ForeignKeyConstraint,
    names: &[String],
) -> Result<ForeignKey, PgError> {
    let refused = |what: &str| {
        Err(PgError::feature_not_supported(format!(
            "{what} is not supported in a FOREIGN KEY"
        )))
    };
    let on_delete = match fk.on_delete {
        None | Some(ReferentialAction::NoAction) => OnDelete::NoAction,
        Some(ReferentialAction::Restrict) => OnDelete::Restrict,
        Some(ReferentialAction::Cascade) => OnDelete::Cascade,
        Some(ReferentialAction::SetNull) => OnDelete::SetNull,
        Some(ReferentialAction::SetDefault) => return refused("ON DELETE SET DEFAULT"),
    };
    let on_update = match fk.on_update {
        None | Some(ReferentialAction::NoAction) => OnUpdate::NoAction,
        Some(ReferentialAction::Restrict) => OnUpdate::Restrict,
        Some(other) => return refused(&format!("ON UPDATE {other}")),
    };
    if fk.characteristics.is_some() {
        return refused("DEFERRABLE");
    }
    if let Some(kind) = &fk.match_kind {
        if !kind.to_string().eq_ignore_ascii_case("MATCH SIMPLE") {
            return refused(&kind.to_string());
        }
    }
    let parent_name = object_name(&fk.foreign_table);
    if parent_name == table {
        return Err(PgError::feature_not_supported(
            "a FOREIGN KEY referencing its own table is not supported",
        ));
    }
    let parent = txn.table_def(tables, &parent_name).map_err(|e| {
        if e.sqlstate == "42P01" {
            undefined_table(&parent_name)
        } else {
            storage_error(e)
        }
    })?;
    let referenced = if fk.referred_columns.is_empty() {
        if parent.primary_key.is_empty() {
            return Err(PgError::new(
                "42830",
                format!("there is no primary key for referenced table \"{parent_name}\""),
            ));
        }
        parent.primary_key.clone()
    } else {
        let names: Vec<String> = fk.referred_columns.iter().map(fold).collect();
        positions(
            &parent.columns,
            &names,
            "referenced in foreign key constraint",
        )?
    };
    Ok(ForeignKey {
        name: constraint_name(table, names, fk.name.as_ref(), "fkey"),
        columns: positions(columns, names, "referenced in foreign key constraint")?,
        table: parent_name,
        referenced,
        on_delete,
        on_update,
    })
}

/// `DROP TABLE | INDEX | EXTENSION [IF EXISTS] names`.
pub fn drop(
    tables: &Tables,
    txn: &mut Transaction,
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
) -> Result<Outcome, PgError> {
    let (tag, kind) = match object_type {
        ObjectType::Table => ("DROP TABLE", "table"),
        ObjectType::Index => ("DROP INDEX", "index"),
        ObjectType::Sequence => ("DROP SEQUENCE", "sequence"),
        other => {
            return Err(PgError::feature_not_supported(format!(
                "DROP {other} is not supported"
            )))
        }
    };
    let mut out = Outcome::tag(tag);
    for n in names {
        let name = object_name(n);
        let sequence = object_type == ObjectType::Sequence;
        if object_type != ObjectType::Index {
            if let Some(e) = super::sequence_ddl::wrong_kind(tables, &name, sequence) {
                return Err(e);
            }
        }
        if sequence && super::sequence_ddl::is_column_sequence(tables, &name) {
            return Err(PgError::new(
                "2BP01",
                format!("cannot drop sequence {name} because other objects depend on it"),
            ));
        }
        let result = if object_type == ObjectType::Index {
            txn.drop_index(tables, &name)
        } else {
            txn.drop_table(tables, &name)
        };
        match result {
            Ok(()) => {}
            Err(e) if if_exists && matches!(e.sqlstate, "42P01" | "42704") => {
                out = out.with_notice(notice(
                    "00000",
                    format!("{kind} \"{name}\" does not exist, skipping"),
                ));
            }
            Err(e) if e.sqlstate == "42P01" => {
                return Err(PgError::new(
                    "42P01",
                    format!("{kind} \"{name}\" does not exist"),
                ))
            }
            Err(e) => return Err(storage_error(e)),
        }
    }
    Ok(out)
}

/// `TRUNCATE [TABLE] names`.
pub fn truncate(
    tables: &Tables,
    txn: &mut Transaction,
    names: &[ObjectName],
) -> Result<Outcome, PgError> {
    for n in names {
        txn.truncate(tables, &object_name(n))
            .map_err(storage_error)?;
    }
    Ok(Outcome::tag("TRUNCATE TABLE"))
}

/// `ALTER TABLE t ADD COLUMN [IF NOT EXISTS] c type …`.
pub fn alter_table(
    tables: &Tables,
    txn: &mut Transaction,
    at: &AlterTable,
    env: &Env,
) -> Result<Outcome, PgError> {
    let table = object_name(&at.name);
    let mut out = Outcome::tag("ALTER TABLE");
    for op in &at.operations {
        let AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } = op
        else {
            return Err(PgError::feature_not_supported(format!(
                "ALTER TABLE … {op} is not supported"
            )));
        };
        let def = txn.table_def(tables, &table).map_err(storage_error)?;
        let name = fold(&column_def.name);
        if def.column_index(&name).is_some() && *if_not_exists {
            out = out.with_notice(notice(
                "42701",
                format!("column \"{name}\" of relation \"{table}\" already exists, skipping"),
            ));
            continue;
        }
        let (ty, serial) = column_type(&column_def.data_type)?;
        if serial {
            return Err(PgError::feature_not_supported(
                "adding a serial column is not supported",
            ));
        }
        let mut column = ColumnDef {
            name,
            ty,
            not_null: false,
            default: None,
        };
        for opt in &column_def.options {
            match &opt.option {
                ColumnOption::NotNull => column.not_null = true,
                ColumnOption::Null => {}
                ColumnOption::Default(e) => column.default = Some(e.to_string()),
                other => {
                    return Err(PgError::feature_not_supported(format!(
                        "column option {other} is not supported"
                    )))
                }
            }
        }
        let fill = match &column.default {
            Some(text) => default_value(text, ty, env)?,
            None => None,
        };
        txn.add_column(tables, &table, column, fill)
            .map_err(storage_error)?;
    }
    Ok(out)
}

/// Evaluates a column default (other than a sequence) as a value of `ty`.
pub fn default_value(text: &str, ty: ColumnType, env: &Env) -> Result<Datum, PgError> {
    let expr = parse_expr(text)?;
    eval(&expr, &NoRow, env)?
        .map(|v| super::coerce::cast(v, type_oid(ty), value_typmod(ty), false))
        .transpose()
}

/// Parses one SQL expression.
pub fn parse_expr(text: &str) -> Result<Expr, PgError> {
    let stmt = crate::sql::parse_single(&format!("SELECT {text}")).map_err(PgError::from)?;
    if let sqlparser::ast::Statement::Query(q) = stmt.into_ast() {
        if let sqlparser::ast::SetExpr::Select(s) = *q.body {
            if let Some(sqlparser::ast::SelectItem::UnnamedExpr(e)) =
                s.projection.into_iter().next()
            {
                return Ok(e);
            }
        }
    }
    Err(PgError::new("42601", format!("invalid expression: {text}")))
}

/// pgvector's opclasses: (element type, metric, served by ivfflat).
fn opclass(name: &str) -> Option<(VectorType, Metric, bool)> {
    use Metric::*;
    use VectorType::*;
    Some(match name {
        "vector_l2_ops" => (Vector, L2, true),
        "vector_ip_ops" => (Vector, InnerProduct, true),
        "vector_cosine_ops" => (Vector, Cosine, true),
        "vector_l1_ops" => (Vector, L1, false),
        "halfvec_l2_ops" => (HalfVec, L2, true),
        "halfvec_ip_ops" => (HalfVec, InnerProduct, true),
        "halfvec_cosine_ops" => (HalfVec, Cosine, true),
        "halfvec_l1_ops" => (HalfVec, L1, false),
        "sparsevec_l2_ops" => (SparseVec, L2, false),
        "sparsevec_ip_ops" => (SparseVec, InnerProduct, false),
        "sparsevec_cosine_ops" => (SparseVec, Cosine, false),
        "sparsevec_l1_ops" => (SparseVec, L1, false),
        "bit_hamming_ops" => (Bit, Hamming, true),
        "bit_jaccard_ops" => (Bit, Jaccard, false),
        _ => return None,
    })
}

fn type_name(ty: VectorType) -> &'static str {
    match ty {
        VectorType::Vector => "vector",
        VectorType::HalfVec => "halfvec",
        VectorType::SparseVec => "sparsevec",
        VectorType::Bit => "bit",
    }
}

fn with_options(with: &[Expr]) -> Result<Vec<(String, i64)>, PgError> {
    with.iter()
        .map(|e| match e {
            Expr::BinaryOp { left, right, .. } => {
                let key = left.to_string().to_ascii_lowercase();
                let text = right.to_string().trim_matches('\'').to_string();
                let value = text.parse::<i64>().map_err(|_| {
                    PgError::new(
                        "22023",
                        format!("invalid value for integer option \"{key}\": {text}"),
                    )
                })?;
                Ok((key, value))
            }
            other => Err(PgError::new(
                "42601",
                format!("syntax error at or near \"{other}\""),
            )),
        })
        .collect()
}

fn option(opts: &[(String, i64)], name: &str, default: i64) -> u32 {
    opts.iter()
        .find(|(k, _)| k == name)
        .map_or(default, |(_, v)| *v)
        .clamp(0, u32::MAX as i64) as u32
}

fn ann_method(
    access: &str,
    column: &ColumnDef,
    op_class: Option<&str>,
    opts: &[(String, i64)],
) -> Result<IndexMethod, PgError> {
    let Some((ty, _)) = column.ty.vector_type() else {
        return Err(PgError::new(
            "42704",
            format!(
                "data type {} has no default operator class for access method \"{access}\"",
                column.ty.sql_name()
            ),
        )
        .with_hint("You must specify an operator class for the index or define a default operator class for the data type."));
    };
    let metric = match op_class {
        None if ty == VectorType::Bit => {
            return Err(PgError::new(
                "42704",
                format!("data type bit has no default operator class for access method \"{access}\""),
            )
            .with_hint("You must specify an operator class for the index or define a default operator class for the data type."))
        }
        None if access == "ivfflat" && ty == VectorType::SparseVec => {
            return Err(PgError::new(
                "42704",
                "data type sparsevec has no default operator class for access method \"ivfflat\"",
            ))
        }
        None => Metric::L2,
        Some(name) => {
            let (op_ty, metric, _) = opclass(name)
                .filter(|(_, _, ivf)| access == "hnsw" || *ivf)
                .ok_or_else(|| {
                    PgError::new(
                        "42704",
                        format!("operator class \"{name}\" does not exist for access method \"{access}\""),
                    )
                })?;
            if op_ty != ty {
                return Err(PgError::new(
                    "42804",
                    format!(
                        "operator class \"{name}\" does not accept data type {}",
                        type_name(ty)
                    ),
                ));
            }
            metric
        }
    };
    let allowed: &[&str] = if access == "hnsw" {
        &["m", "ef_construction"]
    } else {
        &["lists"]
    };
    if let Some((k, _)) = opts.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(PgError::new(
            "22023",
            format!("unrecognized parameter \"{k}\""),
        ));
    }
    Ok(if access == "hnsw" {
        let (m, ef) = (option(opts, "m", 16), option(opts, "ef_construction", 64));
        ann::HnswParams::new(m as usize, ef as usize)?;
        IndexMethod::Hnsw {
            metric,
            m,
            ef_construction: ef,
        }
    } else {
        let lists = option(opts, "lists", 100);
        ann::IvfParams::new(lists as usize)?;
        IndexMethod::IvfFlat { metric, lists }
    })
}

fn free_index_name(tables: &Tables, txn: &Transaction, base: &str) -> String {
    let taken = |n: &str| txn.relation_exists(tables, n);
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// `CREATE INDEX`: returns the outcome and the index name (for progress).
pub fn create_index(
    tables: &Tables,
    txn: &mut Transaction,
    ci: &CreateIndex,
    ctx: &Ctx,
) -> Result<(Outcome, String), PgError> {
    let table = object_name(&ci.table_name);
    let def = txn.table_def(tables, &table).map_err(|e| {
        if e.sqlstate == "42P01" {
            undefined_table(&table)
        } else {
            storage_error(e)
        }
    })?;
    if ci.unique {
        return Err(PgError::feature_not_supported(
            "unique indexes are not supported",
        ));
    }
    let [col] = ci.columns.as_slice() else {
        return Err(PgError::feature_not_supported(
            "indexes on several columns are not supported",
        ));
    };
    let (column, expression) = match &col.column.expr {
        Expr::Identifier(ident) => {
            let name = fold(ident);
            let column = def.column_index(&name).ok_or_else(|| {
                PgError::new("42703", format!("column \"{name}\" does not exist"))
            })?;
            (column, None)
        }
        e => {
            let read = index_expr::columns_read(e, &def)?;
            (read.first().copied().unwrap_or(0), Some(e))
        }
    };
    let access = match &ci.using {
        None => "btree".to_string(),
        Some(IndexType::BTree) => "btree".to_string(),
        Some(IndexType::Custom(i)) => i.value.to_ascii_lowercase(),
        Some(other) => other.to_string().to_ascii_lowercase(),
    };
    let op_class = col.operator_class.as_ref().map(object_name);
    let opts = with_options(&ci.with)?;
    let ann = matches!(access.as_str(), "hnsw" | "ivfflat");
    if ci.predicate.is_some() && !ann {
        return Err(PgError::feature_not_supported(format!(
            "partial {access} indexes are not supported"
        )));
    }
    if expression.is_some() && !ann && access != "btree" {
        return Err(PgError::feature_not_supported(format!(
            "{access} indexes on expressions are not supported"
        )));
    }
    let mut index = IndexDef {
        oid: 0,
        name: String::new(),
        column,
        method: IndexMethod::BTree,
        expression: expression.map(index_expr::deparse),
        predicate: ci.predicate.as_ref().map(index_expr::deparse),
        with: opts.iter().map(|(name, _)| name.clone()).collect(),
    };
    // The type an ANN index's values have: its expression's.
    let source = match ann {
        true => IndexSource::of(&index, &def).map_err(storage_error)?,
        false => None,
    };
    let indexed = match source {
        Some(source) => ColumnDef {
            ty: source.value_type(),
            ..def.columns[column].clone()
        },
        None => def.columns[column].clone(),
    };
    index.method = match access.as_str() {
        "btree" => {
            if op_class.is_some() || !opts.is_empty() {
                return Err(PgError::feature_not_supported(
                    "btree operator classes and options are not supported",
                ));
            }
            IndexMethod::BTree
        }
        "gin" => gin_method(&def.columns[column], op_class.as_deref(), &opts)?,
        "hnsw" | "ivfflat" => ann_method(&access, &indexed, op_class.as_deref(), &opts)?,
        other => {
            return Err(PgError::new(
                "42704",
                format!("access method \"{other}\" does not exist"),
            ))
        }
    };
    let name = match &ci.name {
        Some(n) => object_name(n),
        None => {
            let what = match expression {
                Some(e) => index_expr::name_part(e).unwrap_or_else(|| "expr".into()),
                None => def.columns[column].name.clone(),
            };
            free_index_name(tables, txn, &format!("{table}_{what}_idx"))
        }
    };
    if txn.relation_exists(tables, &name) && ci.if_not_exists {
        return Ok((
            Outcome::tag("CREATE INDEX").with_notice(notice(
                "42P07",
                format!("relation \"{name}\" already exists, skipping"),
            )),
            name,
        ));
    }
    if let Some(e) = expression {
        dml::compute_for_every_row(tables, txn, &def, e, ctx)?;
    }
    index.name = name.clone();
    let lists = match index.method {
        IndexMethod::IvfFlat { lists, .. } => Some(lists),
        _ => None,
    };
    txn.create_index(tables, &table, index)
        .map_err(storage_error)?;
    let outcome = Outcome::tag("CREATE INDEX");
    // pgvector's warning when its k-means has fewer vectors than lists.
    if lists.is_some_and(|lists| indexed_rows(tables, txn, &table, column) < lists as usize) {
        let little = notice("00000", "ivfflat index created with little data".into())
            .with_detail("This will cause low recall.")
            .with_hint("Drop the index until the table has more data.");
        return Ok((outcome.with_notice(little), name));
    }
    Ok((outcome, name))
}

/// The rows of `table` `txn` sees with a value in `column` (rows its
/// own DELETE or UPDATE hid are still counted: an estimate).
fn indexed_rows(tables: &Tables, txn: &Transaction, table: &str, column: usize) -> usize {
    let committed = tables
        .get(table)
        .filter(|_| txn.sees_committed(table))
        .map_or(0, |t| {
            t.live_slots().filter(|&s| t.has_value(s, column)).count()
        });
    let pending = txn.pending_rows(table);
    committed
        + pending
            .iter()
            .filter(|(_, row)| row[column].is_some())
            .count()
}

/// A GIN index on a jsonb column, with `jsonb_ops` (the default) or
/// `jsonb_path_ops`.
fn gin_method(
    column: &ColumnDef,
    op_class: Option<&str>,
    opts: &[(String, i64)],
) -> Result<IndexMethod, PgError> {
    if column.ty != ColumnType::Jsonb {
        return Err(PgError::new(
            "42704",
            format!(
                "data type {} has no default operator class for access method \"gin\"",
                column.ty.sql_name()
            ),
        )
        .with_hint("You must specify an operator class for the index or define a default operator class for the data type."));
    }
    if let Some((name, _)) = opts.first() {
        return Err(PgError::new(
            "22023",
            format!("unrecognized parameter \"{name}\""),
        ));
    }
    match op_class {
        None | Some("jsonb_ops") => Ok(IndexMethod::Gin { path_ops: false }),
        Some("jsonb_path_ops") => Ok(IndexMethod::Gin { path_ops: true }),
        Some(other) => Err(PgError::new(
            "42704",
            format!("operator class \"{other}\" does not exist for access method \"gin\""),
        )),
    }
}

/// The type OID a type name as written in a cast names (`vector(3)`,
/// `BIGINT`), if known.
pub fn parse_type(name: &str) -> Option<u32> {
    match parse_expr(&format!("NULL::{name}")).ok()? {
        Expr::Cast { data_type, .. } => super::types::cast_target(&data_type).ok().map(|(t, _)| t),
        _ => None,
    }
}
