//! Result types known before any row is read: a prepared statement's
//! RowDescription and ParameterDescription come from here, and every
//! computed cell is converted to the type announced for its column.

use super::arrays;
use super::expr::{function_args, function_name, number, qualified, Chain, Row, Scope};
use super::regex_match;
use super::scalar_functions;
use super::types::cast_target;
use crate::sql::{distance_operator, placeholder_index};
use crate::wire::types::oid;
use crate::wire::PgError;
use sqlparser::ast::{AccessExpr, BinaryOperator, Expr, Query, UnaryOperator, Value as SqlValue};

/// A type OID and typmod (-1: none).
pub type TypeOf = (u32, i32);

/// What the columns an expression may reference are.
pub trait Columns: Sync {
    /// The type of column `name` (of `qualifier`, if given).
    fn column_type(&self, qualifier: Option<&str>, name: &str) -> Option<TypeOf>;
}

/// Types of the statement's `$n` parameters, `$1` first (0 = unknown),
/// and what subqueries see.
#[derive(Clone, Copy)]
pub struct TypeEnv<'a> {
    /// Parameter types.
    pub params: &'a [u32],
    /// Subqueries, where the expression may use them.
    pub scope: Option<&'a dyn Scope>,
    /// The enclosing query's row, inside a correlated subquery.
    pub outer: Option<&'a dyn Row>,
}

impl<'a> TypeEnv<'a> {
    /// Types of `params` with no subqueries in reach.
    pub fn params(params: &'a [u32]) -> Self {
        TypeEnv {
            params,
            scope: None,
            outer: None,
        }
    }

    fn column(&self, cols: &dyn Columns, q: Option<&str>, name: &str) -> Option<TypeOf> {
        cols.column_type(q, name)
            .or_else(|| self.outer.and_then(|o| o.column_type(q, name)))
    }

    /// The columns of subquery `q` inside a row of `cols`.
    fn subquery(&self, q: &Query, cols: &dyn Columns) -> Result<Vec<TypeOf>, PgError> {
        let scope = self
            .scope
            .ok_or_else(|| PgError::feature_not_supported("subqueries are not supported here"))?;
        let row = Chain {
            row: &ColumnsRow(cols),
            outer: self.outer,
        };
        let rel = scope.subquery(q, &row, true)?;
        Ok(rel.columns.iter().map(|c| c.ty).collect())
    }
}

/// Columns seen as a row of NULLs that knows its types (to describe a
/// correlated subquery).
struct ColumnsRow<'a>(&'a dyn Columns);

impl Row for ColumnsRow<'_> {
    fn get(&self, q: Option<&str>, name: &str) -> Option<crate::shard::datum::Datum> {
        self.0.column_type(q, name).map(|_| None)
    }

    fn column_type(&self, q: Option<&str>, name: &str) -> Option<TypeOf> {
        self.0.column_type(q, name)
    }
}

fn is_int(t: u32) -> bool {
    matches!(t, oid::INT2 | oid::INT4 | oid::INT8)
}

fn is_vector(t: u32) -> bool {
    matches!(t, oid::VECTOR | oid::HALFVEC | oid::SPARSEVEC | oid::BIT)
}

/// The type `expr` evaluates to.
pub fn infer(expr: &Expr, cols: &dyn Columns, env: &TypeEnv) -> Result<TypeOf, PgError> {
    crate::stack::guard(|| {
        let plain = |t: u32| Ok((t, -1));
        match expr {
            Expr::Identifier(i) => env
                .column(cols, None, &i.value)
                .ok_or_else(|| super::expr::undefined_column(&i.value)),
            Expr::CompoundIdentifier(parts) => match qualified(parts) {
                Some((q, c)) => env
                    .column(cols, Some(q), c)
                    .ok_or_else(|| super::expr::undefined_qualified_column(q, c)),
                None => Err(super::expr::undefined_column(&expr.to_string())),
            },
            Expr::Subquery(q) => match env.subquery(q, cols)?.as_slice() {
                [t] => Ok(*t),
                _ => Err(PgError::new(
                    "42601",
                    "subquery must return only one column",
                )),
            },
            Expr::Exists { .. }
            | Expr::InSubquery { .. }
            | Expr::AnyOp { .. }
            | Expr::AllOp { .. } => plain(oid::BOOL),
            Expr::Case {
                conditions,
                else_result,
                ..
            } => {
                let results = conditions
                    .iter()
                    .map(|w| &w.result)
                    .chain(else_result.as_deref());
                for r in results {
                    if matches!(r, Expr::Value(v) if v.value == SqlValue::Null) {
                        continue;
                    }
                    return infer(r, cols, env);
                }
                plain(oid::TEXT)
            }
            Expr::Value(v) => match &v.value {
                SqlValue::Number(n, _) => plain(number(n)?.type_oid()),
                SqlValue::Boolean(_) => plain(oid::BOOL),
                SqlValue::SingleQuotedByteStringLiteral(_) => plain(oid::BIT),
                SqlValue::Placeholder(p) => {
                    let t = placeholder_index(p)
                        .and_then(|n| env.params.get(n - 1))
                        .copied()
                        .filter(|&t| t != 0)
                        .unwrap_or(oid::TEXT);
                    plain(t)
                }
                _ => plain(oid::TEXT),
            },
            Expr::Nested(e) => infer(e, cols, env),
            Expr::Interval(_) => plain(oid::INTERVAL),
            // PostgreSQL's EXTRACT returns numeric, computed here as a double.
            Expr::Extract { .. } => plain(oid::FLOAT8),
            Expr::CompoundFieldAccess { root, access_chain } => {
                let (root, _) = arrays::subscript(root, access_chain)?;
                let (t, m) = infer(&root, cols, env)?;
                Ok((arrays::element_of(t).unwrap_or(oid::TEXT), m))
            }
            Expr::Array(a) => {
                let mut types = Vec::new();
                for e in a.elem.iter().filter(|e| !arrays::is_untyped(e)) {
                    types.push(infer(e, cols, env)?.0);
                }
                Ok((arrays::array_type(arrays::common_type(types)?)?, -1))
            }
            Expr::Cast { data_type, .. }
            | Expr::TypedString(sqlparser::ast::TypedString { data_type, .. }) => {
                let (t, typmod) = cast_target(data_type)?;
                Ok((t, typmod.map_or(-1, |n| n as i32)))
            }
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                ..
            }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::InList { .. }
            | Expr::Between { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. } => plain(oid::BOOL),
            Expr::UnaryOp { expr, .. } => infer(expr, cols, env),
            Expr::Collate { expr, .. } => infer(expr, cols, env),
            Expr::BinaryOp { left, op, right } => {
                if distance_operator(op).is_some() {
                    return plain(oid::FLOAT8);
                }
                let op = &regex_match::qualified_builtin(op).unwrap_or_else(|| op.clone());
                if regex_match::regex_operator(op).is_some() {
                    return plain(oid::BOOL);
                }
                match op {
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
                    | BinaryOperator::And
                    | BinaryOperator::Or
                    | BinaryOperator::AtArrow
                    | BinaryOperator::ArrowAt
                    | BinaryOperator::Question
                    | BinaryOperator::QuestionPipe
                    | BinaryOperator::QuestionAnd
                    | BinaryOperator::AtAt
                    | BinaryOperator::AtQuestion => plain(oid::BOOL),
                    BinaryOperator::Arrow => match infer(left, cols, env)? {
                        (oid::JSON, _) => plain(oid::JSON),
                        _ => plain(oid::JSONB),
                    },
                    BinaryOperator::LongArrow => plain(oid::TEXT),
                    BinaryOperator::HashArrow | BinaryOperator::HashLongArrow => {
                        let left = infer(left, cols, env)?.0;
                        Ok(super::jsonb_paths::path_operator_type(op, left)
                            .unwrap_or((oid::JSONB, -1)))
                    }
                    _ => {
                        let (a, b) = (infer(left, cols, env)?, infer(right, cols, env)?);
                        if let Some(t) = super::datetime::operator_type(op, a.0, b.0) {
                            return Ok(t);
                        }
                        Ok(arithmetic_type(op, a, b))
                    }
                }
            }
            Expr::Function(f) => {
                let name = function_name(f);
                if let ("array", sqlparser::ast::FunctionArguments::Subquery(q)) =
                    (name.as_str(), &f.args)
                {
                    let elem = match env.subquery(q, cols)?.as_slice() {
                        [(oid::UNKNOWN, _)] => oid::TEXT,
                        [(t, _)] => *t,
                        _ => {
                            return Err(PgError::new(
                                "42601",
                                "subquery must return only one column",
                            ))
                        }
                    };
                    return plain(arrays::array_type(elem)?);
                }
                let args = function_args(f)?;
                let arg = |i: usize| -> Result<TypeOf, PgError> {
                    args.get(i)
                        .map_or(Ok((oid::TEXT, -1)), |a| infer(a, cols, env))
                };
                if let Some(t) = scalar_result(&name, &args, cols, env)? {
                    return Ok(t);
                }
                if let Some(t) = super::json_build::result_type(&name)
                    .or_else(|| super::jsonb_paths::result_type(&name))
                {
                    return Ok(t);
                }
                if super::datetime::result_type(&name, &[]).is_some() {
                    let types = args
                        .iter()
                        .map(|a| infer(a, cols, env))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(
                        super::datetime::result_type(&name, &types).unwrap_or((oid::TEXT, -1))
                    );
                }
                match name.as_str() {
                    "count" | "row_number" | "rank" | "dense_rank" => plain(oid::INT8),
                    "string_agg" => plain(oid::TEXT),
                    "json_agg" => plain(oid::JSON),
                    "jsonb_agg" => plain(oid::JSONB),
                    "array_agg" => {
                        let (t, m) = arg(0)?;
                        if arrays::element_of(t).is_some() {
                            return Err(PgError::feature_not_supported(
                                "array_agg of arrays (a multidimensional array) is not supported",
                            ));
                        }
                        Ok((arrays::array_type(t)?, m))
                    }
                    name if super::json_sets::select_list_type(name).is_some() => {
                        plain(super::json_sets::select_list_type(name).unwrap_or(oid::TEXT))
                    }
                    "unnest" => {
                        let (t, m) = arg(0)?;
                        Ok((arrays::element_of(t).unwrap_or(oid::TEXT), m))
                    }
                    "current_schemas" => Ok((arrays::array_type(oid::NAME)?, -1)),
                    "array_fill" => Ok((arrays::array_type(arg(0)?.0)?, -1)),
                    "generate_series" => Ok(match (arg(0)?.0, arg(1)?.0) {
                        (oid::INT8, _) | (_, oid::INT8) => (oid::INT8, -1),
                        _ => (oid::INT4, -1),
                    }),
                    "array_to_string" => plain(oid::TEXT),
                    "array_append" | "array_remove" => arg(0),
                    "array_prepend" => arg(1),
                    "array_position" => plain(oid::INT4),
                    "array_length"
                    | "cardinality"
                    | "array_lower"
                    | "array_upper"
                    | "generate_subscripts" => plain(oid::INT4),
                    "sum" => Ok(match arg(0)? {
                        (t, _) if is_int(t) => (oid::INT8, -1),
                        (oid::TEXT, _) => (oid::FLOAT8, -1),
                        other => other,
                    }),
                    "avg" => Ok(match arg(0)? {
                        (t, m) if is_vector(t) => (t, m),
                        _ => (oid::FLOAT8, -1),
                    }),
                    "min" | "max" | "abs" | "coalesce" | "l2_normalize" => arg(0),
                    "subvector" => Ok((arg(0)?.0, -1)),
                    "l2_distance" | "inner_product" | "cosine_distance" | "l1_distance"
                    | "hamming_distance" | "jaccard_distance" | "vector_norm" | "l2_norm" => {
                        plain(oid::FLOAT8)
                    }
                    "vector_dims" | "length" | "pg_backend_pid" | "vector_cmp" | "halfvec_cmp"
                    | "sparsevec_cmp" => plain(oid::INT4),
                    "round" => plain(oid::FLOAT8),
                    "gen_random_uuid" => plain(oid::UUID),
                    "nextval" | "currval" | "setval" | "lastval" => plain(oid::INT8),
                    "to_regtype" | "pg_typeof" => plain(oid::REGTYPE),
                    "to_regclass" | "pg_partition_ancestors" => plain(oid::REGCLASS),
                    "pg_table_is_visible"
                    | "pg_type_is_visible"
                    | "pg_function_is_visible"
                    | "has_table_privilege"
                    | "has_schema_privilege"
                    | "has_database_privilege"
                    | "has_column_privilege"
                    | "has_sequence_privilege"
                    | "bool_and"
                    | "bool_or"
                    | "pg_is_in_recovery"
                    | "pg_promote"
                    | "pg_is_wal_replay_paused"
                    | "pg_reload_conf"
                    | "pgvshard_rejoin_as_standby"
                    | "pg_try_advisory_lock"
                    | "pg_try_advisory_xact_lock"
                    | "pg_advisory_unlock"
                    | "jsonb_path_match"
                    | "jsonb_path_exists"
                    | "jsonb_exists"
                    | "jsonb_exists_any"
                    | "jsonb_exists_all" => plain(oid::BOOL),
                    "pg_wal_replay_pause"
                    | "pg_wal_replay_resume"
                    | "pg_advisory_lock"
                    | "pg_advisory_xact_lock"
                    | "pg_advisory_unlock_all"
                    | "pg_sleep" => plain(oid::VOID),
                    "inet_server_port" => plain(oid::INT4),
                    "pg_relation_size"
                    | "pg_table_size"
                    | "pg_indexes_size"
                    | "pg_total_relation_size" => plain(oid::INT8),
                    "pg_last_xact_replay_timestamp"
                    | "now"
                    | "current_timestamp"
                    | "transaction_timestamp"
                    | "statement_timestamp"
                    | "clock_timestamp" => plain(oid::TIMESTAMPTZ),
                    "current_date" => plain(oid::DATE),
                    "pg_get_userbyid" | "pg_encoding_to_char" => plain(oid::NAME),
                    "binary_quantize" => plain(oid::BIT),
                    _ => plain(oid::TEXT),
                }
            }
            other => match scalar_functions::standard_form(other) {
                Some(form) => {
                    let (name, args) = form?;
                    Ok(scalar_result(name, &args, cols, env)?.unwrap_or((oid::TEXT, -1)))
                }
                None => plain(oid::TEXT),
            },
        }
    })
}

fn arithmetic_type(op: &BinaryOperator, a: TypeOf, b: TypeOf) -> TypeOf {
    let (ta, tb) = (a.0, b.0);
    if is_vector(ta) {
        return (ta, -1);
    }
    if is_vector(tb) {
        return (tb, -1);
    }
    let edits_jsonb = match op {
        BinaryOperator::StringConcat => ta == oid::JSONB || tb == oid::JSONB,
        BinaryOperator::Minus => ta == oid::JSONB,
        _ => false,
    };
    if edits_jsonb {
        return (oid::JSONB, -1);
    }
    if matches!(op, BinaryOperator::StringConcat) {
        return match (arrays::element_of(ta), arrays::element_of(tb)) {
            (Some(_), _) => a,
            (None, Some(_)) => b,
            _ => (oid::TEXT, -1),
        };
    }
    let t = match (ta, tb) {
        (x, y) if is_int(x) && is_int(y) => {
            if x == oid::INT8 || y == oid::INT8 {
                oid::INT8
            } else {
                oid::INT4
            }
        }
        (oid::FLOAT4, y) | (y, oid::FLOAT4) if y == oid::FLOAT4 || is_int(y) => oid::FLOAT4,
        _ => oid::FLOAT8,
    };
    (t, -1)
}

/// The name PostgreSQL gives a result column computed by `expr`.
pub fn output_name(expr: &Expr) -> String {
    figure_name(expr).0
}

/// The type of a call of one of [`scalar_functions`]' functions that
/// does not return text.
fn scalar_result(
    name: &str,
    args: &[&Expr],
    cols: &dyn Columns,
    env: &TypeEnv,
) -> Result<Option<TypeOf>, PgError> {
    if scalar_functions::result_type(name, &[]).is_none() {
        return Ok(None);
    }
    let types = args
        .iter()
        .map(|a| infer(a, cols, env))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(scalar_functions::result_type(name, &types))
}

/// PostgreSQL's FigureColname: a name and how strongly `expr` gives it
/// (2: a column, function, ARRAY, …; 1: a cast's type name; 0: none).
/// A cast names its column by its type unless its operand gives a
/// stronger name (`ARRAY[1,2]::float4[]::vector` is `array`).
fn figure_name(expr: &Expr) -> (String, u8) {
    let strong = |name: String| (name, 2);
    crate::stack::guard(|| match expr {
        Expr::Identifier(i) => strong(i.value.clone()),
        Expr::CompoundIdentifier(parts) => {
            strong(parts.last().map_or_else(String::new, |p| p.value.clone()))
        }
        Expr::Function(f) => strong(function_name(f)),
        Expr::Substring { shorthand, .. } => {
            strong(if *shorthand { "substr" } else { "substring" }.to_string())
        }
        Expr::Position { .. } => strong("position".to_string()),
        Expr::Trim { .. } | Expr::Ceil { .. } | Expr::Floor { .. } => {
            match scalar_functions::standard_form(expr) {
                Some(Ok((name, _))) => strong(name.to_string()),
                _ => ("?column?".to_string(), 0),
            }
        }
        Expr::Nested(e) | Expr::Collate { expr: e, .. } => figure_name(e),
        Expr::Case { .. } => strong("case".to_string()),
        Expr::Array(_) => strong("array".to_string()),
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.split_last() {
            Some((_, [.., AccessExpr::Dot(Expr::Identifier(i))])) => strong(i.value.clone()),
            _ => figure_name(root),
        },
        Expr::Exists { .. } => strong("exists".to_string()),
        Expr::Extract { .. } => strong("extract".to_string()),
        Expr::Interval(_) => ("interval".to_string(), 1),
        Expr::TypedString(t) => (cast_name(&t.data_type), 1),
        Expr::Subquery(q) => match q.body.as_ref() {
            sqlparser::ast::SetExpr::Select(s) => match s.projection.as_slice() {
                [sqlparser::ast::SelectItem::UnnamedExpr(e)] => strong(output_name(e)),
                [sqlparser::ast::SelectItem::ExprWithAlias { alias, .. }] => {
                    strong(alias.value.clone())
                }
                _ => ("?column?".to_string(), 0),
            },
            _ => ("?column?".to_string(), 0),
        },
        Expr::Cast {
            expr, data_type, ..
        } => match figure_name(expr) {
            (name, 2) => (name, 2),
            _ => (cast_name(data_type), 1),
        },
        _ => ("?column?".to_string(), 0),
    })
}

fn cast_name(dt: &sqlparser::ast::DataType) -> String {
    match cast_target(dt) {
        Ok((t, _)) => crate::wire::types::by_oid(arrays::element_of(t).unwrap_or(t))
            .map_or("?column?", |t| t.name)
            .to_string(),
        Err(_) => "?column?".to_string(),
    }
}
