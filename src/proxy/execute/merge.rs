//! The k-way merge of shard streams that are each already sorted: the
//! proxy decodes only the sort-key columns of each stream's head row,
//! emits the smallest (ties go to the lower shard index, then to the
//! shard's own row order, so the result is deterministic), and forwards
//! the row's bytes unchanged, minus the hidden trailing columns.
//!
//! Nothing is re-sorted and no distance is recomputed: a KNN query's
//! shards return at most `offset + limit` rows each, ordered by the
//! distance column they computed, and the merge reads only as far as the
//! client's LIMIT needs.

use std::cmp::Ordering;

use futures_util::future::join_all;

use super::shard_stream::{check_same_columns, ShardStream};
use crate::proxy::backend::messages::{fields, truncate_row};
use crate::sql::{OutputColumn, SortKey};
use crate::wire::interval::Interval;
use crate::wire::{oid, DataRow, FieldDescription, PgError, Responder};

/// One merge key: an output column of the shard query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeKey {
    /// Column index in the shard's rows.
    pub column: usize,
    /// DESC.
    pub descending: bool,
    /// NULLs sort first.
    pub nulls_first: bool,
}

/// A decoded sort-key value.
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Null,
    Int(i64),
    /// An interval's length ([`Interval::span`]).
    Span(i128),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
}

const BPCHAR: u32 = 1042;

fn unsupported(type_oid: u32) -> PgError {
    PgError::feature_not_supported(format!(
        "ORDER BY a column of type OID {type_oid} across shards is not supported"
    ))
}

fn decode(field: &FieldDescription, bytes: Option<&[u8]>) -> Result<SortValue, PgError> {
    let Some(b) = bytes else {
        return Ok(SortValue::Null);
    };
    let bad = || PgError::protocol_violation("a shard sent a malformed sort key");
    let ty = field.type_oid;
    if field.format == 1 {
        let int = |b: &[u8]| -> Result<i64, PgError> {
            Ok(match b.len() {
                2 => i64::from(i16::from_be_bytes(b.try_into().map_err(|_| bad())?)),
                4 if ty == oid::OID => {
                    i64::from(u32::from_be_bytes(b.try_into().map_err(|_| bad())?))
                }
                4 => i64::from(i32::from_be_bytes(b.try_into().map_err(|_| bad())?)),
                8 => i64::from_be_bytes(b.try_into().map_err(|_| bad())?),
                _ => return Err(bad()),
            })
        };
        return Ok(match ty {
            oid::INT2
            | oid::INT4
            | oid::INT8
            | oid::OID
            | oid::DATE
            | oid::TIMESTAMP
            | oid::TIMESTAMPTZ => SortValue::Int(int(b)?),
            oid::FLOAT4 => SortValue::Float(f64::from(f32::from_be_bytes(
                b.try_into().map_err(|_| bad())?,
            ))),
            oid::FLOAT8 => SortValue::Float(f64::from_be_bytes(b.try_into().map_err(|_| bad())?)),
            oid::BOOL => SortValue::Bool(b.first() == Some(&1)),
            oid::INTERVAL => SortValue::Span(Interval::from_binary(b).map_err(|_| bad())?.span()),
            // A uuid's 16 bytes sort as PostgreSQL sorts uuids.
            oid::TEXT | oid::VARCHAR | oid::NAME | BPCHAR | oid::UUID => {
                SortValue::Bytes(b.to_vec())
            }
            other => return Err(unsupported(other)),
        });
    }
    let text = std::str::from_utf8(b).map_err(|_| bad())?;
    Ok(match ty {
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => {
            SortValue::Int(text.parse().map_err(|_| bad())?)
        }
        oid::FLOAT4 | oid::FLOAT8 => SortValue::Float(text.parse().map_err(|_| bad())?),
        oid::BOOL => SortValue::Bool(text == "t"),
        oid::INTERVAL => SortValue::Span(Interval::parse(text).map_err(|_| bad())?.span()),
        // ISO dates and timestamps (DateStyle ISO) and uuids (fixed-width
        // lower-case hex) sort as text.
        oid::TEXT
        | oid::UUID
        | oid::VARCHAR
        | oid::NAME
        | BPCHAR
        | oid::DATE
        | oid::TIMESTAMP
        | oid::TIMESTAMPTZ => SortValue::Bytes(b.to_vec()),
        other => return Err(unsupported(other)),
    })
}

/// PostgreSQL's order: NaN above every number, -0 equal to 0.
fn cmp_values(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::Int(x), SortValue::Int(y)) => x.cmp(y),
        (SortValue::Span(x), SortValue::Span(y)) => x.cmp(y),
        (SortValue::Float(x), SortValue::Float(y)) => x
            .partial_cmp(y)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan())),
        (SortValue::Bool(x), SortValue::Bool(y)) => x.cmp(y),
        (SortValue::Bytes(x), SortValue::Bytes(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn cmp_keys(keys: &[MergeKey], a: &[SortValue], b: &[SortValue]) -> Ordering {
    for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
        let o = match (x, y) {
            (SortValue::Null, SortValue::Null) => Ordering::Equal,
            (SortValue::Null, _) if k.nulls_first => Ordering::Less,
            (SortValue::Null, _) => Ordering::Greater,
            (_, SortValue::Null) if k.nulls_first => Ordering::Greater,
            (_, SortValue::Null) => Ordering::Less,
            _ if k.descending => cmp_values(y, x),
            _ => cmp_values(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

type Head = Option<(Vec<SortValue>, DataRow)>;

/// Decodes the `keys` columns of a row described by `columns`.
fn key_values(
    columns: Option<&[FieldDescription]>,
    keys: &[MergeKey],
    row: &DataRow,
) -> Result<Vec<SortValue>, PgError> {
    let columns = columns
        .ok_or_else(|| PgError::protocol_violation("a shard sent rows before describing them"))?;
    let values = fields(row)?;
    keys.iter()
        .map(|k| {
            let field = columns
                .get(k.column)
                .ok_or_else(|| PgError::protocol_violation("a shard sent too few columns"))?;
            decode(field, values.get(k.column).copied().flatten())
        })
        .collect()
}

fn head(stream: &ShardStream, keys: &[MergeKey], row: Option<DataRow>) -> Result<Head, PgError> {
    let Some(row) = row else {
        return Ok(None);
    };
    let decoded = key_values(stream.columns.as_deref(), keys, &row)?;
    Ok(Some((decoded, row)))
}

/// What the client's LIMIT and OFFSET ask of the merged rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to send at most (`None`: all).
    pub limit: Option<u64>,
}

/// The streams' head rows, yielded smallest first by `keys`.
struct Merger {
    columns: Vec<FieldDescription>,
    visible: usize,
    keys: Vec<MergeKey>,
    heads: Vec<Head>,
}

impl Merger {
    /// Reads each stream's first row; `hidden` trailing columns are not
    /// the client's.
    async fn start(
        streams: &mut [ShardStream],
        keys: &[SortKey],
        hidden: usize,
    ) -> Result<Merger, PgError> {
        let firsts = join_all(streams.iter_mut().map(|s| s.next_row())).await;
        check_same_columns(streams)?;
        let columns = streams
            .iter()
            .find_map(|s| s.columns.clone())
            .unwrap_or_default();
        let visible = columns.len().saturating_sub(hidden);
        let keys: Vec<MergeKey> = keys.iter().map(|k| merge_key(k, visible)).collect();
        let mut heads: Vec<Head> = Vec::with_capacity(streams.len());
        for (stream, first) in streams.iter().zip(firsts) {
            heads.push(head(stream, &keys, first?)?);
        }
        Ok(Merger {
            columns,
            visible,
            keys,
            heads,
        })
    }

    /// The next row in merged order (ties: lower shard index first), with
    /// its decoded keys.
    async fn next(&mut self, streams: &mut [ShardStream]) -> Result<Head, PgError> {
        let keys = self.keys.as_slice();
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            let Some((key, _)) = h else { continue };
            let better = match best.and_then(|b| self.heads[b].as_ref()) {
                None => true,
                Some((best_key, _)) => cmp_keys(keys, key, best_key) == Ordering::Less,
            };
            if better {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(None) };
        let next = streams[i].next_row().await?;
        let refill = head(&streams[i], keys, next)?;
        Ok(std::mem::replace(&mut self.heads[i], refill))
    }
}

fn merge_key(k: &SortKey, visible: usize) -> MergeKey {
    MergeKey {
        column: match k.column {
            OutputColumn::Item(i) => i,
            OutputColumn::Hidden(j) => visible + j,
        },
        descending: k.descending,
        nulls_first: k.nulls_first,
    }
}

/// The merged rows of sorted streams, one at a time: DISTINCT ON's groups
/// and the window applied, the hidden trailing columns dropped.
pub struct Merged {
    merger: Merger,
    group_keys: Vec<MergeKey>,
    previous: Option<Vec<SortValue>>,
    window: Window,
    skipped: u64,
    sent: u64,
}

impl Merged {
    /// Reads each stream's first row; with `groups` > 0 (DISTINCT ON), a
    /// row equal to the previous one on the first `groups` keys is dropped.
    pub async fn start(
        streams: &mut [ShardStream],
        keys: &[SortKey],
        hidden: usize,
        groups: usize,
        window: Window,
    ) -> Result<Merged, PgError> {
        let merger = Merger::start(streams, keys, hidden).await?;
        let group_keys = merger.keys[..groups.min(merger.keys.len())].to_vec();
        Ok(Merged {
            merger,
            group_keys,
            previous: None,
            window,
            skipped: 0,
            sent: 0,
        })
    }

    /// The columns of the rows [`Merged::next`] yields.
    pub fn columns(&self) -> &[FieldDescription] {
        &self.merger.columns[..self.merger.visible]
    }

    /// The next row in the window; `None` after the last one.
    pub async fn next(&mut self, streams: &mut [ShardStream]) -> Result<Option<DataRow>, PgError> {
        while self.window.limit.is_none_or(|l| self.sent < l) {
            let Some((key, row)) = self.merger.next(streams).await? else {
                break;
            };
            if !self.group_keys.is_empty() {
                let same = self
                    .previous
                    .as_ref()
                    .is_some_and(|p| cmp_keys(&self.group_keys, p, &key) == Ordering::Equal);
                self.previous = Some(key);
                if same {
                    continue;
                }
            }
            if self.skipped < self.window.offset {
                self.skipped += 1;
                continue;
            }
            self.sent += 1;
            return truncate_row(&row, self.merger.visible).map(Some);
        }
        Ok(None)
    }
}

/// Merges the streams into `out` by `keys` ([`Merged`]), the
/// RowDescription without the hidden columns in the simple protocol.
/// Returns the number of rows sent.
pub async fn merge(
    streams: &mut [ShardStream],
    keys: &[SortKey],
    hidden: usize,
    groups: usize,
    window: Window,
    out: &mut Responder<'_>,
) -> Result<u64, PgError> {
    let mut merged = Merged::start(streams, keys, hidden, groups, window).await?;
    out.row_description(merged.columns());
    while let Some(row) = merged.next(streams).await? {
        out.data_row(row).await?;
    }
    for s in streams.iter_mut() {
        s.finish().await?;
    }
    Ok(merged.sent)
}

/// The two-stage rerank: the shards' rows end in two hidden columns, the
/// inner (index) distance and the outer distance. The streams are merged
/// by the inner one and cut to the `inner` window (the global inner
/// top-N, as one server's subquery yields it), those rows re-sorted by
/// the outer distance (stable: ties keep the inner order) and cut to the
/// `outer` window; returns the number of rows sent.
pub async fn rerank(
    streams: &mut [ShardStream],
    inner: Window,
    outer: Window,
    out: &mut Responder<'_>,
) -> Result<u64, PgError> {
    let ascending = |n| SortKey {
        column: OutputColumn::Hidden(n),
        descending: false,
        nulls_first: false,
    };
    let mut merger = Merger::start(streams, &[ascending(0)], 2).await?;
    out.row_description(&merger.columns[..merger.visible]);
    let outer_key = [merge_key(&ascending(1), merger.visible)];
    let mut rows = Vec::new();
    let mut skipped = 0u64;
    while inner.limit.is_none_or(|l| (rows.len() as u64) < l) {
        let Some((_, row)) = merger.next(streams).await? else {
            break;
        };
        if skipped < inner.offset {
            skipped += 1;
            continue;
        }
        let key = key_values(Some(&merger.columns), &outer_key, &row)?;
        rows.push((key, row));
    }
    for s in streams.iter_mut() {
        s.finish().await?;
    }
    rows.sort_by(|a, b| cmp_keys(&outer_key, &a.0, &b.0));
    let window = rows
        .into_iter()
        .skip(usize::try_from(outer.offset).unwrap_or(usize::MAX))
        .take(
            outer
                .limit
                .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)),
        );
    let mut sent = 0u64;
    for (_, row) in window {
        out.data_row(truncate_row(&row, merger.visible)?).await?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types;

    fn field(ty: u32, format: i16) -> FieldDescription {
        FieldDescription {
            format,
            ..FieldDescription::new("x", types::by_oid(ty).unwrap())
        }
    }

    #[test]
    fn text_and_binary_decode_alike() {
        let t = decode(&field(oid::FLOAT8, 0), Some(b"0.25")).unwrap();
        let b = decode(&field(oid::FLOAT8, 1), Some(&0.25f64.to_be_bytes())).unwrap();
        assert_eq!(t, b);
        let t = decode(&field(oid::INT4, 0), Some(b"-7")).unwrap();
        let b = decode(&field(oid::INT4, 1), Some(&(-7i32).to_be_bytes())).unwrap();
        assert_eq!(t, b);
        assert!(decode(&field(oid::JSONB, 0), Some(b"{}")).is_err());
        // Intervals by their length: a month as 30 days, a day as 24 hours.
        let text = |s: &str| decode(&field(oid::INTERVAL, 0), Some(s.as_bytes())).unwrap();
        let month = Interval::parse("1 mon").unwrap().to_binary();
        assert_eq!(
            text("1 mon"),
            decode(&field(oid::INTERVAL, 1), Some(&month)).unwrap()
        );
        assert_eq!(text("1 day"), text("24:00:00"));
        assert_eq!(
            cmp_values(&text("1 mon"), &text("29 days 23:59:59")),
            Ordering::Greater
        );
        assert_eq!(
            cmp_values(&text("-1 days +02:00:00"), &text("-22:00:00")),
            Ordering::Equal
        );
    }

    #[test]
    fn keys_follow_postgres_order() {
        let asc = [MergeKey {
            column: 0,
            descending: false,
            nulls_first: false,
        }];
        let desc = [MergeKey {
            column: 0,
            descending: true,
            nulls_first: true,
        }];
        let (one, nan, null) = (
            [SortValue::Float(1.0)],
            [SortValue::Float(f64::NAN)],
            [SortValue::Null],
        );
        assert_eq!(cmp_keys(&asc, &one, &nan), Ordering::Less);
        assert_eq!(cmp_keys(&asc, &nan, &null), Ordering::Less);
        assert_eq!(cmp_keys(&desc, &null, &nan), Ordering::Less);
        assert_eq!(cmp_keys(&desc, &nan, &one), Ordering::Less);
        assert_eq!(
            cmp_keys(&asc, &[SortValue::Float(-0.0)], &[SortValue::Float(0.0)]),
            Ordering::Equal
        );
    }
}
