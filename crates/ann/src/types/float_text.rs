//! Float text the way PostgreSQL reads and writes it.
//!
//! pgvector reads each element with C `strtof` (longest valid prefix:
//! optional sign, decimal or hex digits, `inf`/`infinity`/`nan`, case
//! insensitive). PostgreSQL writes float4 (pgvector's elements too) and
//! float8 with `float_to_shortest_decimal` and `double_to_shortest_decimal`:
//! Ryū's shortest round-trip digits (an exact tie rounds to even), plain
//! notation when the decimal exponent is in `-4..6` (float4) or `-4..15`
//! (float8), otherwise `d.ddde+XX`. The digits come from the `ryu` crate
//! (the same algorithm); only the layout is done here. The wire layer's
//! float4 and float8 text output is [`push_shortest`] too.

use std::fmt::Write;

/// One number read by [`scan_float`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedFloat {
    /// The value, rounded to nearest as `strtof` does.
    pub value: f32,
    /// Bytes consumed, including leading whitespace.
    pub len: usize,
    /// A finite literal too large for f32 (`strtof` sets ERANGE, gives inf).
    pub overflow: bool,
    /// A non-zero literal that rounded to zero (`strtof` sets ERANGE).
    pub underflow: bool,
}

/// C locale `isspace`, the whitespace pgvector skips.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn starts_with_ci(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

/// Reads the longest prefix of `s` that C `strtof` accepts; `None` when no
/// number starts there (strtof's `endptr == nptr`).
pub(crate) fn scan_float(s: &[u8]) -> Option<ScannedFloat> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'+') => {
            i += 1;
            false
        }
        Some(b'-') => {
            i += 1;
            true
        }
        _ => false,
    };
    let body = &s[i..];
    let sign = |v: f32| if negative { -v } else { v };
    let special = |value: f32, len: usize| ScannedFloat {
        value: sign(value),
        len: i + len,
        overflow: false,
        underflow: false,
    };
    if starts_with_ci(body, b"infinity") {
        return Some(special(f32::INFINITY, 8));
    }
    if starts_with_ci(body, b"inf") {
        return Some(special(f32::INFINITY, 3));
    }
    if starts_with_ci(body, b"nan") {
        let mut len = 3;
        if body.get(3) == Some(&b'(') {
            let mut j = 4;
            while j < body.len() && (body[j].is_ascii_alphanumeric() || body[j] == b'_') {
                j += 1;
            }
            if body.get(j) == Some(&b')') {
                len = j + 1;
            }
        }
        return Some(special(f32::NAN, len));
    }
    let (magnitude, len, nonzero_digit) = scan_hex(body).or_else(|| scan_decimal(body))?;
    let value = sign(magnitude);
    Some(ScannedFloat {
        value,
        len: i + len,
        overflow: value.is_infinite(),
        underflow: value == 0.0 && nonzero_digit,
    })
}

/// Decimal digits with optional fraction and exponent: (|value|, length,
/// whether any mantissa digit was non-zero).
fn scan_decimal(s: &[u8]) -> Option<(f32, usize, bool)> {
    let mut i = 0;
    let mut digits = 0;
    let mut nonzero = false;
    while i < s.len() && s[i].is_ascii_digit() {
        nonzero |= s[i] != b'0';
        i += 1;
        digits += 1;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            nonzero |= s[i] != b'0';
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if s.get(j).is_some_and(u8::is_ascii_digit) {
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    // The token is ASCII digits, '.', 'e' and a sign: valid UTF-8 and valid
    // Rust float syntax, which rounds correctly like strtof.
    let text = std::str::from_utf8(&s[..i]).ok()?;
    let value = text.parse::<f32>().ok()?;
    Some((value, i, nonzero))
}

/// `0x` hex float (`0x1.8p3`), as glibc strtof reads it.
fn scan_hex(s: &[u8]) -> Option<(f32, usize, bool)> {
    if s.len() < 3 || s[0] != b'0' || !matches!(s[1], b'x' | b'X') {
        return None;
    }
    let mut i = 2;
    let mut mantissa: u64 = 0;
    let mut exp: i64 = 0;
    let mut sticky = false;
    let mut digits = 0;
    let mut fraction = false;
    loop {
        match s.get(i) {
            Some(b'.') if !fraction => fraction = true,
            Some(&c) if c.is_ascii_hexdigit() => {
                let d = (c as char).to_digit(16).unwrap_or(0) as u64;
                digits += 1;
                if mantissa < 1 << 56 {
                    mantissa = mantissa << 4 | d;
                    if fraction {
                        exp -= 4;
                    }
                } else {
                    sticky |= d != 0;
                    if !fraction {
                        exp += 4;
                    }
                }
            }
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let mut j = i + 1;
        let negative = s.get(j) == Some(&b'-');
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if s.get(j).is_some_and(u8::is_ascii_digit) {
            let mut e: i64 = 0;
            while j < s.len() && s[j].is_ascii_digit() {
                e = (e * 10 + (s[j] - b'0') as i64).min(100_000);
                j += 1;
            }
            exp += if negative { -e } else { e };
            i = j;
        }
    }
    let nonzero = mantissa != 0 || sticky;
    // Keep 53 bits with a sticky low bit so the single rounding to f32 at
    // the end is correct (53 >= 24 + 2).
    while mantissa >= 1 << 53 {
        sticky |= mantissa & 1 != 0;
        mantissa >>= 1;
        exp += 1;
    }
    if sticky {
        mantissa |= 1;
    }
    let mut value = mantissa as f64;
    let mut e = exp.clamp(-5000, 5000) as i32;
    while e > 1000 {
        value *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        value *= 2f64.powi(-1000);
        e += 1000;
    }
    value *= 2f64.powi(e);
    Some((value as f32, i, nonzero))
}

/// A float type PostgreSQL prints with Ryū's shortest round-trip digits:
/// `f32` as `float4out` (and pgvector's element output), `f64` as
/// `float8out` (both with `extra_float_digits` > 0, the default).
pub trait ShortestFloat: ryu::Float + Copy + PartialOrd {
    /// Decimal exponents in `-4..PLAIN_END` print in plain notation (6 for
    /// float4, 15 for float8, as PostgreSQL's `f2s.c` and `d2s.c`), others
    /// as `d.ddde+XX`.
    const PLAIN_END: i32;
    /// The least value PostgreSQL prints in plain notation: the one nearest
    /// 1e-4, whose shortest text is `0.0001`.
    const PLAIN_MIN: Self;
    /// 10^`PLAIN_END`, exact in the type: the least value printed `1e+XX`.
    const PLAIN_LIMIT: Self;
    /// What PostgreSQL prints for NaN, ±Infinity and ±0 as `Err`, else
    /// whether the value is negative and its magnitude.
    fn sign_and_magnitude(self) -> Result<(bool, Self), &'static str>;
}

macro_rules! shortest_float {
    ($t:ty, $plain_end:literal, $plain_limit:literal) => {
        impl ShortestFloat for $t {
            const PLAIN_END: i32 = $plain_end;
            const PLAIN_MIN: Self = 1e-4;
            const PLAIN_LIMIT: Self = $plain_limit;
            fn sign_and_magnitude(self) -> Result<(bool, Self), &'static str> {
                if self.is_nan() {
                    Err("NaN")
                } else if self.is_infinite() {
                    Err(if self < 0.0 { "-Infinity" } else { "Infinity" })
                } else if self == 0.0 {
                    Err(if self.is_sign_negative() { "-0" } else { "0" })
                } else {
                    Ok((self.is_sign_negative(), self.abs()))
                }
            }
        }
    };
}

shortest_float!(f32, 6, 1e6);
shortest_float!(f64, 15, 1e15);

/// Appends `f` as PostgreSQL prints it (`float_to_shortest_decimal_bufn`
/// for f32, `double_to_shortest_decimal_bufn` for f64).
pub fn push_shortest<F: ShortestFloat>(out: &mut String, f: F) {
    let (negative, magnitude) = match f.sign_and_magnitude() {
        Ok(parts) => parts,
        Err(special) => return out.push_str(special),
    };
    if negative {
        out.push('-');
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(magnitude);
    // The notation follows from the value, so the digits need not be read:
    // the shortest text of a float below PLAIN_MIN lies below PLAIN_MIN's
    // round-trip interval, which holds 1e-4, and that of a float below
    // PLAIN_LIMIT (exact) below PLAIN_LIMIT. In this range Ryū writes plain
    // notation as PostgreSQL does (its own range is wider), but an integer
    // with `.0`.
    if magnitude >= F::PLAIN_MIN && magnitude < F::PLAIN_LIMIT {
        out.push_str(text.strip_suffix(".0").unwrap_or(text));
        return;
    }
    let (digits, n, exp) = significant_digits(text);
    push_layout(out, &digits[..n], exp, F::PLAIN_END);
}

/// PostgreSQL's layout of significant `digits` whose first has the decimal
/// exponent `exp`: plain notation when `exp` is in `-4..plain_end`, else
/// `d.ddde+XX` (at least two exponent digits).
fn push_layout(out: &mut String, digits: &[u8], exp: i32, plain_end: i32) {
    let n = digits.len() as i32;
    let push = |out: &mut String, d: &[u8]| out.extend(d.iter().map(|&b| char::from(b)));
    if (-4..plain_end).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            push(out, digits);
        } else if exp + 1 < n {
            let (int, frac) = digits.split_at(exp as usize + 1);
            push(out, int);
            out.push('.');
            push(out, frac);
        } else {
            push(out, digits);
            out.extend(std::iter::repeat_n('0', (exp + 1 - n) as usize));
        }
    } else {
        push(out, &digits[..1]);
        if n > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// The most significant digits a shortest f64 text has (f32: 9).
const MAX_DIGITS: usize = 17;

/// The significant digits of Ryū's text for a positive finite float
/// (`0.001`, `123456.0`, `1.5e-5`, `1e300`), how many there are (trailing
/// zeros dropped), and the decimal exponent of the first — without the two
/// allocations and the formatter that `{:e}` and its splitting cost (a
/// 384-element vector's text took ~100 µs that way).
fn significant_digits(text: &str) -> ([u8; MAX_DIGITS], usize, i32) {
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse().unwrap_or(0)),
        None => (text, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let (mut digits, mut n, mut leading) = ([0u8; MAX_DIGITS], 0, 0);
    for b in mantissa.bytes().filter(|&b| b != b'.') {
        if n == 0 && b == b'0' {
            leading += 1;
        } else if n < digits.len() {
            // Shortest digits number at most MAX_DIGITS: any later one is
            // the zero of an integer's `.0`.
            digits[n] = b;
            n += 1;
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n, exp + int_len - 1 - leading)
}

/// `f` as PostgreSQL prints a float4 (f32) or float8 (f64).
pub fn shortest<F: ShortestFloat>(f: F) -> String {
    let mut s = String::new();
    push_shortest(&mut s, f);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Option<(f32, usize, bool, bool)> {
        scan_float(s.as_bytes()).map(|f| (f.value, f.len, f.overflow, f.underflow))
    }

    #[test]
    fn scans_like_strtof() {
        assert_eq!(scan("1.5,"), Some((1.5, 3, false, false)));
        assert_eq!(scan("  -2e3]"), Some((-2000.0, 6, false, false)));
        assert_eq!(scan("+.5"), Some((0.5, 3, false, false)));
        assert_eq!(scan("1."), Some((1.0, 2, false, false)));
        assert_eq!(scan("1e"), Some((1.0, 1, false, false)));
        assert_eq!(scan("1e+"), Some((1.0, 1, false, false)));
        assert_eq!(scan("1.e2x"), Some((100.0, 4, false, false)));
        assert_eq!(scan("0x1.8p1"), Some((3.0, 7, false, false)));
        assert_eq!(scan("0x"), Some((0.0, 1, false, false)));
        assert_eq!(scan("0xg"), Some((0.0, 1, false, false)));
        assert_eq!(scan("-0x10"), Some((-16.0, 5, false, false)));
        assert_eq!(scan("1e39"), Some((f32::INFINITY, 4, true, false)));
        assert_eq!(scan("-1e39"), Some((f32::NEG_INFINITY, 5, true, false)));
        assert_eq!(scan("1e-50"), Some((0.0, 5, false, true)));
        assert_eq!(scan("0e-50"), Some((0.0, 5, false, false)));
        assert_eq!(scan("InFiNiTy"), Some((f32::INFINITY, 8, false, false)));
        assert_eq!(scan("-inf,"), Some((f32::NEG_INFINITY, 4, false, false)));
        let nan = scan_float(b"nan(abc)]").unwrap();
        assert!(nan.value.is_nan());
        assert_eq!(nan.len, 8);
        assert_eq!(scan("."), None);
        assert_eq!(scan("abc"), None);
        assert_eq!(scan("-"), None);
        assert_eq!(scan(""), None);
        // Correct rounding of a long decimal.
        assert_eq!(
            scan("0.1000000000000000055511151231257827").unwrap().0,
            0.1f32
        );
        // Smallest subnormal survives without underflow flag.
        assert_eq!(scan("1e-45").unwrap().0, f32::from_bits(1));
        assert_eq!(scan("0x1p-149").unwrap().0, f32::from_bits(1));
        assert_eq!(scan("0x1.000002p0").unwrap().0, 1.0 + f32::EPSILON);
    }

    /// `f`'s text by way of its digits and [`push_layout`] alone (the path
    /// [`push_shortest`] takes outside its plain range).
    fn laid_out<F: ShortestFloat>(f: F) -> String {
        let Ok((negative, magnitude)) = f.sign_and_magnitude() else {
            return shortest(f);
        };
        let mut buf = ryu::Buffer::new();
        let (digits, n, exp) = significant_digits(buf.format_finite(magnitude));
        let mut out = String::from(if negative { "-" } else { "" });
        push_layout(&mut out, &digits[..n], exp, F::PLAIN_END);
        out
    }

    /// The texts PostgreSQL 18 prints for these float4 and float8 values
    /// (sql/cases/34 compares the same ones with a real server).
    #[test]
    fn prints_like_postgres() {
        let float4: [(f32, &str); 27] = [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.099975586, "0.099975586"),
            (65504.0, "65504"),
            (123456.0, "123456"),
            (999_999.94, "999999.94"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1e7, "1e+07"),
            (1e-4, "0.0001"),
            (1e-4f32.next_down(), "9.999999e-05"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (3e38, "3e+38"),
            (f32::MAX, "3.4028235e+38"),
            (f32::MIN_POSITIVE, "1.1754944e-38"),
            (f32::from_bits(1), "1e-45"),
            (-0.0, "-0"),
            (0.0, "0"),
            (100.0, "100"),
            (0.6000977, "0.6000977"),
            // 2070951.25 (the nearest f32): a tie between two shortest texts;
            // PostgreSQL's Ryū rounds to even.
            (2_070_951.2, "2.0709512e+06"),
            (f32::NAN, "NaN"),
            (f32::INFINITY, "Infinity"),
            (f32::NEG_INFINITY, "-Infinity"),
            (-f32::NAN, "NaN"),
        ];
        for (f, want) in float4 {
            assert_eq!(shortest(f), want, "{f:e}");
            assert_eq!(laid_out(f), want, "{f:e}");
        }
        let float8: [(f64, &str); 24] = [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e14, "100000000000000"),
            (999_999_999_999_999.9, "999999999999999.9"),
            (1e15, "1e+15"),
            (1e16, "1e+16"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (1e-4, "0.0001"),
            (9.999_999_999_999_999e-5, "9.999999999999999e-05"),
            (1e-5, "1e-05"),
            (1.5e300, "1.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-0.0, "-0"),
            (0.0, "0"),
            (2_070_951.25, "2070951.25"),
            (f64::from(2_070_951.2f32), "2070951.25"),
            // 2^-25 and 5 * 2^-23: ties, rounded to even.
            (2f64.powi(-25), "2.9802322387695312e-08"),
            (5.0 * 2f64.powi(-23), "5.960464477539062e-07"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in float8 {
            assert_eq!(shortest(f), want, "{f:e}");
            assert_eq!(laid_out(f), want, "{f:e}");
        }
    }

    /// Ryū's digits are as many as Rust's own shortest `{:e}` gives, with
    /// the same exponent, over a spread of bit patterns (subnormals, every
    /// exponent), the text reads back to the same value, and the plain
    /// range [`push_shortest`] takes from the value agrees with the
    /// exponent of its digits. (On an exact tie the last digit may differ:
    /// Ryū, as PostgreSQL, rounds it to even.)
    #[test]
    fn digits_match_rusts_shortest_and_round_trip() {
        fn check<F>(f: F)
        where
            F: ShortestFloat + std::fmt::LowerExp + std::str::FromStr + std::fmt::Debug,
            <F as std::str::FromStr>::Err: std::fmt::Debug,
        {
            let sci = format!("{f:e}");
            let (mantissa, exp) = sci.split_once('e').unwrap();
            let want: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            let mut buf = ryu::Buffer::new();
            let (digits, n, e) = significant_digits(buf.format_finite(f));
            let got = std::str::from_utf8(&digits[..n]).unwrap();
            assert_eq!(got.len(), want.len(), "{sci}");
            assert_eq!(got[..n - 1], want[..n - 1], "{sci}");
            assert_eq!(e, exp.parse::<i32>().unwrap(), "{sci}");
            let text = shortest(f);
            assert_eq!(text.parse::<F>().unwrap(), f, "{sci}");
            assert_eq!(text, laid_out(f), "{sci}");
        }
        let mut bits = 1u64;
        for _ in 0..200_000 {
            bits = bits
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let (f4, f8) = (
                f32::from_bits((bits >> 32) as u32 & 0x7fff_ffff),
                f64::from_bits(bits & 0x7fff_ffff_ffff_ffff),
            );
            if f4.is_finite() && f4 != 0.0 {
                check(f4);
            }
            if f8.is_finite() && f8 != 0.0 {
                check(f8);
            }
        }
        // Either side of where the notation changes.
        for f in [1e-4f32, 1e6] {
            for g in [f.next_down(), f, f.next_up()] {
                check(g);
            }
        }
        for f in [1e-4f64, 1e15] {
            for g in [f.next_down(), f, f.next_up()] {
                check(g);
            }
        }
    }
}
