//! `CREATE SEQUENCE`'s options in any order, as PostgreSQL takes them:
//! sqlparser reads them only in one order (`AS`, `INCREMENT`, `MINVALUE`,
//! `MAXVALUE`, `START`, `CACHE`, `CYCLE`, `OWNED BY`), while SQLAlchemy
//! writes `START WITH` before `MINVALUE` and psql users write them as they
//! come. The tokens are put in sqlparser's order before it parses them;
//! anything unexpected is left as written (sqlparser then reports it).

use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use super::tokens;

/// sqlparser's order of the options, by the word each starts with.
const ORDER: &[&str] = &[
    "AS",
    "INCREMENT",
    "MINVALUE",
    "MAXVALUE",
    "START",
    "CACHE",
    "CYCLE",
    "OWNED",
];

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Reorders the options of a `CREATE [TEMP] SEQUENCE [IF NOT EXISTS]
/// name …` statement in `chunk`; other statements are left alone.
pub fn reorder(chunk: &mut Vec<TokenWithSpan>) {
    let first = chunk.iter().find(|t| !tokens::is_trivia(&t.token));
    if first.and_then(|t| word(&t.token)).as_deref() != Some("CREATE") {
        return;
    }
    let significant: Vec<usize> = (0..chunk.len())
        .filter(|&i| !tokens::is_trivia(&chunk[i].token) && chunk[i].token != Token::SemiColon)
        .collect();
    let words: Vec<Option<String>> = significant.iter().map(|&i| word(&chunk[i].token)).collect();
    let is = |k: usize, w: &str| words.get(k).and_then(|x| x.as_deref()) == Some(w);
    let mut k = 1;
    if !is(0, "CREATE") {
        return;
    }
    if is(k, "TEMP") || is(k, "TEMPORARY") {
        k += 1;
    }
    if !is(k, "SEQUENCE") {
        return;
    }
    k += 1;
    if is(k, "IF") && is(k + 1, "NOT") && is(k + 2, "EXISTS") {
        k += 3;
    }
    // The name: words joined by dots.
    k += 1;
    while significant
        .get(k)
        .is_some_and(|&i| chunk[i].token == Token::Period)
    {
        k += 2;
    }
    // Each option runs from its first word (or NO before it) to the next
    // option's.
    let starts_option = |k: usize| {
        let w = words.get(k).and_then(|x| x.as_deref());
        let after_no = words.get(k + 1).and_then(|x| x.as_deref());
        match w {
            Some("NO") => matches!(after_no, Some("MINVALUE" | "MAXVALUE" | "CYCLE")),
            Some(w) => ORDER.contains(&w) && !(w == "CYCLE" && k > 0 && is(k - 1, "NO")),
            None => false,
        }
    };
    let mut options: Vec<(usize, Vec<TokenWithSpan>)> = Vec::new();
    for j in k..significant.len() {
        if starts_option(j) {
            let key = if is(j, "NO") { j + 1 } else { j };
            let Some(rank) = ORDER.iter().position(|o| is(key, o)) else {
                return;
            };
            options.push((rank, Vec::new()));
        }
        match options.last_mut() {
            Some((_, tokens)) => tokens.push(chunk[significant[j]].clone()),
            None => return,
        }
    }
    if options.windows(2).all(|w| w[0].0 <= w[1].0) {
        return;
    }
    options.sort_by_key(|(rank, _)| *rank);
    let Some(&end_of_name) = significant.get(k.wrapping_sub(1)) else {
        return;
    };
    let tail: Vec<TokenWithSpan> =
        chunk[significant.last().map_or(chunk.len(), |&l| l + 1)..].to_vec();
    chunk.truncate(end_of_name + 1);
    for (_, tokens) in options {
        for t in tokens {
            chunk.push(TokenWithSpan::new(
                Token::Whitespace(Whitespace::Space),
                t.span,
            ));
            chunk.push(t);
        }
    }
    chunk.extend(tail);
}

#[cfg(test)]
mod tests {
    use crate::sql::parse;

    #[test]
    fn options_in_any_order_parse_as_in_postgresql() {
        for sql in [
            "CREATE SEQUENCE s AS integer START 5 INCREMENT 2 MAXVALUE 1000 CACHE 3 CYCLE",
            "CREATE SEQUENCE s START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1",
            "CREATE SEQUENCE IF NOT EXISTS public.s NO CYCLE START -3 MINVALUE -10",
            "CREATE SEQUENCE s START WITH 10 INCREMENT BY 5 NO CYCLE MINVALUE 10 AS integer",
        ] {
            let stmt = parse(sql).expect(sql);
            assert!(
                matches!(
                    stmt[0].ast,
                    sqlparser::ast::Statement::CreateSequence { .. }
                ),
                "{sql}"
            );
        }
        let in_order = parse("CREATE SEQUENCE s INCREMENT 2 START 5").unwrap();
        assert_eq!(
            in_order[0].ast.to_string(),
            "CREATE SEQUENCE s INCREMENT 2 START 5"
        );
    }
}
