//! Date and time arithmetic and functions as PostgreSQL has them (the
//! session time zone is UTC): `timestamp ± interval`, `date ± integer`,
//! `timestamp - timestamp`, interval arithmetic, `date_trunc`,
//! `EXTRACT` / `date_part`, `age`, `to_timestamp`, `justify_*`
//! (`to_char` is in [`super::to_char`]).

use super::coerce::{as_f64, as_i64, type_name};
use super::infer::TypeOf;
use crate::shard::datum::Datum;
use crate::wire::datetime::{civil, days_of};
use crate::wire::interval::{unit as interval_unit, Interval, Unit, MICROS_PER_DAY};
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use sqlparser::ast::{BinaryOperator, DateTimeField};

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_MINUTE: i64 = 60_000_000;
/// Seconds from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_SECS: i64 = 946_684_800;

/// A field of `date_trunc`, `EXTRACT` and `date_part`, named as
/// PostgreSQL names it ([`field`] reads the spellings).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    Epoch,
    Dow,
    Isodow,
    Doy,
    Isoyear,
    Julian,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
}

/// The field a (case-insensitive) unit name spells, as PostgreSQL reads
/// units (`days`, `mon`, `yr`, …).
pub fn field(name: &str) -> Option<Field> {
    Some(match name.to_ascii_lowercase().as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => {
            Field::Microseconds
        }
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => {
            Field::Milliseconds
        }
        "second" | "seconds" | "s" | "sec" | "secs" => Field::Second,
        "minute" | "minutes" | "m" | "min" | "mins" => Field::Minute,
        "hour" | "hours" | "h" | "hr" | "hrs" => Field::Hour,
        "day" | "days" | "d" => Field::Day,
        "week" | "weeks" | "w" => Field::Week,
        "month" | "months" | "mon" | "mons" => Field::Month,
        "quarter" | "qtr" => Field::Quarter,
        "year" | "years" | "y" | "yr" | "yrs" => Field::Year,
        "decade" | "decades" | "dec" | "decs" => Field::Decade,
        "century" | "centuries" | "c" | "cent" => Field::Century,
        "millennium" | "millennia" | "mil" | "mils" | "millenium" => Field::Millennium,
        "epoch" => Field::Epoch,
        "dow" => Field::Dow,
        "isodow" => Field::Isodow,
        "doy" => Field::Doy,
        "isoyear" => Field::Isoyear,
        "julian" => Field::Julian,
        "timezone" => Field::Timezone,
        "timezone_h" | "timezone_hour" => Field::TimezoneHour,
        "timezone_m" | "timezone_minute" => Field::TimezoneMinute,
        _ => return None,
    })
}

fn unrecognized(unit: &str, v: &Value) -> PgError {
    PgError::invalid_parameter_value(format!(
        "unit \"{}\" not recognized for type {}",
        unit.to_ascii_lowercase(),
        type_name(v.type_oid())
    ))
}

fn unsupported(unit: &str, v: &Value) -> PgError {
    PgError::feature_not_supported(format!(
        "unit \"{}\" not supported for type {}",
        unit.to_ascii_lowercase(),
        type_name(v.type_oid())
    ))
}

fn timestamp_out_of_range() -> PgError {
    PgError::new("22008", "timestamp out of range")
}

fn interval_out_of_range() -> PgError {
    PgError::new("22008", "interval out of range")
}

/// A timestamp's calendar fields.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: i64,
    /// Day of the month, 1–31.
    pub day: i64,
    /// Microseconds since midnight.
    pub time: i64,
    /// Days since 2000-01-01.
    pub days: i64,
}

/// The calendar fields of µs since 2000-01-01.
pub fn parts(micros: i64) -> Parts {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil(days);
    Parts {
        year,
        month,
        day,
        time: micros.rem_euclid(MICROS_PER_DAY),
        days,
    }
}

fn from_parts(year: i64, month: i64, day: i64, time: i64) -> Result<i64, PgError> {
    days_of(year, month, day)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .ok_or_else(timestamp_out_of_range)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1–12) of year `y`.
pub fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The instant a date, timestamp or timestamptz stands for (µs since
/// 2000-01-01, UTC).
pub fn instant(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => i64::from(*d).checked_mul(MICROS_PER_DAY),
        Value::Timestamp(t) | Value::Timestamptz(t) => Some(*t),
        _ => None,
    }
}

/// `ts + interval`: months first (the day cut to the month's end), then
/// days, then microseconds.
pub fn add_interval(ts: i64, i: Interval) -> Result<i64, PgError> {
    let mut ts = ts;
    if i.months != 0 {
        let p = parts(ts);
        let months = p.year * 12 + p.month - 1 + i64::from(i.months);
        let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
        let day = p.day.min(month_days(year, month));
        ts = from_parts(year, month, day, p.time)?;
    }
    i64::from(i.days)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|days| ts.checked_add(days))
        .and_then(|t| t.checked_add(i.micros))
        .ok_or_else(timestamp_out_of_range)
}

/// `a - b` of two instants: days and microseconds (PostgreSQL's
/// `timestamp_mi`, whole days counted as days).
fn difference(a: i64, b: i64) -> Result<Interval, PgError> {
    let d = a.checked_sub(b).ok_or_else(interval_out_of_range)?;
    Ok(Interval {
        months: 0,
        days: i32::try_from(d / MICROS_PER_DAY).map_err(|_| interval_out_of_range())?,
        micros: d % MICROS_PER_DAY,
    })
}

/// `date - date` in days.
fn days_between(x: i32, y: i32) -> Result<Value, PgError> {
    x.checked_sub(y)
        .map(Value::Int4)
        .ok_or_else(|| PgError::new("22008", "date out of range"))
}

fn interval_of(v: &Value) -> Result<Option<Interval>, PgError> {
    Ok(match v {
        Value::Interval(i) => Some(*i),
        Value::Text(s) => Some(Interval::parse(s)?),
        _ => None,
    })
}

fn shift(ts: i64, i: Interval, minus: bool) -> Result<i64, PgError> {
    let i = if minus {
        i.checked_neg().ok_or_else(interval_out_of_range)?
    } else {
        i
    };
    add_interval(ts, i)
}

fn same_kind(like: &Value, micros: i64) -> Value {
    match like {
        Value::Timestamptz(_) => Value::Timestamptz(micros),
        _ => Value::Timestamp(micros),
    }
}

/// `a op b` when one side is a date, timestamp or interval; `None` for
/// other operands (and for comparisons, which [`super::expr::compare`]
/// orders with [`instant`] and [`Interval::span`]).
pub fn operator(op: &BinaryOperator, a: &Value, b: &Value) -> Option<Result<Value, PgError>> {
    let datetime = |v: &Value| {
        matches!(
            v,
            Value::Date(_) | Value::Timestamp(_) | Value::Timestamptz(_) | Value::Interval(_)
        )
    };
    if !datetime(a) && !datetime(b) {
        return None;
    }
    let minus = matches!(op, BinaryOperator::Minus);
    let r = match (op, a, b) {
        (BinaryOperator::Plus | BinaryOperator::Minus, Value::Date(d), n)
            if as_i64(n).is_some() =>
        {
            let n = as_i64(n).unwrap_or(0);
            let days = if minus {
                i64::from(*d) - n
            } else {
                i64::from(*d) + n
            };
            i32::try_from(days)
                .map(Value::Date)
                .map_err(|_| PgError::new("22008", "date out of range"))
        }
        (BinaryOperator::Plus, n, Value::Date(d)) if as_i64(n).is_some() => {
            i32::try_from(i64::from(*d) + as_i64(n).unwrap_or(0))
                .map(Value::Date)
                .map_err(|_| PgError::new("22008", "date out of range"))
        }
        (BinaryOperator::Minus, Value::Date(x), Value::Date(y)) => days_between(*x, *y),
        (BinaryOperator::Minus, Value::Date(x), Value::Text(s)) => {
            crate::wire::datetime::parse_date(s).and_then(|y| days_between(*x, y))
        }
        (BinaryOperator::Plus | BinaryOperator::Minus, Value::Interval(x), y) => {
            match interval_of(y) {
                Ok(Some(y)) => {
                    let y = if minus { y.checked_neg() } else { Some(y) };
                    y.and_then(|y| x.checked_add(y))
                        .map(Value::Interval)
                        .ok_or_else(interval_out_of_range)
                }
                Ok(None) if !minus => return operator(op, b, a),
                Ok(None) => return None,
                Err(e) => Err(e),
            }
        }
        (BinaryOperator::Minus, x, y) if instant(x).is_some() && instant(y).is_some() => {
            difference(instant(x).unwrap_or(0), instant(y).unwrap_or(0)).map(Value::Interval)
        }
        // `timestamptz - unknown`: the literal is a timestamp of that kind.
        (
            BinaryOperator::Minus,
            x @ (Value::Timestamp(_) | Value::Timestamptz(_)),
            Value::Text(s),
        ) => {
            let parsed = match x {
                Value::Timestamptz(_) => crate::wire::datetime::parse_timestamptz(s),
                _ => crate::wire::datetime::parse_timestamp(s),
            };
            parsed.and_then(|y| difference(instant(x).unwrap_or(0), y).map(Value::Interval))
        }
        (BinaryOperator::Plus | BinaryOperator::Minus, x, y) if instant(x).is_some() => {
            match interval_of(y) {
                Ok(Some(i)) => shift(instant(x).unwrap_or(0), i, minus).map(|t| same_kind(x, t)),
                Ok(None) => return None,
                Err(e) => Err(e),
            }
        }
        (BinaryOperator::Multiply, Value::Interval(i), n)
        | (BinaryOperator::Multiply, n, Value::Interval(i)) => match as_f64(n) {
            Some(f) => i
                .scaled(f)
                .map(Value::Interval)
                .ok_or_else(interval_out_of_range),
            None => return None,
        },
        (BinaryOperator::Divide, Value::Interval(i), n) => match as_f64(n) {
            Some(0.0) => Err(PgError::new("22012", "division by zero")),
            Some(f) => i
                .scaled(1.0 / f)
                .map(Value::Interval)
                .ok_or_else(interval_out_of_range),
            None => return None,
        },
        _ => return None,
    };
    Some(r)
}

/// The result type of `a op b` for [`operator`]'s operands (`a`, `b`:
/// type OIDs, text for an untyped literal).
pub fn operator_type(op: &BinaryOperator, a: u32, b: u32) -> Option<TypeOf> {
    let int = |t: u32| matches!(t, oid::INT2 | oid::INT4 | oid::INT8);
    let stamp = |t: u32| matches!(t, oid::TIMESTAMP | oid::TIMESTAMPTZ);
    let num = |t: u32| int(t) || matches!(t, oid::FLOAT4 | oid::FLOAT8);
    let t = match (op, a, b) {
        (BinaryOperator::Plus | BinaryOperator::Minus, oid::DATE, t) if int(t) => oid::DATE,
        (BinaryOperator::Plus, t, oid::DATE) if int(t) => oid::DATE,
        (BinaryOperator::Minus, oid::DATE, oid::DATE | oid::TEXT) => oid::INT4,
        (BinaryOperator::Plus | BinaryOperator::Minus, oid::DATE, oid::INTERVAL) => oid::TIMESTAMP,
        (BinaryOperator::Plus, oid::INTERVAL, oid::DATE) => oid::TIMESTAMP,
        (BinaryOperator::Minus, x, y) if stamp(x) && (stamp(y) || y == oid::TEXT) => oid::INTERVAL,
        (BinaryOperator::Plus | BinaryOperator::Minus, x, oid::INTERVAL | oid::TEXT)
            if stamp(x) =>
        {
            x
        }
        (BinaryOperator::Plus, oid::INTERVAL, y) if stamp(y) => y,
        (
            BinaryOperator::Plus | BinaryOperator::Minus,
            oid::INTERVAL,
            oid::INTERVAL | oid::TEXT,
        ) => oid::INTERVAL,
        (BinaryOperator::Plus, oid::TEXT, oid::INTERVAL) => oid::INTERVAL,
        (BinaryOperator::Multiply, oid::INTERVAL, n)
        | (BinaryOperator::Multiply, n, oid::INTERVAL)
            if num(n) =>
        {
            oid::INTERVAL
        }
        (BinaryOperator::Divide, oid::INTERVAL, n) if num(n) => oid::INTERVAL,
        _ => return None,
    };
    Some((t, -1))
}

/// `date_trunc(unit, v)`: a timestamp(tz) or interval cut to `unit`.
fn date_trunc(unit: &str, v: &Value) -> Result<Value, PgError> {
    let f = field(unit).ok_or_else(|| unrecognized(unit, v))?;
    if let Value::Interval(i) = v {
        return trunc_interval(unit, f, *i, v).map(Value::Interval);
    }
    let Some(ts) = instant(v) else {
        return Err(unrecognized(unit, v));
    };
    let p = parts(ts);
    let whole = |unit_micros: i64| ts - ts.rem_euclid(unit_micros);
    let first = |year: i64, month: i64| from_parts(year, month, 1, 0);
    let t = match f {
        Field::Microseconds => ts,
        Field::Milliseconds => whole(1000),
        Field::Second => whole(1_000_000),
        Field::Minute => whole(MICROS_PER_MINUTE),
        Field::Hour => whole(MICROS_PER_HOUR),
        Field::Day => whole(MICROS_PER_DAY),
        // ISO weeks start on Monday (2000-01-03 was one).
        Field::Week => (p.days - (p.days - 2).rem_euclid(7)) * MICROS_PER_DAY,
        Field::Month => first(p.year, p.month)?,
        Field::Quarter => first(p.year, (p.month - 1) / 3 * 3 + 1)?,
        Field::Year => first(p.year, 1)?,
        Field::Decade => first(p.year.div_euclid(10) * 10, 1)?,
        Field::Century => first((p.year + 99).div_euclid(100) * 100 - 99, 1)?,
        Field::Millennium => first((p.year + 999).div_euclid(1000) * 1000 - 999, 1)?,
        _ => return Err(unsupported(unit, v)),
    };
    Ok(match v {
        Value::Timestamptz(_) | Value::Date(_) => Value::Timestamptz(t),
        _ => Value::Timestamp(t),
    })
}

fn trunc_interval(unit: &str, f: Field, i: Interval, v: &Value) -> Result<Interval, PgError> {
    let keep = |micros_unit: i64| Interval {
        micros: i.micros - i.micros % micros_unit,
        ..i
    };
    let years = |n: i32| Interval {
        months: i.months / 12 / n * n * 12,
        days: 0,
        micros: 0,
    };
    Ok(match f {
        Field::Microseconds => i,
        Field::Milliseconds => keep(1000),
        Field::Second => keep(1_000_000),
        Field::Minute => keep(MICROS_PER_MINUTE),
        Field::Hour => keep(MICROS_PER_HOUR),
        Field::Day => Interval { micros: 0, ..i },
        Field::Month => Interval {
            days: 0,
            micros: 0,
            ..i
        },
        Field::Quarter => Interval {
            months: i.months - i.months % 3,
            days: 0,
            micros: 0,
        },
        Field::Year => years(1),
        Field::Decade => years(10),
        Field::Century => years(100),
        Field::Millennium => years(1000),
        Field::Week => {
            return Err(PgError::feature_not_supported(format!(
                "unit \"{}\" not supported for type interval",
                unit.to_ascii_lowercase()
            ))
            .with_detail("Months usually have fractional weeks."))
        }
        _ => return Err(unsupported(unit, v)),
    })
}

/// The ISO year and week of a day since 2000-01-01.
pub fn iso_week(days: i64) -> (i64, i64) {
    let weekday = (days + 5).rem_euclid(7); // 0 = Monday
    let thursday = days - weekday + 3;
    let (year, _, _) = civil(thursday);
    let week = (thursday - days_of(year, 1, 1)) / 7 + 1;
    (year, week)
}

/// `EXTRACT(unit FROM v)` / `date_part(unit, v)` as a double.
pub fn extract(unit: &str, v: &Value) -> Result<f64, PgError> {
    let f = field(unit).ok_or_else(|| unrecognized(unit, v))?;
    if let Value::Interval(i) = v {
        return extract_interval(unit, f, i, v);
    }
    let Some(ts) = instant(v) else {
        return Err(unrecognized(unit, v));
    };
    let date = matches!(v, Value::Date(_));
    let p = parts(ts);
    let second = (p.time % MICROS_PER_MINUTE) as f64;
    let y = p.year;
    Ok(match f {
        Field::Microseconds if !date => second,
        Field::Milliseconds if !date => second / 1000.0,
        Field::Second if !date => second / 1e6,
        Field::Minute if !date => (p.time / MICROS_PER_MINUTE % 60) as f64,
        Field::Hour if !date => (p.time / MICROS_PER_HOUR) as f64,
        Field::Day => p.day as f64,
        Field::Month => p.month as f64,
        Field::Quarter => ((p.month - 1) / 3 + 1) as f64,
        Field::Year => y as f64,
        Field::Decade => y.div_euclid(10) as f64,
        Field::Century => (y + 99).div_euclid(100) as f64,
        Field::Millennium => (y + 999).div_euclid(1000) as f64,
        Field::Epoch => ts as f64 / 1e6 + UNIX_TO_PG_SECS as f64,
        Field::Dow => (p.days + 6).rem_euclid(7) as f64,
        Field::Isodow => ((p.days + 5).rem_euclid(7) + 1) as f64,
        Field::Doy => (p.days - days_of(y, 1, 1) + 1) as f64,
        Field::Week => iso_week(p.days).1 as f64,
        Field::Isoyear => iso_week(p.days).0 as f64,
        Field::Julian => (p.days + 2_451_545) as f64 + p.time as f64 / MICROS_PER_DAY as f64,
        Field::Timezone | Field::TimezoneHour | Field::TimezoneMinute
            if matches!(v, Value::Timestamptz(_)) =>
        {
            0.0
        }
        _ => return Err(unsupported(unit, v)),
    })
}

fn extract_interval(unit: &str, f: Field, i: &Interval, v: &Value) -> Result<f64, PgError> {
    let years = i64::from(i.months / 12);
    let second = (i.micros % MICROS_PER_MINUTE) as f64;
    Ok(match f {
        Field::Microseconds => second,
        Field::Milliseconds => second / 1000.0,
        Field::Second => second / 1e6,
        Field::Minute => (i.micros / MICROS_PER_MINUTE % 60) as f64,
        Field::Hour => (i.micros / MICROS_PER_HOUR) as f64,
        Field::Day => f64::from(i.days),
        Field::Month => f64::from(i.months % 12),
        Field::Quarter => f64::from(i.months % 12 / 3 + 1),
        Field::Year => years as f64,
        Field::Decade => (years / 10) as f64,
        Field::Century => (years / 100) as f64,
        Field::Millennium => (years / 1000) as f64,
        Field::Epoch => {
            let days_per_year = 365.25;
            years as f64 * days_per_year * 86_400.0
                + f64::from(i.months % 12) * 30.0 * 86_400.0
                + f64::from(i.days) * 86_400.0
                + i.micros as f64 / 1e6
        }
        _ => return Err(unsupported(unit, v)),
    })
}

/// `age(a, b)`: the difference in years, months and days (a month is
/// counted in the earlier side's calendar), as PostgreSQL's
/// `timestamp_age`.
fn age(a: i64, b: i64) -> Result<Interval, PgError> {
    let (pa, pb) = (parts(a), parts(b));
    let sign = if a < b { -1 } else { 1 };
    let mut time = sign * (pa.time - pb.time);
    let mut day = sign * (pa.day - pb.day);
    let mut month = sign * (pa.month - pb.month);
    let mut year = sign * (pa.year - pb.year);
    if time < 0 {
        time += MICROS_PER_DAY;
        day -= 1;
    }
    while day < 0 {
        let (y, m) = if a < b {
            (pa.year, pa.month)
        } else {
            (pb.year, pb.month)
        };
        day += month_days(y, m);
        month -= 1;
    }
    while month < 0 {
        month += 12;
        year -= 1;
    }
    let months = i32::try_from(sign * (year * 12 + month)).map_err(|_| interval_out_of_range())?;
    Ok(Interval {
        months,
        days: i32::try_from(sign * day).map_err(|_| interval_out_of_range())?,
        micros: sign * time,
    })
}

fn justify_hours(i: Interval) -> Interval {
    let mut days = i64::from(i.days) + i.micros / MICROS_PER_DAY;
    let mut micros = i.micros % MICROS_PER_DAY;
    if days > 0 && micros < 0 {
        micros += MICROS_PER_DAY;
        days -= 1;
    } else if days < 0 && micros > 0 {
        micros -= MICROS_PER_DAY;
        days += 1;
    }
    Interval {
        days: i32::try_from(days).unwrap_or(i32::MAX),
        micros,
        ..i
    }
}

fn justify_days(i: Interval) -> Interval {
    let mut months = i64::from(i.months) + i64::from(i.days / 30);
    let mut days = i64::from(i.days % 30);
    if months > 0 && days < 0 {
        days += 30;
        months -= 1;
    } else if months < 0 && days > 0 {
        days -= 30;
        months += 1;
    }
    Interval {
        months: i32::try_from(months).unwrap_or(i32::MAX),
        days: i32::try_from(days).unwrap_or(0),
        micros: i.micros,
    }
}

/// `to_timestamp(seconds since 1970)`.
fn to_timestamp(secs: f64) -> Result<Value, PgError> {
    if secs.is_nan() {
        return Err(PgError::new("22008", "timestamp cannot be NaN"));
    }
    let micros = ((secs - UNIX_TO_PG_SECS as f64) * 1e6).round();
    if !micros.is_finite() || micros.abs() > 9.2e18 {
        return Err(PgError::new(
            "22008",
            format!("timestamp out of range: \"{secs}\""),
        ));
    }
    Ok(Value::Timestamptz(micros as i64))
}

/// The functions of this module with their argument counts.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("date_trunc", 2, 2),
    ("date_part", 2, 2),
    ("age", 1, 2),
    ("to_timestamp", 1, 1),
    ("justify_hours", 1, 1),
    ("justify_days", 1, 1),
    ("justify_interval", 1, 1),
    ("to_char", 2, 2),
];

/// Runs date/time function `name` (strict: NULL in, NULL out); `today`
/// is the transaction's start (what one-argument `age` counts from).
/// `None` when `name` is not one of them or has another argument count.
pub fn call(name: &str, args: &[Datum], now: i64) -> Option<Result<Datum, PgError>> {
    let (_, min, max) = FUNCTIONS.iter().find(|(n, _, _)| *n == name)?;
    if !(min..=max).contains(&&args.len()) {
        return None;
    }
    if args.iter().any(Option::is_none) {
        return Some(Ok(None));
    }
    let v: Vec<&Value> = args.iter().flatten().collect();
    if name == "to_char" && instant(v[0]).is_none() {
        return None;
    }
    let text = |x: &Value| match x {
        Value::Text(s) => s.clone(),
        other => other.to_text(),
    };
    let stamp = |x: &Value| -> Result<Value, PgError> {
        match x {
            Value::Text(s) => crate::wire::datetime::parse_timestamptz(s).map(Value::Timestamptz),
            other => Ok(other.clone()),
        }
    };
    let interval = |x: &Value| -> Result<Interval, PgError> {
        match interval_of(x)? {
            Some(i) => Ok(i),
            None => Err(no_function(name, x)),
        }
    };
    let r = (|| -> Result<Value, PgError> {
        Ok(match name {
            "date_trunc" => date_trunc(&text(v[0]), &stamp(v[1])?)?,
            "date_part" => Value::Float8(extract(&text(v[0]), &stamp(v[1])?)?),
            "age" => {
                let later = match v.get(1) {
                    Some(_) => instant(&stamp(v[0])?),
                    None => Some(now - now.rem_euclid(MICROS_PER_DAY)),
                };
                let earlier = instant(&stamp(v[v.len() - 1])?);
                match (later, earlier) {
                    (Some(a), Some(b)) => Value::Interval(age(a, b)?),
                    _ => return Err(no_function(name, v[0])),
                }
            }
            "to_timestamp" => match as_f64(v[0]) {
                Some(secs) => to_timestamp(secs)?,
                None => match v[0] {
                    Value::Text(s) => to_timestamp(
                        s.trim()
                            .parse()
                            .map_err(|_| PgError::invalid_text("double precision", s))?,
                    )?,
                    other => return Err(no_function(name, other)),
                },
            },
            "justify_hours" => Value::Interval(justify_hours(interval(v[0])?)),
            "justify_days" => Value::Interval(justify_days(interval(v[0])?)),
            "justify_interval" => Value::Interval(justify_days(justify_hours(interval(v[0])?))),
            _ => Value::Text(super::to_char::format(
                instant(v[0]).unwrap_or(0),
                matches!(v[0], Value::Timestamptz(_) | Value::Date(_)),
                &text(v[1]),
            )),
        })
    })();
    Some(r.map(Some))
}

fn no_function(name: &str, arg: &Value) -> PgError {
    PgError::new(
        "42883",
        format!(
            "function {name}({}) does not exist",
            type_name(arg.type_oid())
        ),
    )
    .with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

/// `INTERVAL 'text' [unit]`: the text read as an interval, a bare
/// number counting `unit` (seconds without one).
pub fn interval_literal(v: Value, unit: Option<&DateTimeField>) -> Result<Value, PgError> {
    let text = match v {
        Value::Text(s) => s,
        other => other.to_text(),
    };
    let bare = unit
        .and_then(|u| interval_unit(&u.to_string().to_ascii_lowercase()))
        .unwrap_or(Unit::Micros(1_000_000));
    Interval::parse_with(&text, bare).map(Value::Interval)
}

/// The result type of [`call`]'s function `name` on arguments of `args`'
/// types.
pub fn result_type(name: &str, args: &[TypeOf]) -> Option<TypeOf> {
    let t = match name {
        "date_trunc" => match args.get(1).map(|a| a.0) {
            Some(oid::TIMESTAMP) => oid::TIMESTAMP,
            Some(oid::INTERVAL) => oid::INTERVAL,
            _ => oid::TIMESTAMPTZ,
        },
        "date_part" => oid::FLOAT8,
        "age" | "justify_hours" | "justify_days" | "justify_interval" => oid::INTERVAL,
        "to_timestamp" => oid::TIMESTAMPTZ,
        _ => return None,
    };
    Some((t, -1))
}
