//! count / sum / avg / min / max / bool_and / bool_or / array_agg /
//! string_agg / json_agg / jsonb_agg over a group of rows,
//! including pgvector's `avg` and `sum` of vectors (through ann's
//! accumulators) and `ORDER BY` inside the collecting ones
//! (`string_agg(x, ', ' ORDER BY y)`).

use super::coerce::{as_f64, as_i64};
use super::expr::{compare, eval, function_args, function_name, is_aggregate, Env, Row};
use super::json_build;
use super::select::compare_keys;
use crate::shard::datum::Datum;
use crate::shard::datum::KeyValue;
use crate::wire::types::oid;
use crate::wire::{Array, PgError, Value};
use ann::functions::{AvgAccumulator, SumAccumulator};
use half::f16;
use sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArgumentClause, FunctionArguments, OrderByExpr,
    Query, Visit, Visitor,
};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

/// One aggregate call found in a query.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    /// The call's SQL text (the key its value is found by).
    pub key: String,
    name: String,
    /// The argument; `None` for `count(*)`.
    arg: Option<Expr>,
    /// string_agg's separator.
    separator: Option<Expr>,
    /// `ORDER BY` inside the call (the collecting aggregates only).
    order: Vec<OrderByExpr>,
    /// `DISTINCT`: each non-NULL value counts once.
    distinct: bool,
    /// `FILTER (WHERE …)`: the rows the call aggregates.
    filter: Option<Expr>,
}

/// Every aggregate call in `exprs`, once each.
pub fn find_calls<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> Result<Vec<AggregateCall>, PgError> {
    let aggregate = |f: &Function, whole: &Expr| {
        (is_aggregate(f) && f.over.is_none()).then(|| call_of(f, whole))
    };
    distinct_calls(exprs, aggregate, |c| &c.key)
}

/// The calls `make` takes from the functions in `exprs` (not inside their
/// subqueries), once per `key`; the first error `make` gives.
pub fn distinct_calls<'a, T>(
    exprs: impl IntoIterator<Item = &'a Expr>,
    make: impl Fn(&Function, &Expr) -> Option<Result<T, PgError>>,
    key: impl Fn(&T) -> &str,
) -> Result<Vec<T>, PgError> {
    let mut calls: Vec<T> = Vec::new();
    let mut error = None;
    for e in exprs {
        own_expressions(e, |x| {
            let Expr::Function(f) = x else { return };
            match make(f, x) {
                Some(Ok(c)) if !calls.iter().any(|o| key(o) == key(&c)) => calls.push(c),
                Some(Err(e)) => error = Some(e),
                _ => {}
            }
        });
    }
    match error {
        Some(e) => Err(e),
        None => Ok(calls),
    }
}

/// Calls `f` on every expression of `e` but those inside its subqueries
/// (their aggregates belong to them, not to the query around them). It
/// copies nothing and, for the usual shapes, does not even walk into the
/// subqueries: once per nested query, either made nested subqueries
/// quadratic.
pub fn own_expressions(e: &Expr, mut f: impl FnMut(&Expr)) {
    own(e, &mut f);
}

fn own(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    crate::stack::guard(|| match e {
        Expr::Subquery(_) | Expr::Exists { .. } => f(e),
        Expr::InSubquery { expr: inner, .. }
        | Expr::Nested(inner)
        | Expr::UnaryOp { expr: inner, .. }
        | Expr::Cast { expr: inner, .. }
        | Expr::IsNull(inner)
        | Expr::IsNotNull(inner) => {
            f(e);
            own(inner, f);
        }
        Expr::BinaryOp { left, right, .. } => {
            f(e);
            own(left, f);
            own(right, f);
        }
        other => own_by_visit(other, f),
    })
}

/// [`own`] for any other expression: walks all of it, subqueries too.
fn own_by_visit(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    struct Own<F> {
        queries: usize,
        f: F,
    }
    impl<F: FnMut(&Expr)> Visitor for Own<&mut F>
    where
        F: ?Sized,
    {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.queries += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.queries -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.queries == 0 {
                (self.f)(e);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut Own { queries: 0, f });
}

/// The aggregates that collect their rows' values (and may order them).
fn collects(name: &str) -> bool {
    matches!(name, "array_agg" | "string_agg" | "json_agg" | "jsonb_agg")
}

fn call_of(f: &Function, expr: &Expr) -> Result<AggregateCall, PgError> {
    let name = function_name(f);
    let mut order = Vec::new();
    let mut distinct = false;
    if let FunctionArguments::List(list) = &f.args {
        let unsupported = || {
            PgError::feature_not_supported(
                "ORDER BY inside aggregates other than array_agg / string_agg / json_agg / jsonb_agg, and DISTINCT in those, are not supported",
            )
        };
        distinct = list.duplicate_treatment == Some(DuplicateTreatment::Distinct);
        if distinct && collects(&name) {
            return Err(unsupported());
        }
        for clause in &list.clauses {
            match clause {
                FunctionArgumentClause::OrderBy(keys) if collects(&name) => {
                    order.extend(keys.iter().cloned())
                }
                _ => return Err(unsupported()),
            }
        }
    }
    let args = function_args(f)?;
    let mut separator = None;
    let arg = match (name.as_str(), args.as_slice()) {
        ("count", []) => None,
        ("string_agg", [a, s]) => {
            separator = Some((*s).clone());
            Some((*a).clone())
        }
        ("string_agg", _) => None,
        (_, [a]) => Some((*a).clone()),
        _ => return Err(PgError::no_function_with_args(&name, args.len())),
    };
    if distinct && arg.is_none() {
        return Err(PgError::new("42601", "syntax error at or near \"*\""));
    }
    Ok(AggregateCall {
        key: expr.to_string(),
        name,
        arg,
        separator,
        order,
        distinct,
        filter: f.filter.as_deref().cloned(),
    })
}

/// The running state of one aggregate over one group.
#[derive(Debug)]
enum State {
    Count(i64),
    IntSum(Option<i64>),
    FloatSum(Option<f64>, bool),
    Avg(f64, u64),
    VectorSum(SumAccumulator<f32>),
    HalfSum(SumAccumulator<f16>),
    VectorAvg(AvgAccumulator, bool),
    Extreme(Datum, Ordering),
    /// bool_and (true) / bool_or (false) so far.
    Bools(Option<bool>, bool),
    /// The collecting aggregates: each row's sort keys, value and
    /// (string_agg) separator.
    Collect(Vec<(Vec<Datum>, Datum, Datum)>),
    Empty,
}

/// The states of every aggregate call for one group.
#[derive(Debug)]
pub struct Accumulators {
    states: Vec<State>,
    /// The values a DISTINCT call has taken, per call.
    seen: Vec<HashSet<KeyValue>>,
}

impl Accumulators {
    /// Fresh states for `calls`.
    pub fn new(calls: &[AggregateCall]) -> Self {
        Accumulators {
            states: calls
                .iter()
                .map(|c| match c.name.as_str() {
                    "count" => State::Count(0),
                    "min" => State::Extreme(None, Ordering::Less),
                    "max" => State::Extreme(None, Ordering::Greater),
                    name if collects(name) => State::Collect(Vec::new()),
                    "bool_and" => State::Bools(None, true),
                    "bool_or" => State::Bools(None, false),
                    _ => State::Empty,
                })
                .collect(),
            seen: calls.iter().map(|_| HashSet::new()).collect(),
        }
    }

    /// Adds one row.
    pub fn add(
        &mut self,
        calls: &[AggregateCall],
        row: &dyn Row,
        env: &Env,
    ) -> Result<(), PgError> {
        for ((call, state), seen) in calls.iter().zip(&mut self.states).zip(&mut self.seen) {
            if let Some(filter) = &call.filter {
                let pass = match eval(filter, row, env)? {
                    None => false,
                    Some(Value::Bool(b)) => b,
                    Some(text @ Value::Text(_)) => super::expr::bool_of(text)?,
                    Some(other) => {
                        return Err(PgError::new(
                            "42804",
                            format!(
                                "argument of FILTER must be type boolean, not type {}",
                                super::coerce::type_name(other.type_oid())
                            ),
                        ))
                    }
                };
                if !pass {
                    continue;
                }
            }
            let value = match &call.arg {
                None => Some(Value::Bool(true)),
                Some(e) => eval(e, row, env)?,
            };
            if let State::Collect(items) = state {
                let keys = call
                    .order
                    .iter()
                    .map(|k| eval(&k.expr, row, env))
                    .collect::<Result<Vec<_>, _>>()?;
                let separator = match &call.separator {
                    Some(s) => eval(s, row, env)?,
                    None => None,
                };
                items.push((keys, value, separator));
                continue;
            }
            let Some(v) = value else { continue };
            if call.distinct {
                // Vectors have no key: their text is exact.
                let key = crate::shard::datum::key(&Some(v.clone()))
                    .unwrap_or_else(|| KeyValue::Text(v.to_text()));
                if !seen.insert(key) {
                    continue;
                }
            }
            add(state, &call.name, v)?;
        }
        Ok(())
    }

    /// The aggregate values by call text.
    pub fn finish(self, calls: &[AggregateCall]) -> Result<HashMap<String, Datum>, PgError> {
        calls
            .iter()
            .zip(self.states)
            .map(|(c, s)| Ok((c.key.clone(), finish(s, c)?)))
            .collect()
    }
}

fn no_aggregate(name: &str, v: &Value) -> PgError {
    super::functions::no_function(name, std::slice::from_ref(v))
}

fn add(state: &mut State, name: &str, v: Value) -> Result<(), PgError> {
    if matches!(state, State::Empty) {
        *state = match (name, &v) {
            ("sum", Value::Vector(_)) => State::VectorSum(SumAccumulator::new()),
            ("sum", Value::HalfVec(_)) => State::HalfSum(SumAccumulator::new()),
            ("sum", Value::Float4(_)) => State::FloatSum(None, true),
            ("sum", Value::Float8(_) | Value::Text(_)) => State::FloatSum(None, false),
            ("sum", v) if as_i64(v).is_some() => State::IntSum(None),
            ("avg", Value::Vector(_)) => State::VectorAvg(AvgAccumulator::new(), false),
            ("avg", Value::HalfVec(_)) => State::VectorAvg(AvgAccumulator::new(), true),
            ("avg", v) if as_f64(v).is_some() => State::Avg(0.0, 0),
            _ => return Err(no_aggregate(name, &v)),
        };
    }
    match (state, v) {
        (State::Count(n), _) => *n += 1,
        (State::IntSum(s), v) => {
            let x = as_i64(&v).ok_or_else(|| no_aggregate(name, &v))?;
            *s = Some(
                s.unwrap_or(0)
                    .checked_add(x)
                    .ok_or_else(|| PgError::new("22003", "bigint out of range"))?,
            );
        }
        (State::FloatSum(s, _), v) => {
            let x = match &v {
                Value::Text(t) => t
                    .parse()
                    .map_err(|_| PgError::invalid_text("double precision", t))?,
                v => as_f64(v).ok_or_else(|| no_aggregate(name, v))?,
            };
            *s = Some(s.unwrap_or(0.0) + x);
        }
        (State::Avg(sum, n), v) => {
            *sum += as_f64(&v).ok_or_else(|| no_aggregate(name, &v))?;
            *n += 1;
        }
        (State::VectorSum(acc), Value::Vector(x)) => acc.add(&x)?,
        (State::HalfSum(acc), Value::HalfVec(x)) => acc.add(&x)?,
        (State::VectorAvg(acc, false), Value::Vector(x)) => acc.add(&x)?,
        (State::VectorAvg(acc, true), Value::HalfVec(x)) => acc.add(&x)?,
        (State::Bools(acc, and), v) => {
            let x = super::expr::bool_of(v)?;
            let so_far = acc.unwrap_or(*and);
            *acc = Some(if *and { so_far && x } else { so_far || x });
        }
        (State::Extreme(best, want), v) => {
            let replace = match best {
                None => true,
                Some(b) => compare(&v, b)? == *want,
            };
            if replace {
                *best = Some(v);
            }
        }
        (_, v) => return Err(no_aggregate(name, &v)),
    }
    Ok(())
}

fn finish(state: State, call: &AggregateCall) -> Result<Datum, PgError> {
    Ok(match state {
        State::Collect(mut items) if !items.is_empty() => {
            let mut error = None;
            items.sort_by(|a, b| {
                compare_keys(&a.0, &b.0, &call.order).unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Ordering::Equal
                })
            });
            if let Some(e) = error {
                return Err(e);
            }
            collected(&call.name, items)?
        }
        State::Collect(_) => None,
        State::Bools(acc, _) => acc.map(Value::Bool),
        State::Count(n) => Some(Value::Int8(n)),
        State::IntSum(s) => s.map(Value::Int8),
        State::FloatSum(s, true) => s.map(|x| Value::Float4(x as f32)),
        State::FloatSum(s, false) => s.map(Value::Float8),
        State::Avg(sum, n) => (n > 0).then(|| Value::Float8(sum / n as f64)),
        State::VectorSum(acc) => acc.sum().cloned().map(Value::Vector),
        State::HalfSum(acc) => acc.sum().cloned().map(Value::HalfVec),
        State::VectorAvg(acc, false) => acc.avg::<f32>()?.map(Value::Vector),
        State::VectorAvg(acc, true) => acc.avg::<f16>()?.map(Value::HalfVec),
        State::Extreme(best, _) => best,
        State::Empty => None,
    })
}

/// A collecting aggregate's value over its rows, in order.
fn collected(name: &str, items: Vec<(Vec<Datum>, Datum, Datum)>) -> Result<Datum, PgError> {
    Ok(match name {
        "string_agg" => {
            let mut out: Option<String> = None;
            for (_, v, separator) in items {
                let Some(v) = v else { continue };
                let Value::Text(v) = v else {
                    return Err(no_aggregate(name, &v));
                };
                match (&mut out, separator) {
                    (None, _) => out = Some(v),
                    (Some(text), Some(Value::Text(s))) => {
                        text.push_str(&s);
                        text.push_str(&v);
                    }
                    (Some(text), _) => text.push_str(&v),
                }
            }
            out.map(Value::Text)
        }
        "json_agg" | "jsonb_agg" => {
            let values: Vec<Datum> = items.into_iter().map(|(_, v, _)| v).collect();
            let text = json_build::array_text(&values, name == "jsonb_agg")?;
            Some(if name == "jsonb_agg" {
                Value::Jsonb(text)
            } else {
                Value::Json(text)
            })
        }
        _ => {
            let elem = items
                .iter()
                .find_map(|(_, v, _)| v.as_ref().map(Value::type_oid))
                .unwrap_or(oid::TEXT);
            Some(Value::Array(Array::new(
                elem,
                items.into_iter().map(|(_, v, _)| v).collect(),
            )))
        }
    })
}
