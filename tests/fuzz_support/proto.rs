//! Frontend messages of protocol 3 as bytes, and generators of them:
//! valid messages with perturbed fields, the extended protocol's
//! sequences, COPY sub-protocol flows, the startup phase (SSLRequest,
//! GSSENCRequest, CancelRequest, protocol versions, odd parameters) and
//! broken framing (short, truncated, oversized and garbage frames).

use super::gen::Gen;
use super::sql;

/// A framed message with a type byte.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Query.
pub fn query(sql: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, sql);
    frame(b'Q', &b)
}

/// Parse of `sql` as statement `name` with parameter type OIDs.
pub fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    frame(b'P', &b)
}

/// Bind of statement `stmt` to `portal`.
pub fn bind(
    portal: &str,
    stmt: &str,
    formats: &[i16],
    values: &[Option<Vec<u8>>],
    results: &[i16],
) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(values.len() as u16).to_be_bytes());
    for v in values {
        match v {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&(results.len() as u16).to_be_bytes());
    for f in results {
        b.extend_from_slice(&f.to_be_bytes());
    }
    frame(b'B', &b)
}

/// Describe (`S`tatement or `P`ortal) or Close, by `tag`.
pub fn target_message(tag: u8, kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    cstr(&mut b, name);
    frame(tag, &b)
}

/// Execute of `portal` with a row limit (0: all).
pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    b.extend_from_slice(&max_rows.to_be_bytes());
    frame(b'E', &b)
}

/// Sync.
pub fn sync() -> Vec<u8> {
    frame(b'S', &[])
}

/// CopyFail with a message.
pub fn copy_fail(why: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, why);
    frame(b'f', &b)
}

/// A StartupMessage (or any 8-byte-header packet) with `version`.
pub fn startup(version: i32, params: &[(String, String)], terminated: bool) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in params {
        cstr(&mut body, k);
        cstr(&mut body, v);
    }
    if terminated {
        body.push(0);
    }
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// The request codes of the 8-byte startup-phase packets.
pub const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// An 8-byte packet with `code` (SSLRequest, GSSENCRequest).
pub fn request(code: i32) -> Vec<u8> {
    let mut p = 8i32.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p
}

/// A piece of a case: bytes and what they are, for the report.
pub struct Piece {
    pub what: String,
    pub bytes: Vec<u8>,
}

impl Piece {
    pub fn new(what: impl Into<String>, bytes: Vec<u8>) -> Piece {
        let mut what = what.into();
        if what.len() > 400 {
            let mut cut = 400;
            while !what.is_char_boundary(cut) {
                cut -= 1;
            }
            what.truncate(cut);
            what.push('…');
        }
        Piece { what, bytes }
    }
}

/// Type OIDs a Parse may declare.
const TYPE_OIDS: &[u32] = &[
    0, 0, 0, 16, 17, 20, 21, 23, 25, 700, 701, 1043, 1700, 3802, 99_999,
];

/// A parameter value in text or binary format.
fn param_value(g: &mut Gen, binary: bool) -> Option<Vec<u8>> {
    if g.chance(0.08) {
        return None;
    }
    if binary {
        return Some(match g.below(5) {
            0 => {
                let dim = if g.chance(0.8) {
                    3
                } else {
                    g.range(-2, 5) as i16
                };
                let mut b = dim.to_be_bytes().to_vec();
                b.extend_from_slice(&0i16.to_be_bytes());
                for _ in 0..3 {
                    let x = *g_pick_f32(g);
                    b.extend_from_slice(&x.to_be_bytes());
                }
                b
            }
            1 => (g.range(-5, 50) as i32).to_be_bytes().to_vec(),
            2 => (g.range(-5, 50)).to_be_bytes().to_vec(),
            _ => {
                let n = g.count(12);
                g.bytes(n)
            }
        });
    }
    Some(
        match g.below(7) {
            0 | 1 => sql::vector_text(g),
            2 => sql::sparse_text(g),
            3 => sql::bit_text(g),
            4 => {
                let n = g.count(6);
                return Some(g.bytes(n));
            }
            _ => sql::number(g),
        }
        .into_bytes(),
    )
}

fn g_pick_f32(g: &mut Gen) -> &'static f32 {
    const VALUES: &[f32] = &[
        0.0,
        1.0,
        -2.5,
        3.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -0.0,
        1e-45,
    ];
    &VALUES[g.below(VALUES.len())]
}

fn format_codes(g: &mut Gen, n: usize) -> Vec<i16> {
    match g.below(6) {
        0 => vec![],
        1 => vec![g.choose(&[0, 1])],
        2 => vec![g.choose(&[0, 1, 2, -1]); g.count(3)],
        _ => (0..n).map(|_| g.choose(&[0, 0, 1])).collect(),
    }
}

/// Parse, Bind, Describe, Execute, Close and Sync/Flush for one or two
/// generated statements, with the fields sometimes at odds (counts,
/// formats, names of statements that do not exist).
pub fn extended(g: &mut Gen) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for _ in 0..1 + g.count(2) {
        let n = g.count(3);
        let sql = sql::statement(g, n);
        let name = g.pick(&["", "", "s1", "s2"]).to_string();
        let types: Vec<u32> = (0..if g.chance(0.8) {
            g.count(n)
        } else {
            g.count(4)
        })
            .map(|_| g.choose(TYPE_OIDS))
            .collect();
        pieces.push(Piece::new(
            format!("Parse {name:?} {sql:?} types {types:?}"),
            parse(&name, &sql, &types),
        ));
        if g.chance(0.3) {
            pieces.push(Piece::new(
                format!("Describe S {name:?}"),
                target_message(b'D', b'S', &name),
            ));
        }
        let formats = format_codes(g, n);
        let nvalues = if g.chance(0.85) { n } else { g.count(5) };
        let values: Vec<Option<Vec<u8>>> = (0..nvalues)
            .map(|i| {
                let f = match formats.as_slice() {
                    [] => 0,
                    [one] => *one,
                    many => many.get(i).copied().unwrap_or(0),
                };
                param_value(g, f == 1)
            })
            .collect();
        let results = format_codes(g, 2);
        let portal = g.pick(&["", "", "p1"]).to_string();
        let stmt = if g.chance(0.9) {
            name.clone()
        } else {
            "nosuch".to_string()
        };
        pieces.push(Piece::new(
            format!(
                "Bind {portal:?} {stmt:?} formats {formats:?} values {:?} results {results:?}",
                values
                    .iter()
                    .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
                    .collect::<Vec<_>>()
            ),
            bind(&portal, &stmt, &formats, &values, &results),
        ));
        if g.chance(0.4) {
            pieces.push(Piece::new(
                format!("Describe P {portal:?}"),
                target_message(b'D', b'P', &portal),
            ));
        }
        let max_rows = g.choose(&[0, 0, 0, 1, 2, -1]);
        pieces.push(Piece::new(
            format!("Execute {portal:?} {max_rows}"),
            execute(&portal, max_rows),
        ));
        if max_rows > 0 && g.chance(0.5) {
            pieces.push(Piece::new(
                format!("Execute {portal:?} 0"),
                execute(&portal, 0),
            ));
        }
        match g.below(6) {
            0 => pieces.push(Piece::new("Flush", frame(b'H', &[]))),
            1 => pieces.push(Piece::new(
                format!("Close S {name:?}"),
                target_message(b'C', b'S', &name),
            )),
            2 => pieces.push(Piece::new(
                format!("Close P {portal:?}"),
                target_message(b'C', b'P', &portal),
            )),
            _ => {}
        }
        if g.chance(0.7) {
            pieces.push(Piece::new("Sync", sync()));
        }
    }
    pieces
}

/// `COPY fz_items FROM STDIN` (simple or extended) with rows split over
/// CopyData messages, ended by CopyDone, CopyFail or an interruption.
pub fn copy_in(g: &mut Gen) -> Vec<Piece> {
    let format = g.pick(&[
        "",
        " (FORMAT csv)",
        " (FORMAT binary)",
        " WITH (FORMAT text)",
        " (FORMAT csv, HEADER)",
    ]);
    let table = g.pick(&[sql::ITEMS, sql::ITEMS, "fz_t0", sql::DOCS]);
    let sql = format!("COPY {table} FROM STDIN{format}");
    let mut pieces = Vec::new();
    let extended = g.chance(0.3);
    if extended {
        pieces.push(Piece::new(
            format!("Parse/Bind/Execute {sql:?}"),
            [
                parse("", &sql, &[]),
                bind("", "", &[], &[], &[]),
                execute("", 0),
            ]
            .concat(),
        ));
    } else {
        pieces.push(Piece::new(format!("Query {sql:?}"), query(&sql)));
    }
    let mut data: Vec<u8> = if format.contains("binary") {
        let mut d = b"PGCOPY\n\xff\r\n\0".to_vec();
        d.extend_from_slice(&[0; 8]);
        let n = g.count(40);
        d.extend(g.bytes(n));
        if g.chance(0.5) {
            d.extend_from_slice(&(-1i16).to_be_bytes());
        }
        d
    } else {
        let mut rows = sql::copy_rows(g, format.contains("csv")).concat();
        if format.contains("HEADER") {
            rows.insert_str(0, "id,category,name,embedding,h,s,b\n");
        }
        if g.chance(0.3) {
            rows.push_str("\\.\n");
        }
        rows.into_bytes()
    };
    if g.chance(0.05) {
        let at = g.below(data.len() + 1);
        let n = g.count(8);
        let junk = g.bytes(n);
        data.splice(at..at, junk);
    }
    // Split the data at random points over several CopyData messages.
    let mut rest = &data[..];
    while !rest.is_empty() {
        let take = 1 + g.below(rest.len());
        pieces.push(Piece::new(
            format!("CopyData {:?}", String::from_utf8_lossy(&rest[..take])),
            frame(b'd', &rest[..take]),
        ));
        rest = &rest[take..];
    }
    if g.chance(0.15) {
        pieces.push(Piece::new("Flush", frame(b'H', &[])));
    }
    match g.below(8) {
        0 => pieces.push(Piece::new("CopyFail", copy_fail("fuzz"))),
        1 => pieces.push(Piece::new("Query during COPY", query("SELECT 1"))),
        2 => pieces.push(Piece::new("Parse during COPY", parse("", "SELECT 1", &[]))),
        _ => pieces.push(Piece::new("CopyDone", frame(b'c', &[]))),
    }
    if extended {
        pieces.push(Piece::new("Sync", sync()));
    }
    pieces
}

/// Frontend message types, some of them misplaced on purpose.
const TAGS: &[u8] = b"QPBDEHSCXdcfFp";

/// One framed message of any type with a generated body: sometimes a
/// valid message, sometimes valid framing around invalid fields.
pub fn any_message(g: &mut Gen) -> Piece {
    match g.below(10) {
        0 => {
            let sql = sql::statement(g, 0);
            Piece::new(format!("Query {sql:?}"), query(&sql))
        }
        1 => Piece::new("Sync", sync()),
        2 => Piece::new("Flush", frame(b'H', &[])),
        3 => Piece::new("CopyData outside COPY", frame(b'd', b"1\t2\n")),
        4 => Piece::new("CopyDone outside COPY", frame(b'c', &[])),
        5 => {
            // A body cut short: counts that promise more than there is.
            let tag = g.choose(b"PBDECF");
            let full = match tag {
                b'P' => parse("x", "SELECT $1", &[23, 25]),
                b'B' => bind("", "", &[1], &[Some(vec![0, 0, 0, 1])], &[1]),
                b'F' => frame(
                    b'F',
                    &[0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 1, 2, 3, 4, 0, 0],
                ),
                b'E' => execute("", 0),
                _ => target_message(tag, b'S', "x"),
            };
            let cut = 5 + g.below(full.len() - 5);
            let body = full[5..cut].to_vec();
            Piece::new(
                format!("{} with a body cut to {} bytes", tag as char, body.len()),
                frame(tag, &body),
            )
        }
        6 => {
            let kind = g.choose(b"SPX\0");
            let tag = g.choose(b"DC");
            Piece::new(
                format!("{} kind {:?}", tag as char, kind as char),
                target_message(tag, kind, "x"),
            )
        }
        7 => {
            let tag = g.choose(TAGS);
            let n = g.count(24);
            let body = g.bytes(n);
            Piece::new(
                format!("{} with {} random bytes", tag as char, n),
                frame(tag, &body),
            )
        }
        8 => {
            let tag = g.choose(b"AaGgIijJkKlLmMnNoOrRTtUuVvWwYyZz0123456789\0\xff");
            Piece::new(format!("unknown type {tag:#x}"), frame(tag, &[]))
        }
        _ => {
            let s = g.pick(&["", "no nul", "\u{1F600}", "a\0b"]);
            Piece::new(
                format!("Query without proper string {s:?}"),
                frame(b'Q', s.as_bytes()),
            )
        }
    }
}

/// A frame the server cannot read to its end: a length below 4, a
/// length beyond the bytes sent, a declared gigabyte, or a lone tag.
pub fn broken_frame(g: &mut Gen) -> Piece {
    let tag = g.choose(TAGS);
    match g.below(5) {
        0 => {
            let len = g.choose(&[0i32, 1, 3, -1, i32::MIN]);
            let mut b = vec![tag];
            b.extend_from_slice(&len.to_be_bytes());
            Piece::new(format!("{} with length {len}", tag as char), b)
        }
        1 => {
            let mut b = query("SELECT 1");
            let cut = 1 + g.below(b.len() - 1);
            b.truncate(cut);
            Piece::new(format!("Query truncated to {cut} bytes"), b)
        }
        2 => {
            let len = g.choose(&[i32::MAX, 1 << 30, (1 << 30) + 5, 10_000_000]);
            let mut b = vec![tag];
            b.extend_from_slice(&len.to_be_bytes());
            let n = g.count(64);
            b.extend(g.bytes(n));
            Piece::new(format!("{} declaring {len} bytes", tag as char), b)
        }
        3 => Piece::new(format!("lone {}", tag as char), vec![tag]),
        _ => {
            let n = 1 + g.count(200);
            Piece::new(format!("{n} random bytes"), g.bytes(n))
        }
    }
}

fn long(g: &mut Gen) -> String {
    "x".repeat(g.choose(&[64usize, 100, 5_000, 20_000]))
}

/// The startup phase: optional SSL/GSS negotiation, then a startup
/// packet with odd versions or parameters, a CancelRequest, or garbage.
/// Returns the pieces and how many one-byte answers come first.
pub fn startup_phase(g: &mut Gen) -> (Vec<Piece>, usize) {
    let mut pieces = Vec::new();
    let mut single = 0;
    let mut codes = vec![];
    if g.chance(0.3) {
        codes.push(SSL_REQUEST);
    }
    if g.chance(0.15) {
        codes.push(GSSENC_REQUEST);
    }
    if codes.len() == 2 && g.chance(0.5) {
        codes.swap(0, 1);
    }
    for code in codes {
        pieces.push(Piece::new(format!("request {code}"), request(code)));
        single += 1;
    }
    match g.below(6) {
        0 => {
            let key_len = g.choose(&[4usize, 4, 32, 0, 300]);
            let mut body = CANCEL_REQUEST.to_be_bytes().to_vec();
            body.extend_from_slice(&(g.bits() as i32).to_be_bytes());
            body.extend(g.bytes(key_len));
            let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
            p.extend(body);
            pieces.push(Piece::new(
                format!("CancelRequest with a {key_len}-byte key"),
                p,
            ));
        }
        1 => {
            let len = g.choose(&[0i32, 4, 7, 8, 10_001, 1 << 30, -5]);
            let mut p = len.to_be_bytes().to_vec();
            let n = g.count(40);
            p.extend(g.bytes(n));
            pieces.push(Piece::new(
                format!("startup length {len} and {n} random bytes"),
                p,
            ));
        }
        2 => pieces.push(Piece::new(
            "not PostgreSQL",
            g.pick(&[
                &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
                b"\0\0\0\x08\x04\xd2\x16\x2e",
            ])
            .to_vec(),
        )),
        _ => {
            let version = g.choose(&[
                3 << 16,
                3 << 16,
                (3 << 16) | 2,
                (3 << 16) | 1,
                (3 << 16) | 99,
                2 << 16,
                4 << 16,
                1234 << 16 | 5679,
                0,
            ]);
            let mut params: Vec<(String, String)> = Vec::new();
            if g.chance(0.9) {
                let user = match g.below(8) {
                    0 => String::new(),
                    1 => long(g),
                    2 => "nosuchuser".into(),
                    _ => "postgres".into(),
                };
                params.push(("user".into(), user));
            }
            for _ in 0..g.count(4) {
                let (k, v) = match g.below(10) {
                    0 => ("database", "nosuchdb".to_string()),
                    1 => (
                        "options",
                        g.pick(&[
                            "-c statement_timeout=1s",
                            "-c hnsw.ef_search=0",
                            "--nosuch",
                            "-c",
                        ])
                        .to_string(),
                    ),
                    2 => (
                        "client_encoding",
                        g.pick(&["UTF8", "LATIN1", "SQL_ASCII", "nosuch", ""])
                            .to_string(),
                    ),
                    3 => ("_pq_.nosuch", "1".to_string()),
                    4 => (
                        "replication",
                        g.pick(&["true", "database", "off", "maybe"]).to_string(),
                    ),
                    5 => ("application_name", long(g)),
                    6 => ("DateStyle", "ISO, MDY".to_string()),
                    7 => ("statement_timeout", g.pick(&["1", "0", "x"]).to_string()),
                    8 => ("user", "again".to_string()),
                    _ => ("database", "postgres".to_string()),
                };
                params.push((k.to_string(), v));
            }
            let terminated = g.chance(0.9);
            let mut p = startup(version, &params, terminated);
            if g.chance(0.05) {
                let at = 8 + g.below(p.len() - 8);
                p[at] = g.bits() as u8;
            }
            pieces.push(Piece::new(
                format!("startup version {version:#x} {params:?} terminated {terminated}"),
                p,
            ));
            if g.chance(0.5) {
                let m = any_message(g);
                pieces.push(m);
            }
        }
    }
    (pieces, single)
}
