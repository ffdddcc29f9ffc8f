//! The extended query protocol: named and unnamed statements and portals,
//! parameter and result format codes, Describe, Execute with a row limit
//! (PortalSuspended, resumed by the next Execute) and Close. Errors skip
//! to the next Sync (in [`super::client`]).

use std::pin::pin;
use std::sync::Arc;

use super::backend::{self, tag, FieldDescription};
use super::cancel::StatementTimer;
use super::client::{guarded, Client};
use super::error::{PgError, WireError};
use super::frontend::{Bind, FrontendMessage, Target};
use super::handler::{Params, Prepared, QueryHandler};
use super::responder::{PortalOutput, Responder, Suspended};
use super::sqlstate;
use super::value::Format;

/// A statement kept by Parse.
pub(crate) type PreparedStatement<S> = Arc<Prepared<S>>;

/// A portal made by Bind.
pub(crate) struct Portal<S> {
    statement: PreparedStatement<S>,
    params: Params,
    formats: Vec<Format>,
    /// Rows left over from an Execute that hit its row limit.
    suspended: Option<Suspended>,
    /// Set once the portal ran to completion: the tag it completed with.
    finished: Option<String>,
}

/// Format of each of `n` values under Bind's rule (see [`Format::pick`]).
fn formats(codes: &[i16], n: usize) -> Result<Vec<Format>, PgError> {
    (0..n).map(|i| Format::pick(codes, i, n)).collect()
}

/// RowDescription of `fields` (in `formats`, else their own), or NoData
/// when there are none.
fn row_description_or_no_data(
    out: &mut bytes::BytesMut,
    fields: &[FieldDescription],
    formats: Option<&[Format]>,
) {
    match formats {
        _ if fields.is_empty() => backend::empty(out, tag::NO_DATA),
        None => backend::row_description(out, fields),
        Some(formats) => backend::row_description_in(out, fields, formats.iter().map(|f| f.code())),
    }
}

impl<H: QueryHandler> Client<H> {
    /// Handles Bind, Describe and Close ([`Self::parse`] and
    /// [`Self::execute`] answer Parse and Execute).
    pub(crate) fn extended(&mut self, msg: FrontendMessage) -> Result<(), PgError> {
        match msg {
            FrontendMessage::Bind(bind) => self.bind(bind),
            FrontendMessage::Describe { target, name } => self.describe(target, &name),
            FrontendMessage::Close { target, name } => {
                match target {
                    Target::Statement => self.statements.remove(&name).map(drop),
                    Target::Portal => self.portals.remove(&name).map(drop),
                };
                backend::empty(&mut self.conn.out, tag::CLOSE_COMPLETE);
                Ok(())
            }
            other => Err(PgError::protocol_violation(format!(
                "unexpected message {other:?}"
            ))),
        }
    }

    /// Parse: the handler plans the statement, kept under `name`.
    pub(crate) async fn parse(
        &mut self,
        name: String,
        sql: &str,
        types: &[u32],
    ) -> Result<(), PgError> {
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Err(PgError::duplicate_statement(&name));
        }
        let prepared = self.handler.prepare(sql, types, &mut self.session).await;
        for notice in self.session.take_deferred_notices() {
            backend::error_or_notice(&mut self.conn.out, &notice);
        }
        let prepared = prepared?;
        self.statements.insert(name, Arc::new(prepared));
        backend::empty(&mut self.conn.out, tag::PARSE_COMPLETE);
        Ok(())
    }

    fn bind(&mut self, bind: Bind) -> Result<(), PgError> {
        let Some(statement) = self.statements.get(&bind.statement) else {
            return Err(PgError::unknown_statement(&bind.statement));
        };
        let wanted = statement.param_types.len();
        if bind.params.len() != wanted {
            return Err(PgError::protocol_violation(format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {wanted}",
                bind.params.len(),
                bind.statement
            )));
        }
        let codes = bind.param_formats.len();
        if codes > 1 && codes != wanted {
            return Err(PgError::protocol_violation(format!(
                "bind message has {codes} parameter formats but {wanted} parameters"
            )));
        }
        let params = Params {
            types: statement.param_types.clone(),
            formats: formats(&bind.param_formats, wanted)?,
            values: bind.params,
        };
        let formats = formats(&bind.result_formats, statement.columns.len())?;
        if !bind.portal.is_empty() && self.portals.contains_key(&bind.portal) {
            return Err(PgError::new(
                sqlstate::DUPLICATE_CURSOR,
                format!("portal \"{}\" already exists", bind.portal),
            ));
        }
        let portal = Portal {
            statement: Arc::clone(statement),
            params,
            formats,
            suspended: None,
            finished: None,
        };
        self.portals.insert(bind.portal, portal);
        backend::empty(&mut self.conn.out, tag::BIND_COMPLETE);
        Ok(())
    }

    fn describe(&mut self, target: Target, name: &str) -> Result<(), PgError> {
        match target {
            Target::Statement => {
                let s = self
                    .statements
                    .get(name)
                    .ok_or_else(|| PgError::unknown_statement(name))?;
                backend::parameter_description(&mut self.conn.out, &s.param_types);
                row_description_or_no_data(&mut self.conn.out, &s.columns, None);
            }
            Target::Portal => {
                let p = self
                    .portals
                    .get(name)
                    .ok_or_else(|| PgError::unknown_portal(name))?;
                let (columns, formats) = (&p.statement.columns, &p.formats);
                row_description_or_no_data(&mut self.conn.out, columns, Some(formats));
            }
        }
        Ok(())
    }

    /// Execute: runs portal `name`, or sends what is left of a suspended
    /// one.
    pub(crate) async fn execute(&mut self, name: &str, max_rows: u32) -> Result<(), PgError> {
        let Some(portal) = self.portals.get_mut(name) else {
            return Err(PgError::unknown_portal(name));
        };
        if let Some(tag) = &portal.finished {
            // PostgreSQL runs a portal once; executing it again yields no rows.
            let again = if tag.starts_with("SELECT") {
                "SELECT 0"
            } else {
                tag.as_str()
            };
            backend::command_complete(&mut self.conn.out, again);
            return Ok(());
        }
        if let Some(mut suspended) = portal.suspended.take() {
            let take = if max_rows == 0 {
                usize::MAX
            } else {
                max_rows as usize
            };
            for row in suspended.rows.drain(..take.min(suspended.rows.len())) {
                backend::data_row(&mut self.conn.out, &row);
            }
            if suspended.rows.is_empty() {
                let done = suspended.tag.unwrap_or_else(|| "SELECT 0".to_string());
                backend::command_complete(&mut self.conn.out, &done);
                portal.finished = Some(done);
            } else {
                backend::empty(&mut self.conn.out, tag::PORTAL_SUSPENDED);
                portal.suspended = Some(suspended);
            }
            return Ok(());
        }
        let statement = Arc::clone(&portal.statement);
        let params = std::mem::take(&mut portal.params);
        let formats = portal.formats.clone();
        self.cancel = self.session_cancel.begin_statement();
        let timer = StatementTimer::arm(&self.cancel, &self.session);
        let mut out = Responder {
            conn: &mut self.conn,
            session: &mut self.session,
            cancel: &self.cancel,
            timer,
            portal: Some(PortalOutput {
                formats,
                limit: max_rows,
                sent: 0,
                suspended: Suspended::default(),
                tag: None,
                described: statement.columns.iter().map(|c| c.type_oid).collect(),
                changed: false,
            }),
            copy_open: false,
            recording: None,
            last_tag: None,
        };
        let result = {
            let run = pin!(self.handler.execute(&statement, &params, &mut out));
            guarded(&self.cancel, run).await
        };
        out.timer = None;
        let copy_open = out.copy_open;
        let (suspended, tag) = out
            .portal
            .take()
            .map(|p| (p.suspended, p.tag))
            .unwrap_or_default();
        if copy_open {
            self.drain_copy().await.map_err(|e| match e {
                WireError::Fatal(e) => e,
                other => PgError::connection_lost(other.to_string()),
            })?;
        }
        result?;
        let portal = self.portals.get_mut(name);
        if let Some(portal) = portal {
            portal.params = params;
            if suspended.rows.is_empty() {
                portal.finished = tag;
            } else {
                backend::empty(&mut self.conn.out, tag::PORTAL_SUSPENDED);
                portal.suspended = Some(suspended);
            }
        }
        Ok(())
    }
}
