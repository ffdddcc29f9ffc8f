//! `DEALLOCATE [PREPARE] { name | ALL }` as SQL. Named prepared statements
//! live in this layer (the extended protocol's Parse and Close), so the
//! SQL form that drops them is answered here too rather than by a
//! handler: psycopg sends `DEALLOCATE ALL` after a rolled-back transaction
//! once it has prepared statements, and a shard (or, behind the proxy, a
//! pooled backend connection) does not hold the client's statements.

/// What a DEALLOCATE statement drops.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Deallocate {
    /// Every named statement.
    All,
    /// The statement with this (case-folded or quoted) name.
    Named(String),
}

impl Deallocate {
    /// The statement if `sql` is exactly one DEALLOCATE, else `None`.
    pub(crate) fn parse(sql: &str) -> Option<Deallocate> {
        let sql = sql.trim().trim_end_matches(';').trim_end();
        let mut words = sql.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("deallocate") {
            return None;
        }
        let mut target = words.next()?;
        if target.eq_ignore_ascii_case("prepare") {
            target = words.next()?;
        }
        if words.next().is_some() {
            return None;
        }
        if target.eq_ignore_ascii_case("all") {
            return Some(Deallocate::All);
        }
        let name = match target.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) if !quoted.is_empty() => quoted.replace("\"\"", "\""),
            Some(_) => return None,
            None if target
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$') =>
            {
                target.to_lowercase()
            }
            None => return None,
        };
        Some(Deallocate::Named(name))
    }

    /// The CommandComplete tag PostgreSQL sends.
    pub(crate) fn tag(&self) -> &'static str {
        match self {
            Deallocate::All => "DEALLOCATE ALL",
            Deallocate::Named(_) => "DEALLOCATE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_forms_postgres_accepts() {
        assert_eq!(Deallocate::parse("DEALLOCATE ALL"), Some(Deallocate::All));
        assert_eq!(
            Deallocate::parse(" deallocate prepare _PG3_1 ;"),
            Some(Deallocate::Named("_pg3_1".into()))
        );
        assert_eq!(
            Deallocate::parse("DEALLOCATE \"S\"\"1\""),
            Some(Deallocate::Named("S\"1".into()))
        );
        assert_eq!(Deallocate::parse("DEALLOCATE"), None);
        assert_eq!(Deallocate::parse("DEALLOCATE a; SELECT 1"), None);
        assert_eq!(Deallocate::parse("SELECT 'DEALLOCATE ALL'"), None);
    }
}
