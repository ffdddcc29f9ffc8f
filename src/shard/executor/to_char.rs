//! `to_char(timestamp, format)`: PostgreSQL's template patterns for
//! dates and times (`YYYY`, `MM`, `DD`, `HH24`, `MI`, `SS`, `MS`, `US`,
//! `Month`, `Mon`, `Day`, `Dy`, `AM`, `Q`, `IW`, `DDD`, `TZ`, …), the
//! `FM` prefix (no padding) and `"quoted"` text; anything else is copied.

use super::datetime::{iso_week, parts};
use crate::wire::datetime::days_of;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Patterns, longer before their prefixes.
const PATTERNS: &[&str] = &[
    "HH24", "HH12", "HH", "MI", "MS", "SSSSS", "SSSS", "SS", "US", "A.M.", "P.M.", "AM", "PM",
    "IYYY", "IW", "ID", "YYYY", "YYY", "YY", "Y", "MONTH", "MON", "MM", "DAY", "DDD", "DD", "DY",
    "D", "Q", "WW", "CC", "J", "TZ", "OF",
];

/// Patterns whose output follows the case they are written in.
const CASED: &[&str] = &[
    "A.M.", "P.M.", "AM", "PM", "MONTH", "MON", "DAY", "DY", "TZ",
];

/// How a cased pattern was written: `MONTH`, `Month` or `month`.
#[derive(Clone, Copy)]
enum Case {
    Upper,
    Capital,
    Lower,
}

fn styled(word: &str, case: Case) -> String {
    match case {
        Case::Upper => word.to_ascii_uppercase(),
        Case::Lower => word.to_ascii_lowercase(),
        Case::Capital => word.to_string(),
    }
}

/// The pattern at the start of `s`, its case, and its length.
fn pattern_at(s: &str) -> Option<(&'static str, Case)> {
    PATTERNS.iter().find_map(|&p| {
        let written = s.get(..p.len())?;
        if !written.eq_ignore_ascii_case(p) {
            return None;
        }
        let case = if written == p {
            Case::Upper
        } else if written == p.to_ascii_lowercase() {
            Case::Lower
        } else if written[..1] == p[..1] && written[1..] == p[1..].to_ascii_lowercase() {
            Case::Capital
        } else {
            return None;
        };
        (CASED.contains(&p) || !matches!(case, Case::Capital)).then_some((p, case))
    })
}

/// Formats `micros` (µs since 2000-01-01; `with_zone`: a timestamptz,
/// shown in UTC) by `template`.
pub fn format(micros: i64, with_zone: bool, template: &str) -> String {
    let p = parts(micros);
    let secs = p.time / 1_000_000;
    let hour = secs / 3600;
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let dow = (p.days + 6).rem_euclid(7);
    let doy = p.days - days_of(p.year, 1, 1) + 1;
    let (iso_year, iso_week) = iso_week(p.days);
    let mut out = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let fill = !(rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("FM"));
        let body = if fill { rest } else { &rest[2..] };
        let Some((pattern, case)) = pattern_at(body) else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        rest = &body[pattern.len()..];
        let num = |n: i64, width: usize| {
            if fill {
                format!("{n:0width$}")
            } else {
                n.to_string()
            }
        };
        let word = |w: &str| {
            let w = styled(w, case);
            if fill {
                format!("{w:<9}")
            } else {
                w
            }
        };
        let meridiem = |am: &str, pm: &str| styled(if hour < 12 { am } else { pm }, case);
        let text = match pattern {
            "HH24" => num(hour, 2),
            "HH12" | "HH" => num(hour12, 2),
            "MI" => num(secs / 60 % 60, 2),
            "SS" => num(secs % 60, 2),
            "MS" => num(p.time / 1000 % 1000, 3),
            "US" => num(p.time % 1_000_000, 6),
            "SSSS" | "SSSSS" => secs.to_string(),
            "AM" | "PM" => meridiem("AM", "PM"),
            "A.M." | "P.M." => meridiem("A.M.", "P.M."),
            "YYYY" => num(p.year, 4),
            "YYY" => num(p.year % 1000, 3),
            "YY" => num(p.year % 100, 2),
            "Y" => num(p.year % 10, 1),
            "IYYY" => num(iso_year, 4),
            "IW" => num(iso_week, 2),
            "ID" => num((dow + 6) % 7 + 1, 1),
            "MONTH" => word(MONTHS[(p.month - 1) as usize % 12]),
            "MON" => styled(&MONTHS[(p.month - 1) as usize % 12][..3], case),
            "MM" => num(p.month, 2),
            "DAY" => word(DAYS[dow as usize % 7]),
            "DY" => styled(&DAYS[dow as usize % 7][..3], case),
            "DDD" => num(doy, 3),
            "DD" => num(p.day, 2),
            "D" => num(dow + 1, 1),
            "Q" => num((p.month - 1) / 3 + 1, 1),
            "WW" => num((doy - 1) / 7 + 1, 2),
            "CC" => num((p.year + 99).div_euclid(100), 2),
            "J" => (p.days + 2_451_545).to_string(),
            "TZ" if with_zone => styled("UTC", case),
            "OF" if with_zone => "+00".to_string(),
            _ => String::new(),
        };
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_templates() {
        // 2024-03-05 14:07:09.123456 (a Tuesday).
        let t = (days_of(2024, 3, 5) * 86_400 + 14 * 3600 + 7 * 60 + 9) * 1_000_000 + 123_456;
        assert_eq!(
            format(t, true, "YYYY-MM-DD HH24:MI:SS"),
            "2024-03-05 14:07:09"
        );
        assert_eq!(format(t, true, "FMMonth FMDD, YYYY"), "March 5, 2024");
        assert_eq!(
            format(t, true, "Mon dy HH12 am MS US"),
            "Mar tue 02 pm 123 123456"
        );
        assert_eq!(format(t, true, "Day|DAY"), "Tuesday  |TUESDAY  ");
        assert_eq!(format(t, true, "\"Q\"Q IW DDD TZ"), "Q1 10 065 UTC");
    }
}
