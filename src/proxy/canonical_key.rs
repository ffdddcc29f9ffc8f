//! One text per shard-key value, whatever spelling PostgreSQL accepted
//! for it, so equal values hash to one slot. The proxy does not know a
//! key's type, so every reading that fits is applied, most specific first:
//!
//! - an integer as PostgreSQL 16+ reads `int2/int4/int8` (blanks around,
//!   a sign, leading zeros, `_` between digits, `0x`/`0o`/`0b`) → its
//!   decimal form;
//! - a decimal number (`42.0`, `4.2e1`, `.5`) as `numeric`, `real` or
//!   `double precision` read it → the integer's decimal form when it is
//!   whole (so `id = 42.0` meets `42`), else `0.<digits>e<exponent>`
//!   without redundant zeros;
//! - a UUID as `uuid_in` reads it (optional braces, any case, a hyphen
//!   optional after each group of four digits) → lower case 8-4-4-4-12;
//! - anything else is its own text.
//!
//! A UUID is read first, so a numeric key written as exactly 32 decimal
//! digits would not meet the same value written otherwise; integer keys
//! (at most 19 digits) and UUIDs always meet.
//!
//! Two different values may share a text (the texts `'042'` and `'42'`);
//! they then share a slot, which is harmless: routing only needs equal
//! values to meet.

/// PostgreSQL's `isspace` blanks, which its number inputs skip.
fn trim_pg(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}'])
}

/// The canonical text of a key value (see the module docs).
pub fn canonical_key(text: &str) -> String {
    // A UUID first: 32 decimal digits are more likely one than a numeric.
    if let Some(u) = uuid(text) {
        return u;
    }
    let trimmed = trim_pg(text);
    // Integers of up to 38 digits; longer ones take the decimal form,
    // as `decimal` writes them.
    let fits = |n: &i128| n.unsigned_abs() < 10u128.pow(38);
    if let Some(n) = integer(trimmed).filter(fits) {
        return n.to_string();
    }
    if let Some(d) = decimal(trimmed) {
        return d;
    }
    text.to_string()
}

/// An integer in PostgreSQL's input syntax.
fn integer(text: &str) -> Option<i128> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let prefixed = |p: &str| {
        rest.get(..2)
            .filter(|h| h.eq_ignore_ascii_case(p))
            .map(|_| &rest[2..])
    };
    let (radix, digits) = if let Some(d) = prefixed("0x") {
        (16, d)
    } else if let Some(d) = prefixed("0o") {
        (8, d)
    } else if let Some(d) = prefixed("0b") {
        (2, d)
    } else {
        (10, rest)
    };
    // `_` only between digits (after a prefix too: 0x_1F is valid).
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes[bytes.len() - 1] == b'_' || (radix == 10 && bytes[0] == b'_') {
        return None;
    }
    if digits.contains("__") {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        value = value
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(d))?;
    }
    Some(if negative { -value } else { value })
}

/// A decimal number (`numeric`/float syntax) in canonical form.
fn decimal(text: &str) -> Option<String> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], integer(&rest[i + 1..])?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // value = 0.<digits> × 10^point
    let digits = format!("{whole}{fraction}");
    let leading = digits.bytes().take_while(|&b| b == b'0').count();
    let significant = digits[leading..].trim_end_matches('0');
    if significant.is_empty() {
        return Some("0".into());
    }
    let point = i128::try_from(whole.len()).ok()? - i128::try_from(leading).ok()? + exponent;
    let sign = if negative { "-" } else { "" };
    let len = i128::try_from(significant.len()).ok()?;
    if point >= len && point <= 38 {
        // A whole number: the integer form, as `integer` gives it.
        let zeros = "0".repeat(usize::try_from(point - len).ok()?);
        return Some(format!("{sign}{significant}{zeros}"));
    }
    Some(format!("{sign}0.{significant}e{point}"))
}

/// A UUID in `uuid_in`'s syntax, as lower case 8-4-4-4-12.
fn uuid(text: &str) -> Option<String> {
    crate::wire::uuid::parse(text).map(|b| crate::wire::uuid::format(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_every_postgres_spelling() {
        for s in [
            "42", " +042 ", "\t42\n", "4_2", "0x2A", "0X2a", "0o52", "0b101010", "0x_2A",
        ] {
            assert_eq!(canonical_key(s), "42", "{s}");
        }
        for s in ["42.0", "4.2e1", "420E-1", "0042.000", "+42."] {
            assert_eq!(canonical_key(s), "42", "{s}");
        }
        assert_eq!(canonical_key("-0"), "0");
        assert_eq!(canonical_key("0.50"), canonical_key(".5"));
        assert_eq!(canonical_key("0.5"), "0.5e0");
        assert_eq!(canonical_key("1e100"), canonical_key("10e99"));
        assert_eq!(
            canonical_key("1e38"),
            canonical_key(&format!("1{}", "0".repeat(38)))
        );
        assert_eq!(canonical_key("1e37"), format!("1{}", "0".repeat(37)));
        // Not numbers: kept as written.
        for s in ["4__2", "_42", "42_", "0x", "1e", "abc", " abc", "1.2.3"] {
            assert_eq!(canonical_key(s), s, "{s}");
        }
    }

    #[test]
    fn uuids_in_every_postgres_spelling() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for s in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        ] {
            assert_eq!(canonical_key(s), canonical, "{s}");
        }
        for s in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert_eq!(canonical_key(s), s, "{s}");
        }
    }
}
