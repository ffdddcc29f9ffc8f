//! COPY's data formats as PostgreSQL reads them: the options of a `COPY …
//! FROM STDIN` statement ([`CopyOptions`]), a [`RecordReader`] that cuts
//! the incoming byte stream into whole records (text and CSV lines, binary
//! tuples) without decoding them, and [`CopyOptions::fields`], which splits
//! one record into its field values (unescaped, NULL as `None`).
//!
//! Both the shard (which decodes every field) and the proxy (which only
//! reads the shard key to route the record and passes the record's bytes
//! on unchanged) use it, so the two agree on where records end.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
use std::borrow::Cow;

use super::classify::CopyFormat;
use super::error::SqlError;

/// A record's fields in order, `None` for NULL (see [`CopyOptions::fields`]).
pub type Fields<'r> = Vec<Option<Cow<'r, [u8]>>>;

/// The binary format's signature (the first 11 bytes of its header).
pub const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A binary COPY header with no flags and no extension, as PostgreSQL
/// writes it.
pub fn binary_header() -> Vec<u8> {
    let mut h = BINARY_SIGNATURE.to_vec();
    h.extend_from_slice(&[0; 8]);
    h
}

/// The binary format's trailer (a field count of -1).
pub const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

const BAD_FORMAT: &str = "22P04";

fn bad_copy(message: impl Into<String>) -> SqlError {
    SqlError {
        sqlstate: BAD_FORMAT,
        message: message.into(),
        position: None,
        hint: None,
    }
}

/// The data-format options of a COPY statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// text, csv or binary.
    pub format: CopyFormat,
    /// Field separator (tab for text, comma for CSV).
    pub delimiter: u8,
    /// The string that stands for NULL (`\N` for text, empty for CSV).
    pub null: Vec<u8>,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape character (inside quotes, before a quote or itself).
    pub escape: u8,
    /// CSV/text: the first line is a header, not data.
    pub header: bool,
}

impl CopyOptions {
    /// PostgreSQL's defaults for a format.
    pub fn new(format: CopyFormat) -> Self {
        let csv = format == CopyFormat::Csv;
        CopyOptions {
            format,
            delimiter: if csv { b',' } else { b'\t' },
            null: if csv { Vec::new() } else { b"\\N".to_vec() },
            quote: b'"',
            escape: b'"',
            header: false,
        }
    }

    /// The options a statement gives (new and legacy syntax).
    pub fn from_statement(
        format: CopyFormat,
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
    ) -> Self {
        let mut o = CopyOptions::new(format);
        let byte = |c: &char| u8::try_from(u32::from(*c)).unwrap_or(b'?');
        let mut escape = None;
        for option in options {
            match option {
                CopyOption::Delimiter(c) => o.delimiter = byte(c),
                CopyOption::Null(s) => o.null = s.as_bytes().to_vec(),
                CopyOption::Header(h) => o.header = *h,
                CopyOption::Quote(c) => o.quote = byte(c),
                CopyOption::Escape(c) => escape = Some(byte(c)),
                _ => {}
            }
        }
        for option in legacy {
            match option {
                CopyLegacyOption::Delimiter(c) => o.delimiter = byte(c),
                CopyLegacyOption::Null(s) => o.null = s.as_bytes().to_vec(),
                CopyLegacyOption::Header => o.header = true,
                CopyLegacyOption::Csv(csv) => {
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Header => o.header = true,
                            CopyLegacyCsvOption::Quote(q) => o.quote = byte(q),
                            CopyLegacyCsvOption::Escape(e) => escape = Some(byte(e)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // ESCAPE defaults to the QUOTE character.
        o.escape = escape.unwrap_or(o.quote);
        o
    }

    /// The fields of one record as [`RecordReader`] returned it: unescaped
    /// values, `None` for NULL; borrowed from the record where they need no
    /// unescaping (every binary field), so a row's bytes are not copied
    /// before they are decoded.
    pub fn fields<'r>(&self, record: &'r [u8]) -> Result<Fields<'r>, SqlError> {
        match self.format {
            CopyFormat::Binary => binary_fields(record),
            CopyFormat::Csv => self.csv_fields(line_body(record)),
            CopyFormat::Text => self.text_fields(line_body(record)),
        }
    }

    fn text_fields<'r>(&self, line: &'r [u8]) -> Result<Fields<'r>, SqlError> {
        let mut fields = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i <= line.len() {
            match line.get(i) {
                Some(b'\\') => i += 2,
                Some(&b) if b != self.delimiter => i += 1,
                _ => {
                    let raw = &line[start..i.min(line.len())];
                    fields.push(if raw == self.null.as_slice() {
                        None
                    } else {
                        Some(unescape_text(raw)?)
                    });
                    i += 1;
                    start = i;
                }
            }
        }
        Ok(fields)
    }

    fn csv_fields<'r>(&self, line: &'r [u8]) -> Result<Fields<'r>, SqlError> {
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let (mut quoted, mut was_quoted) = (false, false);
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            let next = line.get(i + 1).copied();
            if quoted {
                if b == self.escape && next.is_some_and(|n| n == self.quote || n == self.escape) {
                    field.push(next.unwrap_or(b));
                    i += 2;
                    continue;
                }
                if b == self.quote {
                    quoted = false;
                } else {
                    field.push(b);
                }
            } else if b == self.quote {
                quoted = true;
                was_quoted = true;
            } else if b == self.delimiter {
                fields.push(self.csv_value(std::mem::take(&mut field), was_quoted));
                was_quoted = false;
            } else {
                field.push(b);
            }
            i += 1;
        }
        if quoted {
            return Err(bad_copy("unterminated CSV quoted field"));
        }
        fields.push(self.csv_value(field, was_quoted));
        Ok(fields)
    }

    /// Appends one text/CSV line (fields escaped or quoted as
    /// PostgreSQL's COPY TO writes them, `None` as the NULL string).
    pub fn write_line<'a>(
        &self,
        fields: impl IntoIterator<Item = Option<&'a str>>,
        out: &mut BytesMut,
    ) {
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                out.put_u8(self.delimiter);
            }
            match field {
                None => out.put_slice(&self.null),
                Some(v) if self.format == CopyFormat::Csv => self.write_csv(v.as_bytes(), out),
                Some(v) => self.write_text(v.as_bytes(), out),
            }
        }
        out.put_u8(b'\n');
    }

    fn write_text(&self, v: &[u8], out: &mut BytesMut) {
        for &b in v {
            match b {
                b'\\' => out.put_slice(b"\\\\"),
                b'\n' => out.put_slice(b"\\n"),
                b'\r' => out.put_slice(b"\\r"),
                b'\t' => out.put_slice(b"\\t"),
                8 => out.put_slice(b"\\b"),
                12 => out.put_slice(b"\\f"),
                11 => out.put_slice(b"\\v"),
                b if b == self.delimiter => out.put_slice(&[b'\\', b]),
                b => out.put_u8(b),
            }
        }
    }

    fn write_csv(&self, v: &[u8], out: &mut BytesMut) {
        let special = |b: &u8| [self.delimiter, self.quote, b'\n', b'\r'].contains(b);
        if v != self.null.as_slice() && v != b"\\." && !v.iter().any(special) {
            out.put_slice(v);
            return;
        }
        out.put_u8(self.quote);
        for &b in v {
            if b == self.quote || b == self.escape {
                out.put_u8(self.escape);
            }
            out.put_u8(b);
        }
        out.put_u8(self.quote);
    }

    fn csv_value(&self, field: Vec<u8>, quoted: bool) -> Option<Cow<'static, [u8]>> {
        (quoted || field != self.null).then_some(Cow::Owned(field))
    }

    /// The end of the first complete text/CSV line (the index of its
    /// newline); CSV newlines inside quotes do not end a record.
    fn line_end(&self, buf: &[u8]) -> Option<usize> {
        self.scan_line(buf, 0, false).ok()
    }

    /// [`Self::line_end`] resumed at `from` in quote state `quoted` (what
    /// an earlier scan of the same record returned): `Err` gives where and
    /// in which state to resume once more data arrived, so a long record
    /// is scanned once, not again with every chunk.
    fn scan_line(&self, buf: &[u8], from: usize, quoted: bool) -> Result<usize, (usize, bool)> {
        if self.format != CopyFormat::Csv {
            return buf[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| from + p)
                .ok_or((buf.len(), false));
        }
        let mut quoted = quoted;
        let mut i = from;
        while i < buf.len() {
            let b = buf[i];
            if quoted && b == self.escape && self.escape != self.quote {
                match buf.get(i + 1) {
                    // The escaped byte is still to come.
                    None => return Err((i, quoted)),
                    Some(&n) if n == self.quote || n == self.escape => {
                        i += 2;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            if b == self.quote {
                quoted = !quoted;
            } else if b == b'\n' && !quoted {
                return Ok(i);
            }
            i += 1;
        }
        Err((buf.len(), quoted))
    }
}

/// A line without its terminator (`\n` or `\r\n`).
fn line_body(record: &[u8]) -> &[u8] {
    let r = record.strip_suffix(b"\n").unwrap_or(record);
    r.strip_suffix(b"\r").unwrap_or(r)
}

/// A text-format field's value: `raw` itself when it holds no backslash.
fn unescape_text(raw: &[u8]) -> Result<Cow<'_, [u8]>, SqlError> {
    if !raw.contains(&b'\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&c) = raw.get(i) else {
            return Err(bad_copy("unterminated escape in COPY data"));
        };
        i += 1;
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                (v & 0xff) as u8
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|&d| (d as char).to_digit(16)) {
                        Some(d) => {
                            v = v.wrapping_mul(16).wrapping_add(d as u8);
                            i += 1;
                        }
                        None => break,
                    }
                }
                v
            }
            other => other,
        });
    }
    Ok(Cow::Owned(out))
}

fn binary_fields(tuple: &[u8]) -> Result<Fields<'_>, SqlError> {
    let truncated = || bad_copy("unexpected EOF in COPY data");
    let mut buf = tuple;
    if buf.len() < 2 {
        return Err(truncated());
    }
    let count = buf.get_i16();
    let mut fields = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count.max(0) {
        if buf.len() < 4 {
            return Err(truncated());
        }
        let len = buf.get_i32();
        let Ok(len) = usize::try_from(len) else {
            fields.push(None);
            continue;
        };
        let data = buf.get(..len).ok_or_else(truncated)?;
        fields.push(Some(Cow::Borrowed(data)));
        buf.advance(len);
    }
    Ok(fields)
}

/// The length of the first complete binary tuple in `buf`; `Ok(None)`
/// when more bytes are needed.
fn binary_tuple_len(buf: &[u8]) -> Result<Option<usize>, SqlError> {
    let Some(count) = buf.get(..2) else {
        return Ok(None);
    };
    let count = i16::from_be_bytes([count[0], count[1]]);
    let mut p = 2;
    for _ in 0..count.max(0) {
        let Some(len) = buf.get(p..p + 4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        p += 4;
        if len < -1 {
            return Err(bad_copy(format!("invalid field size {len}")));
        }
        p += usize::try_from(len).unwrap_or(0);
    }
    Ok((buf.len() >= p).then_some(p))
}

/// One record of COPY data, its bytes as the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The header line (text/CSV with HEADER).
    Header(Bytes),
    /// A data row: a line with its terminator, or a binary tuple.
    Row(Bytes),
}

/// The longest text/CSV record kept while waiting for its end (as
/// PostgreSQL's 1 GB limit on a line).
const MAX_RECORD: usize = 1 << 30;

/// Cuts COPY data into records as chunks arrive, keeping only the
/// unfinished tail of the input.
#[derive(Debug)]
pub struct RecordReader {
    options: CopyOptions,
    buf: BytesMut,
    /// How far `buf` was scanned for the end of its first record, and the
    /// CSV quote state there.
    scanned: (usize, bool),
    header_pending: bool,
    ended: bool,
}

impl RecordReader {
    /// A reader for data in `options`' format.
    pub fn new(options: CopyOptions) -> Self {
        let header_pending = options.header || options.format == CopyFormat::Binary;
        RecordReader {
            options,
            buf: BytesMut::new(),
            scanned: (0, false),
            header_pending,
            ended: false,
        }
    }

    /// The options the reader splits by.
    pub fn options(&self) -> &CopyOptions {
        &self.options
    }

    /// Whether the end-of-data marker (text `\\.`, binary trailer) was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Appends a chunk of input.
    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.ended {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The next complete record; `Ok(None)` when more input is needed or
    /// the end-of-data marker was seen.
    pub fn next_record(&mut self) -> Result<Option<Record>, SqlError> {
        if self.ended {
            return Ok(None);
        }
        if self.options.format == CopyFormat::Binary {
            return self.next_binary();
        }
        let (from, quoted) = self.scanned;
        let end = match self.options.scan_line(&self.buf, from, quoted) {
            Ok(end) => end,
            Err(resume) => {
                if self.buf.len() > MAX_RECORD {
                    return Err(SqlError {
                        sqlstate: "54000",
                        message: "COPY record is longer than 1 GB (a missing newline or an unterminated quote?)".into(),
                        position: None,
                        hint: None,
                    });
                }
                self.scanned = resume;
                return Ok(None);
            }
        };
        self.scanned = (0, false);
        let line = self.buf.split_to(end + 1).freeze();
        self.text_record(line)
    }

    /// After the client's CopyDone: the last line when it had no newline;
    /// an error when a binary tuple was cut short.
    pub fn finish(&mut self) -> Result<Option<Record>, SqlError> {
        if self.ended || self.buf.is_empty() {
            return Ok(None);
        }
        if self.options.format == CopyFormat::Binary {
            return Err(bad_copy("unexpected EOF in COPY data"));
        }
        if self.options.format == CopyFormat::Csv && self.options.line_end(&self.buf).is_none() {
            let mut closed = self.buf.to_vec();
            closed.push(b'\n');
            if self.options.line_end(&closed).is_none() {
                return Err(bad_copy("unterminated CSV quoted field"));
            }
        }
        let mut line = std::mem::take(&mut self.buf);
        line.extend_from_slice(b"\n");
        self.text_record(line.freeze())
    }

    fn text_record(&mut self, line: Bytes) -> Result<Option<Record>, SqlError> {
        if line_body(&line) == b"\\." {
            self.ended = true;
            self.buf.clear();
            return Ok(None);
        }
        if std::mem::take(&mut self.header_pending) {
            return Ok(Some(Record::Header(line)));
        }
        Ok(Some(Record::Row(line)))
    }

    fn next_binary(&mut self) -> Result<Option<Record>, SqlError> {
        if self.header_pending {
            if self.buf.len() < 19 {
                return Ok(None);
            }
            if &self.buf[..11] != BINARY_SIGNATURE {
                return Err(bad_copy("COPY file signature not recognized"));
            }
            let ext = u32::from_be_bytes([self.buf[15], self.buf[16], self.buf[17], self.buf[18]]);
            let ext = usize::try_from(ext).unwrap_or(usize::MAX);
            if self.buf.len() - 19 < ext {
                return Ok(None);
            }
            self.buf.advance(19 + ext);
            self.header_pending = false;
        }
        if self.buf.get(..2) == Some(BINARY_TRAILER) {
            self.ended = true;
            self.buf.clear();
            return Ok(None);
        }
        match binary_tuple_len(&self.buf)? {
            Some(n) => Ok(Some(Record::Row(self.buf.split_to(n).freeze()))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(options: CopyOptions, chunks: &[&[u8]]) -> Vec<Vec<Option<String>>> {
        let mut r = RecordReader::new(options.clone());
        let mut out = Vec::new();
        let mut take = |rec: Record| {
            if let Record::Row(b) = rec {
                let f = options.fields(&b).unwrap();
                out.push(
                    f.into_iter()
                        .map(|v| v.map(|v| String::from_utf8(v.into_owned()).unwrap()))
                        .collect(),
                );
            }
        };
        for c in chunks {
            r.feed(c);
            while let Some(rec) = r.next_record().unwrap() {
                take(rec);
            }
        }
        if let Some(rec) = r.finish().unwrap() {
            take(rec);
        }
        out
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_rows_split_across_chunks_with_escapes_and_nulls() {
        let got = rows(
            CopyOptions::new(CopyFormat::Text),
            &[b"1\ta\\tb\\\\\t\\N\n2\t\\101\\x41", b"\tc\n3\tx\ty"],
        );
        assert_eq!(
            got,
            vec![
                vec![s("1"), s("a\tb\\"), None],
                vec![s("2"), s("AA"), s("c")],
                vec![s("3"), s("x"), s("y")],
            ]
        );
    }

    #[test]
    fn csv_options_header_quote_delimiter_null() {
        let stmt = crate::sql::parse_single(
            "COPY t FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'nil', QUOTE '''')",
        )
        .unwrap();
        let crate::sql::StatementKind::Copy(info) = crate::sql::classify(&stmt) else {
            panic!("not a copy");
        };
        assert_eq!(info.options.delimiter, b';');
        assert!(info.options.header);
        let got = rows(
            info.options,
            &[b"id;v;w\n1;'a;b';nil\n2;'it''s\nmulti';''\n\\.\n9;ignored"],
        );
        assert_eq!(
            got,
            vec![
                vec![s("1"), s("a;b"), None],
                vec![s("2"), s("it's\nmulti"), s("")],
            ]
        );
    }

    #[test]
    fn csv_with_a_separate_escape_and_an_unterminated_quote() {
        let mut o = CopyOptions::new(CopyFormat::Csv);
        o.escape = b'\\';
        assert_eq!(
            rows(o.clone(), &[b"1,\"a\\\"b\",\n"]),
            vec![vec![s("1"), s("a\"b"), None]]
        );
        let mut r = RecordReader::new(o);
        r.feed(b"1,\"open");
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.finish().unwrap_err().sqlstate, "22P04");
    }

    #[test]
    fn records_cut_into_single_bytes_read_as_whole() {
        // Quotes, escape pairs and quoted newlines straddle every chunk
        // boundary; the reader resumes its scan rather than restarting.
        let mut o = CopyOptions::new(CopyFormat::Csv);
        o.escape = b'\\';
        let data: &[u8] = b"1,\"a\\\"b\nc\",x\n2,\"\\\\\",y\n3,plain,z\n";
        let whole = rows(o.clone(), &[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(rows(o, &bytes), whole);
        assert_eq!(
            whole,
            vec![
                vec![s("1"), s("a\"b\nc"), s("x")],
                vec![s("2"), s("\\"), s("y")],
                vec![s("3"), s("plain"), s("z")],
            ]
        );
    }

    #[test]
    fn lines_written_read_back_the_same() {
        let mut csv = CopyOptions::new(CopyFormat::Csv);
        csv.null = b"nil".to_vec();
        let text = CopyOptions::new(CopyFormat::Text);
        let values = [
            Some("a,b"),
            None,
            Some("q\"t\nx"),
            Some(""),
            Some("nil"),
            Some("t\\\tz"),
        ];
        for o in [csv, text] {
            let mut out = BytesMut::new();
            o.write_line(values, &mut out);
            let got = rows(o.clone(), &[&out]);
            let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(got, vec![want], "{:?}", o.format);
        }
    }

    #[test]
    fn binary_tuples_header_and_trailer() {
        let mut data = binary_header();
        for (id, v) in [(1i64, Some(&b"ab"[..])), (2, None)] {
            data.extend_from_slice(&2i16.to_be_bytes());
            data.extend_from_slice(&8i32.to_be_bytes());
            data.extend_from_slice(&id.to_be_bytes());
            match v {
                Some(v) => {
                    data.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    data.extend_from_slice(v);
                }
                None => data.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        data.extend_from_slice(BINARY_TRAILER);
        let mut r = RecordReader::new(CopyOptions::new(CopyFormat::Binary));
        let mut got = Vec::new();
        for chunk in data.chunks(5) {
            r.feed(chunk);
            while let Some(Record::Row(t)) = r.next_record().unwrap() {
                let fields = binary_fields(&t).unwrap();
                got.push(
                    fields
                        .into_iter()
                        .map(|f| f.map(Cow::into_owned))
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert!(r.finish().unwrap().is_none());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][1].as_deref(), Some(&b"ab"[..]));
        assert_eq!(got[1][1], None);
        let mut bad = RecordReader::new(CopyOptions::new(CopyFormat::Binary));
        bad.feed(b"NOTPGCOPY\n\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(bad.next_record().unwrap_err().sqlstate, "22P04");
    }
}
