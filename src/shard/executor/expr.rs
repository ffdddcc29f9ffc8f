//! Evaluating one SQL expression for one row: column references,
//! literals, `$n` parameters, casts, arithmetic, comparisons, AND/OR/NOT
//! with SQL's three-valued logic, IN, BETWEEN, IS [NOT] NULL, LIKE, the
//! six distance operators and the functions of [`super::functions`].
//!
//! Aggregates are not computed here: the grouping step computes them and
//! hands their values in through [`Env::aggregates`], keyed by the
//! aggregate call's SQL text.

use super::advisory_locks::{AdvisoryLocks, LockKey, Scope as LockScope};
use super::arrays;
use super::coerce::{self, as_f64, as_i64, is_integer};
use super::datetime;
use super::functions;
use super::infer::TypeOf;
use super::json_ops;
use super::jsonpath_eval;
use super::regex_match;
use super::scalar_functions;
use super::select::Relation;
use super::types::cast_target;
use crate::shard::datum::Datum;
use crate::shard::storage::{Database, Tables};
use crate::sql::{distance_operator, placeholder_index};
use crate::wire::types::oid;
use crate::wire::{PgError, Session, Value};
use sqlparser::ast::{
    BinaryOperator, CaseWhen, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, ObjectName, Query, UnaryOperator, Value as SqlValue,
};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where column references get their values.
pub trait Row: Sync {
    /// Column `name` (of the relation `qualifier`, if given), or `None`
    /// when there is no such column.
    fn get(&self, qualifier: Option<&str>, name: &str) -> Option<Datum>;

    /// The type of column `name`, for rows that know it (a subquery's
    /// enclosing row).
    fn column_type(&self, _qualifier: Option<&str>, _name: &str) -> Option<TypeOf> {
        None
    }
}

/// A row seen from a subquery: its own columns, then the enclosing
/// query's.
pub struct Chain<'a> {
    /// The nearer row.
    pub row: &'a dyn Row,
    /// The rows around it.
    pub outer: Option<&'a dyn Row>,
}

impl Row for Chain<'_> {
    fn get(&self, q: Option<&str>, name: &str) -> Option<Datum> {
        self.row
            .get(q, name)
            .or_else(|| self.outer.and_then(|o| o.get(q, name)))
    }

    fn column_type(&self, q: Option<&str>, name: &str) -> Option<TypeOf> {
        self.row
            .column_type(q, name)
            .or_else(|| self.outer.and_then(|o| o.column_type(q, name)))
    }
}

/// What an expression reaches beyond its row: subqueries and the
/// catalog.
pub trait Scope: Sync {
    /// Runs (with `dry`, describes) `q` inside the row `outer`.
    fn subquery(&self, q: &Query, outer: &dyn Row, dry: bool) -> Result<Relation, PgError>;
    /// The committed tables.
    fn tables(&self) -> &Tables;
}

/// A row with no columns (constant expressions).
pub struct NoRow;

impl Row for NoRow {
    fn get(&self, _: Option<&str>, _: &str) -> Option<Datum> {
        None
    }
}

/// What functions read besides the row: the session's settings and the
/// server's state.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The session (for `current_setting`).
    pub session: Session,
    /// The storage, for `pg_current_wal_lsn()` (read when called, as
    /// PostgreSQL's volatile function is, not locked for every statement).
    pub db: Arc<Database>,
    /// `set_config(name, value, is_local)` calls the statement made, in
    /// order: applied to the session when it succeeds.
    pub set_configs: Arc<Mutex<Vec<SetConfig>>>,
    /// On a standby, what the recovery functions report (none on a
    /// primary: `pg_is_in_recovery()` is false).
    pub standby: Option<StandbyPositions>,
    /// What the recovery control functions (`pg_promote()`,
    /// `pg_wal_replay_pause()`, `pg_reload_conf()`, …) act on.
    pub recovery: Option<crate::shard::replication::control::RecoveryControl>,
    /// The shard's advisory locks.
    pub advisory_locks: Arc<AdvisoryLocks>,
    /// The shard's sequences.
    pub sequences: Arc<super::Sequences>,
    /// The session's last sequence values (`currval`, `lastval`).
    pub sequence_values: Arc<Mutex<super::sequences::SessionValues>>,
    /// The statement's cancel signal (an advisory lock's wait stops at it).
    pub cancel: Arc<crate::wire::CancelSignal>,
    /// When the transaction began (`now()`; µs since 2000): the block's
    /// start, or the statement's outside a block.
    pub transaction_start: i64,
    /// When the statement began (`statement_timestamp()`).
    pub statement_start: i64,
}

/// One `set_config(name, value, is_local)` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SetConfig {
    /// The setting's name.
    pub name: String,
    /// Its new value.
    pub value: String,
    /// `SET LOCAL` rather than `SET`.
    pub local: bool,
}

/// A standby's positions as the `pg_last_*` functions report them.
#[derive(Debug, Clone)]
pub struct StandbyPositions {
    /// `pg_last_wal_receive_lsn()`.
    pub receive_lsn: String,
    /// `pg_last_wal_replay_lsn()`.
    pub replay_lsn: String,
    /// `pg_last_xact_replay_timestamp()` (µs since 2000).
    pub replay_time: Option<i64>,
}

/// Everything an expression reads besides its row.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Bound parameters, `$1` first.
    pub params: &'a [Datum],
    /// Session and server state.
    pub globals: &'a Globals,
    /// Values of aggregate calls by SQL text, when evaluating a group; of
    /// set-returning calls, when evaluating one of a select list's rows.
    pub aggregates: Option<&'a HashMap<String, Datum>>,
    /// Subqueries and the catalog, where the expression may use them.
    pub scope: Option<&'a dyn Scope>,
    /// The enclosing query's row, inside a correlated subquery.
    pub outer: Option<&'a dyn Row>,
}

impl<'a> Env<'a> {
    fn scope(&self) -> Result<&'a dyn Scope, PgError> {
        self.scope
            .ok_or_else(|| PgError::feature_not_supported("subqueries are not supported here"))
    }

    fn column(&self, row: &dyn Row, q: Option<&str>, name: &str) -> Option<Datum> {
        row.get(q, name)
            .or_else(|| self.outer.and_then(|o| o.get(q, name)))
    }
}

/// The aggregate functions the executor computes.
pub fn is_aggregate(f: &Function) -> bool {
    matches!(
        function_name(f).as_str(),
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "array_agg"
            | "bool_and"
            | "bool_or"
            | "string_agg"
            | "json_agg"
            | "jsonb_agg"
    )
}

/// A function's name, lower-cased, without schema.
pub fn function_name(f: &Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A function call's plain arguments (`*` is absent).
pub fn function_args(f: &Function) -> Result<Vec<&Expr>, PgError> {
    match &f.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(Ok(e)),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => None,
                other => Some(Err(PgError::feature_not_supported(format!(
                    "function argument {other} is not supported"
                )))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(PgError::feature_not_supported(
            "subqueries as function arguments are not supported",
        )),
    }
}

/// 42703 for an unknown column.
pub fn undefined_column(name: &str) -> PgError {
    PgError::new("42703", format!("column \"{name}\" does not exist"))
}

/// 42703 for an unknown column of relation `rel`, worded as PostgreSQL
/// words it (no quotes).
pub fn undefined_qualified_column(rel: &str, name: &str) -> PgError {
    PgError::new("42703", format!("column {rel}.{name} does not exist"))
}

/// Parses a numeric literal as PostgreSQL types it: integer when it fits
/// (int4, else int8), otherwise a double (PostgreSQL's numeric).
pub fn number(text: &str) -> Result<Value, PgError> {
    if let Ok(i) = text.parse::<i32>() {
        return Ok(Value::Int4(i));
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Int8(i));
    }
    text.parse::<f64>()
        .map(Value::Float8)
        .map_err(|_| PgError::invalid_text("numeric", text))
}

/// Evaluates a literal or a `$n`.
fn literal(v: &SqlValue, env: &Env) -> Result<Datum, PgError> {
    Ok(match v {
        SqlValue::Number(n, _) => Some(number(n)?),
        SqlValue::SingleQuotedString(s)
        | SqlValue::EscapedStringLiteral(s)
        | SqlValue::DollarQuotedString(sqlparser::ast::DollarQuotedString { value: s, .. }) => {
            Some(Value::Text(s.clone()))
        }
        SqlValue::Boolean(b) => Some(Value::Bool(*b)),
        // B'0101': a bit string of its length.
        SqlValue::SingleQuotedByteStringLiteral(s) => Some(Value::parse(oid::BIT, None, s)?),
        SqlValue::Null => None,
        SqlValue::Placeholder(p) => {
            let n = placeholder_index(p)
                .ok_or_else(|| PgError::new("42P02", format!("there is no parameter {p}")))?;
            env.params
                .get(n - 1)
                .cloned()
                .ok_or_else(|| PgError::new("42P02", format!("there is no parameter ${n}")))?
        }
        other => {
            return Err(PgError::feature_not_supported(format!(
                "literal {other} is not supported"
            )))
        }
    })
}

/// Evaluates `expr` for `row`.
pub fn eval(expr: &Expr, row: &dyn Row, env: &Env) -> Result<Datum, PgError> {
    crate::stack::guard(|| match expr {
        Expr::Identifier(i) => env
            .column(row, None, &i.value)
            .ok_or_else(|| undefined_column(&i.value)),
        Expr::CompoundIdentifier(parts) => {
            let (q, c) = qualified(parts).ok_or_else(|| undefined_column(&expr.to_string()))?;
            env.column(row, Some(q), c)
                .ok_or_else(|| undefined_qualified_column(q, c))
        }
        Expr::Value(v) => literal(&v.value, env),
        Expr::Nested(e) => eval(e, row, env),
        Expr::Collate { expr, collation } => {
            collation_known(collation)?;
            eval(expr, row, env)
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            if let Some(v) = catalog_cast(expr, data_type, row, env)? {
                return Ok(v);
            }
            let (to, typmod) = cast_target(data_type)?;
            let value = match (expr.as_ref(), arrays::element_of(to)) {
                (Expr::Array(a), Some(elem)) => {
                    Some(arrays::construct(&a.elem, Some(elem), row, env)?)
                }
                _ => eval(expr, row, env)?,
            };
            value.map(|v| coerce::cast(v, to, typmod, true)).transpose()
        }
        Expr::Array(a) => arrays::construct(&a.elem, None, row, env).map(Some),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let (root, index) = arrays::subscript(root, access_chain)?;
            let (Some(array), Some(i)) = (eval(&root, row, env)?, eval(index, row, env)?) else {
                return Ok(None);
            };
            arrays::element_at(array, i)
        }
        Expr::TypedString(t) => {
            let (to, typmod) = cast_target(&t.data_type)?;
            let text = t.value.value.clone().into_string().unwrap_or_default();
            coerce::cast(Value::Text(text), to, typmod, true).map(Some)
        }
        Expr::Interval(i) => {
            let Some(v) = eval(&i.value, row, env)? else {
                return Ok(None);
            };
            datetime::interval_literal(v, i.leading_field.as_ref()).map(Some)
        }
        Expr::Extract { field, expr, .. } => match eval(expr, row, env)? {
            Some(v) => datetime::extract(&field.to_string(), &v).map(|x| Some(Value::Float8(x))),
            None => Ok(None),
        },
        Expr::UnaryOp { op, expr } => unary(*op, eval(expr, row, env)?),
        Expr::BinaryOp { left, op, right } => binary(op, left, right, row, env),
        Expr::IsNull(e) => Ok(Some(Value::Bool(eval(e, row, env)?.is_none()))),
        Expr::IsNotNull(e) => Ok(Some(Value::Bool(eval(e, row, env)?.is_some()))),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let Some(v) = eval(expr, row, env)? else {
                return Ok(None);
            };
            let mut saw_null = false;
            for item in list {
                match eval(item, row, env)? {
                    None => saw_null = true,
                    Some(x) if equal(&v, &x)? => return Ok(Some(Value::Bool(!negated))),
                    Some(_) => {}
                }
            }
            Ok((!saw_null).then_some(Value::Bool(*negated)))
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let (v, lo, hi) = (
                eval(expr, row, env)?,
                eval(low, row, env)?,
                eval(high, row, env)?,
            );
            let ge = cmp_datum(&v, &lo)?.map(|o| o != Ordering::Less);
            let le = cmp_datum(&v, &hi)?.map(|o| o != Ordering::Greater);
            Ok(and(ge, le).map(|b| Value::Bool(b != *negated)))
        }
        Expr::Like {
            negated,
            expr,
            pattern,
            escape_char: None,
            any: false,
        } => like_expr(expr, pattern, *negated, false, row, env),
        Expr::ILike {
            negated,
            expr,
            pattern,
            escape_char: None,
            any: false,
        } => like_expr(expr, pattern, *negated, true, row, env),
        Expr::Function(f) => call(f, expr, row, env),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => case(
            operand.as_deref(),
            conditions,
            else_result.as_deref(),
            row,
            env,
        ),
        Expr::Subquery(q) => {
            let rel = env.scope()?.subquery(q, row, false)?;
            scalar(rel)
        }
        Expr::Exists { subquery, negated } => {
            let rel = env.scope()?.subquery(subquery, row, false)?;
            Ok(Some(Value::Bool(rel.rows.is_empty() == *negated)))
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => {
            let rel = env.scope()?.subquery(subquery, row, false)?;
            single_column(&rel)?;
            let v = eval(expr, row, env)?;
            let items = rel.rows.into_iter().map(|mut r| r.swap_remove(0));
            Ok(any_of(v, items, &BinaryOperator::Eq)?.map(|b| Value::Bool(b != *negated)))
        }
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => quantified(left, compare_op, right, false, row, env),
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => quantified(left, compare_op, right, true, row, env),
        other => match scalar_functions::standard_form(other) {
            Some(form) => {
                let (name, args) = form?;
                let values = args
                    .iter()
                    .map(|a| eval(a, row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                scalar_functions::call(name, &values)
                    .unwrap_or_else(|| Err(functions::no_matching_function(name, &args, &values)))
            }
            None => Err(PgError::feature_not_supported(format!(
                "expression {other} is not supported"
            ))),
        },
    })
}

/// `left op ANY (right)`, or with `all` `left op ALL (right)` (which is
/// `NOT (left negated-op ANY (right))`), over a subquery or an array.
fn quantified(
    left: &Expr,
    op: &BinaryOperator,
    right: &Expr,
    all: bool,
    row: &dyn Row,
    env: &Env,
) -> Result<Datum, PgError> {
    let v = eval(left, row, env)?;
    let items = match right {
        Expr::Subquery(q) => {
            let rel = env.scope()?.subquery(q, row, false)?;
            single_column(&rel)?;
            rel.rows.into_iter().map(|mut r| r.swap_remove(0)).collect()
        }
        other => match arrays::items(other, row, env)? {
            Some(items) => items,
            None => return Ok(None),
        },
    };
    if !all {
        return Ok(any_of(v, items.into_iter(), op)?.map(Value::Bool));
    }
    let negated = match op {
        BinaryOperator::Eq => BinaryOperator::NotEq,
        BinaryOperator::NotEq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::GtEq,
        BinaryOperator::LtEq => BinaryOperator::Gt,
        BinaryOperator::Gt => BinaryOperator::LtEq,
        BinaryOperator::GtEq => BinaryOperator::Lt,
        other => {
            return Err(PgError::feature_not_supported(format!(
                "operator {other} ALL is not supported"
            )))
        }
    };
    Ok(any_of(v, items.into_iter(), &negated)?.map(|b| Value::Bool(!b)))
}

/// Checks a `COLLATE` clause: the shard compares text by code point, which
/// is what the collations it accepts (`default`, `C`, `POSIX`,
/// `ucs_basic`, optionally `pg_catalog.`-qualified) mean for its data.
pub fn collation_known(collation: &ObjectName) -> Result<(), PgError> {
    let name = collation.to_string().replace('"', "");
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    match bare.to_ascii_lowercase().as_str() {
        "default" | "c" | "posix" | "ucs_basic" => Ok(()),
        _ => Err(PgError::new(
            "42704",
            format!("collation \"{name}\" for encoding \"UTF8\" does not exist"),
        )),
    }
}

fn like_expr(
    expr: &Expr,
    pattern: &Expr,
    negated: bool,
    fold: bool,
    row: &dyn Row,
    env: &Env,
) -> Result<Datum, PgError> {
    let (Some(v), Some(p)) = (eval(expr, row, env)?, eval(pattern, row, env)?) else {
        return Ok(None);
    };
    let (s, p) = (text_of(v), text_of(p));
    let hit = if fold {
        like(&s.to_lowercase(), &p.to_lowercase())
    } else {
        like(&s, &p)
    };
    Ok(Some(Value::Bool(hit != negated)))
}

fn text_of(v: Value) -> String {
    match v {
        Value::Text(s) => s,
        other => other.to_text(),
    }
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes.
pub fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&s[1..], &p[2..]),
            Some(c) => s.first() == Some(c) && go(&s[1..], &p[1..]),
        }
    }
    go(&s, &p)
}

fn unary(op: UnaryOperator, v: Datum) -> Result<Datum, PgError> {
    let Some(v) = v else { return Ok(None) };
    Ok(Some(match (op, v) {
        (UnaryOperator::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnaryOperator::Not, Value::Text(s)) => Value::Bool(!bool_of(Value::Text(s))?),
        (UnaryOperator::Plus, v) if as_f64(&v).is_some() => v,
        (UnaryOperator::Minus, Value::Float4(x)) => Value::Float4(-x),
        (UnaryOperator::Minus, Value::Float8(x)) => Value::Float8(-x),
        (UnaryOperator::Minus, Value::Interval(i)) => Value::Interval(
            i.checked_neg()
                .ok_or_else(|| PgError::new("22008", "interval out of range"))?,
        ),
        (UnaryOperator::Minus, v) if is_integer(&v) => {
            let i = as_i64(&v).unwrap_or(0);
            coerce::cast(
                Value::Int8(i.checked_neg().ok_or_else(int_overflow)?),
                v.type_oid(),
                None,
                false,
            )?
        }
        (op, v) => {
            return Err(PgError::new(
                "42883",
                format!(
                    "operator does not exist: {op} {}",
                    coerce::type_name(v.type_oid())
                ),
            ))
        }
    }))
}

fn int_overflow() -> PgError {
    PgError::new("22003", "integer out of range")
}

/// A boolean from a value (`'t'` literals included).
pub fn bool_of(v: Value) -> Result<bool, PgError> {
    match coerce::cast(v, oid::BOOL, None, false)? {
        Value::Bool(b) => Ok(b),
        other => Err(PgError::new(
            "42804",
            format!(
                "argument of WHERE must be type boolean, not type {}",
                coerce::type_name(other.type_oid())
            ),
        )),
    }
}

fn truth(d: Datum) -> Result<Option<bool>, PgError> {
    d.map(bool_of).transpose()
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn binary(
    op: &BinaryOperator,
    left: &Expr,
    right: &Expr,
    row: &dyn Row,
    env: &Env,
) -> Result<Datum, PgError> {
    if let Some(builtin) = regex_match::qualified_builtin(op) {
        return binary(&builtin, left, right, row, env);
    }
    match op {
        BinaryOperator::And => {
            let a = truth(eval(left, row, env)?)?;
            if a == Some(false) {
                return Ok(Some(Value::Bool(false)));
            }
            let b = truth(eval(right, row, env)?)?;
            return Ok(and(a, b).map(Value::Bool));
        }
        BinaryOperator::Or => {
            let a = truth(eval(left, row, env)?)?;
            if a == Some(true) {
                return Ok(Some(Value::Bool(true)));
            }
            let b = truth(eval(right, row, env)?)?;
            return Ok(match (a, b) {
                (_, Some(true)) => Some(Value::Bool(true)),
                (Some(false), Some(false)) => Some(Value::Bool(false)),
                _ => None,
            });
        }
        _ => {}
    }
    let (a, b) = match (eval(left, row, env)?, eval(right, row, env)?) {
        (Some(a), Some(b)) => (a, b),
        // array_cat is not strict: `array || NULL` is the array.
        (Some(a @ Value::Array(_)), None) | (None, Some(a @ Value::Array(_)))
            if matches!(op, BinaryOperator::StringConcat) =>
        {
            return Ok(Some(a))
        }
        _ => return Ok(None),
    };
    if let Some(metric) = distance_operator(op) {
        return functions::distance(metric, a, b).map(Some);
    }
    if let Some((negated, fold)) = regex_match::regex_operator(op) {
        let hit = regex_match::matches(&text_of(a), &text_of(b), fold)?;
        return Ok(Some(Value::Bool(hit != negated)));
    }
    if let Some(matched) = jsonpath_eval::path_operator(op, &a, &b) {
        return matched;
    }
    if let Some(tested) = json_ops::jsonb_test(op, &a, &b) {
        return tested.map(Some);
    }
    if let Some(edited) = json_ops::jsonb_edit(op, &a, &b) {
        return edited.map(Some);
    }
    if let Some(computed) = datetime::operator(op, &a, &b) {
        return computed.map(Some);
    }
    if let Some(found) = super::jsonb_paths::path_operator(op, &a, &b) {
        return found;
    }
    let ord = |a: &Value, b: &Value| compare(a, b);
    Ok(Some(match op {
        BinaryOperator::Eq => Value::Bool(ord(&a, &b)? == Ordering::Equal),
        BinaryOperator::NotEq => Value::Bool(ord(&a, &b)? != Ordering::Equal),
        BinaryOperator::Lt => Value::Bool(ord(&a, &b)? == Ordering::Less),
        BinaryOperator::LtEq => Value::Bool(ord(&a, &b)? != Ordering::Greater),
        BinaryOperator::Gt => Value::Bool(ord(&a, &b)? == Ordering::Greater),
        BinaryOperator::GtEq => Value::Bool(ord(&a, &b)? != Ordering::Less),
        BinaryOperator::Plus => arithmetic("+", a, b)?,
        BinaryOperator::Minus => arithmetic("-", a, b)?,
        BinaryOperator::Multiply => arithmetic("*", a, b)?,
        BinaryOperator::Divide => arithmetic("/", a, b)?,
        BinaryOperator::Modulo => arithmetic("%", a, b)?,
        BinaryOperator::Arrow | BinaryOperator::LongArrow => {
            return json_ops::field(&a, &b, matches!(op, BinaryOperator::LongArrow))
        }
        BinaryOperator::StringConcat
            if matches!(a, Value::Array(_)) || matches!(b, Value::Array(_)) =>
        {
            arrays::concat(a, b)?
        }
        BinaryOperator::StringConcat => {
            // Text meeting a vector is one (`'[1,2]' || v`); meeting
            // anything else, the other side is shown as text (`'n' || 1`).
            let vector = |v: &Value| matches!(v, Value::Vector(_) | Value::HalfVec(_));
            let (a, b) = match vector(&a) || vector(&b) {
                true => functions::unify(a, b)?,
                false => (a, b),
            };
            match functions::vector_arithmetic("||", &a, &b)? {
                Some(v) => v,
                None => {
                    let text = |v| coerce::cast(v, oid::TEXT, None, false).map(text_of);
                    Value::Text(text(a)? + &text(b)?)
                }
            }
        }
        other => {
            return Err(PgError::feature_not_supported(format!(
                "operator {other} is not supported"
            )))
        }
    }))
}

fn arithmetic(op: &str, a: Value, b: Value) -> Result<Value, PgError> {
    let (a, b) = match (&a, &b) {
        (Value::Text(_), Value::Text(_)) => (
            coerce::cast(a, oid::FLOAT8, None, false)?,
            coerce::cast(b, oid::FLOAT8, None, false)?,
        ),
        _ => functions::unify(a, b)?,
    };
    if let Some(v) = functions::vector_arithmetic(op, &a, &b)? {
        return Ok(v);
    }
    if let (Some(x), Some(y)) = (as_i64(&a), as_i64(&b)) {
        let wide = a.type_oid() == oid::INT8 || b.type_oid() == oid::INT8;
        let r = match op {
            "+" => x.checked_add(y),
            "-" => x.checked_sub(y),
            "*" => x.checked_mul(y),
            "/" | "%" if y == 0 => return Err(PgError::new("22012", "division by zero")),
            "/" => x.checked_div(y),
            _ => x.checked_rem(y),
        }
        .ok_or_else(int_overflow)?;
        let to = if wide { oid::INT8 } else { oid::INT4 };
        return coerce::cast(Value::Int8(r), to, None, false).map_err(|_| int_overflow());
    }
    let (Some(x), Some(y)) = (as_f64(&a), as_f64(&b)) else {
        return Err(PgError::new(
            "42883",
            format!(
                "operator does not exist: {} {op} {}",
                coerce::type_name(a.type_oid()),
                coerce::type_name(b.type_oid())
            ),
        ));
    };
    let r = match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" if y == 0.0 => return Err(PgError::new("22012", "division by zero")),
        "/" => x / y,
        _ => x % y,
    };
    let single = matches!((&a, &b), (Value::Float4(_), Value::Float4(_)))
        || (matches!(a, Value::Float4(_)) && is_integer(&b))
        || (matches!(b, Value::Float4(_)) && is_integer(&a));
    Ok(if single {
        Value::Float4(r as f32)
    } else {
        Value::Float8(r)
    })
}

/// Orders two non-NULL values as PostgreSQL's comparison operators do
/// (an untyped literal takes the other side's type).
pub fn compare(a: &Value, b: &Value) -> Result<Ordering, PgError> {
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return Ok(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) {
        let key = |v: f64| crate::shard::datum::OrderedF64(v);
        return Ok(key(x).cmp(&key(y)));
    }
    let (a, b) = functions::unify(a.clone(), b.clone())?;
    if let (Some(_), Some(_)) = (as_f64(&a), as_f64(&b)) {
        return compare(&a, &b);
    }
    Ok(match (&a, &b) {
        (Value::Text(x), Value::Text(y)) | (Value::Jsonb(x), Value::Jsonb(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Uuid(x), Value::Uuid(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::Timestamptz(x), Value::Timestamptz(y)) => x.cmp(y),
        (Value::Interval(x), Value::Interval(y)) => x.span().cmp(&y.span()),
        (x, y) if datetime::instant(x).is_some() && datetime::instant(y).is_some() => {
            datetime::instant(x).cmp(&datetime::instant(y))
        }
        (Value::Char(x), Value::Char(y)) => x.cmp(y),
        (Value::Vector(x), Value::Vector(y)) => x.cmp_pg(y),
        (Value::HalfVec(x), Value::HalfVec(y)) => x.cmp_pg(y),
        (Value::SparseVec(x), Value::SparseVec(y)) => x.cmp_pg(y),
        (Value::Bit(x), Value::Bit(y)) => x.cmp_pg(y),
        (Value::Array(x), Value::Array(y)) => compare_arrays(&x.items, &y.items)?,
        _ => {
            return Err(PgError::new(
                "42883",
                format!(
                    "operator does not exist: {} = {}",
                    coerce::type_name(a.type_oid()),
                    coerce::type_name(b.type_oid())
                ),
            ))
        }
    })
}

/// PostgreSQL's array order: element by element (NULL after any value),
/// then the shorter array first.
fn compare_arrays(a: &[Datum], b: &[Datum]) -> Result<Ordering, PgError> {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => compare(x, y)?,
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

fn equal(a: &Value, b: &Value) -> Result<bool, PgError> {
    Ok(compare(a, b)? == Ordering::Equal)
}

fn cmp_datum(a: &Datum, b: &Datum) -> Result<Option<Ordering>, PgError> {
    match (a, b) {
        (Some(a), Some(b)) => compare(a, b).map(Some),
        _ => Ok(None),
    }
}

/// The recovery control functions' target (55000 where there is none).
fn recovery<'e>(
    env: &'e Env,
) -> Result<&'e crate::shard::replication::control::RecoveryControl, PgError> {
    env.globals
        .recovery
        .as_ref()
        .ok_or_else(|| PgError::new("55000", "recovery is not in progress"))
}

/// The recovery control function `name`'s target, for superusers only:
/// others get 42501, as PostgreSQL's EXECUTE privilege check gives them
/// before the function runs.
fn superuser_only<'e>(
    env: &'e Env,
    name: &str,
) -> Result<&'e crate::shard::replication::control::RecoveryControl, PgError> {
    if !env.globals.session.superuser {
        return Err(PgError::new(
            "42501",
            format!("permission denied for function {name}"),
        ));
    }
    recovery(env)
}

/// PostgreSQL's name of the WAL segment file holding `lsn` on
/// `timeline` (16 MiB segments), as `pg_walfile_name()` gives it.
pub(super) fn walfile_name(timeline: u32, lsn: u64) -> String {
    const SEGMENT: u64 = 16 << 20;
    let segment = lsn.saturating_sub(1) / SEGMENT;
    let per_id = 0x1_0000_0000 / SEGMENT;
    format!(
        "{timeline:08X}{:08X}{:08X}",
        segment / per_id,
        segment % per_id
    )
}

fn call(f: &Function, expr: &Expr, row: &dyn Row, env: &Env) -> Result<Datum, PgError> {
    let name = function_name(f);
    if f.over.is_some() {
        // Computed over the select's rows (window.rs), or misplaced.
        return env
            .aggregates
            .and_then(|values| values.get(&expr.to_string()))
            .cloned()
            .ok_or_else(|| PgError::new("42P20", "window functions are not allowed here"));
    }
    if arrays::is_set_returning(&name) {
        return env
            .aggregates
            .and_then(|values| values.get(&expr.to_string()))
            .cloned()
            .ok_or_else(|| {
                PgError::feature_not_supported(format!(
                    "set-returning function {name} is only supported at the top of a select list without aggregates"
                ))
            });
    }
    if is_aggregate(f) {
        return match env.aggregates {
            Some(values) => values
                .get(&expr.to_string())
                .cloned()
                .ok_or_else(|| PgError::new("42803", "aggregate calls cannot be nested")),
            None => Err(PgError::new(
                "42803",
                format!("aggregate functions are not allowed here: {name}"),
            )),
        };
    }
    if name == "pg_typeof" {
        return pg_typeof(f, row, env);
    }
    if let ("array", FunctionArguments::Subquery(q)) = (name.as_str(), &f.args) {
        return array_of_subquery(q, row, env);
    }
    let exprs = function_args(f)?;
    let args = exprs
        .iter()
        .map(|a| eval(a, row, env))
        .collect::<Result<Vec<Datum>, _>>()?;
    let text = |s: &str| Ok(Some(Value::Text(s.to_string())));
    match (name.as_str(), args.as_slice()) {
        ("version", []) => return text(&super::catalog::version()),
        ("pg_current_wal_lsn" | "pg_current_wal_insert_lsn" | "pg_current_wal_flush_lsn", []) => {
            if env.globals.standby.is_some() {
                return Err(PgError::new("55000", "recovery is in progress")
                    .with_hint("WAL control functions cannot be executed during recovery."));
            }
            let db = &env.globals.db;
            let lsn = if name == "pg_current_wal_flush_lsn" {
                db.flushed_lsn()
            } else {
                db.current_lsn()
            };
            return text(&lsn.to_string());
        }
        ("pg_promote", _) => {
            let control = superuser_only(env, &name)?;
            let wait = !matches!(args.first(), Some(Some(Value::Bool(false))));
            let seconds = match args.get(1) {
                Some(Some(Value::Int4(n))) => i64::from(*n),
                Some(Some(Value::Int8(n))) => *n,
                _ => 60,
            };
            if seconds <= 0 {
                return Err(PgError::new(
                    "22023",
                    "\"wait_seconds\" must not be negative or zero",
                ));
            }
            return control
                .promote(wait, seconds as u64)
                .map(|ok| Some(Value::Bool(ok)));
        }
        ("pg_wal_replay_pause" | "pg_wal_replay_resume", []) => {
            superuser_only(env, &name)?.set_paused(name == "pg_wal_replay_pause")?;
            return text("");
        }
        ("pg_is_wal_replay_paused", []) => {
            return recovery(env)?.paused().map(|p| Some(Value::Bool(p)))
        }
        ("pg_get_wal_replay_pause_state", []) => return text(recovery(env)?.pause_state()?),
        ("pg_reload_conf", []) => {
            return Ok(Some(Value::Bool(superuser_only(env, &name)?.reload())))
        }
        ("pgvshard_rejoin_as_standby", []) => {
            return superuser_only(env, &name)?
                .rejoin_as_standby()
                .map(|ok| Some(Value::Bool(ok)))
        }
        ("pg_walfile_name", [lsn]) => {
            if env.globals.standby.is_some() {
                return Err(PgError::new("55000", "recovery is in progress")
                    .with_hint("pg_walfile_name() cannot be executed during recovery."));
            }
            let Some(lsn) = lsn else { return Ok(None) };
            let lsn = crate::shard::replication::protocol::parse_lsn(&text_of(lsn.clone()))
                .ok_or_else(|| PgError::invalid_text("pg_lsn", &text_of(lsn.clone())))?;
            return text(&walfile_name(env.globals.db.timeline().current, lsn.0));
        }
        ("inet_server_port", []) => {
            return Ok(env
                .globals
                .session
                .server_addr
                .map(|a| Value::Int4(i32::from(a.port()))))
        }
        ("now" | "current_timestamp" | "transaction_timestamp", []) => {
            return Ok(Some(Value::Timestamptz(env.globals.transaction_start)))
        }
        ("statement_timestamp", []) => {
            return Ok(Some(Value::Timestamptz(env.globals.statement_start)))
        }
        ("clock_timestamp", []) => {
            return Ok(Some(Value::Timestamptz(crate::wire::datetime::now())))
        }
        ("current_date", []) => {
            let today = crate::wire::datetime::date_of(env.globals.transaction_start);
            return Ok(Some(Value::Date(today)));
        }
        ("pg_is_in_recovery", []) => return Ok(Some(Value::Bool(env.globals.standby.is_some()))),
        ("pg_last_wal_receive_lsn", []) => {
            return Ok(env
                .globals
                .standby
                .as_ref()
                .map(|s| Value::Text(s.receive_lsn.clone())))
        }
        ("pg_last_wal_replay_lsn", []) => {
            return Ok(env
                .globals
                .standby
                .as_ref()
                .map(|s| Value::Text(s.replay_lsn.clone())))
        }
        ("pg_last_xact_replay_timestamp", []) => {
            return Ok(env
                .globals
                .standby
                .as_ref()
                .and_then(|s| s.replay_time)
                .map(Value::Timestamptz))
        }
        (
            "pg_advisory_lock"
            | "pg_advisory_xact_lock"
            | "pg_try_advisory_lock"
            | "pg_try_advisory_xact_lock"
            | "pg_advisory_unlock"
            | "pg_advisory_unlock_all",
            _,
        ) => return advisory_lock(&name, &args, env),
        ("nextval" | "currval" | "setval" | "lastval", _) => {
            return sequence_function(&name, &args, env)
        }
        ("pg_sleep", [seconds]) => {
            let seconds = seconds.as_ref().and_then(as_f64).unwrap_or(0.0);
            let until = std::time::Instant::now()
                + std::time::Duration::from_secs_f64(seconds.clamp(0.0, 1e9));
            while std::time::Instant::now() < until {
                if let Some(e) = env.globals.cancel.error() {
                    return Err(e);
                }
                std::thread::sleep(
                    until
                        .saturating_duration_since(std::time::Instant::now())
                        .min(std::time::Duration::from_millis(10)),
                );
            }
            return Ok(Some(Value::Text(String::new())));
        }
        ("current_database" | "current_catalog", []) => return text(&env.globals.session.database),
        ("current_user" | "current_role" | "session_user" | "user", []) => {
            return text(&env.globals.session.user)
        }
        ("current_schema", []) => return text("public"),
        ("pg_backend_pid", []) => return Ok(Some(Value::Int4(env.globals.session.pid))),
        ("gen_random_uuid", []) => {
            let bytes = crate::wire::uuid::random()
                .map_err(|e| PgError::internal(format!("could not generate random values: {e}")))?;
            return Ok(Some(Value::Uuid(bytes)));
        }
        ("current_setting", [Some(n)] | [Some(n), _]) => {
            let missing_ok = matches!(args.get(1), Some(Some(Value::Bool(true))));
            let name = text_of(n.clone());
            // A set_config earlier in the same statement.
            let mut session = env.globals.session.clone();
            for set in env
                .globals
                .set_configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                session.set(&set.name, &set.value, set.local)?;
            }
            if let ("synchronous_standby_names", Some(r)) = (name.as_str(), &env.globals.recovery) {
                return text(r.replication.synchronous_standby_names());
            }
            return match session.show(&name) {
                Ok(v) => text(&v),
                Err(_) if missing_ok => Ok(None),
                Err(e) => Err(e),
            };
        }
        ("set_config", [Some(n), v, Some(local)]) => {
            let set = SetConfig {
                name: text_of(n.clone()),
                value: v.clone().map(text_of).unwrap_or_default(),
                local: matches!(local, Value::Bool(true)),
            };
            // Checked on a copy of the session; the statement's end
            // applies it to the session itself.
            let mut session = env.globals.session.clone();
            let shown = match session.set(&set.name, &set.value, set.local)? {
                // is_local outside a transaction: in effect for this
                // statement only, which reads nothing after it.
                Some(_) => crate::wire::guc::find(&set.name)
                    .map_or_else(|| Ok(set.value.clone()), |g| g.canonical(&set.value))?,
                None => session.show(&set.name)?,
            };
            env.globals
                .set_configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(set);
            return text(&shown);
        }
        _ => {}
    }
    if let Some(r) = jsonpath_eval::path_function(&name, &args) {
        return r;
    }
    if let Some(r) = super::json_build::call(&name, &args) {
        return r;
    }
    if let Some(r) = catalog_function(&name, &args, env) {
        return r;
    }
    if let Some(r) = arrays::array_function(&name, &args) {
        return r;
    }
    if let Some(r) = functions::plain_function(&name, &args) {
        return r;
    }
    if let Some(r) = scalar_functions::call(&name, &args) {
        return r;
    }
    if let Some(r) = datetime::call(&name, &args, env.globals.transaction_start) {
        return r;
    }
    if let Some(r) = super::jsonb_paths::call(&name, &args) {
        return r;
    }
    if args.iter().any(Option::is_none) {
        let known = functions::vector_function(&name, &[]).is_some();
        return if known {
            Ok(None)
        } else {
            Err(functions::no_matching_function(&name, &exprs, &args))
        };
    }
    let values: Vec<Value> = args.iter().flatten().cloned().collect();
    functions::vector_function(&name, &values)
        .unwrap_or_else(|| Err(functions::no_matching_function(&name, &exprs, &args)))
        .map(Some)
}

/// A row's columns as the type inference sees them.
struct RowColumns<'a>(&'a dyn Row);

impl super::infer::Columns for RowColumns<'_> {
    fn column_type(&self, q: Option<&str>, name: &str) -> Option<TypeOf> {
        self.0.column_type(q, name)
    }
}

/// `ARRAY(subquery)`: the subquery's one column as an array, in its row
/// order (empty, not NULL, for no rows).
fn array_of_subquery(q: &Query, row: &dyn Row, env: &Env) -> Result<Datum, PgError> {
    let rel = env.scope()?.subquery(q, row, false)?;
    single_column(&rel)?;
    let elem = match rel.columns[0].ty.0 {
        oid::UNKNOWN => oid::TEXT,
        t => t,
    };
    arrays::array_type(elem)?;
    let items = rel.rows.into_iter().map(|mut r| r.swap_remove(0)).collect();
    Ok(Some(Value::Array(crate::wire::Array::new(elem, items))))
}

/// `pg_typeof(e)`: the name of the type `e` has (without its modifier),
/// found as the statement's column types are; a bare string literal or
/// NULL is `unknown`, as in PostgreSQL.
fn pg_typeof(f: &Function, row: &dyn Row, env: &Env) -> Result<Datum, PgError> {
    let args = function_args(f)?;
    let [arg] = args.as_slice() else {
        return Err(functions::no_function("pg_typeof", &[]));
    };
    let unknown = matches!(arg, Expr::Value(v) if matches!(v.value, SqlValue::SingleQuotedString(_) | SqlValue::Null));
    let type_oid = if unknown {
        oid::UNKNOWN
    } else {
        let params: Vec<u32> = env
            .params
            .iter()
            .map(|p| p.as_ref().map_or(0, Value::type_oid))
            .collect();
        let types = super::infer::TypeEnv {
            params: &params,
            scope: env.scope,
            outer: env.outer,
        };
        super::infer::infer(arg, &RowColumns(row), &types)?.0
    };
    let name = super::pg_catalog::format_type(type_oid, None)
        .unwrap_or_else(|| coerce::type_name(type_oid).to_string());
    Ok(Some(Value::Reg {
        ty: oid::REGTYPE,
        oid: type_oid,
        name,
    }))
}

/// The advisory lock functions (see [`AdvisoryLocks`]): NULL for a NULL
/// key, as PostgreSQL's strict functions.
fn advisory_lock(name: &str, args: &[Datum], env: &Env) -> Result<Datum, PgError> {
    let key = match args {
        [] if name == "pg_advisory_unlock_all" => None,
        [Some(k)] => {
            Some(LockKey::Single(as_i64(k).ok_or_else(|| {
                functions::no_function(name, std::slice::from_ref(k))
            })?))
        }
        [Some(a), Some(b)] => {
            let pair = as_i64(a)
                .zip(as_i64(b))
                .and_then(|(a, b)| Some((i32::try_from(a).ok()?, i32::try_from(b).ok()?)));
            Some(pair.map_or_else(
                || Err(functions::no_function(name, &[a.clone(), b.clone()])),
                |(a, b)| Ok(LockKey::Pair(a, b)),
            )?)
        }
        [_] | [_, _] => return Ok(None),
        _ => {
            let given: Vec<Value> = args.iter().flatten().cloned().collect();
            return Err(functions::no_function(name, &given));
        }
    };
    let locks = &env.globals.advisory_locks;
    let session = env.globals.session.pid;
    let scope = if name.contains("xact") {
        LockScope::Transaction
    } else {
        LockScope::Session
    };
    let void = Ok(Some(Value::Text(String::new())));
    match (name, key) {
        ("pg_advisory_unlock_all", _) => {
            locks.release_all(session, Some(LockScope::Session));
            void
        }
        (_, None) => void,
        ("pg_advisory_unlock", Some(key)) => Ok(Some(Value::Bool(locks.unlock(session, key)))),
        ("pg_try_advisory_lock" | "pg_try_advisory_xact_lock", Some(key)) => {
            Ok(Some(Value::Bool(locks.try_lock(session, key, scope))))
        }
        (_, Some(key)) => {
            locks.lock(session, key, scope, &env.globals.cancel)?;
            void
        }
    }
}

/// The qualifier and column of `q.c` or `schema.q.c`.
pub fn qualified(parts: &[sqlparser::ast::Ident]) -> Option<(&str, &str)> {
    match parts {
        [.., q, c] if parts.len() <= 3 => Some((&q.value, &c.value)),
        _ => None,
    }
}

/// `CASE [operand] WHEN … THEN … [ELSE …] END`: only the branch taken
/// is evaluated.
fn case(
    operand: Option<&Expr>,
    conditions: &[CaseWhen],
    else_result: Option<&Expr>,
    row: &dyn Row,
    env: &Env,
) -> Result<Datum, PgError> {
    let subject = operand.map(|o| eval(o, row, env)).transpose()?;
    for w in conditions {
        let hit = match &subject {
            Some(s) => match (s, eval(&w.condition, row, env)?) {
                (Some(a), Some(b)) => equal(a, &b)?,
                _ => false,
            },
            None => truth(eval(&w.condition, row, env)?)? == Some(true),
        };
        if hit {
            return eval(&w.result, row, env);
        }
    }
    else_result.map_or(Ok(None), |e| eval(e, row, env))
}

fn single_column(rel: &Relation) -> Result<(), PgError> {
    if rel.columns.len() != 1 {
        return Err(PgError::new(
            "42601",
            "subquery must return only one column",
        ));
    }
    Ok(())
}

/// The value of a scalar subquery: NULL without rows, 21000 with more
/// than one.
fn scalar(rel: Relation) -> Result<Datum, PgError> {
    single_column(&rel)?;
    let mut rows = rel.rows.into_iter();
    let first = rows.next();
    if rows.next().is_some() {
        return Err(PgError::new(
            "21000",
            "more than one row returned by a subquery used as an expression",
        ));
    }
    Ok(first.and_then(|mut r| r.swap_remove(0)))
}

/// `v op ANY (items)` with SQL's three-valued logic.
fn any_of(
    v: Datum,
    items: impl Iterator<Item = Datum>,
    op: &BinaryOperator,
) -> Result<Option<bool>, PgError> {
    let Some(v) = v else { return Ok(None) };
    let mut saw_null = false;
    for item in items {
        let Some(x) = item else {
            saw_null = true;
            continue;
        };
        let ord = compare(&v, &x)?;
        let hit = match op {
            BinaryOperator::Eq => ord == Ordering::Equal,
            BinaryOperator::NotEq => ord != Ordering::Equal,
            BinaryOperator::Lt => ord == Ordering::Less,
            BinaryOperator::LtEq => ord != Ordering::Greater,
            BinaryOperator::Gt => ord == Ordering::Greater,
            BinaryOperator::GtEq => ord != Ordering::Less,
            other => {
                return Err(PgError::feature_not_supported(format!(
                    "operator {other} ANY is not supported"
                )))
            }
        };
        if hit {
            return Ok(Some(true));
        }
    }
    Ok((!saw_null).then_some(false))
}

/// `x::regclass` and `x::regtype`: the OID looked up in the catalog (from
/// a name) or kept (from a number), carrying the name it prints as;
/// `None` for any other cast.
fn catalog_cast(
    expr: &Expr,
    data_type: &DataType,
    row: &dyn Row,
    env: &Env,
) -> Result<Option<Datum>, PgError> {
    let Some(kind) = reg_type(data_type) else {
        return Ok(None);
    };
    let Some(v) = eval(expr, row, env)? else {
        return Ok(Some(None));
    };
    let id = reg_oid(kind, v, env)?;
    reg_value(kind, id, env).map(|v| Some(Some(v)))
}

/// The regclass / regtype value of `id`, with the name it prints as.
fn reg_value(kind: RegKind, id: u32, env: &Env) -> Result<Value, PgError> {
    let name = match kind {
        // regclass_out / regtype_out print InvalidOid as "-".
        _ if id == 0 => "-".to_string(),
        RegKind::Class => super::pg_catalog::relation_name(id, env.scope()?.tables()),
        RegKind::Type => super::pg_catalog::format_type(id, None).unwrap_or_else(|| id.to_string()),
    };
    let ty = match kind {
        RegKind::Class => oid::REGCLASS,
        RegKind::Type => oid::REGTYPE,
    };
    Ok(Value::Reg { ty, oid: id, name })
}

/// `pg_partition_ancestors(rel)`'s one row: no table here is a
/// partition, so a relation's only ancestor is itself (NULL for NULL).
pub(super) fn partition_ancestor(rel: Datum, env: &Env) -> Result<Datum, PgError> {
    match rel
        .as_ref()
        .and_then(as_i64)
        .and_then(|n| u32::try_from(n).ok())
    {
        Some(id) => reg_value(RegKind::Class, id, env).map(Some),
        None => Ok(None),
    }
}

/// `pg_relation_size(rel [, fork])`, `pg_table_size`, `pg_indexes_size`
/// and `pg_total_relation_size` of a relation given by OID or name: the
/// heap bytes a shard holds for its rows and indexes; NULL for an OID no
/// relation has, as in PostgreSQL.
fn relation_size(function: &str, args: &[Datum], env: &Env) -> Result<Datum, PgError> {
    use super::pg_catalog as cat;
    let tables = env.scope()?.tables();
    let rel = match args.first() {
        Some(Some(Value::Text(name))) => {
            Some(cat::relation_oid(name, tables).ok_or_else(|| {
                PgError::new("42P01", format!("relation \"{name}\" does not exist"))
            })?)
        }
        Some(Some(v)) => as_i64(v).and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    let Some(rel) = rel else {
        return Ok(None);
    };
    let own = cat::relation_bytes(rel, tables);
    let indexes = || cat::indexes_bytes(rel, tables).unwrap_or(0);
    let bytes = match function {
        // Only the main fork holds anything.
        "pg_relation_size" => match args.get(1) {
            Some(Some(fork)) if text_of(fork.clone()) != "main" => own.map(|_| 0),
            _ => own,
        },
        "pg_indexes_size" => own.map(|_| indexes()),
        "pg_total_relation_size" => own.map(|b| b + indexes()),
        _ => own,
    };
    Ok(bytes.map(|b| Value::Int8(i64::try_from(b).unwrap_or(i64::MAX))))
}

/// `pg_size_pretty(bigint)` as PostgreSQL prints it: bytes below 10 kB,
/// else the first of kB, MB, GB and TB that shows under 10,240, else PB;
/// half-rounded.
fn size_pretty(size: i64) -> String {
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if size.unsigned_abs() < 10 * 1024 {
        return format!("{size} bytes");
    }
    // In halves of the unit, for the half rounding.
    let mut halves = size / (1 << 9);
    for unit in ["kB", "MB", "GB", "TB"] {
        if halves.unsigned_abs() < 20 * 1024 - 1 {
            return format!("{} {unit}", half_rounded(halves));
        }
        halves /= 1 << 10;
    }
    format!("{} PB", half_rounded(halves))
}

#[derive(Clone, Copy)]
enum RegKind {
    Class,
    Type,
}

fn reg_type(dt: &DataType) -> Option<RegKind> {
    match dt {
        DataType::Regclass => Some(RegKind::Class),
        DataType::Custom(name, mods) if mods.is_empty() => {
            match super::types::custom_name(name).as_str() {
                "regclass" => Some(RegKind::Class),
                "regtype" => Some(RegKind::Type),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The OID a `regclass` / `regtype` input names (42P01 / 42704 when
/// nothing has that name).
fn reg_oid(kind: RegKind, v: Value, env: &Env) -> Result<u32, PgError> {
    if let Some(i) = as_i64(&v) {
        return u32::try_from(i).map_err(|_| int_overflow());
    }
    let name = text_of(v);
    // regclassin / regtypein take a number as the OID itself.
    if let Ok(id) = name.trim().parse::<u32>() {
        return Ok(id);
    }
    match kind {
        RegKind::Class => super::pg_catalog::relation_oid(&name, env.scope()?.tables())
            .ok_or_else(|| PgError::new("42P01", format!("relation \"{name}\" does not exist"))),
        RegKind::Type => crate::wire::types::by_name(&name)
            .map(|t| t.oid)
            .ok_or_else(|| super::types::undefined_type(&name)),
    }
}

/// The catalog functions drivers call, or `None` for another name.
fn catalog_function(name: &str, args: &[Datum], env: &Env) -> Option<Result<Datum, PgError>> {
    use super::pg_catalog as cat;
    let oid_arg = |i: usize| match args.get(i) {
        Some(Some(v)) => as_i64(v).and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    let text_arg = |i: usize| args.get(i).cloned().flatten().map(text_of);
    let tables = || env.scope().map(|s| s.tables());
    let text = |s: Option<String>| Ok(s.map(Value::Text));
    Some(match name {
        "to_regtype" => text_arg(0)
            .and_then(|n| crate::wire::types::by_name(&n))
            .map(|t| reg_value(RegKind::Type, t.oid, env))
            .transpose(),
        "to_regclass" => match tables() {
            Ok(t) => text_arg(0)
                .and_then(|n| cat::relation_oid(&n, t))
                .map(|id| reg_value(RegKind::Class, id, env))
                .transpose(),
            Err(e) => Err(e),
        },
        "pg_partition_ancestors" => partition_ancestor(args.first().cloned().flatten(), env),
        "pg_relation_size" | "pg_table_size" | "pg_indexes_size" | "pg_total_relation_size" => {
            relation_size(name, args, env)
        }
        "pg_size_pretty" => text(
            args.first()
                .cloned()
                .flatten()
                .as_ref()
                .and_then(as_i64)
                .map(size_pretty),
        ),
        "format_type" => {
            let typmod = match args.get(1) {
                Some(Some(v)) => as_i64(v).map(|m| m as i32),
                _ => None,
            };
            text(oid_arg(0).map(|t| cat::format_type(t, typmod).unwrap_or_else(|| "???".into())))
        }
        "pg_table_is_visible" | "pg_type_is_visible" | "pg_function_is_visible" => {
            Ok(args.first().cloned().flatten().map(|_| Value::Bool(true)))
        }
        "has_table_privilege"
        | "has_schema_privilege"
        | "has_database_privilege"
        | "has_column_privilege"
        | "has_sequence_privilege" => Ok(Some(Value::Bool(true))),
        "obj_description" | "col_description" | "shobj_description" => Ok(None),
        "pg_get_expr" => match (text_arg(0), oid_arg(1), args.get(2)) {
            (Some(e), Some(rel), Some(Some(Value::Bool(true)))) => match tables() {
                Ok(t) => text(Some(cat::pretty_index_expr(&e, rel, t))),
                Err(e) => Err(e),
            },
            (e, ..) => text(e),
        },
        "pg_get_userbyid" => text(Some(env.globals.session.user.clone())),
        "pg_encoding_to_char" => text(Some("UTF8".into())),
        // The built-in tablespaces, a shard's only ones, have no location.
        "pg_tablespace_location" => text(oid_arg(0).map(|_| String::new())),
        "pg_get_indexdef" => match (tables(), args.get(1)) {
            (Err(e), _) => Err(e),
            (Ok(t), None | Some(Some(Value::Int4(0)))) => {
                let pretty = matches!(args.get(2), Some(Some(Value::Bool(true))));
                text(oid_arg(0).and_then(|i| cat::index_def_by_oid(i, t, pretty)))
            }
            (Ok(t), Some(column)) => {
                let column = column.as_ref().and_then(as_i64).unwrap_or(0);
                let pretty = matches!(args.get(2), Some(Some(Value::Bool(true))));
                text(oid_arg(0).and_then(|i| cat::index_column_by_oid(i, column, t, pretty)))
            }
        },
        "pg_get_constraintdef" => match tables() {
            Ok(t) => text(oid_arg(0).and_then(|c| cat::constraint_def_by_oid(c, t))),
            Err(e) => Err(e),
        },
        "pg_get_serial_sequence" => match tables() {
            Ok(t) => text(serial_sequence(
                text_arg(0).unwrap_or_default(),
                text_arg(1).unwrap_or_default(),
                t,
            )),
            Err(e) => Err(e),
        },
        "current_schemas" => {
            let implicit = matches!(args.first(), Some(Some(Value::Bool(true))));
            let schemas = if implicit {
                &["pg_catalog", "public"][..]
            } else {
                &["public"][..]
            };
            Ok(Some(Value::Array(crate::wire::Array::new(
                oid::NAME,
                schemas
                    .iter()
                    .map(|s| Some(Value::Text(s.to_string())))
                    .collect(),
            ))))
        }
        _ => return None,
    })
}

/// `pg_get_serial_sequence(table, column)`: the sequence a serial or
/// identity column's default reads, `public.t_c_seq`.
fn serial_sequence(table: String, column: String, tables: &Tables) -> Option<String> {
    let table = super::sequences::plain_name(&table);
    let def = tables.get(&table)?.def();
    let c = def.columns.iter().find(|c| c.name == column)?;
    super::sequences::default_sequence(c).map(|s| format!("public.{s}"))
}

/// `nextval(seq)`, `currval(seq)`, `setval(seq, value [, is_called])`
/// and `lastval()` (NULL arguments give NULL, as these strict functions do).
fn sequence_function(name: &str, args: &[Datum], env: &Env) -> Result<Datum, PgError> {
    let g = env.globals;
    if name == "lastval" {
        let tables = env.scope()?.tables();
        return g
            .sequences
            .lastval(tables, &g.sequence_values)
            .map(|v| Some(Value::Int8(v)));
    }
    let Some(Some(seq)) = args.first() else {
        return Ok(None);
    };
    let seq = match seq {
        Value::Reg { oid, .. } => oid.to_string(),
        other => text_of(other.clone()),
    };
    if name != "currval" && (g.standby.is_some() || g.session.read_only_transaction()) {
        return Err(PgError::new(
            "25006",
            format!("cannot execute {name}() in a read-only transaction"),
        ));
    }
    let tables = env.scope()?.tables();
    let v = match (name, &args[1..]) {
        ("nextval", []) => g.sequences.nextval(tables, &seq, &g.sequence_values)?,
        ("currval", []) => g.sequences.currval(tables, &seq, &g.sequence_values)?,
        ("setval", [value] | [value, _]) => {
            let is_called = match args.get(2) {
                None => true,
                Some(Some(Value::Bool(b))) => *b,
                Some(_) => return Ok(None),
            };
            let Some(value) = value.as_ref().and_then(as_i64) else {
                return Ok(None);
            };
            g.sequences
                .setval(tables, &seq, value, is_called, &g.sequence_values)?
        }
        _ => return Err(PgError::no_function_with_args(name, args.len())),
    };
    Ok(Some(Value::Int8(v)))
}
