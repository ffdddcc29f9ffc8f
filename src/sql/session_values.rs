//! Functions whose value comes from the client's session — `current_user`,
//! `session_user`, `user`, `current_role`, `current_database()`,
//! `current_catalog` and `current_setting(name [, missing_ok])` — replaced
//! by literals before a proxy sends the statement to a shard: the shard's
//! pooled connection belongs to another session (the proxy's user, the
//! shard's settings), so it would answer for that one. A select item that
//! is only such a call keeps PostgreSQL's column name through an alias.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, SelectItem, SetExpr, Value,
    VisitMut, VisitorMut,
};

use super::error::{Result, SqlError};
use super::parse::Statement;

/// What the session functions read.
pub trait SessionValues {
    /// The user the client connected as.
    fn user(&self) -> &str;
    /// The database the client connected to.
    fn database(&self) -> &str;
    /// A setting as `SHOW` prints it; `None` when there is no such setting.
    fn setting(&self, name: &str) -> Option<String>;
}

/// The statement with every session function replaced by its value, or
/// `None` when it calls none (the common case: decided from the text).
pub fn bind_session_values(
    statement: &Statement,
    values: &dyn SessionValues,
) -> Result<Option<Statement>> {
    crate::stack::with_tree(statement.depth, || {
        if !may_use_session_values(statement) {
            return Ok(None);
        }
        let mut ast = statement.ast.clone();
        let mut binder = Binder {
            values,
            changed: false,
            error: None,
        };
        if let ast::Statement::Query(q) = &mut ast {
            name_select_items(q);
        }
        let _ = ast.visit(&mut binder);
        if let Some(e) = binder.error {
            return Err(e);
        }
        Ok(binder.changed.then(|| Statement {
            text: ast.to_string(),
            ast,
            depth: statement.depth,
            leading_comments: statement.leading_comments.clone(),
            utility: None,
            truncated: statement.truncated.clone(),
        }))
    })
}

/// False when `statement` certainly calls no session function (its text
/// names none): [`bind_session_values`] then has nothing to replace.
pub fn may_use_session_values(statement: &Statement) -> bool {
    if statement.utility.is_some() {
        return false;
    }
    let text = statement.text.as_bytes();
    let mentions = |word: &str| {
        text.windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    ["user", "current_", "session_"].into_iter().any(mentions)
}

/// A session function call: its PostgreSQL column name and arguments.
/// One `set_config(name, value, is_local)` call with literal arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetConfigCall {
    /// The setting.
    pub name: String,
    /// Its new value.
    pub value: String,
    /// `is_local`: until the end of the transaction.
    pub local: bool,
}

/// Whether `statement` may call `set_config` (its text names it).
pub fn may_call_set_config(statement: &Statement) -> bool {
    statement.text.to_ascii_lowercase().contains("set_config")
}

/// The `set_config` calls with literal arguments `statement` makes. The
/// shard that runs the statement applies them to its own connection's
/// session; a proxy applies them to the client's once it succeeded.
pub fn set_config_calls(statement: &Statement) -> Vec<SetConfigCall> {
    if !may_call_set_config(statement) {
        return Vec::new();
    }
    crate::stack::with_tree(statement.depth, || {
        let mut calls = Vec::new();
        let _ = ast::visit_expressions(&statement.ast, |e| {
            if let Expr::Function(f) = e {
                let named = f.name.0.len() == 1
                    && f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("set_config"));
                if let (true, FunctionArguments::List(l)) = (named, &f.args) {
                    let args: Vec<&Expr> = l
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                            _ => None,
                        })
                        .collect();
                    if let [n, v, local] = args.as_slice() {
                        if let (Some(n), Some(v), Some(local)) =
                            (string_literal(n), string_literal(v), bool_literal(local))
                        {
                            calls.push(SetConfigCall {
                                name: n.to_string(),
                                value: v.to_string(),
                                local,
                            });
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        calls
    })
}

fn session_call(expr: &Expr) -> Option<(&'static str, Vec<&Expr>)> {
    let (name, args) = match expr {
        Expr::Identifier(id) if id.quote_style.is_none() => (id.value.to_ascii_lowercase(), None),
        Expr::Function(f) if f.name.0.len() == 1 => {
            let id = f.name.0[0].as_ident()?;
            if id.quote_style.is_some() {
                return None;
            }
            (id.value.to_ascii_lowercase(), Some(&f.args))
        }
        _ => return None,
    };
    fn list(args: Option<&FunctionArguments>) -> Option<Vec<&Expr>> {
        match args {
            None | Some(FunctionArguments::None) => Some(Vec::new()),
            Some(FunctionArguments::List(l)) => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                    _ => None,
                })
                .collect(),
            Some(FunctionArguments::Subquery(_)) => None,
        }
    }
    let bare = matches!(args, None | Some(FunctionArguments::None));
    let column = match name.as_str() {
        "current_user" | "current_role" | "session_user" | "user" | "current_catalog" if bare => {
            match name.as_str() {
                "current_user" => "current_user",
                "current_role" => "current_role",
                "session_user" => "session_user",
                "user" => "user",
                _ => "current_catalog",
            }
        }
        "current_database" if args.is_some() => "current_database",
        "current_setting" if args.is_some() => "current_setting",
        _ => return None,
    };
    let args = list(args)?;
    let arity_ok = match column {
        "current_database" => args.is_empty(),
        "current_setting" => matches!(args.len(), 1 | 2),
        _ => true,
    };
    arity_ok.then_some((column, args))
}

/// Aliases select items that are only a session call, so the literal that
/// replaces it keeps the call's column name.
fn name_select_items(query: &mut ast::Query) {
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(e) = item {
                if let Some((column, _)) = session_call(e) {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: Ident::with_quote('"', column),
                    };
                }
            }
        }
    }
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn bool_literal(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// `'text'::type`.
fn typed_literal(text: &str, ty: &str) -> Expr {
    Expr::Cast {
        kind: ast::CastKind::DoubleColon,
        expr: Box::new(Expr::value(Value::SingleQuotedString(text.to_string()))),
        data_type: ast::DataType::Custom(ast::ObjectName::from(vec![Ident::new(ty)]), Vec::new()),
        format: None,
    }
}

struct Binder<'a> {
    values: &'a dyn SessionValues,
    changed: bool,
    error: Option<SqlError>,
}

impl Binder<'_> {
    fn value(&self, column: &str, args: &[&Expr]) -> Option<Result<Expr>> {
        Some(Ok(match column {
            "current_database" | "current_catalog" => typed_literal(self.values.database(), "name"),
            "current_setting" => {
                // Only a constant name is bound; others stay for the shard.
                let name = string_literal(args[0])?;
                let missing_ok = match args.get(1) {
                    None => false,
                    Some(e) => bool_literal(e)?,
                };
                match self.values.setting(name) {
                    Some(v) => typed_literal(&v, "text"),
                    None if missing_ok => Expr::Cast {
                        kind: ast::CastKind::DoubleColon,
                        expr: Box::new(Expr::value(Value::Null)),
                        data_type: ast::DataType::Text,
                        format: None,
                    },
                    None => return Some(Err(SqlError::unrecognized_parameter(name))),
                }
            }
            _ => typed_literal(self.values.user(), "name"),
        }))
    }
}

impl VisitorMut for Binder<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Some((column, args)) = session_call(expr) else {
            return ControlFlow::Continue(());
        };
        match self.value(column, &args) {
            None => ControlFlow::Continue(()),
            Some(Ok(e)) => {
                *expr = e;
                self.changed = true;
                ControlFlow::Continue(())
            }
            Some(Err(e)) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_single;

    struct Alice;

    impl SessionValues for Alice {
        fn user(&self) -> &str {
            "alice"
        }
        fn database(&self) -> &str {
            "shop"
        }
        fn setting(&self, name: &str) -> Option<String> {
            (name == "search_path").then(|| "\"$user\", public".to_string())
        }
    }

    fn bound(sql: &str) -> Option<String> {
        bind_session_values(&parse_single(sql).unwrap(), &Alice)
            .unwrap()
            .map(|s| s.text.clone())
    }

    #[test]
    fn session_functions_become_literals_with_their_column_names() {
        assert_eq!(
            bound("SELECT current_user, session_user, user, current_database(), current_setting('search_path')").unwrap(),
            "SELECT 'alice'::name AS \"current_user\", 'alice'::name AS \"session_user\", 'alice'::name AS \"user\", 'shop'::name AS \"current_database\", '\"$user\", public'::text AS \"current_setting\""
        );
        assert_eq!(
            bound(
                "SELECT id FROM t WHERE owner = current_user AND x = current_setting('nope', true)"
            )
            .unwrap(),
            "SELECT id FROM t WHERE owner = 'alice'::name AND x = NULL::TEXT"
        );
        assert_eq!(bound("SELECT users FROM t"), None);
        assert_eq!(bound("SELECT current_setting(name) FROM s"), None);
        assert_eq!(bound("SELECT \"user\" FROM accounts"), None);
        let e = bind_session_values(
            &parse_single("SELECT current_setting('nope')").unwrap(),
            &Alice,
        )
        .unwrap_err();
        assert_eq!(e.sqlstate, "42704");
    }

    #[test]
    fn set_config_calls_with_literals_are_found() {
        let calls = |sql: &str| set_config_calls(&parse_single(sql).unwrap());
        assert_eq!(
            calls("SELECT 1, SET_CONFIG('search_path', 'a, b', false)"),
            vec![SetConfigCall {
                name: "search_path".into(),
                value: "a, b".into(),
                local: false
            }]
        );
        assert!(calls("SELECT set_config(name, 'x', true) FROM s").is_empty());
        assert!(calls("SELECT 'set_config'").is_empty());
    }
}
