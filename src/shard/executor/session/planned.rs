//! The Execute of a prepared KNN statement by its plan ([`PreparedKnn`]):
//! planned at the first Execute (and again after a schema change),
//! searched on the session's task when the search is short, answered as
//! the interpreter would.

use super::super::prepared_knn::{PreparedKnn, Searched};
use super::{
    join_error, may_name_catalog, sample_exactly, storage_error, Planned, PreparedStatement,
    ShardSession, PLANS_KEPT,
};
use crate::metrics::QueryPlan;
use crate::shard::datum::Datum;
use crate::shard::storage::AnnSearch;
use crate::sql::{self, StatementKind};
use crate::wire::{PgError, Responder, TransactionStatus};
use sqlparser::ast::Statement as Ast;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl ShardSession {
    /// Answers an Execute of a prepared KNN statement by its plan (see
    /// [`PreparedKnn`]); false when no plan applies and the statement is
    /// to be interpreted.
    pub(super) async fn execute_planned(
        &mut self,
        p: &PreparedStatement,
        stmt: &Arc<sql::Statement>,
        kind: &StatementKind,
        params: &[Datum],
        out: &mut Responder<'_>,
    ) -> Result<bool, PgError> {
        let own_writes = self.txn.as_ref().is_some_and(|t| !t.changes().is_empty());
        if !matches!(kind, StatementKind::Select(_))
            || stmt.alter_system().is_some()
            || own_writes
            || out.session().transaction_status() == TransactionStatus::Failed
        {
            return Ok(false);
        }
        let ann = self.ann_settings(out.session())?;
        if ann.exact {
            return Ok(false);
        }
        out.session().note_query();
        let started = Instant::now();
        // Once with the kept plan, once more with a new one if the
        // schema moved since.
        for fresh in [false, true] {
            let Some(knn) = self.knn_plan(p, stmt, params, fresh, out)? else {
                return Ok(false);
            };
            if matches!(params.get(knn.query_param()), Some(None)) {
                return Ok(false);
            }
            if let Searched::Found(rows, cpu) = self.search(&knn, params, ann).await? {
                self.answer_planned(&knn, p, stmt, params, (rows, cpu, started), out)
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The statement's KNN plan: the one kept (unless `fresh`), else one
    /// made now under the current schema; `None` when it is no KNN
    /// statement a plan answers.
    fn knn_plan(
        &mut self,
        p: &PreparedStatement,
        stmt: &Arc<sql::Statement>,
        params: &[Datum],
        fresh: bool,
        out: &mut Responder<'_>,
    ) -> Result<Option<Arc<PreparedKnn>>, PgError> {
        match self.planned.get(&p.id) {
            Some(Planned::Knn(knn)) if !fresh => return Ok(Some(Arc::clone(knn))),
            Some(Planned::Interpreted { epoch }) => {
                let now = self.shard.db.read().map_err(storage_error)?.schema_epoch();
                if *epoch == now {
                    return Ok(None);
                }
            }
            _ => {}
        }
        let Ast::Query(q) = &stmt.ast else {
            return Ok(None);
        };
        // A statement that may name a catalog view is the interpreter's
        // (decided once: the text does not change).
        let (epoch, knn) = if may_name_catalog(&stmt.text) {
            let epoch = self.shard.db.read().map_err(storage_error)?.schema_epoch();
            (epoch, None)
        } else {
            let job = self.job(stmt, params.to_vec(), p.param_types.clone(), out)?;
            crate::stack::with_tree(stmt.depth, || {
                job.with_ctx(false, |ctx| {
                    Ok((ctx.tables.schema_epoch(), PreparedKnn::plan(q, ctx)))
                })
            })?
        };
        if self.planned.len() >= PLANS_KEPT {
            self.planned.clear();
        }
        let knn = knn.map(Arc::new);
        // A NULL query vector is no KNN query, this time only.
        let null_query = params.iter().any(Option::is_none);
        match &knn {
            Some(k) => {
                self.planned.insert(p.id, Planned::Knn(Arc::clone(k)));
            }
            None if !null_query => {
                self.planned.insert(p.id, Planned::Interpreted { epoch });
            }
            None => {}
        }
        Ok(knn)
    }

    /// Runs the plan's search: on the session's task when it is short,
    /// else on the blocking pool.
    async fn search(
        &self,
        knn: &Arc<PreparedKnn>,
        params: &[Datum],
        ann: AnnSearch,
    ) -> Result<Searched, PgError> {
        if knn.is_short(&ann) {
            let tables = self.shard.db.read().map_err(storage_error)?;
            match knn.search(&tables, params, &ann, true)? {
                Searched::TooLong => {}
                done => return Ok(done),
            }
        }
        let (shard, knn, params) = (self.shard.clone(), Arc::clone(knn), params.to_vec());
        tokio::task::spawn_blocking(move || {
            let tables = shard.db.read().map_err(storage_error)?;
            knn.search(&tables, &params, &ann, false)
        })
        .await
        .map_err(join_error)?
    }

    /// Sends a planned KNN statement's rows, as the interpreter would,
    /// and records the read's metrics (and perhaps a recall sample).
    async fn answer_planned(
        &mut self,
        knn: &PreparedKnn,
        p: &PreparedStatement,
        stmt: &Arc<sql::Statement>,
        params: &[Datum],
        (rows, cpu, started): (Vec<Datum>, Duration, Instant),
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        self.shard
            .queries
            .observe(QueryPlan::Ann, started.elapsed());
        self.shard.queries.add_ann_search_cpu(cpu);
        let width = knn.width();
        if let Some(ticket) = self.shard.recall.draw() {
            let job = self.job(stmt, params.to_vec(), p.param_types.clone(), out)?;
            let (table, index) = knn.searched();
            let ann_rows = rows.chunks(width).map(<[Datum]>::to_vec).collect();
            sample_exactly(ticket, &job, (table.into(), index.into()), ann_rows);
        }
        out.row_description(knn.fields());
        for row in rows.chunks(width) {
            out.row(row).await?;
        }
        out.complete(&format!("SELECT {}", rows.len() / width));
        Ok(())
    }
}
