//! Recognising pgvector's nearest-neighbour query shape:
//! `SELECT … FROM t [WHERE …] ORDER BY <col> <op> <value> LIMIT n [OFFSET o]`,
//! and the two-stage rerank pattern whose inner query is such a query.
//!
//! An ANN index (on a shard) and the exact top-K merge (in the proxy) can
//! only serve this shape, so recognition is strict: anything that could
//! change which rows come first (DISTINCT, GROUP BY, joins, a second sort
//! key, DESC, NULLS FIRST) makes it not a KNN query.

use ann::{Metric, VectorType};
use sqlparser::ast::{
    BinaryOperator, DataType, Expr, LimitClause, ObjectName, OrderByKind, OrderBySort, Query,
    Select, SelectItem, SetExpr, TableFactor, Value, WildcardAdditionalOptions,
};

use super::names::{column_name, fold, TableName};
use super::parse::Statement;

/// The metric of a pgvector distance operator.
pub fn distance_operator(op: &BinaryOperator) -> Option<Metric> {
    match op {
        BinaryOperator::Custom(s) => match s.as_str() {
            "<->" => Some(Metric::L2),
            "<#>" => Some(Metric::InnerProduct),
            "<=>" => Some(Metric::Cosine),
            "<+>" => Some(Metric::L1),
            "<~>" => Some(Metric::Hamming),
            "<%>" => Some(Metric::Jaccard),
            _ => None,
        },
        BinaryOperator::LtDashGt => Some(Metric::L2),
        BinaryOperator::Spaceship => Some(Metric::Cosine),
        _ => None,
    }
}

/// A recognised KNN query.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnQuery {
    /// The table searched.
    pub table: TableName,
    /// The vector column under the ordered expression.
    pub column: String,
    /// The ordered expression's column side: the column itself, or an
    /// expression over it such as `binary_quantize(embedding)::bit(3)`
    /// (which an expression index may serve).
    pub column_expr: Expr,
    /// The whole distance expression as written.
    pub distance: Expr,
    /// The distance operator's metric.
    pub metric: Metric,
    /// The query vector.
    pub query: QueryVector,
    /// LIMIT.
    pub limit: Bound,
    /// OFFSET, when given.
    pub offset: Option<Bound>,
    /// Whether a WHERE filters the rows.
    pub has_where: bool,
    /// The output column that already holds this distance: the index of a
    /// select item equal to the distance expression, counted only when no
    /// wildcard comes before it (so it is also the output column index).
    pub projected_distance: Option<usize>,
    /// For the two-stage rerank pattern: the outer query's ordering.
    pub rerank: Option<Box<Rerank>>,
}

/// The outer stage of a rerank query: it re-orders the inner KNN's rows by
/// a second distance and keeps the first `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerank {
    /// The outer distance expression.
    pub distance: Expr,
    /// Its metric.
    pub metric: Metric,
    /// Its query vector.
    pub query: QueryVector,
    /// The outer LIMIT.
    pub limit: Bound,
    /// The outer OFFSET, when given.
    pub offset: Option<Bound>,
}

/// A LIMIT or OFFSET: a constant plus a sum of parameters (`5`, `$2`,
/// and after rewriting `$3 + $2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The constant part.
    pub constant: u64,
    /// The 1-based parameters added to it.
    pub params: Vec<usize>,
}

impl Bound {
    /// A constant bound.
    pub fn value(n: u64) -> Bound {
        Bound {
            constant: n,
            params: Vec::new(),
        }
    }

    /// A bound that is the parameter `$n`.
    pub fn param(n: usize) -> Bound {
        Bound {
            constant: 0,
            params: vec![n],
        }
    }

    /// The sum of two bounds.
    pub fn plus(&self, other: &Bound) -> Bound {
        Bound {
            constant: self.constant.saturating_add(other.constant),
            params: self.params.iter().chain(&other.params).copied().collect(),
        }
    }

    /// The value, given each parameter's (non-negative) value.
    pub fn resolve(&self, param: impl Fn(usize) -> Option<u64>) -> Option<u64> {
        self.params
            .iter()
            .try_fold(self.constant, |acc, &n| Some(acc.saturating_add(param(n)?)))
    }

    /// The bound as SQL: `$3 + $2`, `15`, `$2 + 5`.
    pub fn to_expr(&self) -> Expr {
        let mut terms = self
            .params
            .iter()
            .map(|n| Expr::value(Value::Placeholder(format!("${n}"))));
        let number = Expr::value(Value::Number(self.constant.to_string(), false));
        let first = terms.next();
        let sum = first.map(|first| {
            terms.fold(first, |acc, t| Expr::BinaryOp {
                left: Box::new(acc),
                op: BinaryOperator::Plus,
                right: Box::new(t),
            })
        });
        match sum {
            None => number,
            Some(sum) if self.constant == 0 => sum,
            Some(sum) => Expr::BinaryOp {
                left: Box::new(sum),
                op: BinaryOperator::Plus,
                right: Box::new(number),
            },
        }
    }
}

/// The constant side of a distance expression.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVector {
    /// Where the value comes from.
    pub source: VectorSource,
    /// The vector type of an explicit cast (`'[1,2]'::vector`,
    /// `$1::halfvec(3)`), if any; otherwise the column's type applies.
    pub cast: Option<VectorCast>,
}

/// Where a query vector's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorSource {
    /// A string literal's text, e.g. `[1,2,3]`.
    Literal(String),
    /// `$n` (1-based).
    Param(usize),
    /// Any other constant expression, e.g. `binary_quantize('[1,-2]')`.
    Expression(Box<Expr>),
}

/// A cast to one of pgvector's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorCast {
    /// The target type.
    pub ty: VectorType,
    /// Its typmod (dimensions, or bits for `bit(n)`), if written.
    pub typmod: Option<u32>,
}

/// Recognises a KNN query (or a rerank query around one).
pub fn knn_query(statement: &Statement) -> Option<KnnQuery> {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(query) = &statement.ast else {
            return None;
        };
        knn_of_query(query)
    })
}

fn knn_of_query(query: &Query) -> Option<KnnQuery> {
    crate::stack::guard(|| {
        let select = plain_select(query)?;
        let ordered = single_ascending_key(query)?;
        let (limit, offset) = limit_offset(query)?;
        let (distance, projected) = resolve_order_key(select, ordered);
        let (metric, column_side, value_side) = split_distance(distance)?;
        let [from] = select.from.as_slice() else {
            return None;
        };
        if !from.joins.is_empty() {
            return None;
        }
        match &from.relation {
            TableFactor::Table {
                name, args: None, ..
            } => {
                let column = underlying_column(column_side)?;
                Some(KnnQuery {
                    table: TableName::from_object_name(name)?,
                    column,
                    column_expr: column_side.clone(),
                    metric,
                    query: query_vector(value_side),
                    distance: distance.clone(),
                    limit,
                    offset,
                    has_where: select.selection.is_some(),
                    projected_distance: projected,
                    rerank: None,
                })
            }
            TableFactor::Derived {
                subquery,
                lateral: false,
                alias,
                ..
            } if select.selection.is_none()
                && alias.as_ref().is_none_or(|a| a.columns.is_empty())
                && is_plain_star(&select.projection) =>
            {
                let inner = knn_of_query(subquery).filter(|k| k.rerank.is_none())?;
                underlying_column(column_side)?;
                let inner_select = plain_select(subquery)?;
                if !reads_only_outputs(distance, &inner_select.projection) {
                    return None;
                }
                Some(KnnQuery {
                    rerank: Some(Box::new(Rerank {
                        distance: distance.clone(),
                        metric,
                        query: query_vector(value_side),
                        limit,
                        offset,
                    })),
                    ..inner
                })
            }
            _ => None,
        }
    })
}

/// `SELECT *` (no qualifier, EXCLUDE, REPLACE or other options): the
/// outer query of a rerank returns the inner query's rows as they are.
fn is_plain_star(projection: &[SelectItem]) -> bool {
    matches!(projection, [SelectItem::Wildcard(options)] if *options == WildcardAdditionalOptions::default())
}

/// Whether every column the outer distance reads is an unqualified name
/// the inner query outputs as that same table column (`SELECT id,
/// embedding …` or `SELECT * …` without an alias of that name), so the
/// distance can be computed inside the inner query on each shard.
fn reads_only_outputs(distance: &Expr, inner: &[SelectItem]) -> bool {
    let star = inner
        .iter()
        .any(|item| matches!(item, SelectItem::Wildcard(o) if *o == WildcardAdditionalOptions::default()));
    let outputs_column = |name: &str| {
        let aliased = inner.iter().any(
            |item| matches!(item, SelectItem::ExprWithAlias { alias, .. } if fold(alias) == name),
        );
        let projected = inner.iter().any(
            |item| matches!(item, SelectItem::UnnamedExpr(Expr::Identifier(i)) if fold(i) == name),
        );
        projected || (star && !aliased)
    };
    let mut ok = true;
    let _ = sqlparser::ast::visit_expressions(distance, |e| {
        ok &= match e {
            Expr::Identifier(i) => outputs_column(&fold(i)),
            Expr::CompoundIdentifier(_) | Expr::Subquery(_) => false,
            _ => true,
        };
        std::ops::ControlFlow::<()>::Continue(())
    });
    ok
}

/// The query's body when it is one SELECT without grouping, DISTINCT,
/// HAVING or locking.
pub(crate) fn plain_select(query: &Query) -> Option<&Select> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if grouped
        || select.distinct.is_some()
        || select.having.is_some()
        || query.fetch.is_some()
        || !query.locks.is_empty()
    {
        return None;
    }
    Some(select)
}

fn single_ascending_key(query: &Query) -> Option<&Expr> {
    let OrderByKind::Expressions(keys) = &query.order_by.as_ref()?.kind else {
        return None;
    };
    let [key] = keys.as_slice() else {
        return None;
    };
    let ascending = matches!(key.options.sort, None | Some(OrderBySort::Asc));
    let nulls_last = key.options.nulls_first != Some(true);
    (ascending && nulls_last && key.with_fill.is_none()).then_some(&key.expr)
}

/// LIMIT (required) and OFFSET, each a constant or a parameter.
fn limit_offset(query: &Query) -> Option<(Bound, Option<Bound>)> {
    match limit_offset_parts(query)? {
        (Some(limit), offset) => Some((limit, offset)),
        (None, _) => None,
    }
}

/// LIMIT and OFFSET when each is absent, a constant or a parameter; None
/// when either is some other expression (or MySQL's `LIMIT o, l`).
pub(crate) fn limit_offset_parts(query: &Query) -> Option<(Option<Bound>, Option<Bound>)> {
    let Some(clause) = query.limit_clause.as_ref() else {
        return Some((None, None));
    };
    let LimitClause::LimitOffset {
        limit,
        offset,
        limit_by,
    } = clause
    else {
        return None;
    };
    if !limit_by.is_empty() {
        return None;
    }
    let limit = match limit {
        Some(l) => Some(bound(l)?),
        None => None,
    };
    let offset = match offset {
        Some(o) => Some(bound(&o.value)?),
        None => None,
    };
    Some((limit, offset))
}

/// `"LIMIT"` or `"OFFSET"` when that clause is a negative constant
/// (`-1`, `'-1'`, `'-1'::INTEGER`), which PostgreSQL refuses.
pub fn negative_bound(query: &Query) -> Option<&'static str> {
    fn constant(e: &Expr) -> Option<i64> {
        crate::stack::guard(|| match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) | Value::SingleQuotedString(n) => n.trim().parse().ok(),
                _ => None,
            },
            Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Minus,
                expr,
            } => constant(expr).map(|n| -n),
            Expr::Nested(e) | Expr::Cast { expr: e, .. } => constant(e),
            _ => None,
        })
    }
    let Some(LimitClause::LimitOffset { limit, offset, .. }) = &query.limit_clause else {
        return None;
    };
    let negative = |e: &Expr| constant(e).is_some_and(|n| n < 0);
    if limit.as_ref().is_some_and(negative) {
        return Some("LIMIT");
    }
    offset
        .as_ref()
        .filter(|o| negative(&o.value))
        .map(|_| "OFFSET")
}

fn bound(expr: &Expr) -> Option<Bound> {
    crate::stack::guard(|| match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok().map(Bound::value),
            // `LIMIT '1'::INTEGER` (SQLAlchemy on psycopg2 inlines its
            // parameters as quoted literals).
            Value::SingleQuotedString(n) => n.trim().parse().ok().map(Bound::value),
            Value::Placeholder(p) => placeholder_index(p).map(Bound::param),
            _ => None,
        },
        Expr::Nested(e) => bound(e),
        // `LIMIT $2::INTEGER` (SQLAlchemy on psycopg 3).
        Expr::Cast {
            expr,
            data_type:
                DataType::Int(_)
                | DataType::Integer(_)
                | DataType::BigInt(_)
                | DataType::SmallInt(_)
                | DataType::Int2(_)
                | DataType::Int4(_)
                | DataType::Int8(_),
            ..
        } => bound(expr),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Plus,
            right,
        } => Some(bound(left)?.plus(&bound(right)?)),
        _ => None,
    })
}

/// `$n` → n (1-based); None for anything else.
pub fn placeholder_index(text: &str) -> Option<usize> {
    text.strip_prefix('$')?.parse().ok().filter(|n| *n > 0)
}

/// Resolves an ORDER BY key that names an output column (by alias or
/// position) to the select item's expression, and finds the output
/// column that already projects it.
pub(crate) fn resolve_order_key<'a>(
    select: &'a Select,
    key: &'a Expr,
) -> (&'a Expr, Option<usize>) {
    let items = &select.projection;
    let wildcard_before = |i: usize| {
        items[..i].iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
    };
    let item_expr = |i: usize| match items.get(i) {
        Some(SelectItem::UnnamedExpr(e)) | Some(SelectItem::ExprWithAlias { expr: e, .. }) => {
            Some(e)
        }
        _ => None,
    };
    if let Expr::Value(v) = key {
        if let Value::Number(n, _) = &v.value {
            // A position counts output columns, `*` expanded: the column
            // is known, its expression only when no `*` comes before.
            let Some(p) = n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)) else {
                return (key, None);
            };
            return match item_expr(p).filter(|_| !wildcard_before(p + 1)) {
                Some(e) => (e, Some(p)),
                None => (key, Some(p)),
            };
        }
    }
    let by_alias = match key {
        Expr::Identifier(ident) => items.iter().position(|item| {
            matches!(item, SelectItem::ExprWithAlias { alias, .. } if fold(alias) == fold(ident))
        }),
        _ => None,
    };
    let (expr, index) = match by_alias.and_then(|i| Some((item_expr(i)?, i))) {
        Some((e, i)) => (e, Some(i)),
        None => (key, item_index_of(items, key)),
    };
    (expr, index.filter(|&i| !wildcard_before(i)))
}

fn item_index_of(items: &[SelectItem], expr: &Expr) -> Option<usize> {
    items.iter().position(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e == expr,
        _ => false,
    })
}

/// Splits `a <op> b` into (metric, column side, constant side).
fn split_distance(expr: &Expr) -> Option<(Metric, &Expr, &Expr)> {
    crate::stack::guard(|| match expr {
        Expr::Nested(inner) => split_distance(inner),
        Expr::BinaryOp { left, op, right } => {
            let metric = distance_operator(op)?;
            match (is_constant(left), is_constant(right)) {
                (false, true) => Some((metric, &**left, &**right)),
                (true, false) => Some((metric, &**right, &**left)),
                _ => None,
            }
        }
        _ => None,
    })
}

/// The one column an expression such as `binary_quantize(c)::bit(3)` reads.
fn underlying_column(expr: &Expr) -> Option<String> {
    if let Some(name) = column_name(expr) {
        return Some(name);
    }
    let mut found: Option<String> = None;
    let mut many = false;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Some(name) = column_name(e) {
            many |= found.as_ref().is_some_and(|f| *f != name);
            found.get_or_insert(name);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found.filter(|_| !many)
}

/// Whether an expression reads no column (so it is the same on every row).
pub(crate) fn is_constant(expr: &Expr) -> bool {
    let mut constant = true;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if matches!(
            e,
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_)
        ) {
            constant = false;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    constant
}

/// Reads the constant side of a distance: literal or parameter, through
/// any casts to pgvector types.
pub(crate) fn query_vector(expr: &Expr) -> QueryVector {
    let (inner, cast) = strip_vector_cast(expr);
    let source = match inner {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => VectorSource::Literal(s.clone()),
            Value::Placeholder(p) => match placeholder_index(p) {
                Some(n) => VectorSource::Param(n),
                None => VectorSource::Expression(Box::new(inner.clone())),
            },
            _ => VectorSource::Expression(Box::new(inner.clone())),
        },
        Expr::TypedString(t) => match &t.value.value {
            Value::SingleQuotedString(s) => VectorSource::Literal(s.clone()),
            _ => VectorSource::Expression(Box::new(inner.clone())),
        },
        _ => VectorSource::Expression(Box::new(expr.clone())),
    };
    let cast = match (&source, cast) {
        (VectorSource::Expression(_), _) => None,
        (_, cast) => cast,
    };
    QueryVector { source, cast }
}

fn strip_vector_cast(expr: &Expr) -> (&Expr, Option<VectorCast>) {
    crate::stack::guard(|| match expr {
        Expr::Nested(e) => strip_vector_cast(e),
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => match vector_cast(data_type) {
            Some(cast) => (strip_vector_cast(inner).0, Some(cast)),
            None => (expr, None),
        },
        Expr::TypedString(t) => (expr, vector_cast(&t.data_type)),
        _ => (expr, None),
    })
}

/// The pgvector type a SQL type names (`vector(3)`, `halfvec`, `bit(8)`).
pub fn vector_cast(data_type: &DataType) -> Option<VectorCast> {
    match data_type {
        DataType::Bit(n) => Some(VectorCast {
            ty: VectorType::Bit,
            typmod: n.and_then(|n| u32::try_from(n).ok()),
        }),
        DataType::Custom(name, modifiers) => {
            let ty = vector_type_named(name)?;
            let typmod = match modifiers.as_slice() {
                [] => None,
                [m] => Some(m.parse().ok()?),
                _ => return None,
            };
            Some(VectorCast { ty, typmod })
        }
        _ => None,
    }
}

fn vector_type_named(name: &ObjectName) -> Option<VectorType> {
    let last = name.0.last()?.as_ident()?;
    match fold(last).as_str() {
        "vector" => Some(VectorType::Vector),
        "halfvec" => Some(VectorType::HalfVec),
        "sparsevec" => Some(VectorType::SparseVec),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    fn knn(sql: &str) -> Option<KnnQuery> {
        knn_query(&parse_single(sql).unwrap())
    }

    #[test]
    fn every_operator_is_recognised() {
        for (op, metric) in [
            ("<->", Metric::L2),
            ("<#>", Metric::InnerProduct),
            ("<=>", Metric::Cosine),
            ("<+>", Metric::L1),
            ("<~>", Metric::Hamming),
            ("<%>", Metric::Jaccard),
        ] {
            let k = knn(&format!(
                "SELECT id FROM items ORDER BY embedding {op} '[1,2,3]' LIMIT 5"
            ))
            .unwrap_or_else(|| panic!("{op}"));
            assert_eq!(k.metric, metric);
            assert_eq!(k.table.name, "items");
            assert_eq!(k.column, "embedding");
            assert_eq!(k.query.source, VectorSource::Literal("[1,2,3]".into()));
            assert_eq!(k.query.cast, None);
            assert_eq!((k.limit, k.offset), (Bound::value(5), None));
            assert!(!k.has_where);
            assert_eq!(k.projected_distance, None);
        }
    }

    #[test]
    fn casts_parameters_offsets_and_projection() {
        let k = knn(
            "SELECT id, embedding <=> $1::vector(3) AS d FROM items WHERE category = 5 \
             ORDER BY embedding <=> $1::vector(3) LIMIT $2 OFFSET $3",
        )
        .unwrap();
        assert_eq!(k.query.source, VectorSource::Param(1));
        assert_eq!(
            k.query.cast,
            Some(VectorCast {
                ty: VectorType::Vector,
                typmod: Some(3)
            })
        );
        assert_eq!(
            (k.limit, k.offset),
            (Bound::param(2), Some(Bound::param(3)))
        );
        let cast = knn("SELECT id FROM items ORDER BY embedding <-> $1 LIMIT $2::INTEGER").unwrap();
        assert_eq!(cast.limit, Bound::param(2));
        let quoted =
            knn("SELECT id FROM items ORDER BY embedding <-> $1 LIMIT '3'::INTEGER").unwrap();
        assert_eq!(quoted.limit, Bound::value(3));
        assert!(k.has_where);
        assert_eq!(k.projected_distance, Some(1));

        let k = knn("SELECT id, '[1,2]'::halfvec <-> h AS d FROM t ORDER BY d LIMIT 3 OFFSET 2")
            .unwrap();
        assert_eq!(k.column, "h");
        assert_eq!(k.query.cast.unwrap().ty, VectorType::HalfVec);
        assert_eq!(k.projected_distance, Some(1));
        assert_eq!(k.offset, Some(Bound::value(2)));

        assert!(
            knn("SELECT *, embedding <-> '[1]' FROM t ORDER BY 2 LIMIT 1").is_none(),
            "a position after * is a column of *, not the distance"
        );
    }

    #[test]
    fn shapes_that_are_not_knn() {
        for sql in [
            "SELECT id FROM items ORDER BY embedding <-> '[1,2]'",
            "SELECT id FROM items ORDER BY embedding <-> '[1,2]' DESC LIMIT 5",
            "SELECT id FROM items ORDER BY embedding <-> '[1,2]', id LIMIT 5",
            "SELECT id FROM items ORDER BY id LIMIT 5",
            "SELECT DISTINCT id FROM items ORDER BY 1 LIMIT 5",
            "SELECT a.id FROM items a JOIN b ON a.id = b.id ORDER BY a.embedding <-> '[1]' LIMIT 5",
            "SELECT id FROM items ORDER BY embedding <-> other LIMIT 5",
            "SELECT id FROM items ORDER BY embedding <-> '[1]' LIMIT ALL",
            "SELECT id FROM items ORDER BY embedding <-> '[1]' NULLS FIRST LIMIT 3",
        ] {
            assert!(knn(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn rerank_pattern() {
        let k = knn(
            "SELECT * FROM (SELECT * FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> \
             binary_quantize('[1,-2,3]') LIMIT 20) ORDER BY embedding <=> '[1,-2,3]' LIMIT 5",
        )
        .unwrap();
        assert_eq!(k.metric, Metric::Hamming);
        assert_eq!(k.column, "embedding");
        assert_eq!(k.limit, Bound::value(20));
        assert!(matches!(k.query.source, VectorSource::Expression(_)));
        let outer = k.rerank.unwrap();
        assert_eq!(outer.metric, Metric::Cosine);
        assert_eq!(outer.limit, Bound::value(5));
        assert_eq!(outer.query.source, VectorSource::Literal("[1,-2,3]".into()));
    }

    #[test]
    fn rerank_needs_outer_star_over_inner_columns() {
        let inner = "ORDER BY binary_quantize(e)::bit(3) <~> binary_quantize('[1,-2,3]') LIMIT 20";
        for ok in [
            format!("SELECT * FROM (SELECT id, e FROM t {inner}) ORDER BY e <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT * FROM t {inner}) s ORDER BY e <-> '[1,2,3]' LIMIT 5"),
        ] {
            assert!(knn(&ok).and_then(|k| k.rerank).is_some(), "{ok}");
        }
        for refused in [
            format!("SELECT id FROM (SELECT id, e FROM t {inner}) ORDER BY e <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT id, x AS e FROM t {inner}) ORDER BY e <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT *, x AS e FROM t {inner}) ORDER BY e <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT id, e FROM t {inner}) s(a, b) ORDER BY b <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT id, e FROM t {inner}) s ORDER BY s.e <=> '[1,2,3]' LIMIT 5"),
            format!("SELECT * FROM (SELECT id FROM t {inner}) ORDER BY e <=> '[1,2,3]' LIMIT 5"),
        ] {
            assert!(knn(&refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn bounds_add_and_resolve() {
        let b = Bound::param(3)
            .plus(&Bound::param(2))
            .plus(&Bound::value(4));
        assert_eq!(b.to_expr().to_string(), "$3 + $2 + 4");
        assert_eq!(b.resolve(|n| Some(n as u64 * 10)), Some(54));
        assert_eq!(b.resolve(|_| None), None);
        assert_eq!(Bound::value(7).to_expr().to_string(), "7");
    }

    #[test]
    fn bit_and_typed_string_casts() {
        let k = knn("SELECT id FROM t ORDER BY b <~> '101'::bit(3) LIMIT 1").unwrap();
        assert_eq!(
            k.query.cast,
            Some(VectorCast {
                ty: VectorType::Bit,
                typmod: Some(3)
            })
        );
        let k =
            knn("SELECT id FROM t ORDER BY v <-> CAST('{1:1}/3' AS sparsevec) LIMIT 1").unwrap();
        assert_eq!(k.query.cast.unwrap().ty, VectorType::SparseVec);
    }
}
