//! Reads `jsonpath` text into a [`JsonPath`]: a scanner, then recursive
//! descent with PostgreSQL's precedence (`||` < `&&` < comparisons <
//! `+ -` < `* / %` < unary signs < accessors).

use super::{ArithOp, CmpOp, JsonPath, Method, Node, Subscript};
use crate::sql::error::SqlError;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Root,
    Current,
    Var(String),
    Str(String),
    Num(String),
    Word(String),
    Punct(&'static str),
}

fn syntax_error(near: Option<&Token>) -> SqlError {
    let message = match near {
        None => "syntax error at end of jsonpath input".to_string(),
        Some(t) => format!("syntax error at or near \"{}\" of jsonpath input", text(t)),
    };
    SqlError::syntax(message, None)
}

fn text(t: &Token) -> String {
    match t {
        Token::Root => "$".into(),
        Token::Current => "@".into(),
        Token::Var(v) => format!("${v}"),
        Token::Str(s) => format!("\"{s}\""),
        Token::Num(n) | Token::Word(n) => n.clone(),
        Token::Punct(p) => (*p).into(),
    }
}

const PUNCTS: [&str; 21] = [
    "==", "!=", "<>", "<=", ">=", "&&", "||", "<", ">", "!", ".", "[", "]", "(", ")", ",", "*",
    "?", "+", "-", "/",
];

fn scan(input: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            i += 1;
            tokens.push(Token::Str(string(&chars, &mut i)?));
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'"') {
                i += 1;
                tokens.push(Token::Var(string(&chars, &mut i)?));
            } else if chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                tokens.push(Token::Var(word(&mut i)));
            } else {
                tokens.push(Token::Root);
            }
        } else if c == '@' {
            i += 1;
            tokens.push(Token::Current);
        } else if c.is_ascii_digit() {
            tokens.push(Token::Num(number(&chars, &mut i)));
        } else if c.is_alphabetic() || c == '_' {
            tokens.push(Token::Word(word(&mut i)));
        } else if c == '%' {
            i += 1;
            tokens.push(Token::Punct("%"));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(*p)) else {
                return Err(syntax_error(Some(&Token::Word(c.to_string()))));
            };
            i += p.chars().count();
            tokens.push(Token::Punct(p));
        }
    }
    Ok(tokens)
}

/// A string literal's value, `i` just past its opening quote.
fn string(chars: &[char], i: &mut usize) -> Result<String, SqlError> {
    let mut out = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(SqlError::syntax(
                "unterminated quoted string at end of jsonpath input",
                None,
            ));
        };
        *i += 1;
        match c {
            '"' => return Ok(out),
            '\\' => {
                let Some(&e) = chars.get(*i) else { continue };
                *i += 1;
                out.push(match e {
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    'u' => {
                        let hex: String = chars.get(*i..*i + 4).unwrap_or_default().iter().collect();
                        *i += 4;
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                SqlError::syntax(
                                    "invalid Unicode escape sequence at or near \"\\u\" of jsonpath input",
                                    None,
                                )
                            })?
                    }
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
}

/// A number literal as PostgreSQL's numeric prints it (no leading zeros;
/// an exponent applied).
fn number(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    let digits = |i: &mut usize| {
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(i);
    if chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(char::is_ascii_digit) {
        *i += 1;
        digits(i);
    }
    let mut exponent = false;
    if matches!(chars.get(*i), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(*i + 1), Some('+' | '-')));
        if chars.get(*i + 1 + sign).is_some_and(char::is_ascii_digit) {
            exponent = true;
            *i += 1 + sign;
            digits(i);
        }
    }
    let literal: String = chars[start..*i].iter().collect();
    if exponent {
        if let Ok(v) = literal.parse::<f64>() {
            return v.to_string();
        }
    }
    let trimmed = literal.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(q)) if *q == p) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w)) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, p: &str) -> Result<(), SqlError> {
        if self.eat(p) {
            return Ok(());
        }
        Err(syntax_error(self.peek()))
    }

    /// The entry of every nested expression (parentheses, filters,
    /// `exists`, subscripts): guarded, as each level takes several frames.
    fn or(&mut self) -> Result<Node, SqlError> {
        crate::stack::guard(|| {
            let mut left = self.and()?;
            while self.eat("||") {
                left = Node::Or(Box::new(left), Box::new(self.and()?));
            }
            Ok(left)
        })
    }

    fn and(&mut self) -> Result<Node, SqlError> {
        let mut left = self.not()?;
        while self.eat("&&") {
            left = Node::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, SqlError> {
        if self.eat("!") {
            return Ok(Node::Not(Box::new(crate::stack::guard(|| self.not())?)));
        }
        if self.eat_word("exists") {
            self.expect("(")?;
            let inner = self.or()?;
            self.expect(")")?;
            return Ok(Node::Exists(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, SqlError> {
        let left = self.additive()?;
        let op = match self.peek() {
            Some(Token::Punct("==")) => Some(CmpOp::Eq),
            Some(Token::Punct("!=" | "<>")) => Some(CmpOp::Ne),
            Some(Token::Punct("<")) => Some(CmpOp::Lt),
            Some(Token::Punct("<=")) => Some(CmpOp::Le),
            Some(Token::Punct(">")) => Some(CmpOp::Gt),
            Some(Token::Punct(">=")) => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let right = self.additive()?;
            return Ok(Node::Cmp(op, Box::new(left), Box::new(right)));
        }
        if self.eat_word("starts") {
            if !self.eat_word("with") {
                return Err(syntax_error(self.peek()));
            }
            let right = match self.next() {
                Some(Token::Str(s)) => Node::Str(s),
                Some(Token::Var(v)) => Node::Var(v),
                other => return Err(syntax_error(other.as_ref())),
            };
            return Ok(Node::StartsWith(Box::new(left), Box::new(right)));
        }
        if self.eat_word("like_regex") {
            return Err(SqlError::unsupported("jsonpath like_regex"));
        }
        if self.eat_word("is") {
            if !self.eat_word("unknown") {
                return Err(syntax_error(self.peek()));
            }
            return Ok(Node::IsUnknown(Box::new(left)));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Node, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat("+") {
                ArithOp::Add
            } else if self.eat("-") {
                ArithOp::Sub
            } else {
                return Ok(left);
            };
            left = Node::Arith(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Node, SqlError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat("*") {
                ArithOp::Mul
            } else if self.eat("/") {
                ArithOp::Div
            } else if self.eat("%") {
                ArithOp::Mod
            } else {
                return Ok(left);
            };
            left = Node::Arith(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Node, SqlError> {
        let negate = if self.eat("-") {
            true
        } else if self.eat("+") {
            false
        } else {
            return self.accessors();
        };
        let operand = crate::stack::guard(|| self.unary())?;
        Ok(match (negate, operand) {
            // As PostgreSQL's grammar: a signed number is one literal.
            (true, Node::Num(n)) => Node::Num(match n.strip_prefix('-') {
                Some(positive) => positive.to_string(),
                None => format!("-{n}"),
            }),
            (false, n @ Node::Num(_)) => n,
            (negate, operand) => Node::Unary {
                negate,
                operand: Box::new(operand),
            },
        })
    }

    fn primary(&mut self) -> Result<Node, SqlError> {
        Ok(match self.next() {
            Some(Token::Root) => Node::Root,
            Some(Token::Current) => Node::Current,
            Some(Token::Var(v)) => Node::Var(v),
            Some(Token::Str(s)) => Node::Str(s),
            Some(Token::Num(n)) => Node::Num(n),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Node::Bool(true),
                "false" => Node::Bool(false),
                "null" => Node::Null,
                "last" => Node::Last,
                _ => return Err(syntax_error(Some(&Token::Word(w)))),
            },
            Some(Token::Punct("(")) => {
                let inner = self.or()?;
                self.expect(")")?;
                inner
            }
            other => return Err(syntax_error(other.as_ref())),
        })
    }

    fn accessors(&mut self) -> Result<Node, SqlError> {
        let mut node = self.primary()?;
        loop {
            if self.eat(".") {
                node = match self.next() {
                    Some(Token::Punct("*")) => {
                        if self.eat("*") {
                            return Err(SqlError::unsupported("the jsonpath accessor .**"));
                        }
                        Node::AnyKey(Box::new(node))
                    }
                    Some(Token::Str(key)) => Node::Key(Box::new(node), key),
                    Some(Token::Word(key)) if self.eat("(") => {
                        self.expect(")")?;
                        Node::Method(Box::new(node), method(&key)?)
                    }
                    Some(Token::Word(key)) => Node::Key(Box::new(node), key),
                    other => return Err(syntax_error(other.as_ref())),
                };
            } else if self.eat("[") {
                if self.eat("*") {
                    self.expect("]")?;
                    node = Node::AnyElement(Box::new(node));
                    continue;
                }
                let mut subscripts = Vec::new();
                loop {
                    let from = self.additive()?;
                    let to = if self.eat_word("to") {
                        Some(self.additive()?)
                    } else {
                        None
                    };
                    subscripts.push(Subscript { from, to });
                    if !self.eat(",") {
                        break;
                    }
                }
                self.expect("]")?;
                node = Node::Index(Box::new(node), subscripts);
            } else if self.eat("?") {
                self.expect("(")?;
                let predicate = self.or()?;
                self.expect(")")?;
                node = Node::Filter(Box::new(node), Box::new(predicate));
            } else {
                return Ok(node);
            }
        }
    }
}

fn method(name: &str) -> Result<Method, SqlError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "type" => Method::Type,
        "size" => Method::Size,
        "double" => Method::Double,
        "abs" => Method::Abs,
        "floor" => Method::Floor,
        "ceiling" => Method::Ceiling,
        other => {
            return Err(SqlError::unsupported(format!(
                "the jsonpath item method .{other}()"
            )))
        }
    })
}

/// The most tokens a jsonpath may have (more: 54001). A path's tree is at
/// most this deep, so its derived (unguarded) drop, clone and comparison
/// stay within any thread's stack; real paths have tens of tokens.
const MAX_TOKENS: usize = 1_000;

/// Parses `jsonpath` text (22P02-free: a bad path is PostgreSQL's 42601).
pub fn parse(input: &str) -> Result<JsonPath, SqlError> {
    let tokens = scan(input)?;
    if tokens.len() > MAX_TOKENS {
        return Err(SqlError::too_complex());
    }
    let mut parser = Parser { tokens, pos: 0 };
    let strict = if parser.eat_word("strict") {
        true
    } else {
        parser.eat_word("lax");
        false
    };
    let expr = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return Err(syntax_error(parser.peek()));
    }
    Ok(JsonPath { strict, expr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(path: &str) -> String {
        parse(path).unwrap().to_string()
    }

    #[test]
    fn paths_print_as_postgres_prints_them() {
        assert_eq!(shown("$.kind == $value"), r#"($."kind" == $"value")"#);
        assert_eq!(
            shown(r#"($."kind" == $"value")"#),
            r#"($."kind" == $"value")"#
        );
        assert_eq!(
            shown("$.a >= 1 && $.b < 2.50 || !($.c == null)"),
            r#"($."a" >= 1 && $."b" < 2.50 || !($."c" == null))"#
        );
        assert_eq!(
            shown("strict $.tags[*] ? (@ == \"red\")"),
            r#"strict $."tags"[*]?(@ == "red")"#
        );
        assert_eq!(
            shown("$.a[0, 2 to last].size()"),
            r#"$."a"[0,2 to last].size()"#
        );
        assert_eq!(shown("-$.a + 2 * -3"), r#"(-$."a" + 2 * -3)"#);
        assert_eq!(
            shown("exists($.x) && ($.y == 1) is unknown"),
            r#"(exists ($."x") && ($."y" == 1) is unknown)"#
        );
        assert_eq!(
            shown("$.name starts with \"ab\""),
            r#"($."name" starts with "ab")"#
        );
        assert_eq!(shown("$.n == 1e2"), r#"($."n" == 100)"#);
    }

    #[test]
    fn deep_and_long_paths_are_refused_or_parsed_without_overflow() {
        // Run on a small stack, as deep nesting once aborted the shard.
        let t = std::thread::Builder::new().stack_size(256 * 1024);
        let results = t
            .spawn(|| {
                let parens = format!("{}$.a{}", "(".repeat(400), ")".repeat(400));
                let minus = format!("{}$.a", "-".repeat(900));
                let not = format!("{}($.a == 1)", "!".repeat(900));
                let long = vec!["$.a"; 600].join(" + ");
                [parens, minus, not, long].map(|p| match parse(&p) {
                    Ok(path) => path.to_string().len().to_string(),
                    Err(e) => e.sqlstate.to_string(),
                })
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(results[0], "5", "{results:?}"); // `$."a"`
        assert!(results[1].parse::<usize>().is_ok(), "{results:?}");
        assert!(results[2].parse::<usize>().is_ok(), "{results:?}");
        assert_eq!(results[3], "54001", "{results:?}");
    }

    #[test]
    fn bad_paths_are_syntax_errors() {
        for bad in ["", "$.", "$ ==", "$[1", "$.a ==== 1", "#"] {
            assert_eq!(parse(bad).unwrap_err().sqlstate, "42601", "{bad}");
        }
        assert_eq!(parse("$ like_regex \"a\"").unwrap_err().sqlstate, "0A000");
    }
}
