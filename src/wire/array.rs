//! One-dimensional arrays with PostgreSQL's text (`array_in`/`array_out`)
//! and binary (`array_recv`/`array_send`) formats.
//!
//! An array keeps its element type's OID, so an empty array or one of
//! NULLs still encodes with the right element type. Only one-dimensional
//! arrays with lower bound 1 are modelled: a multidimensional value or
//! explicit bounds are refused (0A000), never flattened silently. The
//! catalog's `int2vector` and `oidvector` (`pg_index.indkey`,
//! `indclass`) are arrays too, as in PostgreSQL: lower bound 0, text
//! output separated by spaces (`1 2`).
//!
//! ```text
//! binary := ndim i32 (0 or 1), has_nulls i32, element OID u32,
//!           [length i32, lower bound i32] × ndim,
//!           (element length i32 (-1 NULL), element bytes) × length
//! ```

use super::error::PgError;
use super::sqlstate;
use super::types;
use super::value::{Format, Value};
use bytes::{BufMut, BytesMut};

/// A one-dimensional array of values of type `elem`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The element type's OID.
    pub elem: u32,
    /// The elements, `None` for NULL.
    pub items: Vec<Option<Value>>,
    /// An `int2vector` / `oidvector` (lower bound 0, `1 2` as text).
    pub vector: bool,
}

/// The element type of `int2vector` / `oidvector` type `type_oid`.
pub fn vector_element(type_oid: u32) -> Option<u32> {
    match type_oid {
        types::oid::INT2VECTOR => Some(types::oid::INT2),
        types::oid::OIDVECTOR => Some(types::oid::OID),
        _ => None,
    }
}

impl Array {
    /// An array of `elem` holding `items`.
    pub fn new(elem: u32, items: Vec<Option<Value>>) -> Array {
        Array {
            elem,
            items,
            vector: false,
        }
    }

    /// The array type's OID (0 when the element type has no array type).
    pub fn type_oid(&self) -> u32 {
        match (self.vector, self.elem) {
            (true, types::oid::INT2) => types::oid::INT2VECTOR,
            (true, _) => types::oid::OIDVECTOR,
            (false, elem) => types::by_oid(elem).map_or(0, |t| t.array),
        }
    }

    /// The subscript of the first element (0 for the vector types).
    pub fn lower_bound(&self) -> i32 {
        i32::from(!self.vector)
    }

    /// PostgreSQL's text output: `{1,NULL,"a b"}` (`1 2` for the vector
    /// types).
    pub fn to_text(&self) -> String {
        if self.vector {
            let items: Vec<String> = self.items.iter().flatten().map(Value::to_text).collect();
            return items.join(" ");
        }
        let mut out = String::from("{");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match item {
                None => out.push_str("NULL"),
                Some(v) => quote_element(&v.to_text(), &mut out),
            }
        }
        out.push('}');
        out
    }

    /// PostgreSQL's binary output.
    pub fn encode_binary(&self, out: &mut BytesMut) {
        let ndim = i32::from(self.vector || !self.items.is_empty());
        out.put_i32(ndim);
        out.put_i32(i32::from(self.items.iter().any(Option::is_none)));
        out.put_u32(self.elem);
        if ndim == 1 {
            out.put_i32(self.items.len() as i32);
            out.put_i32(self.lower_bound());
        }
        for item in &self.items {
            match item {
                None => out.put_i32(-1),
                Some(v) => {
                    let mut buf = BytesMut::new();
                    v.encode(Format::Binary, &mut buf);
                    out.put_i32(buf.len() as i32);
                    out.put_slice(&buf);
                }
            }
        }
    }

    /// Parses `array_in` text into elements of type `elem` (checked
    /// against `typmod`, as a column of `vector(3)[]` checks them).
    pub fn parse(elem: u32, typmod: Option<u32>, text: &str) -> Result<Array, PgError> {
        let items = split_literal(text)?
            .into_iter()
            .map(|item| item.map(|s| Value::parse(elem, typmod, &s)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Array::new(elem, items))
    }

    /// Parses `int2vectorin` / `oidvectorin` text (`1 2`) into a vector
    /// of `elem`.
    pub fn parse_vector(elem: u32, text: &str) -> Result<Array, PgError> {
        let items = text
            .split_ascii_whitespace()
            .map(|s| Value::parse(elem, None, s).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Array {
            elem,
            items,
            vector: true,
        })
    }

    /// Decodes `array_recv` bytes whose elements must be of type `elem`.
    pub fn from_binary(
        elem: u32,
        typmod: Option<u32>,
        vector: bool,
        b: &[u8],
    ) -> Result<Array, PgError> {
        let mut r = Reader(b);
        let ndim = r.i32()?;
        let flags = r.i32()?;
        let sent = r.i32()? as u32;
        if !(0..=6).contains(&ndim) {
            return Err(PgError::invalid_binary(format!(
                "invalid number of dimensions: {ndim}"
            )));
        }
        if flags != 0 && flags != 1 {
            return Err(PgError::invalid_binary("invalid array flags"));
        }
        if sent != elem {
            return Err(PgError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "binary data has array element type {sent} ({}) instead of expected {elem} ({})",
                    type_name(sent),
                    type_name(elem)
                ),
            ));
        }
        if ndim > 1 {
            return Err(multidimensional());
        }
        let len = match ndim {
            0 => 0,
            _ => {
                let (len, lower) = (r.i32()?, r.i32()?);
                if lower != i32::from(!vector) {
                    return Err(PgError::feature_not_supported(
                        "arrays with a lower bound other than 1 are not supported",
                    ));
                }
                usize::try_from(len)
                    .map_err(|_| PgError::invalid_binary("invalid array dimensions"))?
            }
        };
        let mut items = Vec::with_capacity(len.min(r.0.len() / 4));
        for _ in 0..len {
            let n = r.i32()?;
            items.push(match n {
                -1 => None,
                n => {
                    let n = usize::try_from(n).map_err(|_| {
                        PgError::invalid_binary("insufficient data left in message")
                    })?;
                    let bytes = r.take(n)?;
                    Some(Value::decode(elem, typmod, Format::Binary, bytes)?)
                }
            });
        }
        if !r.0.is_empty() {
            return Err(PgError::invalid_binary(
                "incorrect binary data format in array element",
            ));
        }
        Ok(Array {
            elem,
            items,
            vector,
        })
    }
}

fn type_name(oid: u32) -> &'static str {
    types::by_oid(oid).map_or("unknown", |t| t.name)
}

fn multidimensional() -> PgError {
    PgError::feature_not_supported("multidimensional arrays are not supported")
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PgError> {
        if self.0.len() < n {
            return Err(PgError::invalid_binary("insufficient data left in message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, PgError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Appends `s` as `array_out` writes an element: double-quoted (with `"`
/// and `\` escaped) when empty, `NULL` in any case, or holding a brace,
/// comma, quote, backslash or white space.
fn quote_element(s: &str, out: &mut String) {
    let needs = s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.chars().any(|c| {
            matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace() || c == '\x0b'
        });
    if !needs {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn malformed(text: &str, detail: &str) -> PgError {
    PgError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("malformed array literal: \"{text}\""),
    )
    .with_detail(detail)
}

/// The elements of a one-dimensional `array_in` literal as text, `None`
/// for an unquoted `NULL`.
pub fn split_literal(text: &str) -> Result<Vec<Option<String>>, PgError> {
    let t = text.trim_start();
    if t.starts_with('[') {
        return Err(PgError::feature_not_supported(
            "array literals with explicit bounds are not supported",
        ));
    }
    let Some(body) = t.strip_prefix('{') else {
        return Err(malformed(
            text,
            "Array value must start with \"{\" or dimension information.",
        ));
    };
    let mut chars = body.chars().peekable();
    let mut items = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
    };
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        chars.next();
    } else {
        loop {
            skip_ws(&mut chars);
            let (mut cur, mut quoted, mut trailing_ws) = (String::new(), false, 0usize);
            match chars.peek() {
                Some('{') => return Err(multidimensional()),
                Some('"') => {
                    chars.next();
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err(malformed(text, "Unexpected end of input.")),
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c) => cur.push(c),
                                None => return Err(malformed(text, "Unexpected end of input.")),
                            },
                            Some(c) => cur.push(c),
                        }
                    }
                    skip_ws(&mut chars);
                }
                _ => loop {
                    match chars.peek() {
                        None => return Err(malformed(text, "Unexpected end of input.")),
                        Some(',' | '}') => break,
                        Some('"' | '{') => {
                            return Err(malformed(
                                text,
                                &format!(
                                    "Unexpected \"{}\" character.",
                                    chars.peek().unwrap_or(&'"')
                                ),
                            ))
                        }
                        Some('\\') => {
                            chars.next();
                            match chars.next() {
                                Some(c) => cur.push(c),
                                None => return Err(malformed(text, "Unexpected end of input.")),
                            }
                            trailing_ws = 0;
                        }
                        Some(&c) => {
                            chars.next();
                            cur.push(c);
                            trailing_ws = if c.is_ascii_whitespace() {
                                trailing_ws + c.len_utf8()
                            } else {
                                0
                            };
                        }
                    }
                },
            }
            if !quoted {
                cur.truncate(cur.len() - trailing_ws);
                if cur.is_empty() {
                    return Err(malformed(text, "Unexpected \",\" character."));
                }
            }
            let is_null = !quoted && cur.eq_ignore_ascii_case("null");
            items.push((!is_null).then_some(cur));
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                Some(c) => return Err(malformed(text, &format!("Unexpected \"{c}\" character."))),
                None => return Err(malformed(text, "Unexpected end of input.")),
            }
        }
    }
    if chars.any(|c| !c.is_ascii_whitespace()) {
        return Err(malformed(text, "Junk after closing right brace."));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::oid;

    fn round_trip(elem: u32, text: &str) -> Array {
        let a = Array::parse(elem, None, text).unwrap();
        assert_eq!(a.to_text(), text);
        let mut buf = BytesMut::new();
        a.encode_binary(&mut buf);
        assert_eq!(Array::from_binary(elem, None, false, &buf).unwrap(), a);
        a
    }

    #[test]
    fn text_and_binary_round_trip() {
        assert_eq!(round_trip(oid::INT4, "{1,2,NULL}").items.len(), 3);
        round_trip(oid::INT4, "{}");
        round_trip(oid::TEXT, "{a,\"b c\",\"\",\"NULL\",\"x\\\"y\",\"{}\"}");
        round_trip(oid::VECTOR, "{\"[1,2]\",\"[3,4]\"}");
        round_trip(oid::FLOAT8, "{1.5,-2}");
        round_trip(oid::OID, "{23,1007}");
    }

    #[test]
    fn input_is_read_like_array_in() {
        let a = Array::parse(oid::INT4, None, " { 1 , 2 ,null } ").unwrap();
        assert_eq!(a.to_text(), "{1,2,NULL}");
        let a = Array::parse(oid::TEXT, None, "{ a b ,c\\,d}").unwrap();
        assert_eq!(a.to_text(), "{\"a b\",\"c,d\"}");
        for bad in ["1,2", "{1,2", "{1,,2}", "{1}x", "{\"a}"] {
            let e = Array::parse(oid::INT4, None, bad).unwrap_err();
            assert_eq!(e.code, "22P02", "{bad}");
            assert_eq!(e.message, format!("malformed array literal: \"{bad}\""));
        }
        assert_eq!(
            Array::parse(oid::INT4, None, "{{1},{2}}").unwrap_err().code,
            "0A000"
        );
        assert_eq!(
            Array::parse(oid::INT4, None, "{x}").unwrap_err().code,
            "22P02"
        );
        let e = Array::parse(oid::VECTOR, Some(3), "{\"[1,2]\"}").unwrap_err();
        assert_eq!(e.message, "expected 3 dimensions, not 2");
    }

    #[test]
    fn vectors_print_with_spaces_and_start_at_zero() {
        let v = Array::parse_vector(oid::INT2, "1  3").unwrap();
        assert_eq!(
            (v.to_text(), v.type_oid(), v.lower_bound()),
            ("1 3".into(), 22, 0)
        );
        let mut buf = BytesMut::new();
        v.encode_binary(&mut buf);
        assert_eq!(Array::from_binary(oid::INT2, None, true, &buf).unwrap(), v);
        assert!(Array::from_binary(oid::INT2, None, false, &buf).is_err());
    }

    #[test]
    fn binary_checks_header_and_lengths() {
        let a = Array::parse(oid::INT8, None, "{7}").unwrap();
        let mut buf = BytesMut::new();
        a.encode_binary(&mut buf);
        let e = Array::from_binary(oid::INT4, None, false, &buf).unwrap_err();
        assert_eq!(e.code, "42804");
        assert!(Array::from_binary(oid::INT8, None, false, &buf[..buf.len() - 1]).is_err());
        assert!(Array::from_binary(oid::INT8, None, false, &[0, 0]).is_err());
        let mut extra = buf.to_vec();
        extra.push(0);
        assert!(Array::from_binary(oid::INT8, None, false, &extra).is_err());
    }
}
