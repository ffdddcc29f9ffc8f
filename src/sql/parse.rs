//! Parsing a query string into statements, each with its own source text.
//!
//! The string is tokenized once (with the pgvector operator pass), split at
//! top-level semicolons, and every piece is parsed on its own. Keeping each
//! statement's original text lets the proxy forward exactly what the client
//! wrote whenever it does not rewrite a statement: sqlparser's Display is
//! not a faithful printer (it shows `SHOW hnsw.ef_search` as `SHOW hnsw
//! ef_search`).

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

use super::depth;
use super::error::{Result, SqlError};
use super::maintenance::{self, Maintenance};
use super::tokens::{self, near_message, SourceMap};

/// How deeply the parser may recurse (parentheses, `NOT`, subqueries)
/// before it gives up with 54001: as deep as a statement may nest at all.
/// sqlparser's `recursive-protection` feature grows its stack on the heap.
const RECURSION_LIMIT: usize = depth::MAX_DEPTH;

/// One parsed statement and the text it was parsed from.
///
/// Dropping and cloning it are safe at any accepted depth (see
/// [`crate::stack`]); work on its tree should run inside
/// `stack::with_tree(statement.depth, …)`.
#[derive(Debug, PartialEq)]
pub struct Statement {
    /// The syntax tree.
    pub ast: ast::Statement,
    /// How deeply the tree nests (see `sql::depth`), at most
    /// `depth::MAX_DEPTH`.
    pub depth: usize,
    /// The statement's original text, without the trailing semicolon.
    pub text: String,
    /// The comments before its first word, without their delimiters and
    /// trimmed (`/* pgvshard:primary */ SELECT …` gives `pgvshard:primary`).
    pub leading_comments: Vec<String>,
    /// A command sqlparser does not know, or reads otherwise than
    /// PostgreSQL: `ast` is then an inert placeholder (`UNLOCK TABLES`)
    /// and [`super::classify`] reads this instead.
    pub utility: Option<Utility>,
    /// Identifiers over 63 bytes, cut in `ast` (not in `text`); a server
    /// answering the statement sends a NOTICE 42622 for each.
    pub truncated: Vec<tokens::Truncated>,
}

/// The commands read from their tokens instead of sqlparser's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Utility {
    /// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`.
    TwoPhase(TwoPhase),
    /// `ALTER SYSTEM SET|RESET`.
    AlterSystem(AlterSystem),
    /// `VACUUM`, `ANALYZE`, `CHECKPOINT`.
    Maintenance(Maintenance),
}

impl Statement {
    /// The two-phase-commit command this is, if it is one.
    pub fn two_phase(&self) -> Option<&TwoPhase> {
        match &self.utility {
            Some(Utility::TwoPhase(tp)) => Some(tp),
            _ => None,
        }
    }

    /// The `ALTER SYSTEM` this is, if it is one.
    pub fn alter_system(&self) -> Option<&AlterSystem> {
        match &self.utility {
            Some(Utility::AlterSystem(a)) => Some(a),
            _ => None,
        }
    }

    /// The maintenance command this is, if it is one.
    pub fn maintenance(&self) -> Option<&Maintenance> {
        match &self.utility {
            Some(Utility::Maintenance(m)) => Some(m),
            _ => None,
        }
    }

    /// The syntax tree, taken out of the statement.
    pub fn into_ast(mut self) -> ast::Statement {
        std::mem::replace(&mut self.ast, ast::Statement::UnlockTables)
    }
}

impl Clone for Statement {
    fn clone(&self) -> Self {
        crate::stack::with_tree(self.depth, || Statement {
            ast: self.ast.clone(),
            depth: self.depth,
            text: self.text.clone(),
            leading_comments: self.leading_comments.clone(),
            utility: self.utility.clone(),
            truncated: self.truncated.clone(),
        })
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        let ast = std::mem::replace(&mut self.ast, ast::Statement::UnlockTables);
        crate::stack::with_tree(self.depth, || drop(ast));
    }
}

/// A two-phase-commit command and its transaction identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwoPhase {
    /// `PREPARE TRANSACTION 'gid'`.
    Prepare(String),
    /// `COMMIT PREPARED 'gid'`.
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`.
    RollbackPrepared(String),
}

/// `ALTER SYSTEM SET name = value` (`value` None: `ALTER SYSTEM RESET
/// name` or `SET name TO DEFAULT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterSystem {
    /// The setting, folded to lower case.
    pub name: String,
    /// Its new value, as written (quotes removed).
    pub value: Option<String>,
}

/// Recognises `ALTER SYSTEM SET name {= | TO} value | DEFAULT` and
/// `ALTER SYSTEM RESET name` (one value; lists are not supported).
fn alter_system(chunk: &[TokenWithSpan]) -> Option<AlterSystem> {
    let mut significant = chunk
        .iter()
        .map(|t| &t.token)
        .filter(|t| !tokens::is_trivia(t) && **t != Token::SemiColon);
    let word = |t: Option<&Token>| match t {
        Some(Token::Word(w)) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    if word(significant.next())? != "ALTER" || word(significant.next())? != "SYSTEM" {
        return None;
    }
    let verb = word(significant.next())?;
    let name = match significant.next()? {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_lowercase(),
        _ => return None,
    };
    let value = match verb.as_str() {
        "RESET" => None,
        "SET" => {
            match significant.next()? {
                Token::Eq => {}
                Token::Word(w) if w.value.eq_ignore_ascii_case("to") => {}
                _ => return None,
            }
            match significant.next()? {
                Token::Word(w)
                    if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("default") =>
                {
                    None
                }
                Token::Word(w) => Some(w.value.clone()),
                Token::SingleQuotedString(s) => Some(s.clone()),
                Token::Number(n, _) => Some(n.clone()),
                _ => return None,
            }
        }
        _ => return None,
    };
    if significant.next().is_some() {
        return None;
    }
    Some(AlterSystem { name, value })
}

/// Recognises the two-phase-commit commands: two keywords and a string.
fn two_phase(chunk: &[TokenWithSpan]) -> Option<TwoPhase> {
    use sqlparser::tokenizer::Token;
    let mut significant = chunk
        .iter()
        .filter(|t| !tokens::is_trivia(&t.token) && t.token != Token::SemiColon);
    let word = |t: Option<&TokenWithSpan>| match t.map(|t| &t.token) {
        Some(Token::Word(w)) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let (first, second) = (word(significant.next())?, word(significant.next())?);
    let gid = match significant.next().map(|t| &t.token) {
        Some(Token::SingleQuotedString(s)) => s.clone(),
        _ => return None,
    };
    if significant.next().is_some() {
        return None;
    }
    match (first.as_str(), second.as_str()) {
        ("PREPARE", "TRANSACTION") => Some(TwoPhase::Prepare(gid)),
        ("COMMIT", "PREPARED") => Some(TwoPhase::CommitPrepared(gid)),
        ("ROLLBACK", "PREPARED") => Some(TwoPhase::RollbackPrepared(gid)),
        _ => None,
    }
}

/// Parses `sql` (one or more statements separated by semicolons) in
/// PostgreSQL's dialect with pgvector's operators.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let map = SourceMap::new(sql);
    let tokens = tokens::tokenize(sql, &map)?;
    tokens::split_statements(tokens)
        .into_iter()
        .map(|chunk| parse_one(chunk, &map))
        .collect()
}

/// Parses a single statement; more or fewer than one is a 42601 error.
pub fn parse_single(sql: &str) -> Result<Statement> {
    let mut statements = parse(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(SqlError::syntax(near_message(""), None)),
        _ => Err(SqlError::syntax(
            "cannot insert multiple commands into a prepared statement",
            None,
        )),
    }
}

/// A command sqlparser does not know: an inert `ast` (`UNLOCK TABLES`),
/// read by [`super::classify`] from `utility`. Kept out of [`parse_one`]
/// so that its frame stays small for deep statements.
#[inline(never)]
fn placeholder(
    text: String,
    leading_comments: Vec<String>,
    utility: Utility,
    truncated: Vec<tokens::Truncated>,
) -> Statement {
    Statement {
        ast: ast::Statement::UnlockTables,
        depth: 0,
        text,
        leading_comments,
        utility: Some(utility),
        truncated,
    }
}

fn parse_one(mut chunk: Vec<TokenWithSpan>, map: &SourceMap) -> Result<Statement> {
    let truncated = tokens::truncate_identifiers(&mut chunk);
    super::sequence_options::reorder(&mut chunk);
    let significant = || chunk.iter().filter(|t| !tokens::is_trivia(&t.token));
    let start = significant().next().map(|t| t.span.start);
    let end = significant().next_back().map(|t| t.span.end);
    let text = match (start, end) {
        (Some(s), Some(e)) => map.slice(s, e).to_string(),
        _ => String::new(),
    };
    let leading_comments = chunk
        .iter()
        .map_while(|t| match &t.token {
            Token::Whitespace(w) => Some(w),
            _ => None,
        })
        .filter_map(|w| match w {
            Whitespace::SingleLineComment { comment, .. } => Some(comment.trim().to_string()),
            Whitespace::MultiLineComment(c) => Some(c.trim().to_string()),
            _ => None,
        })
        .collect();
    let utility = match two_phase(&chunk) {
        Some(tp) => Some(Utility::TwoPhase(tp)),
        None => match alter_system(&chunk) {
            Some(a) => Some(Utility::AlterSystem(a)),
            None => maintenance::recognise(&chunk, map)?.map(Utility::Maintenance),
        },
    };
    if let Some(utility) = utility {
        return Ok(placeholder(text, leading_comments, utility, truncated));
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(chunk.clone());
    let mut parsed = parser
        .parse_statements()
        .map_err(|e| parser_error(e, &chunk, map, end))?;
    match parsed.len() {
        1 => {
            let mut ast = parsed.remove(0);
            let tokens = significant().count();
            let depth = match depth::measure(&mut ast, tokens) {
                Ok(d) => d,
                Err(e) => {
                    depth::drop_deep(ast);
                    return Err(e);
                }
            };
            Ok(Statement {
                ast,
                depth,
                text,
                leading_comments,
                utility: None,
                truncated,
            })
        }
        _ => Err(SqlError::syntax(near_message(&text), None)),
    }
}

/// Turns sqlparser's "Expected: …, found: … at Line: l, Column: c" into
/// PostgreSQL's `syntax error at or near "<token>"` with its position.
fn parser_error(
    e: ParserError,
    chunk: &[TokenWithSpan],
    map: &SourceMap,
    end: Option<Location>,
) -> SqlError {
    let message = match e {
        ParserError::RecursionLimitExceeded => return SqlError::too_complex(),
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
    };
    if message.ends_with("found: EOF") {
        let position = end.map(|e| map.position(e));
        return SqlError::syntax(near_message(""), position);
    }
    let token = error_location(&message).and_then(|loc| {
        chunk
            .iter()
            .find(|t| t.span.start == loc && !tokens::is_trivia(&t.token))
    });
    match token {
        Some(t) => SqlError::syntax(
            near_message(map.slice(t.span.start, t.span.end)),
            Some(map.position(t.span.start)),
        ),
        None => SqlError::syntax(format!("syntax error: {message}"), None),
    }
}

/// The location sqlparser appends to its messages.
fn error_location(message: &str) -> Option<Location> {
    let (_, tail) = message.rsplit_once(" at Line: ")?;
    let (line, column) = tail.split_once(", Column: ")?;
    Some(Location::new(line.parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{BinaryOperator, Expr, SelectItem, SetExpr};

    #[test]
    fn alter_system_is_recognised() {
        let one = |sql: &str| parse_single(sql).unwrap().alter_system().cloned();
        let set = |name: &str, value: Option<&str>| {
            Some(AlterSystem {
                name: name.into(),
                value: value.map(str::to_string),
            })
        };
        assert_eq!(
            one("ALTER SYSTEM SET primary_conninfo = 'host=h port=1'"),
            set("primary_conninfo", Some("host=h port=1"))
        );
        assert_eq!(
            one("alter system set Recovery_Min_Apply_Delay to 300"),
            set("recovery_min_apply_delay", Some("300"))
        );
        assert_eq!(
            one("ALTER SYSTEM RESET primary_conninfo;"),
            set("primary_conninfo", None)
        );
        assert_eq!(
            one("ALTER SYSTEM SET work_mem = DEFAULT"),
            set("work_mem", None)
        );
        assert_eq!(one("ALTER TABLE t ADD COLUMN c int"), None);
        assert!(parse_single("ALTER SYSTEM SET a = 1, 2").is_err());
    }

    #[test]
    fn leading_comments_are_kept_apart() {
        let s =
            parse("/* pgvshard:primary */ -- why\nSELECT 1 /* not leading */; SELECT 2").unwrap();
        assert_eq!(s[0].leading_comments, ["pgvshard:primary", "why"]);
        assert_eq!(s[0].text, "SELECT 1");
        assert!(s[1].leading_comments.is_empty());
    }

    fn first_projection(sql: &str) -> Expr {
        let stmt = parse_single(sql).unwrap();
        let ast::Statement::Query(q) = stmt.into_ast() else {
            panic!("not a query")
        };
        let SetExpr::Select(select) = *q.body else {
            panic!("not a select")
        };
        match &select.projection[0] {
            SelectItem::UnnamedExpr(e) => e.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spaceship_binds_tighter_than_equals() {
        let Expr::BinaryOp { left, op, right } = first_projection("SELECT 0 = a <=> b") else {
            panic!()
        };
        assert_eq!(op, BinaryOperator::Eq);
        assert!(matches!(*left, Expr::Value(_)));
        assert!(matches!(
            *right,
            Expr::BinaryOp { op: BinaryOperator::Custom(ref o), .. } if o == "<=>"
        ));
    }

    #[test]
    fn l1_operator_parses_and_binds_tighter_than_less_than() {
        let e = first_projection("SELECT a<+>b < 1");
        let Expr::BinaryOp { left, op, .. } = e else {
            panic!()
        };
        assert_eq!(op, BinaryOperator::Lt);
        assert!(matches!(
            *left,
            Expr::BinaryOp { op: BinaryOperator::Custom(ref o), .. } if o == "<+>"
        ));
    }

    #[test]
    fn keeps_each_statements_text() {
        let stmts = parse("  SHOW hnsw.ef_search ;\n-- c\nSELECT 1;;").unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[0].text, "SHOW hnsw.ef_search");
        assert_eq!(stmts[1].text, "SELECT 1");
        assert!(parse(" ; -- nothing").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_read_like_postgres() {
        let e = parse("SELECT * FORM items").unwrap_err();
        assert_eq!(e.sqlstate, "42601");
        assert_eq!(e.message, "syntax error at or near \"items\"");
        assert_eq!(e.position, Some(15));
        let e = parse("SELECT * FROM").unwrap_err();
        assert_eq!(e.message, "syntax error at end of input");
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(e.message, "syntax error at or near \"SELEC\"");
        assert_eq!(e.position, Some(1));
    }

    #[test]
    fn deep_nesting_is_accepted_up_to_the_limit_then_an_error() {
        let nested = |n: usize| format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
        let minus = |n: usize| format!("SELECT {}1", "- ".repeat(n));
        for sql in [nested(10_000), minus(10_000)] {
            let s = parse_single(&sql).map_err(|e| e.sqlstate).unwrap();
            analyse_everything(&s);
        }
        for sql in [nested(25_000), minus(25_000)] {
            let e = parse(&sql).map(|s| s.len()).unwrap_err();
            assert_eq!(e.sqlstate, "54001");
            assert_eq!(e.hint, Some(super::super::error::STACK_DEPTH_HINT));
        }
    }

    /// Runs every analysis of the layer on a statement.
    fn analyse_everything(s: &Statement) {
        use crate::sql;
        let _ = sql::classify(s);
        let _ = sql::params(s);
        let _ = sql::aggregate_plan(s);
        let _ = sql::rewrite_sorted_for_shard(s);
        let _ = sql::where_key_values(s, "id");
        let _ = sql::insert_key_values(s, "id", &[]);
        if let Some(k) = sql::knn_query(s) {
            let _ = sql::rewrite_knn_for_shard(s, &k);
        }
    }

    #[test]
    fn malformed_input_never_panics() {
        let pieces = [
            "SELECT",
            "'",
            "\"",
            "$1",
            "$",
            "$$",
            "(",
            ")",
            "<",
            "+",
            ">",
            "<=>",
            "::",
            "vector",
            "[",
            "]",
            ",",
            ";",
            "ORDER BY",
            "LIMIT",
            "/*",
            "--",
            "\n",
            "é",
            "\\",
            "E'",
            "0x",
            "WITH",
            "AS",
            "MATERIALIZED",
            "COPY",
            "SET LOCAL",
            "SHOW",
            "INSERT INTO t",
            "VALUES",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut sql = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 9) as usize;
            for i in 0..len {
                let k = (seed.rotate_left(i as u32 * 7) % pieces.len() as u64) as usize;
                sql.push_str(pieces[k]);
                if seed >> (i + 3) & 1 == 1 {
                    sql.push(' ');
                }
            }
            if let Ok(stmts) = parse(&sql) {
                for s in stmts {
                    analyse_everything(&s);
                }
            }
        }
    }
}
