//! `CREATE SEQUENCE` and `DROP SEQUENCE`, with PostgreSQL's checks of a
//! sequence's options (its `init_params`) and their errors.

use super::coerce::as_i64;
use super::expr::{eval, Env, NoRow};
use super::sequences::{self, SequenceSpec};
use super::{storage_error, Outcome};
use crate::shard::storage::{ColumnType, Constraints, Tables, Transaction};
use crate::wire::PgError;
use sqlparser::ast::{DataType, Expr, ObjectName, SequenceOptions};

fn invalid(message: String) -> PgError {
    PgError::new("22023", message)
}

fn number(e: &Expr, env: &Env) -> Result<i64, PgError> {
    eval(e, &NoRow, env)?
        .as_ref()
        .and_then(as_i64)
        .ok_or_else(|| PgError::new("42601", format!("invalid sequence option value: {e}")))
}

/// The options `CREATE SEQUENCE` writes, completed and checked.
pub fn spec(
    data_type: Option<&DataType>,
    options: &[SequenceOptions],
    env: &Env,
) -> Result<SequenceSpec, PgError> {
    let ty = match data_type {
        None | Some(DataType::BigInt(_) | DataType::Int8(_)) => ColumnType::Int8,
        Some(DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_)) => ColumnType::Int4,
        Some(DataType::SmallInt(_) | DataType::Int2(_)) => ColumnType::Int2,
        Some(_) => {
            return Err(invalid(
                "sequence type must be smallint, integer, or bigint".into(),
            ))
        }
    };
    let (mut increment, mut min, mut max, mut start, mut cache, mut cycle) =
        (1, None, None, None, 1, false);
    for o in options {
        match o {
            SequenceOptions::IncrementBy(e, _) => increment = number(e, env)?,
            SequenceOptions::MinValue(e) => min = e.as_ref().map(|e| number(e, env)).transpose()?,
            SequenceOptions::MaxValue(e) => max = e.as_ref().map(|e| number(e, env)).transpose()?,
            SequenceOptions::StartWith(e, _) => start = Some(number(e, env)?),
            SequenceOptions::Cache(e) => cache = number(e, env)?,
            SequenceOptions::Cycle(no) => cycle = !*no,
        }
    }
    if increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let defaults = SequenceSpec::defaults(ty, increment);
    let type_name = ty.sql_name();
    let (type_min, type_max) = (sequences::type_min(ty), sequences::type_max(ty));
    let max = max.unwrap_or(defaults.max);
    let min = min.unwrap_or(defaults.min);
    if max < type_min || max > type_max {
        return Err(invalid(format!(
            "MAXVALUE ({max}) is out of range for sequence data type {type_name}"
        )));
    }
    if min < type_min || min > type_max {
        return Err(invalid(format!(
            "MINVALUE ({min}) is out of range for sequence data type {type_name}"
        )));
    }
    if min >= max {
        return Err(invalid(format!(
            "MINVALUE ({min}) must be less than MAXVALUE ({max})"
        )));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(invalid(format!(
            "START value ({start}) cannot be less than MINVALUE ({min})"
        )));
    }
    if start > max {
        return Err(invalid(format!(
            "START value ({start}) cannot be greater than MAXVALUE ({max})"
        )));
    }
    if cache <= 0 {
        return Err(invalid(format!(
            "CACHE ({cache}) must be greater than zero"
        )));
    }
    Ok(SequenceSpec {
        ty,
        start,
        increment,
        min,
        max,
        cache,
        cycle,
    })
}

/// `CREATE SEQUENCE [IF NOT EXISTS] name …`: a stored sequence (see
/// [`sequences`]) created with the transaction.
#[allow(clippy::too_many_arguments)]
pub fn create(
    tables: &Tables,
    txn: &mut Transaction,
    name: &ObjectName,
    if_not_exists: bool,
    temporary: bool,
    data_type: Option<&DataType>,
    options: &[SequenceOptions],
    owned_by: Option<&ObjectName>,
    env: &Env,
) -> Result<Outcome, PgError> {
    if temporary || owned_by.is_some() {
        return Err(PgError::feature_not_supported(
            "temporary sequences and OWNED BY are not supported",
        ));
    }
    let name = super::select::object_name(name);
    let spec = spec(data_type, options, env)?;
    if if_not_exists && txn.relation_exists(tables, &name) {
        return Ok(
            Outcome::tag("CREATE SEQUENCE").with_notice(super::ddl::notice(
                "42P07",
                format!("relation \"{name}\" already exists, skipping"),
            )),
        );
    }
    txn.create_table(
        tables,
        &name,
        spec.columns(),
        Vec::new(),
        Constraints::default(),
    )
    .map_err(storage_error)?;
    txn.insert(tables, &name, SequenceSpec::row(spec.start, false))
        .map_err(storage_error)?;
    Ok(Outcome::tag("CREATE SEQUENCE"))
}

/// The error for DROP `wrong` naming a relation of another kind, if it is
/// one: `"s" is not a table` / `"t" is not a sequence`, with the hint.
pub fn wrong_kind(tables: &Tables, name: &str, dropping_sequence: bool) -> Option<PgError> {
    let t = tables.get(name)?;
    let is_sequence = sequences::is_stored_sequence(&t.def().columns);
    if is_sequence == dropping_sequence {
        return None;
    }
    let (kind, hint) = if dropping_sequence {
        ("sequence", "Use DROP TABLE to remove a table.")
    } else {
        ("table", "Use DROP SEQUENCE to remove a sequence.")
    };
    let mut e = PgError::new("42809", format!("\"{name}\" is not a {kind}"));
    e.hint = Some(hint.into());
    Some(e)
}

/// Whether `name` is the sequence of a serial column (dropped with it).
pub fn is_column_sequence(tables: &Tables, name: &str) -> bool {
    tables.get(name).is_none() && sequences::find(tables, name).is_some()
}
