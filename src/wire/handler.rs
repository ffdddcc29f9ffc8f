//! The seam between the protocol layer and whatever answers statements
//! (the shard executor, the proxy's router). The layer owns sockets,
//! startup, auth, statements and portals, formats, row limits, cancel and
//! timeouts; a [`QueryHandler`] only turns SQL into results, writing them
//! through a [`Responder`].

use std::future::Future;

use bytes::Bytes;

use super::backend::FieldDescription;
use super::error::PgError;
use super::responder::Responder;
use super::session::Session;
use super::value::{Format, Value};

/// Makes one [`QueryHandler`] per authenticated connection.
pub trait HandlerFactory: Send + Sync + 'static {
    /// The handler type.
    type Handler: QueryHandler;

    /// A handler for a new session (after authentication). An error is sent
    /// to the client as FATAL and the connection closes.
    fn connect(&self, session: &Session) -> Result<Self::Handler, PgError>;
}

/// A prepared statement as the handler planned it.
#[derive(Debug, Clone)]
pub struct Prepared<S> {
    /// The handler's own form of the statement.
    pub statement: S,
    /// Parameter type OIDs, the client's where given, else inferred.
    pub param_types: Vec<u32>,
    /// Result columns (formats are filled in per portal); empty when the
    /// statement returns no rows.
    pub columns: Vec<FieldDescription>,
}

/// The parameters bound to a portal, still encoded as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Type OID of each parameter.
    pub types: Vec<u32>,
    /// Format of each parameter.
    pub formats: Vec<Format>,
    /// Encoded values; `None` is NULL.
    pub values: Vec<Option<Bytes>>,
}

impl Params {
    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Decodes parameter `i` (0-based) with its type and format; `typmod`
    /// checks dimensions of vector types.
    pub fn decode(&self, i: usize, typmod: Option<u32>) -> Result<Option<Value>, PgError> {
        let Some(value) = self.values.get(i) else {
            return Err(PgError::protocol_violation(format!(
                "there is no parameter ${}",
                i + 1
            )));
        };
        value
            .as_ref()
            .map(|b| Value::decode(self.types[i], typmod, self.formats[i], b))
            .transpose()
    }
}

/// Answers statements for one session. Methods run one at a time; the
/// layer drops a method's future when the statement is canceled or times
/// out, and sets [`Responder::cancel_signal`] for work that does not await.
pub trait QueryHandler: Send + 'static {
    /// A prepared statement in the handler's own form.
    type Statement: Send + Sync + 'static;

    /// A simple-protocol Query: `sql` may hold several statements; each
    /// sends its RowDescription, rows and CommandComplete (or the whole
    /// query an EmptyQueryResponse). `statement_timeout` runs from the
    /// first; a handler times each of the others on its own, as PostgreSQL
    /// does, with [`Responder::restart_statement_timeout`].
    fn simple_query(
        &mut self,
        sql: &str,
        out: &mut Responder<'_>,
    ) -> impl Future<Output = Result<(), PgError>> + Send;

    /// Parse: plans one statement. `param_types` holds the client's OIDs
    /// (0 = infer).
    fn prepare(
        &mut self,
        sql: &str,
        param_types: &[u32],
        session: &mut Session,
    ) -> impl Future<Output = Result<Prepared<Self::Statement>, PgError>> + Send;

    /// A statement failed and [`Session::fail`] has run: an implicit
    /// block is rolled back, even when a cancel or statement_timeout
    /// dropped the statement's future midway, so the handler drops what
    /// it kept for that block. Keeps nothing by default.
    fn statement_failed(&mut self, _session: &mut Session) {}

    /// Execute: runs a bound portal, sending rows (in the formats
    /// [`Responder::result_format`] gives) and CommandComplete. The layer
    /// applies Execute's row limit.
    fn execute(
        &mut self,
        statement: &Prepared<Self::Statement>,
        params: &Params,
        out: &mut Responder<'_>,
    ) -> impl Future<Output = Result<(), PgError>> + Send;
}
