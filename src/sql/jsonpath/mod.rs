//! The SQL/JSON path language of PostgreSQL's `jsonpath` type: the tree
//! [`parse`] reads and its text as PostgreSQL prints a `jsonpath`
//! (`$.kind == $value` → `($."kind" == $"value")`), so a value stored or
//! echoed reads as the real server's. What paths mean over a document is
//! the executor's (`jsonb_path_match`, `@@`, `@?`).
//!
//! Covered: `lax`/`strict`, `$`, `@`, variables, string, number, boolean
//! and null literals, `.key`, `."key"`, `.*`, `[*]`, `[i, j to k, last]`,
//! filters `? (…)`, the methods `type()`, `size()`, `double()`, `abs()`,
//! `floor()`, `ceiling()`, comparisons, `&&`, `||`, `!`, `exists (…)`,
//! `is unknown`, `starts with`, and `+ - * / %`. `like_regex`, `.**`,
//! `keyvalue()` and the datetime methods are refused with 0A000.

mod parse;

pub use parse::parse;

use std::fmt;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
}

/// An item method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `.type()`.
    Type,
    /// `.size()`.
    Size,
    /// `.double()`.
    Double,
    /// `.abs()`.
    Abs,
    /// `.floor()`.
    Floor,
    /// `.ceiling()`.
    Ceiling,
}

/// One array subscript: an index or a range `from to to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscript {
    /// The index, or the range's start.
    pub from: Node,
    /// The range's end.
    pub to: Option<Node>,
}

/// A path expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `$`: the document.
    Root,
    /// `@`: the item a filter tests.
    Current,
    /// `last`: the last index of the array being subscripted.
    Last,
    /// `$name`: a variable of the `vars` argument.
    Var(String),
    /// A string literal.
    Str(String),
    /// A number literal, as PostgreSQL prints it.
    Num(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `base.key`.
    Key(Box<Node>, String),
    /// `base.*`.
    AnyKey(Box<Node>),
    /// `base[*]`.
    AnyElement(Box<Node>),
    /// `base[subscripts]`.
    Index(Box<Node>, Vec<Subscript>),
    /// `base ? (predicate)`.
    Filter(Box<Node>, Box<Node>),
    /// `base.method()`.
    Method(Box<Node>, Method),
    /// `a op b`.
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `a op b`.
    Arith(ArithOp, Box<Node>, Box<Node>),
    /// `-a` (`negate`) or `+a`.
    Unary {
        /// True for `-`.
        negate: bool,
        /// The operand.
        operand: Box<Node>,
    },
    /// `a && b`.
    And(Box<Node>, Box<Node>),
    /// `a || b`.
    Or(Box<Node>, Box<Node>),
    /// `!(a)`.
    Not(Box<Node>),
    /// `exists (a)`.
    Exists(Box<Node>),
    /// `(a) is unknown`.
    IsUnknown(Box<Node>),
    /// `a starts with b`.
    StartsWith(Box<Node>, Box<Node>),
}

/// A parsed `jsonpath`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    /// `strict` (else lax).
    pub strict: bool,
    /// The expression.
    pub expr: Node,
}

impl Node {
    /// PostgreSQL's operator priority, deciding where it prints brackets.
    fn priority(&self) -> u8 {
        match self {
            Node::Or(..) => 0,
            Node::And(..) => 1,
            Node::Cmp(..) | Node::StartsWith(..) => 2,
            Node::Arith(ArithOp::Add | ArithOp::Sub, ..) => 3,
            Node::Arith(..) => 4,
            Node::Unary { .. } => 5,
            _ => 6,
        }
    }

    /// True for a boolean predicate (its value is true, false or unknown).
    pub fn is_predicate(&self) -> bool {
        matches!(
            self,
            Node::Cmp(..)
                | Node::And(..)
                | Node::Or(..)
                | Node::Not(..)
                | Node::Exists(..)
                | Node::IsUnknown(..)
                | Node::StartsWith(..)
        )
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, brackets: bool) -> fmt::Result {
        crate::stack::guard(|| self.write_unguarded(f, brackets))
    }

    fn write_unguarded(&self, f: &mut fmt::Formatter<'_>, brackets: bool) -> fmt::Result {
        let inner = |n: &Node| n.priority() <= self.priority();
        let binary = |f: &mut fmt::Formatter<'_>, a: &Node, op: &str, b: &Node| {
            if brackets {
                f.write_str("(")?;
            }
            a.write(f, inner(a))?;
            write!(f, " {op} ")?;
            b.write(f, inner(b))?;
            if brackets {
                f.write_str(")")?;
            }
            Ok(())
        };
        match self {
            Node::Root => f.write_str("$"),
            Node::Current => f.write_str("@"),
            Node::Last => f.write_str("last"),
            Node::Var(name) => write!(f, "${}", quoted(name)),
            Node::Str(s) => f.write_str(&quoted(s)),
            Node::Num(n) => f.write_str(n),
            Node::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Node::Null => f.write_str("null"),
            Node::Key(base, key) => {
                base.write(f, true)?;
                write!(f, ".{}", quoted(key))
            }
            Node::AnyKey(base) => {
                base.write(f, true)?;
                f.write_str(".*")
            }
            Node::AnyElement(base) => {
                base.write(f, true)?;
                f.write_str("[*]")
            }
            Node::Index(base, subscripts) => {
                base.write(f, true)?;
                f.write_str("[")?;
                for (i, s) in subscripts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    s.from.write(f, false)?;
                    if let Some(to) = &s.to {
                        f.write_str(" to ")?;
                        to.write(f, false)?;
                    }
                }
                f.write_str("]")
            }
            Node::Filter(base, predicate) => {
                base.write(f, true)?;
                f.write_str("?(")?;
                predicate.write(f, false)?;
                f.write_str(")")
            }
            Node::Method(base, method) => {
                base.write(f, true)?;
                f.write_str(match method {
                    Method::Type => ".type()",
                    Method::Size => ".size()",
                    Method::Double => ".double()",
                    Method::Abs => ".abs()",
                    Method::Floor => ".floor()",
                    Method::Ceiling => ".ceiling()",
                })
            }
            Node::Cmp(op, a, b) => {
                let op = match op {
                    CmpOp::Eq => "==",
                    CmpOp::Ne => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                binary(f, a, op, b)
            }
            Node::Arith(op, a, b) => {
                let op = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Mod => "%",
                };
                binary(f, a, op, b)
            }
            Node::And(a, b) => binary(f, a, "&&", b),
            Node::Or(a, b) => binary(f, a, "||", b),
            Node::StartsWith(a, b) => binary(f, a, "starts with", b),
            Node::Unary { negate, operand } => {
                if brackets {
                    f.write_str("(")?;
                }
                f.write_str(if *negate { "-" } else { "+" })?;
                operand.write(f, inner(operand))?;
                if brackets {
                    f.write_str(")")?;
                }
                Ok(())
            }
            Node::Not(a) => {
                f.write_str("!(")?;
                a.write(f, false)?;
                f.write_str(")")
            }
            Node::Exists(a) => {
                f.write_str("exists (")?;
                a.write(f, false)?;
                f.write_str(")")
            }
            Node::IsUnknown(a) => {
                f.write_str("(")?;
                a.write(f, false)?;
                f.write_str(") is unknown")
            }
        }
    }
}

/// A string as a JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.strict {
            f.write_str("strict ")?;
        }
        self.expr.write(f, true)
    }
}
