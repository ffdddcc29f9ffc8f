//! `interval`: months, days and microseconds kept apart as PostgreSQL
//! keeps them, with its text input (`1 day 02:00:00`, `90 minutes`,
//! `1.5 weeks`, `@ 2 hours ago`, ISO 8601 `P1DT2H`), its output
//! (IntervalStyle `postgres`) and its binary form.

use super::error::PgError;
use super::sqlstate;

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_MINUTE: i64 = 60_000_000;

/// An interval value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    /// Months (a year is 12).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

/// A unit of interval input and what one of it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds times the factor (microseconds to hours).
    Micros(i64),
    /// Days times the factor (days, weeks).
    Days(i64),
    /// Months times the factor (months to millennia).
    Months(i64),
}

/// The unit a (lower-case) word of interval input names.
pub fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => Unit::Micros(1),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => Unit::Micros(1000),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(1_000_000),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(MICROS_PER_MINUTE),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(MICROS_PER_HOUR),
        "day" | "days" | "d" => Unit::Days(1),
        "week" | "weeks" | "w" => Unit::Days(7),
        "month" | "months" | "mon" | "mons" => Unit::Months(1),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12),
        "decade" | "decades" | "dec" | "decs" => Unit::Months(120),
        "century" | "centuries" | "c" | "cent" => Unit::Months(1200),
        "millennium" | "millennia" | "mil" | "mils" => Unit::Months(12_000),
        _ => return None,
    })
}

/// Sums of the fields while input is read (wide, checked at the end).
#[derive(Default)]
struct Fields {
    months: i64,
    days: i64,
    micros: f64,
}

impl Fields {
    /// Adds `n` (with its fraction) of `unit`; fractions of months and
    /// days go down to days and microseconds (a month is 30 days), of
    /// years to whole months.
    fn add(&mut self, n: f64, unit: Unit) {
        match unit {
            Unit::Micros(f) => self.micros += n * f as f64,
            Unit::Days(f) => self.add_days(n * f as f64),
            Unit::Months(f) if f >= 12 => {
                let whole = (n.trunc() as i64).saturating_mul(f);
                let rounded = (n.fract() * f as f64).round() as i64;
                self.months = self.months.saturating_add(whole).saturating_add(rounded);
            }
            Unit::Months(f) => {
                let months = n * f as f64;
                self.months = self.months.saturating_add(months.trunc() as i64);
                self.add_days(months.fract() * 30.0);
            }
        }
    }

    fn add_days(&mut self, days: f64) {
        self.days = self.days.saturating_add(days.trunc() as i64);
        self.micros += (days.fract() * MICROS_PER_DAY as f64).round();
    }

    fn finish(self, negate: bool) -> Option<Interval> {
        let sign = if negate { -1 } else { 1 };
        let micros = self.micros.round();
        if !micros.is_finite() || micros.abs() > 9.2e18 {
            return None;
        }
        Some(Interval {
            months: i32::try_from(self.months.saturating_mul(sign)).ok()?,
            days: i32::try_from(self.days.saturating_mul(sign)).ok()?,
            micros: micros as i64 * sign,
        })
    }
}

fn syntax_error(text: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type interval: \"{text}\""),
    )
}

fn out_of_range(text: &str) -> PgError {
    PgError::new(
        "22015",
        format!("interval field value out of range: \"{text}\""),
    )
}

impl Interval {
    /// Parses interval text; a number without a unit counts `bare` (what
    /// `INTERVAL '2' HOUR` qualifies it with; seconds by default).
    pub fn parse_with(text: &str, bare: Unit) -> Result<Interval, PgError> {
        let lower = text.trim().to_ascii_lowercase();
        let fields = match lower.strip_prefix('p') {
            Some(iso) => parse_iso(iso),
            None => parse_words(&lower, bare),
        };
        let (fields, negate) = fields.ok_or_else(|| syntax_error(text))?;
        fields.finish(negate).ok_or_else(|| out_of_range(text))
    }

    /// Parses interval text (a bare number is seconds).
    pub fn parse(text: &str) -> Result<Interval, PgError> {
        Interval::parse_with(text, Unit::Micros(1_000_000))
    }

    /// PostgreSQL's binary form: microseconds, days, months.
    pub fn to_binary(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.micros.to_be_bytes());
        out[8..12].copy_from_slice(&self.days.to_be_bytes());
        out[12..].copy_from_slice(&self.months.to_be_bytes());
        out
    }

    /// Reads the binary form (22P03 when it is not 16 bytes).
    pub fn from_binary(b: &[u8]) -> Result<Interval, PgError> {
        let b: &[u8; 16] = b
            .try_into()
            .map_err(|_| PgError::invalid_binary("incorrect binary data format"))?;
        let (micros, rest) = b.split_at(8);
        let (days, months) = rest.split_at(4);
        let word = |s: &[u8]| <[u8; 4]>::try_from(s).map(i32::from_be_bytes).unwrap_or(0);
        Ok(Interval {
            micros: <[u8; 8]>::try_from(micros).map_or(0, i64::from_be_bytes),
            days: word(days),
            months: word(months),
        })
    }

    /// The length PostgreSQL orders and compares intervals by: a month
    /// as 30 days, a day as 24 hours.
    pub fn span(&self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(MICROS_PER_DAY)
            + i128::from(self.micros)
    }

    /// Text output (IntervalStyle `postgres`): `1 year 2 mons -3 days
    /// +04:05:06.7`, `00:00:00` for zero.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut before_negative = false;
        let parts = [
            (i64::from(self.months / 12), "year"),
            (i64::from(self.months % 12), "mon"),
            (i64::from(self.days), "day"),
        ];
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n != 0) {
            if !out.is_empty() {
                out.push(' ');
            }
            let plus = if before_negative && n > 0 { "+" } else { "" };
            let s = if n == 1 { "" } else { "s" };
            out.push_str(&format!("{plus}{n} {unit}{s}"));
            before_negative = n < 0;
        }
        if out.is_empty() || self.micros != 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            let sign = match (self.micros < 0, before_negative) {
                (true, _) => "-",
                (false, true) => "+",
                (false, false) => "",
            };
            let m = self.micros.unsigned_abs();
            let (hours, rest) = (m / MICROS_PER_HOUR as u64, m % MICROS_PER_HOUR as u64);
            let (minutes, rest) = (
                rest / MICROS_PER_MINUTE as u64,
                rest % MICROS_PER_MINUTE as u64,
            );
            let (seconds, frac) = (rest / 1_000_000, rest % 1_000_000);
            out.push_str(&format!("{sign}{hours:02}:{minutes:02}:{seconds:02}"));
            if frac != 0 {
                out.push_str(format!(".{frac:06}").trim_end_matches('0'));
            }
        }
        out
    }

    /// The sum, `None` when a field overflows.
    pub fn checked_add(self, other: Interval) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_add(other.months)?,
            days: self.days.checked_add(other.days)?,
            micros: self.micros.checked_add(other.micros)?,
        })
    }

    /// The negation, `None` when a field overflows.
    pub fn checked_neg(self) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_neg()?,
            days: self.days.checked_neg()?,
            micros: self.micros.checked_neg()?,
        })
    }

    /// Times `factor` as PostgreSQL's `interval * float8`: the fraction
    /// of a month goes to days (30 a month), of a day to microseconds.
    pub fn scaled(self, factor: f64) -> Option<Interval> {
        let months = f64::from(self.months) * factor;
        let month_days = months.fract() * 30.0;
        let days = f64::from(self.days) * factor + month_days;
        let micros = self.micros as f64 * factor + days.fract() * MICROS_PER_DAY as f64;
        let fits = |x: f64, max: f64| x.is_finite() && x.abs() <= max;
        if !fits(months, f64::from(i32::MAX))
            || !fits(days, f64::from(i32::MAX))
            || !fits(micros, 9.2e18)
        {
            return None;
        }
        Some(Interval {
            months: months.trunc() as i32,
            days: days.trunc() as i32,
            micros: micros.round() as i64,
        })
    }
}

/// A number as interval input writes it: sign, digits, optional fraction.
fn number(s: &str) -> Option<f64> {
    let digits = s.trim_start_matches(['+', '-']);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits != ".";
    ok.then(|| s.parse().ok()).flatten()
}

/// `[+-]h:m[:s[.f]]` as microseconds.
fn clock(s: &str) -> Option<f64> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut parts = rest.split(':');
    let field = |p: Option<&str>| -> Option<f64> {
        p.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
    };
    let hours = field(parts.next())?;
    let minutes = field(parts.next())?;
    let seconds = match parts.next() {
        Some(sec) => number(sec).filter(|_| !sec.starts_with(['+', '-']))?,
        None => 0.0,
    };
    if parts.next().is_some() || minutes > 59.0 || seconds >= 60.0 {
        return None;
    }
    Some(
        sign * (hours * MICROS_PER_HOUR as f64
            + minutes * MICROS_PER_MINUTE as f64
            + seconds * 1e6),
    )
}

/// `@ 1 day 2 hours ago`, `1day`, `-1 days +02:00:00`, `3600`.
fn parse_words(text: &str, bare: Unit) -> Option<(Fields, bool)> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.first() == Some(&"@") {
        words.remove(0);
    }
    let negate = words.last() == Some(&"ago");
    if negate {
        words.pop();
    }
    if words.is_empty() {
        return None;
    }
    let mut fields = Fields::default();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        if word.contains(':') {
            fields.micros += clock(word)?;
            continue;
        }
        // A unit glued to its number (`1day`, `10min`).
        let split = word
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(word.len());
        let n = number(&word[..split])?;
        let unit = match (&word[split..], words.get(i).and_then(|w| unit(w))) {
            ("", Some(u)) => {
                i += 1;
                u
            }
            ("", None) => bare,
            (glued, _) => unit(glued)?,
        };
        fields.add(n, unit);
    }
    Some((fields, negate))
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][nS]]` (after the `P`).
fn parse_iso(text: &str) -> Option<(Fields, bool)> {
    let mut fields = Fields::default();
    let mut in_time = false;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('t') {
            in_time = true;
            rest = r;
            continue;
        }
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .filter(|&e| e > 0)?;
        let n = number(&rest[..end])?;
        let unit = match (rest.as_bytes()[end], in_time) {
            (b'y', false) => Unit::Months(12),
            (b'm', false) => Unit::Months(1),
            (b'w', false) => Unit::Days(7),
            (b'd', false) => Unit::Days(1),
            (b'h', true) => Unit::Micros(MICROS_PER_HOUR),
            (b'm', true) => Unit::Micros(MICROS_PER_MINUTE),
            (b's', true) => Unit::Micros(1_000_000),
            _ => return None,
        };
        fields.add(n, unit);
        rest = &rest[end + 1..];
    }
    Some((fields, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        Interval::parse(s).map_or_else(|e| e.code.to_string(), |i| i.to_text())
    }

    #[test]
    fn input_and_output_match_postgres() {
        assert_eq!(text("1 day"), "1 day");
        assert_eq!(text("7 days"), "7 days");
        assert_eq!(text("3600"), "01:00:00");
        assert_eq!(text("1 day 3600"), "1 day 01:00:00");
        assert_eq!(text("-1 day 02:00"), "-1 days +02:00:00");
        assert_eq!(text("1day"), "1 day");
        assert_eq!(text("2 hours ago"), "-02:00:00");
        assert_eq!(text("-2:30"), "-02:30:00");
        assert_eq!(text("1:2:3.5"), "01:02:03.5");
        assert_eq!(text("1.5 months"), "1 mon 15 days");
        assert_eq!(text("1.5 weeks"), "10 days 12:00:00");
        assert_eq!(text("0.1 sec"), "00:00:00.1");
        assert_eq!(
            text("1 year 2 mons -3 days 04:05:06.7"),
            "1 year 2 mons -3 days +04:05:06.7"
        );
        assert_eq!(text("P1DT2H"), "1 day 02:00:00");
        assert_eq!(text("@ 1 day ago"), "-1 days");
        assert_eq!(text("1 days 3600.000000 seconds"), "1 day 01:00:00");
        assert_eq!(text("abc"), "22007");
        assert_eq!(text("1 foo"), "22007");
        assert_eq!(text(""), "22007");
        assert_eq!(text("99999999999 years"), "22015");
    }

    #[test]
    fn binary_round_trips_and_spans_order() {
        let i = Interval::parse("1 mon 2 days 00:00:03").unwrap();
        assert_eq!(Interval::from_binary(&i.to_binary()).unwrap(), i);
        assert!(Interval::from_binary(&[0; 3]).is_err());
        let month = Interval::parse("1 mon").unwrap();
        assert_eq!(month.span(), Interval::parse("30 days").unwrap().span());
    }
}
