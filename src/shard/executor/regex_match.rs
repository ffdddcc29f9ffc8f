//! PostgreSQL's regular-expression match operators (`~`, `~*`, `!~`,
//! `!~*`, also spelled `OPERATOR(pg_catalog.~)`), and the built-in
//! operators written in that qualified form.

use crate::wire::PgError;
use regex::{Regex, RegexBuilder};
use sqlparser::ast::BinaryOperator;
use std::cell::RefCell;
use std::collections::HashMap;

/// The built-in operator `OPERATOR(pg_catalog.op)` names (psql writes its
/// catalog queries this way), or `None` for any other operator.
pub fn qualified_builtin(op: &BinaryOperator) -> Option<BinaryOperator> {
    let BinaryOperator::PGCustomBinaryOperator(parts) = op else {
        return None;
    };
    let symbol = match parts.as_slice() {
        [schema, symbol] if schema.eq_ignore_ascii_case("pg_catalog") => symbol,
        [symbol] => symbol,
        _ => return None,
    };
    Some(match symbol.as_str() {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

/// How a regular-expression operator matches: (negated, case-insensitive).
pub fn regex_operator(op: &BinaryOperator) -> Option<(bool, bool)> {
    match op {
        BinaryOperator::PGRegexMatch => Some((false, false)),
        BinaryOperator::PGRegexIMatch => Some((false, true)),
        BinaryOperator::PGRegexNotMatch => Some((true, false)),
        BinaryOperator::PGRegexNotIMatch => Some((true, true)),
        _ => None,
    }
}

/// Patterns compiled by this thread, so a scan compiles each once.
const CACHED_PATTERNS: usize = 64;

thread_local! {
    static COMPILED: RefCell<HashMap<(String, bool), Regex>> = RefCell::new(HashMap::new());
}

/// Whether `text` matches `pattern` anywhere (PostgreSQL's `~`; `fold`
/// for `~*`). A pattern that does not compile is 2201B.
pub fn matches(text: &str, pattern: &str, fold: bool) -> Result<bool, PgError> {
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (pattern.to_string(), fold);
        if let Some(re) = cache.get(&key) {
            return Ok(re.is_match(text));
        }
        let re = RegexBuilder::new(pattern)
            .case_insensitive(fold)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                PgError::new(
                    "2201B",
                    format!(
                        "invalid regular expression: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                )
            })?;
        let hit = re.is_match(text);
        if cache.len() >= CACHED_PATTERNS {
            cache.clear();
        }
        cache.insert(key, re);
        Ok(hit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_postgres() {
        assert!(matches("items", "^(items)$", false).unwrap());
        assert!(!matches("Items", "^(items)$", false).unwrap());
        assert!(matches("Items", "^(items)$", true).unwrap());
        assert!(matches("pg_toast", "^pg_toast", false).unwrap());
        assert_eq!(matches("x", "(", false).unwrap_err().code, "2201B");
    }

    #[test]
    fn qualified_operators_name_builtins() {
        let op = |p: &[&str]| {
            BinaryOperator::PGCustomBinaryOperator(p.iter().map(|s| s.to_string()).collect())
        };
        assert_eq!(
            qualified_builtin(&op(&["pg_catalog", "~"])),
            Some(BinaryOperator::PGRegexMatch)
        );
        assert_eq!(
            qualified_builtin(&op(&["pg_catalog", "="])),
            Some(BinaryOperator::Eq)
        );
        assert_eq!(qualified_builtin(&op(&["public", "~"])), None);
    }
}
