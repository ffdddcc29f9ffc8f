//! Running a planned route: channels for its shards, one request per
//! shard sent before any reply is read (so the shards work in parallel),
//! then the route's way of combining the replies into the client's answer.
//!
//! One file per way of combining: [`combine`] (partial aggregates finished
//! by a shard), [`merge`] (k-way merge and re-rank of sorted streams),
//! [`vector_avg`]; [`shard_stream`] reads one shard's reply.

mod combine;
pub mod merge;
pub mod shard_stream;
mod vector_avg;

use std::borrow::Cow;

use futures_util::future::join_all;

use self::combine::{final_request, output_names};
use self::merge::{merge, rerank, Window};
use self::shard_stream::{check_same_columns, combined_tag, sync_settings, ShardStream};
use super::backend::{ExtendedRequest, OidMap, Request, ShardChannel};
use super::cluster::Cluster;
use super::plan::{Combine, Route};
use super::topology::{Policy, SessionReads};
use super::txn::Block;
use crate::sql::{self, Bound};
use crate::wire::{guc, sqlstate, Format, Params, PgError, Responder, Value};

/// The setting that lets a read answer without a shard that is down.
static ALLOW_PARTIAL_RESULTS: guc::Named = guc::Named::new("pgvshard.allow_partial_results");

/// Channels in route order: the transaction block's connection for a
/// shard it wrote, pooled ones for the others — from the primary, or for
/// a read with a `policy` from the node the topology picks over the
/// session's `reads` floors; `None` for a shard left out under
/// `pgvshard.allow_partial_results` (a NOTICE names it). The flag is false
/// when a channel's answer must not fill the result cache.
pub async fn open(
    cluster: &Cluster,
    route: &Route<'_>,
    block: &mut Block,
    read: Option<(Policy, &SessionReads)>,
    out: &mut Responder<'_>,
) -> Result<(Vec<Option<Box<dyn ShardChannel>>>, bool), PgError> {
    let partial_ok = !route.writes && out.session().setting(&ALLOW_PARTIAL_RESULTS) == Some("on");
    let own: Vec<Option<Box<dyn ShardChannel>>> = route
        .parts
        .iter()
        .map(|(shard, _)| block.take(*shard))
        .collect();
    let checkout = |shard: usize, own: bool| async move {
        match read {
            _ if own => Ok((None, true)),
            Some((policy, reads)) => cluster
                .topology
                .read(shard, policy, reads.floor(shard))
                .await
                .map(|r| (Some(r.chan), r.cacheable)),
            None => cluster.shards[shard]
                .checkout()
                .await
                .map(|c| (Some(c), true)),
        }
    };
    // Most routes have one shard: awaited as it is, without join_all's
    // allocations.
    let single = match (route.parts.as_slice(), own.as_slice()) {
        ([(shard, _)], [own]) => Some((*shard, own.is_some())),
        _ => None,
    };
    let results = match single {
        Some((shard, own)) => vec![checkout(shard, own).await],
        None => {
            let all = route.parts.iter().zip(&own);
            join_all(all.map(|((shard, _), own)| checkout(*shard, own.is_some()))).await
        }
    };
    let mut chans = Vec::with_capacity(results.len());
    let mut missing = Vec::new();
    let mut cacheable = true;
    for ((shard, _), r) in route.parts.iter().zip(results) {
        match r {
            Ok((Some(c), fresh)) => {
                cacheable &= fresh;
                chans.push(Some(c));
            }
            // The block's own, placed below.
            Ok((None, _)) => chans.push(None),
            Err(e) if partial_ok && e.code == sqlstate::CONNECTION_FAILURE => {
                missing.push(format!("\"{}\"", cluster.shards[*shard].name()));
                chans.push(None);
            }
            Err(e) => {
                // The block's connections are still clean: give them back.
                for ((shard, _), chan) in route.parts.iter().zip(own) {
                    if let Some(chan) = chan {
                        block.put_back(*shard, chan);
                    }
                }
                return Err(e);
            }
        }
    }
    for (slot, chan) in chans.iter_mut().zip(own) {
        if chan.is_some() {
            *slot = chan;
        }
    }
    if !missing.is_empty() {
        if chans.iter().all(Option::is_none) {
            return Err(PgError::new(
                sqlstate::CONNECTION_FAILURE,
                format!("no shard is available (missing: {})", missing.join(", ")),
            ));
        }
        out.notice(&PgError::warning(
            sqlstate::WARNING,
            format!(
                "partial result: shard {} did not answer (pgvshard.allow_partial_results is on)",
                missing.join(", ")
            ),
        ));
    }
    Ok((chans, cacheable))
}

/// The value of a LIMIT/OFFSET bound with the statement's parameters.
fn bound_value(bound: Option<&Bound>, params: Option<&Params>) -> Result<Option<u64>, PgError> {
    let Some(bound) = bound else {
        return Ok(None);
    };
    let param = |n: usize| -> Option<u64> {
        let v = params?.decode(n.checked_sub(1)?, None).ok()??;
        match v {
            Value::Int2(x) => u64::try_from(x).ok(),
            Value::Int4(x) => u64::try_from(x).ok(),
            Value::Int8(x) => u64::try_from(x).ok(),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    };
    bound.resolve(param).map(Some).ok_or_else(|| {
        PgError::invalid_parameter_value("LIMIT and OFFSET must be non-negative integers")
    })
}

/// The client's formats for `visible` columns plus binary for `hidden`,
/// as Bind's format codes.
fn result_formats(
    out: &Responder<'_>,
    visible: Option<usize>,
    hidden: usize,
) -> Cow<'static, [i16]> {
    let Some(visible) = visible else {
        return Cow::Borrowed(&[]);
    };
    let client = (0..visible).map(|i| out.result_format(i));
    let formats = client.chain(std::iter::repeat_n(Format::Binary, hidden));
    // One code for all columns when they agree (Bind's rule): the shard
    // then answers whatever columns the statement has now, and a result
    // that changed since Describe is refused by the wire layer rather
    // than by the shard as a protocol violation. (The usual case, so
    // without an allocation.)
    let mut rest = formats.clone();
    match rest.next() {
        None => Cow::Borrowed(&[]),
        Some(Format::Text) if rest.all(|f| f == Format::Text) => Cow::Borrowed(&[0]),
        Some(Format::Binary) if rest.all(|f| f == Format::Binary) => Cow::Borrowed(&[1]),
        Some(_) => Cow::Owned(formats.map(Format::code).collect()),
    }
}

/// The request for one shard: the simple protocol when the client used
/// it, else the extended protocol with the client's parameters (borrowed).
pub fn request<'a>(
    sql: &'a str,
    params: Option<&'a Params>,
    oids: &OidMap,
    formats: &'a [i16],
) -> Request<'a> {
    match params {
        None => Request::Simple(sql.to_string()),
        Some(p) => Request::Extended(ExtendedRequest {
            sql: sql.into(),
            param_types: oids.types_to_shard(&p.types),
            param_formats: p.formats.as_slice().into(),
            values: p.values.as_slice().into(),
            result_formats: formats.into(),
        }),
    }
}

/// Channels given back after a route ran, by shard.
pub type Returned = Vec<(usize, Box<dyn ShardChannel>)>;

/// Runs the route on the channels and answers the client; returns the
/// outcome and the channels read to their end (all of them on success;
/// on an error, those left clean), so a pinned one can be kept — inside a
/// transaction block a failed statement leaves the shard's transaction
/// open for ROLLBACK TO SAVEPOINT.
pub async fn run(
    cluster: &Cluster,
    statement: &sql::Statement,
    route: &Route<'_>,
    chans: Vec<Option<Box<dyn ShardChannel>>>,
    params: Option<&Params>,
    visible: Option<usize>,
    out: &mut Responder<'_>,
) -> (Result<(), PgError>, Returned) {
    let mut streams = Vec::with_capacity(chans.len());
    let result = run_streams(
        cluster,
        statement,
        route,
        chans,
        &mut streams,
        params,
        visible,
        out,
    )
    .await;
    let back = streams
        .into_iter()
        .filter(|s| result.is_ok() || s.is_done())
        .map(|s| (s.shard, s.chan))
        .collect();
    (result, back)
}

#[allow(clippy::too_many_arguments)]
async fn run_streams(
    cluster: &Cluster,
    statement: &sql::Statement,
    route: &Route<'_>,
    chans: Vec<Option<Box<dyn ShardChannel>>>,
    streams: &mut Vec<ShardStream>,
    params: Option<&Params>,
    visible: Option<usize>,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let formats = match &route.combine {
        Combine::Merge { hidden, .. } => result_formats(out, visible, *hidden),
        Combine::Rerank { .. } => result_formats(out, visible, 2),
        Combine::Aggregate(_) => Cow::Borrowed(&[][..]),
        _ => result_formats(out, visible, 0),
    };
    if let Combine::Replicated = route.combine {
        return replicated(cluster, route, chans, streams, params, &formats, out).await;
    }
    for ((shard, sql), chan) in route.parts.iter().zip(chans) {
        let Some(chan) = chan else { continue };
        streams.push(start(cluster, *shard, sql, chan, params, &formats, out).await?);
    }
    match &route.combine {
        Combine::Concat => concat(streams, out).await?,
        Combine::Merge {
            keys,
            hidden,
            groups,
            offset,
            limit,
        } => {
            let window = Window {
                offset: bound_value(offset.as_ref(), params)?.unwrap_or(0),
                limit: bound_value(limit.as_ref(), params)?,
            };
            let n = merge(streams, keys, *hidden, *groups, window, out).await?;
            forward_notices(streams, out);
            out.complete(&format!("SELECT {n}"));
        }
        Combine::Rerank { inner, outer } => {
            let window = |(offset, limit): &(Option<Bound>, Bound)| -> Result<Window, PgError> {
                Ok(Window {
                    offset: bound_value(offset.as_ref(), params)?.unwrap_or(0),
                    limit: bound_value(Some(limit), params)?,
                })
            };
            let n = rerank(streams, window(inner)?, window(outer)?, out).await?;
            forward_notices(streams, out);
            out.complete(&format!("SELECT {n}"));
        }
        Combine::Aggregate(plan) => {
            let mut rows = Vec::new();
            for s in streams.iter_mut() {
                rows.extend(s.collect().await?);
            }
            let columns = streams
                .iter()
                .find_map(|s| s.columns.clone())
                .unwrap_or_default();
            let window = (
                bound_value(plan.limit.as_ref(), params)?,
                bound_value(plan.offset.as_ref(), params)?,
            );
            let formats = result_formats(out, visible, 0);
            let Some(first) = streams.first_mut() else {
                return Err(PgError::new(
                    sqlstate::CONNECTION_FAILURE,
                    "no shard answered",
                ));
            };
            let names = output_names(statement);
            let request = final_request(
                plan,
                &names,
                &columns,
                &rows,
                &first.oids(),
                window,
                formats.into_owned(),
            )?;
            first.restart(&Request::Extended(request)).await?;
            concat(std::slice::from_mut(first), out).await?;
        }
        Combine::Insert { rows } => insert(streams, rows, out).await?,
        Combine::Broadcast => broadcast(cluster, streams, out).await?,
        Combine::Replicated => {}
    }
    Ok(())
}

/// Sends one shard its part of the route (after the session's settings).
async fn start(
    cluster: &Cluster,
    shard: usize,
    sql: &str,
    mut chan: Box<dyn ShardChannel>,
    params: Option<&Params>,
    formats: &[i16],
    out: &mut Responder<'_>,
) -> Result<ShardStream, PgError> {
    let oids = cluster.shards[shard].oids();
    sync_settings(chan.as_mut(), out.session()).await?;
    chan.send(&request(sql, params, &oids, formats)).await?;
    Ok(ShardStream::new(shard, chan, oids))
}

/// A write to a reference table: the first shard runs it to the end, then
/// the others in parallel; the first shard's rows and tag are the answer,
/// once every other shard gave the same tag (a different count means the
/// copies differ, and the statement fails, so its transaction commits
/// nowhere).
async fn replicated(
    cluster: &Cluster,
    route: &Route<'_>,
    chans: Vec<Option<Box<dyn ShardChannel>>>,
    streams: &mut Vec<ShardStream>,
    params: Option<&Params>,
    formats: &[i16],
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let mut parts = route
        .parts
        .iter()
        .zip(chans)
        .filter_map(|(p, c)| Some((p, c?)));
    let Some(((shard, sql), chan)) = parts.next() else {
        return Err(PgError::new(
            sqlstate::CONNECTION_FAILURE,
            "no shard answered",
        ));
    };
    streams.push(start(cluster, *shard, sql, chan, params, formats, out).await?);
    let rows = match streams[0].collect().await {
        Ok(rows) => rows,
        Err(e) => {
            for ((shard, _), chan) in parts {
                let oids = cluster.shards[*shard].oids();
                streams.push(ShardStream::unused(*shard, chan, oids));
            }
            return Err(e);
        }
    };
    for ((shard, sql), chan) in parts {
        streams.push(start(cluster, *shard, sql, chan, params, formats, out).await?);
    }
    for result in join_all(streams[1..].iter_mut().map(|s| s.finish())).await {
        result?;
    }
    let name = |s: &ShardStream| cluster.shards[s.shard].name().to_string();
    let first = &streams[0];
    if let Some(other) = streams[1..].iter().find(|s| s.tag != first.tag) {
        return Err(PgError::new(
            sqlstate::INTERNAL_ERROR,
            format!(
                "the copies of a reference table differ: shard \"{}\" answered {}, shard \"{}\" {}",
                name(first),
                first.tag.as_deref().unwrap_or("nothing"),
                name(other),
                other.tag.as_deref().unwrap_or("nothing"),
            ),
        )
        .with_hint("Nothing was written. Bring the copies back in line (the same rows on every shard) before writing again."));
    }
    if let Some(columns) = first.columns.as_deref().filter(|c| !c.is_empty()) {
        out.row_description(columns);
    }
    for row in rows {
        out.data_row(row).await?;
    }
    forward_notices(streams, out);
    match &streams[0].tag {
        Some(tag) => out.complete(tag),
        None => out.empty_query(),
    }
    Ok(())
}

fn forward_notices(streams: &[ShardStream], out: &mut Responder<'_>) {
    if let Some(first) = streams.first() {
        // Truncated identifiers were noticed when the proxy parsed them.
        for n in first
            .notices
            .iter()
            .filter(|n| n.code != sqlstate::NAME_TOO_LONG)
        {
            out.notice(n);
        }
    }
}

/// Rows of every shard, one shard after the other.
async fn concat(streams: &mut [ShardStream], out: &mut Responder<'_>) -> Result<(), PgError> {
    let mut described = false;
    for i in 0..streams.len() {
        let mut row = streams[i].next_row().await?;
        // The first message of each reply tells its columns.
        check_same_columns(&streams[..=i])?;
        let s = &mut streams[i];
        if !described {
            if let Some(columns) = s.columns.as_deref().filter(|c| !c.is_empty()) {
                out.row_description(columns);
                described = true;
            }
        }
        while let Some(r) = row {
            out.data_row(r).await?;
            // The rows read with it go on as they came.
            if let Some((frames, n)) = s.chan.buffered_rows(out.row_frames_room()) {
                out.data_row_frames(&frames, n).await?;
            }
            row = s.next_row().await?;
        }
    }
    forward_notices(streams, out);
    let tag = match streams {
        // One shard's tag as it is, without adding up.
        [one] => one.tag.take(),
        _ => {
            let tags: Vec<String> = streams.iter_mut().filter_map(|s| s.tag.take()).collect();
            match tags.as_slice() {
                [one] => Some(one.clone()),
                _ => combined_tag(&tags),
            }
        }
    };
    match tag {
        Some(tag) => out.complete(&tag),
        None => out.empty_query(),
    }
    Ok(())
}

/// INSERT parts: RETURNING rows back in the client's row order.
async fn insert(
    streams: &mut [ShardStream],
    rows: &[Vec<usize>],
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let mut returned = Vec::with_capacity(streams.len());
    for s in streams.iter_mut() {
        returned.push(s.collect().await?);
    }
    if let Some(columns) = streams
        .iter()
        .find_map(|s| s.columns.as_deref().filter(|c| !c.is_empty()))
    {
        out.row_description(columns);
    }
    let total: usize = rows.iter().map(Vec::len).sum();
    let mut place = vec![None; total];
    for (part, indexes) in rows.iter().enumerate() {
        for (k, &i) in indexes.iter().enumerate() {
            if let Some(slot) = place.get_mut(i) {
                *slot = Some((part, k));
            }
        }
    }
    for (part, k) in place.into_iter().flatten() {
        if let Some(row) = returned.get(part).and_then(|r| r.get(k)) {
            out.data_row(row.clone()).await?;
        }
    }
    let tags: Vec<String> = streams.iter().filter_map(|s| s.tag.clone()).collect();
    if let Some(tag) = combined_tag(&tags) {
        out.complete(&tag);
    }
    Ok(())
}

/// DDL on every shard. If some shards fail and others applied it, the
/// error names each shard's state; if all fail alike, the shard's own
/// error is the answer (as one server would give it).
async fn broadcast(
    cluster: &Cluster,
    streams: &mut [ShardStream],
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    let results = join_all(streams.iter_mut().map(|s| s.finish())).await;
    let name = |s: &ShardStream| cluster.shards[s.shard].name().to_string();
    let failed: Vec<(String, &PgError)> = streams
        .iter()
        .zip(&results)
        .filter_map(|(s, r)| r.as_ref().err().map(|e| (name(s), e)))
        .collect();
    if let Some((shard, first)) = failed.first() {
        if failed.len() == streams.len() {
            return Err((*first).clone());
        }
        let states: Vec<String> = streams
            .iter()
            .zip(&results)
            .map(|(s, r)| match r {
                Ok(()) => format!("{}: applied", name(s)),
                Err(e) => format!("{}: failed ({})", name(s), e.message),
            })
            .collect();
        return Err(PgError::new(
            first.code.clone(),
            format!("{} (on shard \"{shard}\")", first.message),
        )
        .with_detail(format!("Shard states: {}.", states.join("; ")))
        .with_hint("Fix the cause and run the statement again with IF [NOT] EXISTS to bring every shard to the same state."));
    }
    forward_notices(streams, out);
    let tag = streams
        .iter()
        .find_map(|s| s.tag.clone())
        .unwrap_or_default();
    out.complete(&tag);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn bounds_resolve_with_parameters() {
        let params = Params {
            types: vec![crate::wire::oid::INT8],
            formats: vec![Format::Binary],
            values: vec![Some(Bytes::from(5i64.to_be_bytes().to_vec()))],
        };
        let b = Bound::value(3).plus(&Bound::param(1));
        assert_eq!(bound_value(Some(&b), Some(&params)).unwrap(), Some(8));
        assert_eq!(bound_value(None, None).unwrap(), None);
        assert!(bound_value(Some(&Bound::param(2)), Some(&params)).is_err());
    }
}
