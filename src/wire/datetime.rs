//! `date`, `timestamp` and `timestamptz` text formats (DateStyle ISO,
//! output in UTC)
//! over PostgreSQL's binary representation: days and microseconds since
//! 2000-01-01.

use super::error::PgError;
use super::sqlstate;

/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn datetime_error(type_name: &str, text: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )
}

/// Now as a `timestamptz`: microseconds since 2000-01-01 UTC.
pub fn now() -> i64 {
    const UNIX_TO_PG_MICROS: i64 = 946_684_800_000_000;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    unix - UNIX_TO_PG_MICROS
}

/// The `date` (days since 2000-01-01) of a `timestamptz`, in UTC.
pub fn date_of(micros: i64) -> i32 {
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX)
}

/// Formats a `date` (days since 2000-01-01) as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` into days since 2000-01-01.
pub fn parse_date(text: &str) -> Result<i32, PgError> {
    let err = || datetime_error("date", text);
    let days = parse_ymd(text.trim()).ok_or_else(err)?;
    i32::try_from(days - PG_EPOCH_DAYS).map_err(|_| err())
}

fn parse_ymd(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let max = if m == 2 && leap {
        29
    } else {
        *month_days.get(usize::try_from(m - 1).ok()?)?
    };
    ((1..=9999).contains(&y) && (1..=max).contains(&d)).then(|| days_from_civil(y, m, d))
}

/// The year, month and day of a day counted from 2000-01-01.
pub fn civil(days: i64) -> (i64, i64, i64) {
    civil_from_days(days + PG_EPOCH_DAYS)
}

/// The day counted from 2000-01-01 of a proleptic Gregorian date (a day
/// past the month's end runs into the next month).
pub fn days_of(year: i64, month: i64, day: i64) -> i64 {
    days_from_civil(year, month, day) - PG_EPOCH_DAYS
}

/// Formats a `timestamptz` (µs since 2000-01-01 UTC) as
/// `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
pub fn format_timestamptz(micros: i64) -> String {
    format_timestamp(micros) + "+00"
}

/// Formats a `timestamp` (µs since 2000-01-01) as
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY);
    let date = format_date_days(days);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let mut out = format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!(".{frac:06}");
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

fn format_date_days(days: i64) -> String {
    let (y, m, d) = civil_from_days(days + PG_EPOCH_DAYS);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH[:MM]]` (no offset = UTC)
/// into µs since 2000-01-01 UTC.
pub fn parse_timestamptz(text: &str) -> Result<i64, PgError> {
    parse_ts(text.trim(), true).ok_or_else(|| datetime_error("timestamp with time zone", text))
}

/// Parses `timestamp` input as [`parse_timestamptz`] does, an offset
/// written after the time ignored (as PostgreSQL ignores it).
pub fn parse_timestamp(text: &str) -> Result<i64, PgError> {
    parse_ts(text.trim(), false).ok_or_else(|| datetime_error("timestamp", text))
}

fn parse_ts(s: &str, with_offset: bool) -> Option<i64> {
    // A date alone may carry an offset (`2024-05-05+02`).
    let (date, time) = match (s.find([' ', 'T']), s.rfind('+')) {
        (Some(i), _) => (&s[..i], &s[i + 1..]),
        (None, Some(i)) => (&s[..i], &s[i..]),
        (None, None) => (s, ""),
    };
    let time = match time {
        "" => "00:00:00",
        t if t.starts_with('+') => return parse_ts(&format!("{date} 00:00:00{t}"), with_offset),
        t => t,
    };
    let days = parse_ymd(date)? - PG_EPOCH_DAYS;
    let (clock, offset_secs) = split_offset(time.trim())?;
    let mut fields = clock.splitn(3, ':');
    let h: i64 = fields.next()?.parse().ok()?;
    let mi: i64 = fields.next()?.parse().ok()?;
    let (sec, micros) = match fields.next() {
        Some(sec) => parse_seconds(sec)?,
        None => (0, 0),
    };
    if h > 24 || mi > 59 || sec > 60 {
        return None;
    }
    let offset_secs = if with_offset { offset_secs } else { 0 };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

fn parse_seconds(s: &str) -> Option<(i64, i64)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain("000000".chars()).take(6).collect();
    Some((sec, digits.parse().ok()?))
}

fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(i) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let sign = if time.as_bytes()[i] == b'-' { -1 } else { 1 };
    let off = &time[i + 1..];
    let (h, m) = off.split_once(':').unwrap_or((off, "0"));
    let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
    Some((&time[..i], sign * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(format_date(0), "2000-01-01");
        assert_eq!(parse_date("2024-02-29").unwrap(), 8825);
        assert_eq!(format_date(8825), "2024-02-29");
        assert_eq!(format_date(-1), "1999-12-31");
        assert_eq!(parse_date("2023-02-29").unwrap_err().code, "22007");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamptz("2000-01-02 01:02:03.5+01").unwrap();
        assert_eq!(t, 86_400_000_000 + 123_500_000);
        assert_eq!(format_timestamptz(t), "2000-01-02 00:02:03.5+00");
        assert_eq!(format_timestamptz(-1), "1999-12-31 23:59:59.999999+00");
        assert_eq!(parse_timestamptz("2000-01-01T00:00:00Z").unwrap(), 0);
        assert!(parse_timestamptz("yesterday-ish").is_err());
    }
}
