//! PostgreSQL's everyday scalar functions — string (`replace`,
//! `split_part`, `substr`, `btrim`, `lpad`, `concat`, `md5`, …),
//! comparison (`greatest`, `least`, `nullif`) and math (`ceil`, `sqrt`,
//! `power`, `mod`, `random`, …) — with PostgreSQL's NULL handling and
//! errors, and the SQL-standard forms sqlparser reads as their own
//! expressions (`SUBSTRING(s FROM a FOR b)`, `TRIM(LEADING c FROM s)`,
//! `POSITION(a IN b)`, `CEIL(x)`, `FLOOR(x)`) as calls of them.
//! `numeric` is computed as double precision, as elsewhere in a shard.

use super::coerce::{self, as_f64, as_i64};
use super::expr::compare;
use super::infer::TypeOf;
use crate::shard::datum::Datum;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use sqlparser::ast::{CeilFloorKind, Expr, TrimWhereField};
use std::cmp::Ordering;

/// The function a standard SQL form calls, and its arguments; `None`
/// for another expression.
pub fn standard_form(e: &Expr) -> Option<Result<(&'static str, Vec<&Expr>), PgError>> {
    Some(Ok(match e {
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => match (substring_from, substring_for) {
            (Some(from), Some(n)) => ("substr", vec![&**expr, &**from, &**n]),
            (Some(from), None) => ("substr", vec![&**expr, &**from]),
            (None, _) => {
                return Some(Err(PgError::feature_not_supported(
                    "SUBSTRING without FROM is not supported",
                )))
            }
        },
        Expr::Trim {
            trim_where,
            trim_what,
            expr,
            trim_characters: None,
        } => {
            let name = match trim_where {
                None | Some(TrimWhereField::Both) => "btrim",
                Some(TrimWhereField::Leading) => "ltrim",
                Some(TrimWhereField::Trailing) => "rtrim",
            };
            let mut args = vec![&**expr];
            args.extend(trim_what.as_deref());
            (name, args)
        }
        Expr::Position { expr, r#in } => ("strpos", vec![&**r#in, &**expr]),
        Expr::Ceil {
            expr,
            field: CeilFloorKind::DateTimeField(sqlparser::ast::DateTimeField::NoDateTime),
        } => ("ceil", vec![&**expr]),
        Expr::Floor {
            expr,
            field: CeilFloorKind::DateTimeField(sqlparser::ast::DateTimeField::NoDateTime),
        } => ("floor", vec![&**expr]),
        _ => return None,
    }))
}

/// The result type of `name` called with arguments of `args`' types, for
/// the functions [`call`] runs that do not return text.
pub fn result_type(name: &str, args: &[TypeOf]) -> Option<TypeOf> {
    let plain = |t: u32| Some((t, -1));
    match name {
        "strpos" | "char_length" | "character_length" | "octet_length" | "ascii" => {
            plain(oid::INT4)
        }
        "starts_with" => plain(oid::BOOL),
        "greatest" | "least" | "nullif" => Some(common_type(args)),
        "mod" => Some(match common_type(args) {
            t @ (oid::INT2 | oid::INT4 | oid::INT8, _) => t,
            _ => (oid::FLOAT8, -1),
        }),
        "ceil" | "ceiling" | "floor" | "sqrt" | "cbrt" | "exp" | "ln" | "log" | "log10"
        | "power" | "pow" | "sign" | "pi" | "random" | "trunc" | "degrees" | "radians" => {
            plain(oid::FLOAT8)
        }
        _ => None,
    }
}

/// The type several arguments resolve to: the widest integer, else
/// double precision for numbers, else the first typed argument's.
fn common_type(args: &[TypeOf]) -> TypeOf {
    let typed: Vec<TypeOf> = args
        .iter()
        .copied()
        .filter(|(t, _)| *t != oid::UNKNOWN)
        .collect();
    let int_rank = |t: u32| {
        [oid::INT2, oid::INT4, oid::INT8]
            .iter()
            .position(|&i| i == t)
    };
    if !typed.is_empty() && typed.iter().all(|(t, _)| int_rank(*t).is_some()) {
        let widest = typed
            .iter()
            .max_by_key(|(t, _)| int_rank(*t))
            .map(|(t, _)| *t);
        return (widest.unwrap_or(oid::INT4), -1);
    }
    let numeric = |t: u32| int_rank(t).is_some() || matches!(t, oid::FLOAT4 | oid::FLOAT8);
    if !typed.is_empty() && typed.iter().all(|(t, _)| numeric(*t)) {
        return (oid::FLOAT8, -1);
    }
    typed.first().copied().unwrap_or((oid::TEXT, -1))
}

/// The strict functions [`call`] runs, with their fewest and most
/// arguments.
const STRICT: &[(&str, usize, usize)] = &[
    ("replace", 3, 3),
    ("split_part", 3, 3),
    ("substr", 2, 3),
    ("left", 2, 2),
    ("right", 2, 2),
    ("btrim", 1, 2),
    ("ltrim", 1, 2),
    ("rtrim", 1, 2),
    ("repeat", 2, 2),
    ("reverse", 1, 1),
    ("initcap", 1, 1),
    ("quote_ident", 1, 1),
    ("lpad", 2, 3),
    ("rpad", 2, 3),
    ("starts_with", 2, 2),
    ("strpos", 2, 2),
    ("char_length", 1, 1),
    ("character_length", 1, 1),
    ("octet_length", 1, 1),
    ("md5", 1, 1),
    ("ascii", 1, 1),
    ("chr", 1, 1),
    ("translate", 3, 3),
    ("ceil", 1, 1),
    ("ceiling", 1, 1),
    ("floor", 1, 1),
    ("sign", 1, 1),
    ("cbrt", 1, 1),
    ("exp", 1, 1),
    ("degrees", 1, 1),
    ("radians", 1, 1),
    ("sqrt", 1, 1),
    ("ln", 1, 1),
    ("log", 1, 2),
    ("log10", 1, 1),
    ("power", 2, 2),
    ("pow", 2, 2),
    ("trunc", 1, 2),
    ("mod", 2, 2),
];

/// Runs function `name` on `args`, or `None` when it is not one of these
/// (or not with that many arguments).
pub fn call(name: &str, args: &[Datum]) -> Option<Result<Datum, PgError>> {
    match name {
        "concat" if !args.is_empty() => return Some(concat("", args.iter())),
        "concat_ws" => {
            return Some(match args.split_first() {
                Some((Some(sep), rest)) => concat(&as_text(sep.clone()), rest.iter()),
                _ => Ok(None),
            })
        }
        "greatest" | "least" if !args.is_empty() => return Some(extreme(name == "greatest", args)),
        // PostgreSQL's grammar wants at least one argument.
        "greatest" | "least" => {
            return Some(Err(PgError::new("42601", "syntax error at or near \")\"")))
        }
        "nullif" => {
            return Some(match args {
                [Some(a), Some(b)] => match compare_unified(a, b) {
                    Ok(Ordering::Equal) => Ok(None),
                    Ok(_) => Ok(Some(a.clone())),
                    Err(e) => Err(e),
                },
                [a, _] => Ok(a.clone()),
                _ => return None,
            })
        }
        "pi" if args.is_empty() => return Some(Ok(Some(Value::Float8(std::f64::consts::PI)))),
        "random" if args.is_empty() => return Some(random()),
        _ => {}
    }
    let (_, min, max) = STRICT.iter().find(|(n, _, _)| *n == name)?;
    if !(min..=max).contains(&&args.len()) {
        return None;
    }
    // These are strict: a NULL argument gives NULL.
    if args.iter().any(Option::is_none) {
        return Some(Ok(None));
    }
    let values: Vec<Value> = args.iter().flatten().cloned().collect();
    text_function(name, &values)
        .or_else(|| math_function(name, &values))
        .map(|r| r.map(Some))
}

fn as_text(v: Value) -> String {
    match coerce::cast(v, oid::TEXT, None, false) {
        Ok(Value::Text(s)) => s,
        Ok(other) => other.to_text(),
        Err(_) => String::new(),
    }
}

/// `concat` / `concat_ws`: the non-NULL arguments in their output form
/// (a boolean is `t`), joined.
fn concat<'a>(sep: &str, args: impl Iterator<Item = &'a Datum>) -> Result<Datum, PgError> {
    let output = |v: &Value| match v {
        Value::Text(s) => s.clone(),
        other => other.to_text(),
    };
    let parts: Vec<String> = args.flatten().map(output).collect();
    Ok(Some(Value::Text(parts.join(sep))))
}

/// Compares `a` and `b`, an untyped (text) one read as the other's type.
fn compare_unified(a: &Value, b: &Value) -> Result<Ordering, PgError> {
    let (a, b) = super::functions::unify(a.clone(), b.clone())?;
    compare(&a, &b)
}

/// `greatest` / `least`: the largest or smallest non-NULL argument.
fn extreme(greatest: bool, args: &[Datum]) -> Result<Datum, PgError> {
    let mut best: Option<Value> = None;
    for v in args.iter().flatten() {
        best = Some(match best {
            None => v.clone(),
            Some(b) => {
                let order = compare_unified(v, &b)?;
                let better = if greatest {
                    order == Ordering::Greater
                } else {
                    order == Ordering::Less
                };
                if better {
                    v.clone()
                } else {
                    b
                }
            }
        });
    }
    Ok(best)
}

fn random() -> Result<Datum, PgError> {
    let bytes = crate::wire::uuid::random()
        .map_err(|e| PgError::internal(format!("could not generate random values: {e}")))?;
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    // 53 random bits: a double in [0, 1).
    let bits = u64::from_le_bytes(word) >> 11;
    Ok(Some(Value::Float8(bits as f64 / (1u64 << 53) as f64)))
}

fn text(s: String) -> Result<Value, PgError> {
    Ok(Value::Text(s))
}

fn int_arg(v: &Value, name: &str) -> Result<i64, PgError> {
    as_i64(v)
        .or_else(|| as_f64(v).map(|f| f.round() as i64))
        .or_else(|| match v {
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        })
        .ok_or_else(|| super::functions::no_function(name, std::slice::from_ref(v)))
}

/// The string functions of [`STRICT`], on non-NULL arguments of a count
/// it allows.
fn text_function(name: &str, args: &[Value]) -> Option<Result<Value, PgError>> {
    let s = |i: usize| args.get(i).cloned().map(as_text).unwrap_or_default();
    let n = |i: usize| args.get(i).map_or(Ok(0), |v| int_arg(v, name));
    Some(match name {
        "replace" => {
            let (from, to) = (s(1), s(2));
            match from.is_empty() {
                true => text(s(0)),
                false => text(s(0).replace(&from, &to)),
            }
        }
        "split_part" => n(2).and_then(|k| split_part(&s(0), &s(1), k)),
        "substr" => {
            let len = match args.len() {
                3 => n(2).map(Some),
                _ => Ok(None),
            };
            n(1).and_then(|from| len.and_then(|len| substr(&s(0), from, len)))
        }
        "left" | "right" => n(1).and_then(|k| text(left_right(&s(0), k, name == "left"))),
        "btrim" | "ltrim" | "rtrim" => {
            let chars: Vec<char> = match args.len() {
                2 => s(1).chars().collect(),
                _ => vec![' '],
            };
            let value = s(0);
            let trimmed = match name {
                "ltrim" => value.trim_start_matches(chars.as_slice()),
                "rtrim" => value.trim_end_matches(chars.as_slice()),
                _ => value.trim_matches(chars.as_slice()),
            };
            text(trimmed.to_string())
        }
        "repeat" => n(1).and_then(|k| text(s(0).repeat(usize::try_from(k).unwrap_or(0)))),
        "reverse" => text(s(0).chars().rev().collect()),
        "initcap" => text(initcap(&s(0))),
        "quote_ident" => text(crate::sql::quote_ident(&s(0))),
        "lpad" | "rpad" => {
            let fill = match args.len() {
                3 => s(2),
                _ => " ".to_string(),
            };
            n(1).and_then(|len| text(pad(&s(0), len, &fill, name == "lpad")))
        }
        "starts_with" => Ok(Value::Bool(s(0).starts_with(&s(1)))),
        "strpos" => {
            let (hay, needle) = (s(0), s(1));
            let at = hay
                .find(&needle)
                .map_or(0, |b| hay[..b].chars().count() + 1);
            Ok(Value::Int4(i32::try_from(at).unwrap_or(i32::MAX)))
        }
        "char_length" | "character_length" => Ok(Value::Int4(
            i32::try_from(s(0).chars().count()).unwrap_or(i32::MAX),
        )),
        "octet_length" => Ok(Value::Int4(i32::try_from(s(0).len()).unwrap_or(i32::MAX))),
        "md5" => {
            use md5::Digest;
            let digest = md5::Md5::digest(s(0).as_bytes());
            text(digest.iter().map(|b| format!("{b:02x}")).collect())
        }
        "ascii" => Ok(Value::Int4(s(0).chars().next().map_or(0, |c| c as i32))),
        "chr" => n(0).and_then(chr),
        "translate" => text(translate(&s(0), &s(1), &s(2))),
        _ => return None,
    })
}

/// `split_part(s, delimiter, n)`: the n-th field (from the end when
/// negative); zero is an error.
fn split_part(s: &str, delimiter: &str, n: i64) -> Result<Value, PgError> {
    if n == 0 {
        return Err(PgError::new("22023", "field position must not be zero"));
    }
    let fields: Vec<&str> = match delimiter.is_empty() {
        true => vec![s],
        false => s.split(delimiter).collect(),
    };
    let index = match n > 0 {
        true => usize::try_from(n - 1).ok(),
        false => usize::try_from(-n)
            .ok()
            .and_then(|k| fields.len().checked_sub(k)),
    };
    text(index.and_then(|i| fields.get(i)).unwrap_or(&"").to_string())
}

/// `substr(s, from [, len])`: characters `from` .. `from + len - 1`,
/// 1-based; a negative length is an error.
fn substr(s: &str, from: i64, len: Option<i64>) -> Result<Value, PgError> {
    if len.is_some_and(|l| l < 0) {
        return Err(PgError::new(
            "22011",
            "negative substring length not allowed",
        ));
    }
    let end = len.map_or(i64::MAX, |l| from.saturating_add(l));
    let start = from.max(1);
    let taken = usize::try_from(end.saturating_sub(start).max(0)).unwrap_or(usize::MAX);
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    text(s.chars().skip(skip).take(taken).collect())
}

/// `left(s, n)` / `right(s, n)`: the first (last) n characters, or all
/// but the last (first) |n| when n is negative.
fn left_right(s: &str, n: i64, left: bool) -> String {
    let count = s.chars().count() as i64;
    let keep = usize::try_from(if n >= 0 {
        n.min(count)
    } else {
        (count + n).max(0)
    })
    .unwrap_or(0);
    match left {
        true => s.chars().take(keep).collect(),
        false => s.chars().skip(s.chars().count() - keep).collect(),
    }
}

fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        match (c.is_alphanumeric(), in_word) {
            (true, false) => out.extend(c.to_uppercase()),
            (true, true) => out.extend(c.to_lowercase()),
            (false, _) => out.push(c),
        }
        in_word = c.is_alphanumeric();
    }
    out
}

/// `lpad` / `rpad`: `s` filled with `fill` to `len` characters, or cut to
/// them.
fn pad(s: &str, len: i64, fill: &str, left: bool) -> String {
    let len = usize::try_from(len).unwrap_or(0);
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len || fill.is_empty() {
        return chars.into_iter().take(len).collect();
    }
    let filler: String = fill.chars().cycle().take(len - chars.len()).collect();
    match left {
        true => filler + s,
        false => s.to_string() + &filler,
    }
}

fn chr(code: i64) -> Result<Value, PgError> {
    if code == 0 {
        return Err(PgError::new("54000", "null character not permitted"));
    }
    u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .map(|c| Value::Text(c.to_string()))
        .ok_or_else(|| {
            PgError::new(
                "54000",
                format!("requested character not valid for encoding: {code}"),
            )
        })
}

/// `translate(s, from, to)`: each character of `from` in `s` replaced by
/// the one at its position in `to`, or removed when `to` is shorter.
fn translate(s: &str, from: &str, to: &str) -> String {
    let (from, to): (Vec<char>, Vec<char>) = (from.chars().collect(), to.chars().collect());
    s.chars()
        .filter_map(|c| match from.iter().position(|&f| f == c) {
            Some(i) => to.get(i).copied(),
            None => Some(c),
        })
        .collect()
}

/// The math functions of [`STRICT`], on non-NULL arguments of a count it
/// allows.
fn math_function(name: &str, args: &[Value]) -> Option<Result<Value, PgError>> {
    let x = |i: usize| -> Result<f64, PgError> {
        let v = &args[i];
        as_f64(v)
            .or_else(|| match v {
                Value::Text(s) => s.trim().parse().ok(),
                _ => None,
            })
            .ok_or_else(|| super::functions::no_function(name, args))
    };
    let float = |r: Result<f64, PgError>| r.map(Value::Float8);
    let one = args.len() == 1;
    Some(match name {
        "ceil" | "ceiling" if one => float(x(0).map(f64::ceil)),
        "floor" if one => float(x(0).map(f64::floor)),
        "sign" if one => float(x(0).map(|v| if v == 0.0 { 0.0 } else { v.signum() })),
        "cbrt" if one => float(x(0).map(f64::cbrt)),
        "exp" if one => float(x(0).map(f64::exp)),
        "degrees" if one => float(x(0).map(f64::to_degrees)),
        "radians" if one => float(x(0).map(f64::to_radians)),
        "sqrt" if one => x(0).and_then(|v| match v < 0.0 {
            true => Err(PgError::new(
                "2201F",
                "cannot take square root of a negative number",
            )),
            false => Ok(Value::Float8(v.sqrt())),
        }),
        "ln" | "log" | "log10" if one => x(0).and_then(|v| logarithm(v, name == "ln")),
        "log" if args.len() == 2 => x(0).and_then(|b| {
            x(1).and_then(|v| match (logarithm(b, true), logarithm(v, true)) {
                (Ok(Value::Float8(lb)), Ok(Value::Float8(lv))) if lb != 0.0 => {
                    Ok(Value::Float8(lv / lb))
                }
                (Ok(_), Ok(_)) => Err(PgError::new("22012", "division by zero")),
                (Err(e), _) | (_, Err(e)) => Err(e),
            })
        }),
        "power" | "pow" => x(0).and_then(|b| x(1).and_then(|e| power(b, e))),
        "trunc" if one => float(x(0).map(f64::trunc)),
        "trunc" if args.len() == 2 => x(0).and_then(|v| {
            let places = int_arg(&args[1], name)?.clamp(-300, 300) as i32;
            let scale = 10f64.powi(places);
            Ok(Value::Float8((v * scale).trunc() / scale))
        }),
        "mod" => modulo(&args[0], &args[1]),
        _ => return None,
    })
}

fn logarithm(v: f64, natural: bool) -> Result<Value, PgError> {
    match v {
        0.0 => Err(PgError::new("2201E", "cannot take logarithm of zero")),
        v if v < 0.0 => Err(PgError::new(
            "2201E",
            "cannot take logarithm of a negative number",
        )),
        v if natural => Ok(Value::Float8(v.ln())),
        v => Ok(Value::Float8(v.log10())),
    }
}

fn power(base: f64, exponent: f64) -> Result<Value, PgError> {
    if base == 0.0 && exponent < 0.0 {
        return Err(PgError::new(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if base < 0.0 && exponent.fract() != 0.0 {
        return Err(PgError::new(
            "2201F",
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    Ok(Value::Float8(base.powf(exponent)))
}

/// `mod(a, b)`: integer remainder for integers (the sign of `a`), else
/// of the doubles; zero divisor is 22012.
fn modulo(a: &Value, b: &Value) -> Result<Value, PgError> {
    let zero = || PgError::new("22012", "division by zero");
    match (as_i64(a), as_i64(b)) {
        (Some(_), Some(0)) => Err(zero()),
        (Some(x), Some(y)) => {
            let widest = [oid::INT8, oid::INT4, oid::INT2]
                .into_iter()
                .find(|t| [a.type_oid(), b.type_oid()].contains(t))
                .unwrap_or(oid::INT8);
            coerce::cast(Value::Int8(x.wrapping_rem(y)), widest, None, false)
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(_), Some(0.0)) => Err(zero()),
            (Some(x), Some(y)) => Ok(Value::Float8(x % y)),
            _ => Err(super::functions::no_function(
                "mod",
                &[a.clone(), b.clone()],
            )),
        },
    }
}
