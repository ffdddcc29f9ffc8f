//! The token pass that makes sqlparser read pgvector's operators the way
//! PostgreSQL does, and the mapping from token locations back to the text.
//!
//! sqlparser's tokenizer splits `<+>` into `<`, `+`, `>`, and gives `<=>` the
//! precedence of `=` (`0 = a <=> b` would group as `(0 = a) <=> b`). Both are
//! fixed here, before parsing: touching `<` `+` `>` become one custom
//! operator, and `<=>` becomes a custom operator, which PostgreSqlDialect
//! ranks with PostgreSQL's "any other operator" precedence. After this pass
//! all six pgvector operators are `BinaryOperator::Custom`.
//!
//! sqlparser also reads `->>-1` as one operator `->>-`; PostgreSQL's lexer
//! takes trailing `+` / `-` off an operator that has none of `~ ! @ # % ^ &
//! | \` ?` (so that `a->>-1` is `a ->> -1`), and so does this pass.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer, TokenizerError};

use super::error::{Result, SqlError};

/// Tokenizes `sql` (whitespace and comments kept, so spans stay exact) and
/// fuses pgvector's operators.
pub(crate) fn tokenize(sql: &str, map: &SourceMap) -> Result<Vec<TokenWithSpan>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| tokenizer_error(&e, map))?;
    Ok(fuse_operators(tokens))
}

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// An identifier longer than [`MAX_IDENTIFIER_BYTES`], cut as PostgreSQL's
/// lexer cuts it (NOTICE 42622).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// As written (unquoted ones downcased, as PostgreSQL reports them).
    pub written: String,
    /// What it became.
    pub truncated: String,
}

/// Cuts every identifier over 63 bytes to 63 (at a character boundary),
/// quoted or not, as PostgreSQL's lexer does; returns what it cut.
pub(crate) fn truncate_identifiers(tokens: &mut [TokenWithSpan]) -> Vec<Truncated> {
    let mut cut = Vec::new();
    for t in tokens {
        let Token::Word(w) = &mut t.token else {
            continue;
        };
        if w.value.len() <= MAX_IDENTIFIER_BYTES {
            continue;
        }
        let mut end = MAX_IDENTIFIER_BYTES;
        while !w.value.is_char_boundary(end) {
            end -= 1;
        }
        let shown = |s: &str| match w.quote_style {
            None => s.to_ascii_lowercase(),
            Some(_) => s.to_string(),
        };
        cut.push(Truncated {
            written: shown(&w.value),
            truncated: shown(&w.value[..end]),
        });
        w.value.truncate(end);
    }
    cut
}

/// Merges `<` `+` `>` written without spaces into `<+>`, and turns `<=>`
/// (and `<->`, whatever the dialect made of it) into a custom operator.
fn fuse_operators(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for tok in tokens {
        match tok.token {
            Token::Gt if ends_with_touching_less_plus(&out, tok.span.start) => {
                out.pop();
                let lt = out.pop().map_or(tok.span.start, |t| t.span.start);
                out.push(custom("<+>", lt, tok.span.end));
            }
            Token::Spaceship => out.push(custom("<=>", tok.span.start, tok.span.end)),
            Token::TwoWayArrow => out.push(custom("<->", tok.span.start, tok.span.end)),
            Token::CustomBinaryOperator(ref op) if sign_trails(op).is_some() => {
                let keep = sign_trails(op).unwrap_or(op.len());
                let start = tok.span.start;
                let at = |n: usize| Location::new(start.line, start.column + n as u64);
                let head = match &op[..keep] {
                    "->>" => Token::LongArrow,
                    "->" => Token::Arrow,
                    other => Token::CustomBinaryOperator(other.to_string()),
                };
                out.push(TokenWithSpan::new(head, Span::new(start, at(keep))));
                for (i, sign) in op[keep..].char_indices() {
                    let sign = if sign == '-' {
                        Token::Minus
                    } else {
                        Token::Plus
                    };
                    let from = keep + i;
                    out.push(TokenWithSpan::new(sign, Span::new(at(from), at(from + 1))));
                }
            }
            _ => out.push(tok),
        }
    }
    out
}

/// Where the trailing `+` / `-` that PostgreSQL's lexer would not count
/// as part of operator `op` start, if it has any.
fn sign_trails(op: &str) -> Option<usize> {
    if op.len() < 2 || op.contains(['~', '!', '@', '#', '%', '^', '&', '|', '`', '?']) {
        return None;
    }
    let keep = op.trim_end_matches(['+', '-']).len().max(1);
    (keep < op.len()).then_some(keep)
}

/// Whether the last two tokens are `<` `+`, touching each other and `at`.
fn ends_with_touching_less_plus(out: &[TokenWithSpan], at: Location) -> bool {
    match out {
        [.., lt, plus] => {
            lt.token == Token::Lt
                && plus.token == Token::Plus
                && lt.span.end == plus.span.start
                && plus.span.end == at
        }
        _ => false,
    }
}

fn custom(op: &str, start: Location, end: Location) -> TokenWithSpan {
    TokenWithSpan::new(
        Token::CustomBinaryOperator(op.to_string()),
        sqlparser::tokenizer::Span::new(start, end),
    )
}

/// Splits a token stream at top-level semicolons; empty statements (only
/// whitespace and comments) are dropped. A semicolon inside a string or a
/// dollar-quoted body is part of that token, never a separator.
pub(crate) fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for tok in tokens {
        if tok.token == Token::SemiColon {
            push_nonempty(&mut statements, std::mem::take(&mut current));
        } else {
            current.push(tok);
        }
    }
    push_nonempty(&mut statements, current);
    statements
}

fn push_nonempty(statements: &mut Vec<Vec<TokenWithSpan>>, tokens: Vec<TokenWithSpan>) {
    if tokens.iter().any(|t| !is_trivia(&t.token)) {
        statements.push(tokens);
    }
}

/// Whitespace and comments.
pub(crate) fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// Maps sqlparser's line/column locations (1-based, counted in characters)
/// to byte offsets and to PostgreSQL's 1-based character positions.
pub(crate) struct SourceMap<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    /// Indexes the line starts of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap { text, line_starts }
    }

    /// Byte offset of `loc`, clamped to the text.
    pub(crate) fn offset(&self, loc: Location) -> usize {
        let Some(&start) = usize::try_from(loc.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| self.line_starts.get(l))
        else {
            return self.text.len();
        };
        let skip = usize::try_from(loc.column.saturating_sub(1)).unwrap_or(usize::MAX);
        self.text[start..]
            .char_indices()
            .nth(skip)
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// PostgreSQL's error position: 1-based characters from the start.
    pub(crate) fn position(&self, loc: Location) -> usize {
        self.text[..self.offset(loc)].chars().count() + 1
    }

    /// The text between two locations.
    pub(crate) fn slice(&self, start: Location, end: Location) -> &'a str {
        let (a, b) = (self.offset(start), self.offset(end));
        self.text.get(a..b.max(a)).unwrap_or("")
    }

    /// The text from `loc` to the end.
    pub(crate) fn rest(&self, loc: Location) -> &'a str {
        &self.text[self.offset(loc)..]
    }
}

/// PostgreSQL's wording for what the tokenizer rejects.
fn tokenizer_error(e: &TokenizerError, map: &SourceMap) -> SqlError {
    let rest = map.rest(e.location);
    let position = Some(map.position(e.location));
    let what = if e.message.starts_with("Unterminated dollar") {
        "unterminated dollar-quoted string"
    } else if e.message.starts_with("Unterminated") {
        "unterminated quoted string"
    } else if e.message.contains("multi-line comment") {
        "unterminated /* comment"
    } else {
        let near: String = rest.chars().take(1).collect();
        return SqlError::syntax(near_message(&near), position);
    };
    SqlError::syntax(format!("{what} at or near \"{rest}\""), position)
}

/// `syntax error at or near "…"`, or `… at end of input` when nothing is left.
pub(crate) fn near_message(near: &str) -> String {
    if near.is_empty() {
        "syntax error at end of input".to_string()
    } else {
        format!("syntax error at or near \"{near}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn significant(sql: &str) -> Vec<Token> {
        let map = SourceMap::new(sql);
        tokenize(sql, &map)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .filter(|t| !is_trivia(t))
            .collect()
    }

    #[test]
    fn pgvector_operators_become_custom_operators() {
        for op in ["<->", "<#>", "<=>", "<+>", "<~>", "<%>"] {
            let toks = significant(&format!("a {op} b"));
            assert_eq!(toks.len(), 3, "{op}: {toks:?}");
            assert_eq!(toks[1], Token::CustomBinaryOperator(op.into()), "{op}");
        }
    }

    #[test]
    fn trailing_signs_leave_an_operator_as_postgres_lexes_them() {
        let toks = significant("j->>-1");
        assert_eq!(
            toks[1..],
            [
                Token::LongArrow,
                Token::Minus,
                Token::Number("1".into(), false)
            ]
        );
        let toks = significant("j->-+1");
        assert_eq!(toks[1..4], [Token::Arrow, Token::Minus, Token::Plus]);
    }

    #[test]
    fn spaced_less_plus_greater_is_not_fused() {
        let toks = significant("a < +b");
        assert_eq!(toks[1], Token::Lt);
        assert_eq!(toks[2], Token::Plus);
    }

    #[test]
    fn semicolons_in_strings_do_not_split() {
        let sql = "SELECT ';'; ; SELECT $$a;b$$ -- c;\n";
        let map = SourceMap::new(sql);
        let parts = split_statements(tokenize(sql, &map).unwrap());
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn source_map_counts_characters() {
        let sql = "é\nab";
        let map = SourceMap::new(sql);
        assert_eq!(map.offset(Location::new(2, 2)), 4);
        assert_eq!(map.position(Location::new(2, 2)), 4);
        assert_eq!(map.offset(Location::new(9, 1)), sql.len());
    }

    #[test]
    fn unterminated_string_reads_like_postgres() {
        let sql = "SELECT 'abc";
        let err = tokenize(sql, &SourceMap::new(sql)).unwrap_err();
        assert_eq!(err.sqlstate, "42601");
        assert_eq!(
            err.message,
            "unterminated quoted string at or near \"'abc\""
        );
        assert_eq!(err.position, Some(8));
    }
}
