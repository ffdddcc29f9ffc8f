//! Combining partial aggregates from the shards. The proxy does not do the
//! arithmetic itself: it sends the partial rows back to one shard as
//! parameters of a final query (`SELECT sum(c1)::int8, … FROM (VALUES …)
//! AS p(c0, c1, …) GROUP BY c0 ORDER BY … LIMIT …`), so sums, numeric
//! division for avg, output types and text formats are PostgreSQL's own —
//! byte for byte what one server holding all rows would answer (avg of
//! vectors: see [`super::vector_avg`]).

use bytes::Bytes;
use sqlparser::ast::{Expr, SelectItem, SetExpr};

use super::vector_avg;
use crate::proxy::backend::{ExtendedRequest, OidMap};
use crate::sql::{self, fold, quote_ident, AggregatePlan, CombinedColumn};
use crate::wire::{oid, DataRow, FieldDescription, Format, PgError};

/// The name PostgreSQL gives each output column of the client's query.
pub fn output_names(statement: &sql::Statement) -> Vec<String> {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(q) = &statement.ast else {
            return Vec::new();
        };
        let SetExpr::Select(select) = q.body.as_ref() else {
            return Vec::new();
        };
        select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => fold(alias),
                SelectItem::UnnamedExpr(e) => expr_name(e),
                _ => "?column?".to_string(),
            })
            .collect()
    })
}

fn expr_name(e: &Expr) -> String {
    crate::stack::guard(|| match e {
        Expr::Identifier(i) => fold(i),
        Expr::CompoundIdentifier(parts) => parts.last().map_or_else(|| "?column?".into(), fold),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map_or_else(|| "?column?".into(), fold),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => expr_name(inner),
        _ => "?column?".to_string(),
    })
}

fn type_name(type_oid: u32) -> Result<&'static str, PgError> {
    const NUMERIC: u32 = 1700;
    Ok(match type_oid {
        oid::INT2 => "int2",
        oid::INT4 => "int4",
        oid::INT8 => "int8",
        oid::FLOAT4 => "float4",
        oid::FLOAT8 => "float8",
        NUMERIC => "numeric",
        oid::VECTOR => "vector",
        oid::HALFVEC => "halfvec",
        other => {
            return Err(PgError::feature_not_supported(format!(
                "summing values of type OID {other} across shards is not supported"
            )))
        }
    })
}

/// The final query over the partial rows, with its parameters.
pub fn final_request(
    plan: &AggregatePlan,
    names: &[String],
    columns: &[FieldDescription],
    rows: &[DataRow],
    oids: &OidMap,
    (limit, offset): (Option<u64>, Option<u64>),
    result_formats: Vec<i16>,
) -> Result<ExtendedRequest<'static>, PgError> {
    let n = columns.len();
    let c = |i: usize| format!("c{i}");
    let mut outputs = Vec::with_capacity(plan.outputs.len());
    for (i, col) in plan.outputs.iter().enumerate() {
        let ty = |k: usize| columns.get(k).map_or(0, |f| f.type_oid);
        let expr = match *col {
            CombinedColumn::Group(k) => c(k),
            CombinedColumn::Count(k) => format!("sum({})::int8", c(k)),
            CombinedColumn::Sum(k) => format!("sum({})::{}", c(k), type_name(ty(k))?),
            CombinedColumn::Min(k) => format!("min({})", c(k)),
            CombinedColumn::Max(k) => format!("max({})", c(k)),
            CombinedColumn::Distinct { function, column } => {
                format!("{}(DISTINCT {})", function.name(), c(column))
            }
            CombinedColumn::Avg { sum, count } => match ty(sum) {
                oid::FLOAT4 | oid::FLOAT8 => {
                    format!("sum({})::float8 / sum({})::float8", c(sum), c(count))
                }
                t if vector_avg::is_vector(t) => format!("avg({})", c(sum)),
                _ => format!("sum({})::numeric / sum({})::numeric", c(sum), c(count)),
            },
        };
        let name = names.get(i).map_or("?column?", String::as_str);
        outputs.push(format!("{expr} AS {}", quote_ident(name)));
    }
    let empty = rows.is_empty();
    let mut partials = rows
        .iter()
        .map(|r| {
            let fields = crate::proxy::backend::messages::fields(r)?;
            Ok(fields
                .into_iter()
                .map(|f| f.map(Bytes::copy_from_slice))
                .collect())
        })
        .collect::<Result<vector_avg::Partials, PgError>>()?;
    let types: Vec<u32> = columns.iter().map(|f| f.type_oid).collect();
    vector_avg::use_group_means(plan, &types, &mut partials)?;
    if empty {
        partials.push(vec![None; n]);
    }
    let mut values = Vec::new();
    let mut tuples = Vec::new();
    for fields in partials {
        let mut t = Vec::with_capacity(n);
        for f in fields {
            values.push(f);
            t.push(format!("${}", values.len()));
        }
        tuples.push(format!("({})", t.join(", ")));
    }
    let names_list: Vec<String> = (0..n).map(c).collect();
    let mut sql = format!(
        "SELECT {} FROM (VALUES {}) AS p({})",
        outputs.join(", "),
        tuples.join(", "),
        names_list.join(", ")
    );
    if empty {
        sql.push_str(" WHERE false");
    }
    if !plan.group_columns.is_empty() {
        let g: Vec<String> = plan.group_columns.iter().map(|&k| c(k)).collect();
        sql.push_str(&format!(" GROUP BY {}", g.join(", ")));
    }
    if !plan.order.is_empty() {
        let o: Vec<String> = plan
            .order
            .iter()
            .map(|k| {
                format!(
                    "{}{}{}",
                    k.output + 1,
                    if k.descending { " DESC" } else { "" },
                    if k.nulls_first {
                        " NULLS FIRST"
                    } else {
                        " NULLS LAST"
                    }
                )
            })
            .collect();
        sql.push_str(&format!(" ORDER BY {}", o.join(", ")));
    }
    if let Some(l) = limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    if let Some(o) = offset {
        sql.push_str(&format!(" OFFSET {o}"));
    }
    let per_row: Vec<u32> = columns.iter().map(|f| oids.to_shard(f.type_oid)).collect();
    let param_types: Vec<u32> = per_row.iter().copied().cycle().take(values.len()).collect();
    Ok(ExtendedRequest {
        sql: sql.into(),
        param_types: param_types.into(),
        param_formats: vec![Format::Text].into(),
        values: values.into(),
        result_formats: result_formats.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{aggregate_plan, parse_single};
    use crate::wire::{types, DataRowBuilder};

    #[test]
    fn final_query_reads_partials_as_parameters() {
        let stmt = parse_single(
            "SELECT cat, count(*), avg(v) AS m FROM t GROUP BY cat ORDER BY 2 DESC LIMIT 3",
        )
        .unwrap();
        let plan = aggregate_plan(&stmt).unwrap().unwrap();
        let names = output_names(&stmt);
        assert_eq!(names, ["cat", "count", "m"]);
        let cols: Vec<FieldDescription> = [oid::INT4, oid::INT8, oid::INT8, oid::INT8]
            .iter()
            .map(|&t| FieldDescription::new("x", types::by_oid(t).unwrap()))
            .collect();
        let mut b = DataRowBuilder::default();
        for v in ["1", "2", "10", "2"] {
            b.push(v.as_bytes());
        }
        let req = final_request(
            &plan,
            &names,
            &cols[..plan_width(&plan)],
            &[b.finish()],
            &OidMap::default(),
            (Some(3), None),
            vec![],
        )
        .unwrap();
        assert!(
            req.sql
                .contains("FROM (VALUES ($1, $2, $3, $4)) AS p(c0, c1, c2, c3)"),
            "{}",
            req.sql
        );
        assert!(req.sql.contains("GROUP BY"), "{}", req.sql);
        assert!(
            req.sql.ends_with("ORDER BY 2 DESC NULLS FIRST LIMIT 3"),
            "{}",
            req.sql
        );
        assert_eq!(req.values.len(), 4);
        let empty = final_request(
            &plan,
            &names,
            &cols[..plan_width(&plan)],
            &[],
            &OidMap::default(),
            (None, None),
            vec![],
        )
        .unwrap();
        assert!(empty.sql.contains("WHERE false"));
    }

    fn plan_width(plan: &AggregatePlan) -> usize {
        plan.outputs
            .iter()
            .flat_map(|c| match *c {
                CombinedColumn::Avg { sum, count } => vec![sum, count],
                CombinedColumn::Group(k)
                | CombinedColumn::Count(k)
                | CombinedColumn::Sum(k)
                | CombinedColumn::Min(k)
                | CombinedColumn::Max(k)
                | CombinedColumn::Distinct { column: k, .. } => vec![k],
            })
            .chain(plan.group_columns.iter().copied())
            .max()
            .map_or(0, |m| m + 1)
    }
}
