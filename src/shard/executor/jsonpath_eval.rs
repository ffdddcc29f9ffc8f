//! What a `jsonpath` means over a jsonb document, as PostgreSQL's
//! jsonpath_exec.c decides it: `jsonb_path_match` / `@@` (the path's one
//! boolean), `jsonb_path_exists` / `@?` (whether it finds anything), and
//! the key-existence functions behind `?`, `?|`, `?&` (`jsonb_exists`,
//! `jsonb_exists_any`, `jsonb_exists_all`), which LangChain calls by name.
//!
//! Lax mode (the default) unwraps arrays where an accessor or comparison
//! expects one item, and a missing key finds nothing; strict mode makes
//! both errors. A comparison is true when some pair of items compares
//! true; items of different types (other than null) compare as unknown,
//! which `jsonb_path_match` returns as NULL. Numbers compare as f64 (jsonb
//! keeps numeric's exact digits: values beyond 2^53 may compare equal
//! here where PostgreSQL tells them apart).

use serde_json::Value as Json;
use sqlparser::ast::BinaryOperator;

use super::json_ops;
use crate::shard::datum::Datum;
use crate::sql::jsonpath::{self, ArithOp, CmpOp, JsonPath, Method, Node};
use crate::wire::{PgError, Value};

/// A predicate's three values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// An error inside a path: a structural one (suppressed by `silent` and,
/// in predicates, turned into unknown) or one that always reaches the
/// client (a missing variable).
#[derive(Debug)]
enum PathError {
    Structural(PgError),
    Fatal(PgError),
}

type Found = Result<Vec<Json>, PathError>;

struct Walk<'a> {
    strict: bool,
    root: &'a Json,
    vars: &'a serde_json::Map<String, Json>,
}

fn structural(code: &'static str, message: &str) -> PathError {
    PathError::Structural(PgError::new(code, message.to_string()))
}

fn number(j: &Json) -> Option<f64> {
    j.as_f64()
}

fn json_number(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Json::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
    }
}

impl Walk<'_> {
    /// The items `node` finds from `current` (the filter's `@`).
    fn items(&self, node: &Node, current: &Json, last: Option<usize>) -> Found {
        crate::stack::guard(|| self.items_inner(node, current, last))
    }

    /// `items`, with arrays unwrapped into their elements in lax mode.
    fn unwrapped(&self, node: &Node, current: &Json, last: Option<usize>) -> Found {
        let found = self.items(node, current, last)?;
        if self.strict {
            return Ok(found);
        }
        Ok(found
            .into_iter()
            .flat_map(|j| match j {
                Json::Array(items) => items,
                other => vec![other],
            })
            .collect())
    }

    fn items_inner(&self, node: &Node, current: &Json, last: Option<usize>) -> Found {
        Ok(match node {
            Node::Root => vec![self.root.clone()],
            Node::Current => vec![current.clone()],
            Node::Last => match last {
                Some(n) => vec![Json::from(n as i64 - 1)],
                None => {
                    return Err(PathError::Fatal(PgError::new(
                        "22038",
                        "LAST is allowed only in array subscripts",
                    )))
                }
            },
            Node::Var(name) => match self.vars.get(name) {
                Some(v) => vec![v.clone()],
                None => {
                    return Err(PathError::Fatal(PgError::new(
                        "42704",
                        format!("could not find jsonpath variable \"{name}\""),
                    )))
                }
            },
            Node::Str(s) => vec![Json::String(s.clone())],
            Node::Num(n) => vec![n.parse::<f64>().map_or(Json::Null, json_number)],
            Node::Bool(b) => vec![Json::Bool(*b)],
            Node::Null => vec![Json::Null],
            Node::Key(base, key) => {
                let mut out = Vec::new();
                for item in self.unwrapped(base, current, last)? {
                    match item {
                        Json::Object(mut map) => match map.remove(key) {
                            Some(v) => out.push(v),
                            None if self.strict => {
                                return Err(structural(
                                    "2203A",
                                    &format!("JSON object does not contain key \"{key}\""),
                                ))
                            }
                            None => {}
                        },
                        _ if self.strict => {
                            return Err(structural(
                                "2203A",
                                "jsonpath member accessor can only be applied to an object",
                            ))
                        }
                        _ => {}
                    }
                }
                out
            }
            Node::AnyKey(base) => self
                .unwrapped(base, current, last)?
                .into_iter()
                .flat_map(|item| match item {
                    Json::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
                    _ => Vec::new(),
                })
                .collect(),
            Node::AnyElement(base) => {
                let mut out = Vec::new();
                for item in self.items(base, current, last)? {
                    match item {
                        Json::Array(items) => out.extend(items),
                        _ if self.strict => {
                            return Err(structural(
                                "22039",
                                "jsonpath wildcard array accessor can only be applied to an array",
                            ))
                        }
                        other => out.push(other),
                    }
                }
                out
            }
            Node::Index(base, subscripts) => {
                let mut out = Vec::new();
                for item in self.items(base, current, last)? {
                    let items = match item {
                        Json::Array(items) => items,
                        _ if self.strict => {
                            return Err(structural(
                                "22039",
                                "jsonpath array accessor can only be applied to an array",
                            ))
                        }
                        other => vec![other],
                    };
                    for s in subscripts {
                        let index = |n: &Node| -> Result<i64, PathError> {
                            match self.items(n, current, Some(items.len()))?.as_slice() {
                                [j] => number(j).map(|f| f as i64).ok_or_else(|| {
                                    structural(
                                        "22033",
                                        "jsonpath array subscript is not a single numeric value",
                                    )
                                }),
                                _ => Err(structural(
                                    "22033",
                                    "jsonpath array subscript is not a single numeric value",
                                )),
                            }
                        };
                        let from = index(&s.from)?;
                        let to = s.to.as_ref().map_or(Ok(from), index)?;
                        for i in from..=to {
                            match usize::try_from(i).ok().and_then(|i| items.get(i)) {
                                Some(v) => out.push(v.clone()),
                                None if self.strict => {
                                    return Err(structural(
                                        "22033",
                                        "jsonpath array subscript is out of bounds",
                                    ))
                                }
                                None => {}
                            }
                        }
                    }
                }
                out
            }
            Node::Filter(base, predicate) => {
                let mut out = Vec::new();
                for item in self.unwrapped(base, current, last)? {
                    if self.test(predicate, &item, last)? == Tri::True {
                        out.push(item);
                    }
                }
                out
            }
            Node::Method(base, method) => {
                let items = match method {
                    Method::Size | Method::Type => self.items(base, current, last)?,
                    _ => self.unwrapped(base, current, last)?,
                };
                items
                    .into_iter()
                    .map(|item| apply_method(*method, item, self.strict))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Node::Arith(op, a, b) => {
                let single = |n: &Node, side: &str| -> Result<f64, PathError> {
                    match self.unwrapped(n, current, last)?.as_slice() {
                        [j] => number(j),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        structural(
                            "22038",
                            &format!("{side} operand of jsonpath operator {} is not a single numeric value", arith_name(*op)),
                        )
                    })
                };
                let (x, y) = (single(a, "left")?, single(b, "right")?);
                let v = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div | ArithOp::Mod if y == 0.0 => {
                        return Err(structural("22012", "division by zero"))
                    }
                    ArithOp::Div => x / y,
                    ArithOp::Mod => x % y,
                };
                vec![json_number(v)]
            }
            Node::Unary { negate, operand } => self
                .unwrapped(operand, current, last)?
                .into_iter()
                .map(|j| {
                    let v = number(&j).ok_or_else(|| {
                        structural(
                            "22038",
                            "operand of unary jsonpath operator is not a numeric value",
                        )
                    })?;
                    Ok(json_number(if *negate { -v } else { v }))
                })
                .collect::<Result<Vec<_>, PathError>>()?,
            predicate => vec![match self.test(predicate, current, last)? {
                Tri::True => Json::Bool(true),
                Tri::False => Json::Bool(false),
                Tri::Unknown => Json::Null,
            }],
        })
    }

    /// A predicate's value at `current`; only a fatal error escapes.
    fn test(&self, node: &Node, current: &Json, last: Option<usize>) -> Result<Tri, PathError> {
        let sequence = |n: &Node| match self.unwrapped(n, current, last) {
            Ok(found) => Ok(Some(found)),
            Err(PathError::Structural(_)) => Ok(None),
            Err(fatal) => Err(fatal),
        };
        Ok(match node {
            Node::And(a, b) => match self.test(a, current, last)? {
                Tri::False => Tri::False,
                left => match (left, self.test(b, current, last)?) {
                    (_, Tri::False) => Tri::False,
                    (Tri::True, Tri::True) => Tri::True,
                    _ => Tri::Unknown,
                },
            },
            Node::Or(a, b) => match self.test(a, current, last)? {
                Tri::True => Tri::True,
                left => match (left, self.test(b, current, last)?) {
                    (_, Tri::True) => Tri::True,
                    (Tri::False, Tri::False) => Tri::False,
                    _ => Tri::Unknown,
                },
            },
            Node::Not(a) => match self.test(a, current, last)? {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Unknown => Tri::Unknown,
            },
            Node::IsUnknown(a) => Tri::from(self.test(a, current, last)? == Tri::Unknown),
            Node::Exists(a) => match self.items(a, current, last) {
                Ok(found) => Tri::from(!found.is_empty()),
                Err(PathError::Structural(_)) => Tri::Unknown,
                Err(fatal) => return Err(fatal),
            },
            Node::Cmp(op, a, b) => {
                let (Some(left), Some(right)) = (sequence(a)?, sequence(b)?) else {
                    return Ok(Tri::Unknown);
                };
                self.any_pair(&left, &right, |x, y| compare(*op, x, y))
            }
            Node::StartsWith(a, b) => {
                let (Some(left), Some(right)) = (sequence(a)?, sequence(b)?) else {
                    return Ok(Tri::Unknown);
                };
                let [Json::String(prefix)] = right.as_slice() else {
                    return Ok(Tri::Unknown);
                };
                self.any_pair(&left, &[], |x, _| match x {
                    Json::String(s) => Tri::from(s.starts_with(prefix.as_str())),
                    _ => Tri::Unknown,
                })
            }
            other => match self.items(other, current, last) {
                Ok(found) => match found.as_slice() {
                    [Json::Bool(b)] => Tri::from(*b),
                    _ => Tri::Unknown,
                },
                Err(PathError::Structural(_)) => Tri::Unknown,
                Err(fatal) => return Err(fatal),
            },
        })
    }

    /// True when some pair is; in lax mode the first true wins and an
    /// unknown pair makes the rest unknown, in strict mode any unknown
    /// pair does.
    fn any_pair(&self, left: &[Json], right: &[Json], f: impl Fn(&Json, &Json) -> Tri) -> Tri {
        let unary = [Json::Null];
        let right = if right.is_empty() { &unary[..] } else { right };
        let (mut found, mut unknown) = (false, false);
        for x in left {
            for y in right {
                match f(x, y) {
                    Tri::True if !self.strict => return Tri::True,
                    Tri::True => found = true,
                    Tri::Unknown if self.strict => return Tri::Unknown,
                    Tri::Unknown => unknown = true,
                    Tri::False => {}
                }
            }
        }
        if found {
            Tri::True
        } else if unknown {
            Tri::Unknown
        } else {
            Tri::False
        }
    }
}

fn arith_name(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
        ArithOp::Mod => "%",
    }
}

fn apply_method(method: Method, item: Json, strict: bool) -> Result<Json, PathError> {
    let numeric = |name: &str, f: fn(f64) -> f64| {
        number(&item).map(|v| json_number(f(v))).ok_or_else(|| {
            structural(
                "22038",
                &format!("jsonpath item method .{name}() can only be applied to a numeric value"),
            )
        })
    };
    Ok(match method {
        Method::Type => Json::String(
            match item {
                Json::Null => "null",
                Json::Bool(_) => "boolean",
                Json::Number(_) => "number",
                Json::String(_) => "string",
                Json::Array(_) => "array",
                Json::Object(_) => "object",
            }
            .into(),
        ),
        Method::Size => match item {
            Json::Array(items) => Json::from(items.len() as i64),
            _ if strict => {
                return Err(structural(
                    "22039",
                    "jsonpath item method .size() can only be applied to an array",
                ))
            }
            _ => Json::from(1),
        },
        Method::Double => match &item {
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(json_number)
                .ok_or_else(|| {
                    structural(
                        "22038",
                        &format!("argument \"{s}\" of jsonpath item method .double() is invalid for type double precision"),
                    )
                })?,
            _ => numeric("double", |v| v)?,
        },
        Method::Abs => numeric("abs", f64::abs)?,
        Method::Floor => numeric("floor", f64::floor)?,
        Method::Ceiling => numeric("ceiling", f64::ceil)?,
    })
}

/// PostgreSQL's compareItems: null equals null and differs from anything
/// else; other items compare only with their own type.
fn compare(op: CmpOp, x: &Json, y: &Json) -> Tri {
    use std::cmp::Ordering;
    let order = match (x, y) {
        (Json::Null, Json::Null) => Ordering::Equal,
        (Json::Null, _) | (_, Json::Null) => return Tri::from(op == CmpOp::Ne),
        (Json::Bool(a), Json::Bool(b)) => a.cmp(b),
        (Json::Number(a), Json::Number(b)) => {
            match a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b))
            {
                Some(o) => o,
                None => return Tri::Unknown,
            }
        }
        (Json::String(a), Json::String(b)) => a.as_bytes().cmp(b.as_bytes()),
        _ => return Tri::Unknown,
    };
    Tri::from(match op {
        CmpOp::Eq => order == Ordering::Equal,
        CmpOp::Ne => order != Ordering::Equal,
        CmpOp::Lt => order == Ordering::Less,
        CmpOp::Le => order != Ordering::Greater,
        CmpOp::Gt => order == Ordering::Greater,
        CmpOp::Ge => order != Ordering::Less,
    })
}

fn document(v: &Value, function: &str) -> Result<Json, PgError> {
    match v {
        Value::Jsonb(t) | Value::Text(t) => {
            serde_json::from_str(t).map_err(|_| PgError::invalid_text("json", t))
        }
        other => Err(PgError::new(
            "42883",
            format!(
                "function {function}({}, jsonpath) does not exist",
                crate::shard::datum::type_name(other)
            ),
        )),
    }
}

fn path_of(v: &Value) -> Result<JsonPath, PgError> {
    match v {
        Value::JsonPath(t) | Value::Text(t) => Ok(jsonpath::parse(t)?),
        other => Err(PgError::new(
            "42883",
            format!(
                "operator does not exist: jsonb @@ {}",
                crate::shard::datum::type_name(other)
            ),
        )),
    }
}

/// Runs `path` over `target` with `vars`: the items it finds, or `None`
/// for a structural error when `silent`.
fn run(
    target: &Json,
    path: &JsonPath,
    vars: &Json,
    silent: bool,
) -> Result<Option<Vec<Json>>, PgError> {
    let empty = serde_json::Map::new();
    let vars = match vars {
        Json::Object(map) => map,
        Json::Null => &empty,
        _ => {
            return Err(
                PgError::new("22023", "\"vars\" argument is not an object").with_detail(
                    "Jsonpath parameters should be encoded as key-value pairs of \"vars\" object.",
                ),
            )
        }
    };
    let walk = Walk {
        strict: path.strict,
        root: target,
        vars,
    };
    match walk.items(&path.expr, target, None) {
        Ok(found) => Ok(Some(found)),
        Err(PathError::Structural(_)) if silent => Ok(None),
        Err(PathError::Structural(e) | PathError::Fatal(e)) => Err(e),
    }
}

/// `jsonb_path_match`: the path's single boolean (NULL for unknown).
fn path_match(target: &Json, path: &JsonPath, vars: &Json, silent: bool) -> Result<Datum, PgError> {
    Ok(match run(target, path, vars, silent)?.as_deref() {
        None => None,
        Some([Json::Bool(b)]) => Some(Value::Bool(*b)),
        Some([Json::Null]) => None,
        Some(_) if silent => None,
        Some(_) => return Err(PgError::new("22038", "single boolean result is expected")),
    })
}

/// `jsonb_path_exists`: whether the path finds an item.
fn path_exists(
    target: &Json,
    path: &JsonPath,
    vars: &Json,
    silent: bool,
) -> Result<Datum, PgError> {
    Ok(run(target, path, vars, silent)?.map(|found| Value::Bool(!found.is_empty())))
}

/// `jsonb @@ jsonpath` and `jsonb @? jsonpath` (both silent); `None` for
/// another operator.
pub fn path_operator(op: &BinaryOperator, a: &Value, b: &Value) -> Option<Result<Datum, PgError>> {
    let exists = match op {
        BinaryOperator::AtAt => false,
        BinaryOperator::AtQuestion => true,
        _ => return None,
    };
    Some((|| {
        let target = document(
            a,
            if exists {
                "jsonb_path_exists"
            } else {
                "jsonb_path_match"
            },
        )?;
        let path = path_of(b)?;
        if exists {
            path_exists(&target, &path, &Json::Null, true)
        } else {
            path_match(&target, &path, &Json::Null, true)
        }
    })())
}

/// The jsonpath and key-existence functions by name; `None` for another
/// name. NULL in, NULL out (they are strict).
pub fn path_function(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    let key_test = match name {
        "jsonb_exists" => Some(BinaryOperator::Question),
        "jsonb_exists_any" => Some(BinaryOperator::QuestionPipe),
        "jsonb_exists_all" => Some(BinaryOperator::QuestionAnd),
        "jsonb_path_match" | "jsonb_path_exists" => None,
        _ => return None,
    };
    if args.iter().any(Option::is_none) {
        return Some(Ok(None));
    }
    let values: Vec<&Value> = args.iter().flatten().collect();
    Some((|| match (key_test, values.as_slice()) {
        (Some(op), [a, b]) => {
            let a = match a {
                Value::Text(t) => Value::Jsonb(json_ops::jsonb_of(t)?),
                other => (*other).clone(),
            };
            json_ops::jsonb_test(&op, &a, b)
                .unwrap_or_else(|| {
                    Err(super::functions::no_function(
                        name,
                        &[a.clone(), (*b).clone()],
                    ))
                })
                .map(Some)
        }
        (None, [target, path, rest @ ..]) if rest.len() <= 2 => {
            let target = document(target, name)?;
            let path = path_of(path)?;
            let vars = match rest.first() {
                Some(v) => document(v, name)?,
                None => Json::Null,
            };
            let silent = matches!(rest.get(1), Some(Value::Bool(true)));
            if name == "jsonb_path_match" {
                path_match(&target, &path, &vars, silent)
            } else {
                path_exists(&target, &path, &vars, silent)
            }
        }
        _ => {
            let given: Vec<Value> = values.into_iter().cloned().collect();
            Err(super::functions::no_function(name, &given))
        }
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(doc: &str, path: &str, vars: &str) -> Datum {
        let target: Json = serde_json::from_str(doc).unwrap();
        let vars: Json = serde_json::from_str(vars).unwrap();
        path_match(&target, &jsonpath::parse(path).unwrap(), &vars, false).unwrap()
    }

    #[test]
    fn comparisons_follow_postgres_in_lax_mode() {
        let doc = r#"{"kind": "fruit", "price": 1.5, "tags": ["red", "sweet"], "n": null}"#;
        let t = Some(Value::Bool(true));
        let f = Some(Value::Bool(false));
        assert_eq!(
            matches(doc, r#"($."kind" == $"value")"#, r#"{"value": "fruit"}"#),
            t
        );
        assert_eq!(matches(doc, "$.price > $v", r#"{"v": 1.5}"#), f);
        assert_eq!(matches(doc, "$.price >= 1.5 && $.price < 2", "{}"), t);
        assert_eq!(matches(doc, "$.missing == 1", "{}"), f);
        assert_eq!(
            matches(doc, "$.kind == 1", "{}"),
            None,
            "string vs number is unknown"
        );
        assert_eq!(matches(doc, "$.kind != null", "{}"), t);
        assert_eq!(matches(doc, "$.n == null", "{}"), t);
        assert_eq!(
            matches(doc, "$.tags == \"sweet\"", "{}"),
            t,
            "arrays unwrap"
        );
        assert_eq!(
            matches(doc, "$.tags[*] ? (@ starts with \"sw\").size() == 1", "{}"),
            t
        );
        assert_eq!(matches(doc, "!($.kind == \"fruit\")", "{}"), f);
        assert_eq!(matches(doc, "exists($.tags[1])", "{}"), t);
        let target: Json = serde_json::from_str(doc).unwrap();
        let e = path_match(
            &target,
            &jsonpath::parse("$.kind").unwrap(),
            &Json::Null,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, "22038");
        let e = path_match(
            &target,
            &jsonpath::parse("$.kind == $x").unwrap(),
            &Json::Null,
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, "42704", "a missing variable is never silent");
    }

    #[test]
    fn strict_mode_errors_where_lax_finds_nothing() {
        let target: Json = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        let strict = jsonpath::parse("strict $.b").unwrap();
        assert!(path_exists(&target, &strict, &Json::Null, false).is_err());
        assert_eq!(
            path_exists(&target, &strict, &Json::Null, true).unwrap(),
            None
        );
        let lax = jsonpath::parse("$.b").unwrap();
        assert_eq!(
            path_exists(&target, &lax, &Json::Null, false).unwrap(),
            Some(Value::Bool(false))
        );
    }
}
