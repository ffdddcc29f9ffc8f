//! `VACUUM`, `ANALYZE` and `CHECKPOINT`, read from their tokens:
//! sqlparser parses VACUUM as Redshift's (`VACUUM ANALYZE t` takes
//! ANALYZE for the table) and knows no CHECKPOINT (nor REINDEX, which is
//! refused here with 0A000).

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::{Result, SqlError};
use super::tokens::{self, near_message, SourceMap};

/// A maintenance command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maintenance {
    /// `VACUUM` (`analyze` true also analyzes) or `ANALYZE` (`vacuum`
    /// false).
    Vacuum(VacuumTargets),
    /// `CHECKPOINT`.
    Checkpoint,
}

/// What a VACUUM or ANALYZE names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumTargets {
    /// VACUUM (false: ANALYZE alone).
    pub vacuum: bool,
    /// The ANALYZE option or keyword (always true for ANALYZE).
    pub analyze: bool,
    /// The tables, folded, each with the columns it lists (folded); none:
    /// every table.
    pub tables: Vec<(String, Vec<String>)>,
}

impl Maintenance {
    /// The command's name, as PostgreSQL's errors and tags spell it.
    pub fn command(&self) -> &'static str {
        match self {
            Maintenance::Vacuum(v) if v.vacuum => "VACUUM",
            Maintenance::Vacuum(_) => "ANALYZE",
            Maintenance::Checkpoint => "CHECKPOINT",
        }
    }
}

/// VACUUM's options (PostgreSQL 18); ANALYZE takes the first three.
const VACUUM_OPTIONS: &[&str] = &[
    "verbose",
    "skip_locked",
    "buffer_usage_limit",
    "analyze",
    "full",
    "freeze",
    "disable_page_skipping",
    "index_cleanup",
    "process_main",
    "process_toast",
    "truncate",
    "parallel",
    "skip_database_stats",
    "only_database_stats",
];

/// The command `chunk` spells, None when it starts with another word;
/// a 42601 error when it is one of them, malformed.
pub fn recognise(chunk: &[TokenWithSpan], map: &SourceMap) -> Result<Option<Maintenance>> {
    let significant: Vec<&TokenWithSpan> = chunk
        .iter()
        .filter(|t| !tokens::is_trivia(&t.token) && t.token != Token::SemiColon)
        .collect();
    let mut r = Reader {
        tokens: &significant,
        at: 0,
        map,
    };
    let command = match r.keyword() {
        Some(k) if k == "vacuum" => "VACUUM",
        Some(k) if k == "analyze" || k == "analyse" => "ANALYZE",
        Some(k) if k == "reindex" => {
            let mut e = SqlError::unsupported("REINDEX");
            e.hint = Some("Rebuild an index with DROP INDEX and CREATE INDEX.");
            return Err(e);
        }
        Some(k) if k == "checkpoint" => {
            r.at += 1;
            r.end()?;
            return Ok(Some(Maintenance::Checkpoint));
        }
        _ => return Ok(None),
    };
    r.at += 1;
    let vacuum = command == "VACUUM";
    let mut analyze = !vacuum;
    if r.punct(&Token::LParen) {
        loop {
            let name = r.word()?;
            let allowed = if vacuum {
                VACUUM_OPTIONS
            } else {
                &VACUUM_OPTIONS[..3]
            };
            if !allowed.contains(&name.as_str()) {
                return Err(SqlError::syntax(
                    format!("unrecognized {command} option \"{name}\""),
                    None,
                ));
            }
            let value = r.option_value();
            if name == "analyze" {
                analyze = !matches!(value.as_deref(), Some("false" | "off" | "0"));
            }
            if !r.punct(&Token::Comma) {
                break;
            }
        }
        r.expect(&Token::RParen)?;
    } else {
        let legacy: &[&str] = if vacuum {
            &["full", "freeze", "verbose", "analyze"]
        } else {
            &["verbose"]
        };
        for word in legacy {
            if r.keyword().as_deref() == Some(word)
                || (*word == "analyze" && r.keyword().as_deref() == Some("analyse"))
            {
                r.at += 1;
                analyze |= *word == "analyze";
            }
        }
    }
    let mut tables = Vec::new();
    while !r.done() {
        let mut name = r.word()?;
        if r.punct(&Token::Period) {
            name = r.word()?;
        }
        let mut columns = Vec::new();
        if r.punct(&Token::LParen) {
            loop {
                columns.push(r.word()?);
                if !r.punct(&Token::Comma) {
                    break;
                }
            }
            r.expect(&Token::RParen)?;
        }
        tables.push((name, columns));
        if !r.punct(&Token::Comma) {
            break;
        }
    }
    r.end()?;
    Ok(Some(Maintenance::Vacuum(VacuumTargets {
        vacuum,
        analyze,
        tables,
    })))
}

/// A cursor over a statement's significant tokens.
struct Reader<'a> {
    tokens: &'a [&'a TokenWithSpan],
    at: usize,
    map: &'a SourceMap<'a>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn done(&self) -> bool {
        self.at >= self.tokens.len()
    }

    /// The next token as an unquoted keyword, folded (not consumed).
    fn keyword(&self) -> Option<String> {
        match self.peek()? {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// An identifier, folded unless quoted.
    fn word(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let name = match w.quote_style {
                    Some(_) => w.value.clone(),
                    None => w.value.to_ascii_lowercase(),
                };
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// An option's value, when one follows (a word, number or string).
    fn option_value(&mut self) -> Option<String> {
        let value = match self.peek()? {
            Token::Word(w) => w.value.to_ascii_lowercase(),
            Token::Number(n, _) => n.clone(),
            Token::SingleQuotedString(s) => s.to_ascii_lowercase(),
            _ => return None,
        };
        self.at += 1;
        Some(value)
    }

    fn punct(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, token: &Token) -> Result<()> {
        match self.punct(token) {
            true => Ok(()),
            false => Err(self.syntax_error()),
        }
    }

    fn end(&self) -> Result<()> {
        match self.done() {
            true => Ok(()),
            false => Err(self.syntax_error()),
        }
    }

    /// PostgreSQL's `syntax error at or near "…"` at the current token.
    fn syntax_error(&self) -> SqlError {
        match self.tokens.get(self.at) {
            Some(t) => SqlError::syntax(
                near_message(self.map.slice(t.span.start, t.span.end)),
                Some(self.map.position(t.span.start)),
            ),
            None => SqlError::syntax(near_message(""), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    fn targets(sql: &str) -> VacuumTargets {
        match parse_single(sql).unwrap().maintenance() {
            Some(Maintenance::Vacuum(v)) => v.clone(),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn vacuum_and_analyze_are_read_as_postgresql_reads_them() {
        let v = targets("VACUUM ANALYZE t");
        assert!(v.vacuum && v.analyze);
        assert_eq!(v.tables, vec![("t".to_string(), vec![])]);
        let v = targets("vacuum (verbose, analyze false) public.T (A, \"B\"), u");
        assert!(v.vacuum && !v.analyze);
        assert_eq!(
            v.tables,
            vec![
                ("t".to_string(), vec!["a".to_string(), "B".to_string()]),
                ("u".to_string(), vec![])
            ]
        );
        let v = targets("ANALYSE VERBOSE");
        assert!(!v.vacuum && v.analyze && v.tables.is_empty());
        assert_eq!(
            parse_single("CHECKPOINT").unwrap().maintenance(),
            Some(&Maintenance::Checkpoint)
        );
        let err = |sql: &str| parse_single(sql).unwrap_err().message;
        assert_eq!(err("VACUUM (FOO) t"), "unrecognized VACUUM option \"foo\"");
        assert_eq!(
            err("ANALYZE (FULL) t"),
            "unrecognized ANALYZE option \"full\""
        );
        assert_eq!(err("VACUUM t u"), "syntax error at or near \"u\"");
        assert_eq!(err("CHECKPOINT now"), "syntax error at or near \"now\"");
        assert_eq!(
            parse_single("REINDEX INDEX i").unwrap_err().sqlstate,
            "0A000"
        );
    }
}
