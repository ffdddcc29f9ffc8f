//! Mutation of statements people wrote: every line of sql/cases/*.sql and
//! the SQL string literals of the integration tests, changed token by
//! token (dropped, repeated, swapped, replaced by a keyword, an operator
//! or an extreme literal, wrapped in parentheses, cut short).

use std::path::Path;

use super::gen::Gen;
use super::sql;

/// The seed statements, read once per run.
pub struct Corpus {
    /// Each case file's statements in order (run together: they create
    /// the tables they read).
    pub files: Vec<Vec<String>>,
    /// Statements found in the tests' sources.
    pub statements: Vec<String>,
}

const SQL_STARTS: &[&str] = &[
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    "CREATE ",
    "DROP ",
    "WITH ",
    "COPY ",
    "SET ",
    "SHOW ",
    "EXPLAIN ",
    "ALTER ",
    "BEGIN",
    "TRUNCATE ",
    "VALUES ",
];

impl Corpus {
    /// Reads sql/cases and tests/*.rs under the crate root.
    pub fn load() -> Corpus {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(root.join("sql/cases"))
            .expect("sql/cases")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        names.sort();
        for path in names {
            let text = std::fs::read_to_string(&path).expect("case file");
            let stmts: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("--"))
                .map(str::to_string)
                .collect();
            files.push(stmts);
        }
        let mut statements = Vec::new();
        let mut sources: Vec<_> = std::fs::read_dir(root.join("tests"))
            .expect("tests")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        sources.sort();
        for path in sources {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            statements.extend(string_literals(&text).into_iter().filter(|s| {
                let upper = s.to_ascii_uppercase();
                SQL_STARTS.iter().any(|p| upper.starts_with(p))
            }));
        }
        statements.sort();
        statements.dedup();
        Corpus { files, statements }
    }
}

/// The contents of `"…"` literals in Rust source, with `{…}` format
/// holes filled by `1`.
fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        if c == '\'' {
            // A char literal like '"' must not open a string.
            let mut look = chars.clone();
            if let (Some(_), Some('\'')) = (look.next(), look.next()) {
                chars.next();
                chars.next();
            }
            continue;
        }
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('\n') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                    }
                    Some(o) => s.push(o),
                    None => {}
                },
                '"' => break,
                _ => s.push(c),
            }
        }
        out.push(fill_holes(&s));
    }
    out
}

fn fill_holes(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if depth == 0 && chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push('1');
                }
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Splits SQL into tokens: words, numbers, quoted strings, operators and
/// single punctuation, keeping whitespace out.
fn tokens(s: &str) -> Vec<String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else if c.is_alphanumeric() || c == '_' || c == '$' || c == '.' {
            while i < b.len()
                && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$' || b[i] == '.')
            {
                i += 1;
            }
        } else if "<>=!#~%+-*/|&@^:".contains(c) {
            while i < b.len() && "<>=!#~%+-*/|&@^:".contains(b[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.push(b[start..i].iter().collect());
    }
    out
}

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "ORDER BY",
    "LIMIT",
    "OFFSET",
    "NULL",
    "NOT",
    "AND",
    "OR",
    "(",
    ")",
    ",",
    ";",
    "::",
    "::vector",
    "::halfvec",
    "::sparsevec",
    "::bit(3)",
    "::int",
    "::text",
    "::real[]",
    "<->",
    "<#>",
    "<=>",
    "<+>",
    "<~>",
    "<%>",
    "+",
    "-",
    "*",
    "/",
    "||",
    "=",
    "*",
    "DISTINCT",
    "GROUP BY",
    "HAVING",
    "UNION",
    "JOIN",
    "ON",
    "USING",
    "AS",
    "IN",
    "EXISTS",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "RETURNING",
    "DEFAULT",
    "$1",
    "$0",
    "$99999",
    "E'\\x'",
    "'[1,2,3]'",
    "'[NaN,1,2]'",
    "'[Infinity,1,2]'",
    "'[1e39,0,0]'",
    "'[]'",
    "'{1:1}/3'",
    "'{0:1}/3'",
    "'101'",
    "B'1'",
    "ARRAY[1,2]",
    "ROW(1)",
    "*",
    "count(*)",
    "avg(embedding)",
    "LATERAL",
    "MATERIALIZED",
    "hnsw",
    "ivfflat",
    "vector_l2_ops",
    "WITH",
    "COLLATE \"C\"",
];

/// One statement changed by 1 to 3 mutations.
pub fn mutate(g: &mut Gen, statement: &str) -> String {
    let mut t = tokens(statement);
    for _ in 0..1 + g.count(2) {
        if t.is_empty() {
            t.push(g.pick(WORDS).to_string());
            continue;
        }
        let i = g.below(t.len());
        match g.below(10) {
            0 => {
                t.remove(i);
            }
            1 => {
                let tok = t[i].clone();
                t.insert(i, tok);
            }
            2 => {
                let j = g.below(t.len());
                t.swap(i, j);
            }
            3 => t[i] = g.pick(WORDS).to_string(),
            4 => t.insert(i, g.pick(WORDS).to_string()),
            5 => {
                let kind = g.below(4);
                t[i] = match kind {
                    0 => sql::number(g),
                    1 => format!("'{}'", sql::vector_text(g)),
                    2 => format!("'{}'", sql::sparse_text(g)),
                    _ => format!("'{}'", sql::bit_text(g)),
                };
            }
            6 => {
                // Parentheses around a stretch, up to 3,000 levels
                // (PostgreSQL accepts 9,984; 100 were refused before the
                // stack-depth fix).
                let j = (i + g.below(4)).min(t.len() - 1);
                let most = if g.chance(0.1) { 3000 } else { 8 };
                let n = 1 + g.below(most);
                t.insert(j + 1, ")".repeat(n));
                t.insert(i, "(".repeat(n));
            }
            7 => t.truncate(i),
            8 => {
                // Repeat a token with an operator into a chain.
                let op = g.pick(&["+", "OR", "AND", "||", ","]);
                let n = 1 + g.below(sql::MAX_CHAIN / 2);
                let tok = t[i].clone();
                let chain: Vec<String> = std::iter::repeat_n(tok, n + 1).collect();
                t[i] = chain.join(&format!(" {op} "));
            }
            _ => {
                let mut chars: Vec<char> = t[i].chars().collect();
                if !chars.is_empty() {
                    let k = g.below(chars.len());
                    chars[k] =
                        g.choose(&['\'', '"', '(', '[', '\\', '\0', ';', '{', 'é', '0', '-']);
                }
                t[i] = chars.into_iter().filter(|&c| c != '\0').collect();
            }
        }
    }
    t.join(" ")
}
