//! What an ANN index on an expression or with a predicate reads from a row
//! (pgvector's half-precision, binary-quantization and subvector indexes,
//! and partial indexes such as `… WHERE (category_id = 1)`).
//!
//! The index definition keeps both as SQL text in `pg_get_expr`'s form;
//! storage compiles that text into the small closed forms below, so that
//! commit, WAL replay, standbys and checkpoint loads compute the same
//! values from a row without the executor:
//!
//! - expressions: a vector column under casts to `vector(n)`,
//!   `halfvec(n)` or `bit(n)`, `binary_quantize`, `subvector(x, a, b)` and
//!   `l2_normalize`, with a known number of dimensions;
//! - predicates: `column op constant` (`=`, `<>`, `<`, `<=`, `>`, `>=`),
//!   `column IS [NOT] NULL` and a boolean column, joined by `AND`.
//!
//! The executor computes an index's expression for every row it writes
//! and refuses the row on an error (as PostgreSQL does), so a value that
//! fails here (it cannot for a row that was accepted) is left out of the
//! index rather than failing the commit.

use super::catalog::{ColumnType, IndexDef, TableDef};
use super::error::{Result, StorageError};
use crate::shard::datum::{self, Datum, KeyValue};
use crate::sql::{fold, vector_cast};
use crate::wire::Value;
use ann::functions::dense;
use ann::VectorType;
use half::f16;
use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};
use std::cmp::Ordering;

/// A vector-valued expression over one row.
#[derive(Debug, Clone, PartialEq)]
enum VectorExpr {
    Column(usize),
    Cast(Box<VectorExpr>, VectorType, Option<u32>),
    BinaryQuantize(Box<VectorExpr>),
    Subvector(Box<VectorExpr>, i32, i32),
    L2Normalize(Box<VectorExpr>),
}

/// One condition of a predicate.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Compare(usize, Ordering, bool, KeyValue),
    IsNull(usize, bool),
}

/// What an index on an expression or with a predicate reads from a row.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSource {
    expression: Option<VectorExpr>,
    predicate: Vec<Condition>,
    ty: ColumnType,
    reads: Vec<usize>,
}

fn unsupported(what: &str, text: &str) -> StorageError {
    StorageError::unsupported(format!("{what} \"{text}\" is not supported"))
}

fn parse(text: &str) -> Option<Expr> {
    let stmt = crate::sql::parse_single(&format!("SELECT {text}")).ok()?;
    let sqlparser::ast::Statement::Query(q) = stmt.into_ast() else {
        return None;
    };
    let sqlparser::ast::SetExpr::Select(s) = *q.body else {
        return None;
    };
    match s.projection.into_iter().next()? {
        sqlparser::ast::SelectItem::UnnamedExpr(e) => Some(e),
        _ => None,
    }
}

fn column(e: &Expr, table: &TableDef) -> Option<usize> {
    match e {
        Expr::Identifier(i) => table.column_index(&fold(i)),
        Expr::Nested(inner) => column(inner, table),
        _ => None,
    }
}

fn int_literal(e: &Expr) -> Option<i32> {
    match e {
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => int_literal(expr).and_then(i32::checked_neg),
        Expr::Nested(inner) => int_literal(inner),
        _ => None,
    }
}

/// Compiles a vector expression, returning it with its type.
fn vector_expr(e: &Expr, table: &TableDef) -> Option<(VectorExpr, ColumnType)> {
    crate::stack::guard(|| match e {
        Expr::Nested(inner) => vector_expr(inner, table),
        Expr::Identifier(_) => {
            let c = column(e, table)?;
            let ty = table.columns[c].ty;
            ty.vector_type()?;
            Some((VectorExpr::Column(c), ty))
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            let cast = vector_cast(data_type)?;
            let (inner, from) = vector_expr(expr, table)?;
            let (from, _) = from.vector_type()?;
            let fits = matches!(
                (from, cast.ty),
                (VectorType::Vector | VectorType::HalfVec, VectorType::Vector)
                    | (
                        VectorType::Vector | VectorType::HalfVec,
                        VectorType::HalfVec
                    )
                    | (VectorType::Bit, VectorType::Bit)
            );
            fits.then(|| {
                (
                    VectorExpr::Cast(Box::new(inner), cast.ty, cast.typmod),
                    ColumnType::of_vector(cast.ty, cast.typmod),
                )
            })
        }
        Expr::Function(f) => {
            let FunctionArguments::List(list) = &f.args else {
                return None;
            };
            let args: Vec<&Expr> = list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let name = f.name.0.last()?.as_ident().map(fold)?;
            let (inner, ty) = vector_expr(args.first()?, table)?;
            let (vt, _) = ty.vector_type()?;
            let dense = matches!(vt, VectorType::Vector | VectorType::HalfVec);
            match (name.as_str(), args.as_slice()) {
                ("binary_quantize", [_]) if dense => Some((
                    VectorExpr::BinaryQuantize(Box::new(inner)),
                    ColumnType::Bit(None),
                )),
                ("l2_normalize", [_]) if dense => Some((
                    VectorExpr::L2Normalize(Box::new(inner)),
                    ColumnType::of_vector(vt, None),
                )),
                ("subvector", [_, a, b]) if dense => Some((
                    VectorExpr::Subvector(Box::new(inner), int_literal(a)?, int_literal(b)?),
                    ColumnType::of_vector(vt, None),
                )),
                _ => None,
            }
        }
        _ => None,
    })
}

/// The key of literal `e` for a column of type `ty`, when it is of the
/// column's kind.
fn literal_key(e: &Expr, ty: ColumnType) -> Option<KeyValue> {
    let numeric = |text: &str| -> Option<KeyValue> {
        match ty {
            ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8 => {
                text.parse().ok().map(KeyValue::Int)
            }
            ColumnType::Float4 | ColumnType::Float8 => text
                .parse::<f64>()
                .ok()
                .map(|f| KeyValue::Float(datum::OrderedF64(f))),
            _ => None,
        }
    };
    match e {
        Expr::Nested(inner) => literal_key(inner, ty),
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => numeric(n),
            sqlparser::ast::Value::SingleQuotedString(s)
                if matches!(ty, ColumnType::Text | ColumnType::Varchar(_)) =>
            {
                Some(KeyValue::Text(s.clone()))
            }
            sqlparser::ast::Value::Boolean(b) if ty == ColumnType::Bool => Some(KeyValue::Bool(*b)),
            _ => None,
        },
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                sqlparser::ast::Value::Number(n, _) => numeric(&format!("-{n}")),
                _ => None,
            },
            _ => None,
        },
        Expr::Cast { expr, .. } => literal_key(expr, ty),
        _ => None,
    }
}

/// `op` as the ordering a comparison must (or, negated, must not) find:
/// `<=` is "not greater".
fn comparison(op: &BinaryOperator) -> Option<(Ordering, bool)> {
    Some(match op {
        BinaryOperator::Eq => (Ordering::Equal, false),
        BinaryOperator::NotEq => (Ordering::Equal, true),
        BinaryOperator::Lt => (Ordering::Less, false),
        BinaryOperator::LtEq => (Ordering::Greater, true),
        BinaryOperator::Gt => (Ordering::Greater, false),
        BinaryOperator::GtEq => (Ordering::Less, true),
        _ => return None,
    })
}

fn conditions(e: &Expr, table: &TableDef, out: &mut Vec<Condition>) -> Option<()> {
    crate::stack::guard(|| {
        match e {
            Expr::Nested(inner) => return conditions(inner, table, out),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                conditions(left, table, out)?;
                return conditions(right, table, out);
            }
            Expr::BinaryOp { left, op, right } => {
                let (c, constant, op) = match (column(left, table), column(right, table)) {
                    (Some(c), None) => (c, right, op.clone()),
                    (None, Some(c)) => (c, left, flipped(op)?),
                    _ => return None,
                };
                let key = literal_key(constant, table.columns[c].ty)?;
                let (ord, negated) = comparison(&op)?;
                out.push(Condition::Compare(c, ord, negated, key));
            }
            Expr::IsNull(x) => out.push(Condition::IsNull(column(x, table)?, true)),
            Expr::IsNotNull(x) => out.push(Condition::IsNull(column(x, table)?, false)),
            Expr::Identifier(_) => {
                let c = column(e, table)?;
                if table.columns[c].ty != ColumnType::Bool {
                    return None;
                }
                out.push(Condition::Compare(
                    c,
                    Ordering::Equal,
                    false,
                    KeyValue::Bool(true),
                ));
            }
            _ => return None,
        }
        Some(())
    })
}

fn flipped(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Eq | BinaryOperator::NotEq => op.clone(),
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        _ => return None,
    })
}

impl Condition {
    /// True when the row meets it (NULL never compares).
    fn holds(&self, row: &[Datum]) -> bool {
        match self {
            Condition::IsNull(c, null) => row.get(*c).is_some_and(|v| v.is_none() == *null),
            // `negated` turns `=` into `<>`, `<` into `>=` and `>` into `<=`.
            Condition::Compare(c, ord, negated, key) => row
                .get(*c)
                .and_then(datum::key)
                .is_some_and(|k| (k.cmp(key) == *ord) != *negated),
        }
    }

    fn column(&self) -> usize {
        match self {
            Condition::Compare(c, ..) | Condition::IsNull(c, _) => *c,
        }
    }
}

impl VectorExpr {
    fn eval(&self, row: &[Datum]) -> Option<Value> {
        crate::stack::guard(|| match self {
            VectorExpr::Column(c) => row.get(*c)?.clone(),
            VectorExpr::Cast(inner, to, typmod) => {
                let v = inner.eval(row)?;
                use ann::functions::casts::cast_dense;
                match (v, to) {
                    (Value::Vector(x), VectorType::Vector) => typmod
                        .is_none_or(|n| x.check_dims(n).is_ok())
                        .then_some(Value::Vector(x)),
                    (Value::HalfVec(x), VectorType::Vector) => {
                        cast_dense::<f16, f32>(&x, *typmod).ok().map(Value::Vector)
                    }
                    (Value::Vector(x), VectorType::HalfVec) => {
                        cast_dense::<f32, f16>(&x, *typmod).ok().map(Value::HalfVec)
                    }
                    (Value::HalfVec(x), VectorType::HalfVec) => typmod
                        .is_none_or(|n| x.check_dims(n).is_ok())
                        .then_some(Value::HalfVec(x)),
                    (Value::Bit(b), VectorType::Bit) => Some(Value::Bit(match typmod {
                        Some(n) => b.resized(*n),
                        None => b,
                    })),
                    _ => None,
                }
            }
            VectorExpr::BinaryQuantize(inner) => match inner.eval(row)? {
                Value::Vector(x) => Some(Value::Bit(dense::binary_quantize(&x))),
                Value::HalfVec(x) => Some(Value::Bit(dense::binary_quantize(&x))),
                _ => None,
            },
            VectorExpr::Subvector(inner, start, count) => match inner.eval(row)? {
                Value::Vector(x) => dense::subvector(&x, *start, *count).ok().map(Value::Vector),
                Value::HalfVec(x) => dense::subvector(&x, *start, *count)
                    .ok()
                    .map(Value::HalfVec),
                _ => None,
            },
            VectorExpr::L2Normalize(inner) => match inner.eval(row)? {
                Value::Vector(x) => dense::l2_normalize(&x).ok().map(Value::Vector),
                Value::HalfVec(x) => dense::l2_normalize(&x).ok().map(Value::HalfVec),
                _ => None,
            },
        })
    }

    fn columns(&self, out: &mut Vec<usize>) {
        match self {
            VectorExpr::Column(c) => out.push(*c),
            VectorExpr::Cast(inner, ..)
            | VectorExpr::BinaryQuantize(inner)
            | VectorExpr::Subvector(inner, ..)
            | VectorExpr::L2Normalize(inner) => inner.columns(out),
        }
    }
}

impl IndexSource {
    /// What ANN index `def` of `table` reads: `None` for an index on a
    /// plain column without a predicate; 0A000 for an expression or
    /// predicate outside the forms above.
    pub fn of(def: &IndexDef, table: &TableDef) -> Result<Option<IndexSource>> {
        if def.expression.is_none() && def.predicate.is_none() {
            return Ok(None);
        }
        let (expression, ty) = match &def.expression {
            Some(text) => {
                let (e, ty) = parse(text)
                    .and_then(|e| vector_expr(&e, table))
                    .ok_or_else(|| unsupported("an index on the expression", text))?;
                (Some(e), ty)
            }
            None => {
                let column = table.columns.get(def.column).ok_or_else(|| {
                    StorageError::new("42703", format!("column {} does not exist", def.column))
                })?;
                (None, column.ty)
            }
        };
        let mut predicate = Vec::new();
        if let Some(text) = &def.predicate {
            parse(text)
                .and_then(|e| conditions(&e, table, &mut predicate))
                .ok_or_else(|| unsupported("an index predicate", text))?;
        }
        let mut reads = Vec::new();
        match &expression {
            Some(e) => e.columns(&mut reads),
            None => reads.push(def.column),
        }
        reads.extend(predicate.iter().map(Condition::column));
        Ok(Some(IndexSource {
            expression,
            predicate,
            ty,
            reads,
        }))
    }

    /// The type of the indexed values.
    pub fn value_type(&self) -> ColumnType {
        self.ty
    }

    /// True when the index is on an expression (its values are kept apart
    /// from the table's columns).
    pub fn is_expression(&self) -> bool {
        self.expression.is_some()
    }

    /// The value the index holds for `row`: `None` when the predicate
    /// leaves the row out or the value is NULL.
    pub fn value(&self, row: &[Datum], column: usize) -> Datum {
        if !self.predicate.iter().all(|c| c.holds(row)) {
            return None;
        }
        match &self.expression {
            Some(e) => e.eval(row),
            None => row.get(column)?.clone(),
        }
    }

    /// True when a change of the columns flagged in `changed` may change
    /// the row's entry.
    pub fn reads_any(&self, changed: &[bool]) -> bool {
        self.reads
            .iter()
            .any(|&c| changed.get(c).copied().unwrap_or(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::catalog::{ColumnDef, IndexMethod};
    use ann::types::{BitVector, Vector};

    fn table() -> TableDef {
        let col = |name: &str, ty| ColumnDef {
            name: name.into(),
            ty,
            not_null: false,
            default: None,
        };
        TableDef {
            oid: 1,
            name: "items".into(),
            columns: vec![
                col("id", ColumnType::Int8),
                col("embedding", ColumnType::Vector(Some(3))),
                col("category_id", ColumnType::Int4),
            ],
            primary_key: vec![0],
            constraints: Default::default(),
        }
    }

    fn index(expression: Option<&str>, predicate: Option<&str>) -> IndexDef {
        IndexDef {
            oid: 2,
            name: "i".into(),
            column: 1,
            method: IndexMethod::Hnsw {
                metric: ann::Metric::L2,
                m: 16,
                ef_construction: 64,
            },
            expression: expression.map(str::to_string),
            predicate: predicate.map(str::to_string),
            with: Vec::new(),
        }
    }

    fn row(v: [f32; 3], category: i32) -> Vec<Datum> {
        vec![
            Some(Value::Int8(1)),
            Some(Value::Vector(Vector::new(v.to_vec()).unwrap())),
            Some(Value::Int4(category)),
        ]
    }

    #[test]
    fn computes_pgvector_readme_expressions() {
        let t = table();
        let s = IndexSource::of(
            &index(Some("(binary_quantize(embedding))::bit(3)"), None),
            &t,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.value_type(), ColumnType::Bit(Some(3)));
        assert_eq!(
            s.value(&row([1.0, -2.0, 3.0], 0), 1),
            Some(Value::Bit(BitVector::from_bits([true, false, true])))
        );
        let s = IndexSource::of(
            &index(Some("(subvector(embedding, 2, 2))::vector(2)"), None),
            &t,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s.value(&row([1.0, -2.0, 3.0], 0), 1),
            Some(Value::Vector(Vector::new(vec![-2.0, 3.0]).unwrap()))
        );
        let s = IndexSource::of(&index(Some("(embedding)::halfvec(3)"), None), &t)
            .unwrap()
            .unwrap();
        assert_eq!(s.value_type(), ColumnType::HalfVec(Some(3)));
        assert!(matches!(
            s.value(&row([1.0, 2.0, 3.0], 0), 1),
            Some(Value::HalfVec(_))
        ));
        for refused in [
            "lower(embedding)",
            "(embedding)::halfvec(3) + 1",
            "(id)::bit(3)",
        ] {
            let e = IndexSource::of(&index(Some(refused), None), &t).unwrap_err();
            assert_eq!(e.sqlstate, "0A000", "{refused}");
        }
    }

    #[test]
    fn predicates_admit_the_rows_postgresql_would() {
        let t = table();
        let s = IndexSource::of(&index(None, Some("((category_id = 1) AND (id > 0))")), &t)
            .unwrap()
            .unwrap();
        assert!(s.value(&row([1.0, 2.0, 3.0], 1), 1).is_some());
        assert!(s.value(&row([1.0, 2.0, 3.0], 2), 1).is_none());
        let mut null = row([1.0, 2.0, 3.0], 1);
        null[2] = None;
        assert!(s.value(&null, 1).is_none());
        for (text, category, admitted) in [
            ("(category_id <> 1)", 1, false),
            ("(category_id <= 1)", 1, true),
            ("(category_id >= 2)", 1, false),
            ("(1 < category_id)", 2, true),
            ("(category_id IS NOT NULL)", 0, true),
        ] {
            let s = IndexSource::of(&index(None, Some(text)), &t)
                .unwrap()
                .unwrap();
            assert_eq!(
                s.value(&row([1.0, 2.0, 3.0], category), 1).is_some(),
                admitted,
                "{text}"
            );
        }
        let e = IndexSource::of(&index(None, Some("(category_id = id)")), &t).unwrap_err();
        assert_eq!(e.sqlstate, "0A000");
    }
}
