//! `avg(vector)` and `avg(halfvec)` across shards. Each shard sends its
//! partial `sum(x)` and `count(x)`; the final query ([`super::combine`])
//! cannot divide a vector by a number in SQL (pgvector has no such
//! operator), so the proxy computes each group's mean Σsᵢ/N itself (in
//! float8, rounded once to float4) and puts it in place of every non-NULL
//! partial sum of the group; pgvector's own `avg()` over k copies of one
//! float4 value is that value exactly (the float8 sum of k copies is
//! exact), with pgvector's result type, NULL handling and text.
//!
//! Precision: pgvector accumulates avg in float8 and rounds once to the
//! element type. Here each shard's `sum` adds in the element type (float4,
//! or half for halfvec), so a result may differ from one server's in the
//! last bit or two of an element (float4; halfvec sums lose more, since
//! each addition rounds to half precision).

use std::collections::HashMap;

use bytes::Bytes;

use crate::sql::{AggregatePlan, CombinedColumn};
use crate::wire::{oid, PgError};

/// The partial rows, one value per shard output column (text format).
pub type Partials = Vec<Vec<Option<Bytes>>>;

fn parse_vector(text: &[u8]) -> Result<Vec<f64>, PgError> {
    let bad = || PgError::internal("a shard sent a partial vector sum the proxy cannot read");
    let text = std::str::from_utf8(text).map_err(|_| bad())?.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(bad)?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
        .collect()
}

fn format_vector(values: &[f64]) -> Bytes {
    let parts: Vec<String> = values.iter().map(|&v| (v as f32).to_string()).collect();
    Bytes::from(format!("[{}]", parts.join(",")))
}

fn count_of(value: Option<&Bytes>) -> u64 {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether an avg over a column of this type is combined here.
pub fn is_vector(type_oid: u32) -> bool {
    matches!(type_oid, oid::VECTOR | oid::HALFVEC)
}

/// Replaces the partial sums of every vector avg column by their group's
/// mean (see the module
/// docs); `types` are the shard output columns' types.
pub fn use_group_means(
    plan: &AggregatePlan,
    types: &[u32],
    rows: &mut Partials,
) -> Result<(), PgError> {
    for column in &plan.outputs {
        let CombinedColumn::Avg { sum, count } = *column else {
            continue;
        };
        if !types.get(sum).copied().is_some_and(is_vector) {
            continue;
        }
        let key = |row: &Vec<Option<Bytes>>| -> Vec<Option<Bytes>> {
            plan.group_columns
                .iter()
                .map(|&g| row.get(g).cloned().flatten())
                .collect()
        };
        let mut groups: HashMap<Vec<Option<Bytes>>, (u64, Vec<f64>)> = HashMap::new();
        for row in rows.iter() {
            let (total, sums) = groups.entry(key(row)).or_default();
            *total += count_of(row.get(count).and_then(Option::as_ref));
            if let Some(Some(partial)) = row.get(sum) {
                let partial = parse_vector(partial)?;
                if sums.len() < partial.len() {
                    sums.resize(partial.len(), 0.0);
                }
                for (acc, x) in sums.iter_mut().zip(partial) {
                    *acc += x;
                }
            }
        }
        let means: HashMap<Vec<Option<Bytes>>, Bytes> = groups
            .into_iter()
            .filter(|(_, (total, _))| *total > 0)
            .map(|(k, (total, sums))| {
                let mean: Vec<f64> = sums.iter().map(|s| s / total as f64).collect();
                (k, format_vector(&mean))
            })
            .collect();
        for row in rows.iter_mut() {
            if let (Some(Some(_)), Some(mean)) = (row.get(sum), means.get(&key(row))) {
                row[sum] = Some(mean.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{aggregate_plan, parse_single};

    #[test]
    fn partial_sums_become_the_group_mean() {
        let stmt = parse_single("SELECT g, avg(v) FROM t GROUP BY g").unwrap();
        let plan = aggregate_plan(&stmt).unwrap().unwrap();
        let CombinedColumn::Avg { sum, count } = plan.outputs[1] else {
            panic!("{:?}", plan.outputs);
        };
        let g = plan.group_columns[0];
        let width = sum.max(count).max(g) + 1;
        let row = |group: &str, s: Option<&str>, n: &str| {
            let mut r = vec![None; width];
            r[g] = Some(Bytes::from(group.to_string()));
            r[sum] = s.map(|s| Bytes::from(s.to_string()));
            r[count] = Some(Bytes::from(n.to_string()));
            r
        };
        // Group a: sums [3,6] over 3 rows and [1,2] over 1 row → mean [1,2]
        // in both partial rows; group b: one shard without rows.
        let mut rows = vec![
            row("a", Some("[3,6]"), "3"),
            row("a", Some("[1,2]"), "1"),
            row("b", Some("[4,8]"), "2"),
            row("b", None, "0"),
        ];
        let mut types = vec![oid::INT8; width];
        types[sum] = oid::VECTOR;
        use_group_means(&plan, &types, &mut rows).unwrap();
        let text = |r: &Vec<Option<Bytes>>| r[sum].clone().map(|b| b.to_vec());
        assert_eq!(text(&rows[0]), Some(b"[1,2]".to_vec()));
        assert_eq!(text(&rows[1]), Some(b"[1,2]".to_vec()));
        assert_eq!(text(&rows[2]), Some(b"[2,4]".to_vec()));
        assert_eq!(text(&rows[3]), None);
    }
}
