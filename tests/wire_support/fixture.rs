//! A test-only handler that answers a few fixed statements. It exists to
//! drive the protocol layer with real clients; it is not an executor.

use std::time::Duration;

use pgvshard::wire::{
    catalog, oid, types, CancelSignal, CopyFormat, FieldDescription, HandlerFactory, Params,
    PgError, Prepared, QueryHandler, Responder, Session, Value,
};

/// What the fixture understands.
#[derive(Debug, Clone)]
pub enum Plan {
    Empty,
    /// `SELECT 1`.
    One,
    /// `SELECT $1::type` echoes its parameter.
    Echo(u32),
    /// `SELECT series(n)`: rows 1..=n.
    Series(i32),
    /// `SELECT sleep(ms)`: awaits.
    Sleep(u64),
    /// `SELECT spin(ms)`: blocking loop checking the cancel flag.
    Spin(u64),
    /// `SELECT spin_in_place(ms)`: the same loop on the session's own
    /// thread (`block_in_place`), as the shard runs its reads.
    SpinInPlace(u64),
    Set {
        name: String,
        value: String,
        local: bool,
    },
    Reset(String),
    Show(String),
    Begin,
    Commit,
    Rollback,
    /// `SELECT fail()`: an ERROR with detail and hint.
    Fail,
    /// `SELECT notice()`: a NOTICE then one row.
    Notice,
    CopyIn(CopyFormat),
    CopyOut,
    TypeInfo,
}

fn plan(sql: &str) -> Result<Plan, PgError> {
    let s = sql.trim().trim_end_matches(';').trim();
    let lower = s.to_ascii_lowercase();
    if catalog::is_typeinfo_query(sql) {
        return Ok(Plan::TypeInfo);
    }
    let arg = |prefix: &str| {
        lower
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    };
    Ok(match lower.as_str() {
        "" => Plan::Empty,
        "select 1" => Plan::One,
        "begin" | "start transaction" => Plan::Begin,
        "commit" => Plan::Commit,
        "rollback" => Plan::Rollback,
        "select fail()" => Plan::Fail,
        "select notice()" => Plan::Notice,
        "copy t to stdout" => Plan::CopyOut,
        "copy t from stdin" => Plan::CopyIn(CopyFormat::Text),
        "copy t from stdin (format csv)" => Plan::CopyIn(CopyFormat::Csv),
        "copy t from stdin (format binary)" => Plan::CopyIn(CopyFormat::Binary),
        _ if lower.starts_with("select $1::") => {
            let ty = types::by_name(&lower["select $1::".len()..]).ok_or_else(|| {
                PgError::new("42704", format!("type \"{}\" does not exist", &s[11..]))
            })?;
            Plan::Echo(ty.oid)
        }
        _ if arg("select series(").is_some() => Plan::Series(num(&arg("select series(").unwrap())?),
        _ if arg("select sleep(").is_some() => Plan::Sleep(num(&arg("select sleep(").unwrap())?),
        _ if arg("select spin(").is_some() => Plan::Spin(num(&arg("select spin(").unwrap())?),
        _ if arg("select spin_in_place(").is_some() => {
            Plan::SpinInPlace(num(&arg("select spin_in_place(").unwrap())?)
        }
        _ if lower.starts_with("show ") => Plan::Show(s[5..].trim().to_string()),
        _ if lower.starts_with("reset ") => Plan::Reset(s[6..].trim().to_string()),
        _ if lower.starts_with("set ") => {
            let (local, rest) = match lower.strip_prefix("set local ") {
                Some(_) => (true, &s[10..]),
                None => (false, &s[4..]),
            };
            let (name, value) = rest
                .split_once(" = ")
                .or_else(|| rest.split_once(" TO "))
                .or_else(|| rest.split_once(" to "))
                .ok_or_else(|| PgError::new("42601", "syntax error"))?;
            Plan::Set {
                name: name.trim().to_string(),
                value: value.trim().trim_matches('\'').to_string(),
                local,
            }
        }
        _ => return Err(PgError::new("42601", format!("fixture cannot run: {s}"))),
    })
}

/// Blocks for `ms` milliseconds unless `signal` fires first.
fn spin(signal: &CancelSignal, ms: u64) -> Result<(), PgError> {
    let until = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < until {
        if let Some(e) = signal.error() {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, PgError> {
    s.trim()
        .parse()
        .map_err(|_| PgError::new("42601", "bad number"))
}

fn field(name: &str, type_oid: u32) -> FieldDescription {
    FieldDescription::new(name, types::by_oid(type_oid).unwrap())
}

fn columns(plan: &Plan) -> Vec<FieldDescription> {
    match plan {
        Plan::One | Plan::Notice => vec![field("?column?", oid::INT4)],
        Plan::Echo(t) => vec![field("echo", *t)],
        Plan::Series(_) => vec![field("n", oid::INT4)],
        Plan::Sleep(_) | Plan::Spin(_) | Plan::SpinInPlace(_) => vec![field("done", oid::BOOL)],
        Plan::Show(name) if name.eq_ignore_ascii_case("all") => vec![
            field("name", oid::TEXT),
            field("setting", oid::TEXT),
            field("description", oid::TEXT),
        ],
        Plan::Show(name) => vec![field(name, oid::TEXT)],
        Plan::TypeInfo => catalog::typeinfo_columns(),
        _ => vec![],
    }
}

async fn run(plan: &Plan, params: &Params, out: &mut Responder<'_>) -> Result<(), PgError> {
    let cols = columns(plan);
    if !cols.is_empty() {
        out.row_description(&cols);
    }
    match plan {
        Plan::Empty => out.empty_query(),
        Plan::One => {
            out.row(&[Some(Value::Int4(1))]).await?;
            out.complete("SELECT 1");
        }
        Plan::Notice => {
            out.notice(&PgError::notice("hello from the fixture"));
            out.row(&[Some(Value::Int4(1))]).await?;
            out.complete("SELECT 1");
        }
        Plan::Echo(_) => {
            let v = params.decode(0, None)?;
            out.row(&[v]).await?;
            out.complete("SELECT 1");
        }
        Plan::Series(n) => {
            for i in 1..=*n {
                out.row(&[Some(Value::Int4(i))]).await?;
            }
            out.complete(&format!("SELECT {n}"));
        }
        Plan::Sleep(ms) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            out.row(&[Some(Value::Bool(true))]).await?;
            out.complete("SELECT 1");
        }
        Plan::Spin(ms) => {
            // CPU work belongs on the blocking pool, polling the flag.
            let signal = out.cancel_signal().clone();
            let ms = *ms;
            tokio::task::spawn_blocking(move || spin(&signal, ms))
                .await
                .map_err(|e| PgError::internal(e.to_string()))??;
            out.row(&[Some(Value::Bool(true))]).await?;
            out.complete("SELECT 1");
        }
        Plan::SpinInPlace(ms) => {
            // The session's task is not polled meanwhile: only another
            // thread can fire its signal.
            tokio::task::block_in_place(|| spin(out.cancel_signal(), *ms))?;
            out.row(&[Some(Value::Bool(true))]).await?;
            out.complete("SELECT 1");
        }
        Plan::Set { name, value, local } => {
            if let Some(warning) = out.session().set(name, value, *local)? {
                out.notice(&warning);
            }
            out.complete("SET");
        }
        Plan::Reset(name) => {
            if name.eq_ignore_ascii_case("all") {
                out.session().reset_all();
            } else {
                out.session().reset(name)?;
            }
            out.complete("RESET");
        }
        Plan::Show(name) if name.eq_ignore_ascii_case("all") => {
            let all = out.session().show_all();
            for (n, v, d) in &all {
                let row = [n.to_string(), v.clone(), d.to_string()].map(|s| Some(Value::Text(s)));
                out.row(&row).await?;
            }
            out.complete(&format!("SHOW {}", all.len()));
        }
        Plan::Show(name) => {
            let v = out.session().show(name)?;
            out.row(&[Some(Value::Text(v))]).await?;
            out.complete("SHOW");
        }
        Plan::Begin => {
            out.session().begin();
            out.complete("BEGIN");
        }
        Plan::Commit => {
            out.session().commit();
            out.complete("COMMIT");
        }
        Plan::Rollback => {
            out.session().rollback();
            out.complete("ROLLBACK");
        }
        Plan::Fail => {
            return Err(PgError::invalid_parameter_value("fixture failure")
                .with_detail("some detail")
                .with_hint("some hint"))
        }
        Plan::CopyIn(format) => {
            let mut copy = out.copy_in(*format, 2).await?;
            let mut bytes = 0usize;
            let mut lines = 0usize;
            while let Some(chunk) = copy.next().await? {
                bytes += chunk.len();
                lines += chunk.iter().filter(|&&b| b == b'\n').count();
            }
            let n = if *format == CopyFormat::Binary {
                bytes
            } else {
                lines
            };
            out.complete(&format!("COPY {n}"));
        }
        Plan::CopyOut => {
            let mut copy = out.copy_out(CopyFormat::Text, 2);
            for i in 1..=3 {
                copy.send(format!("{i}\t[{i},{i}]\n").as_bytes()).await?;
            }
            copy.finish();
            out.complete("COPY 3");
        }
        Plan::TypeInfo => {
            let Some(Value::Oid(type_oid)) = params.decode(0, None)? else {
                return Err(PgError::protocol_violation("type lookup without an oid"));
            };
            let mut n = 0;
            if let Some(row) = catalog::typeinfo_row(type_oid) {
                out.row(&row).await?;
                n = 1;
            }
            out.complete(&format!("SELECT {n}"));
        }
    }
    Ok(())
}

/// The fixture handler.
pub struct Fixture;

impl QueryHandler for Fixture {
    type Statement = Plan;

    async fn simple_query(&mut self, sql: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
        let statements: Vec<&str> = sql.split(';').filter(|s| !s.trim().is_empty()).collect();
        if statements.is_empty() {
            out.empty_query();
        }
        for s in statements {
            run(&plan(s)?, &Params::default(), out).await?;
        }
        Ok(())
    }

    async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[u32],
        _session: &mut Session,
    ) -> Result<Prepared<Plan>, PgError> {
        let plan = plan(sql)?;
        let param_types = match &plan {
            Plan::Echo(t) => vec![param_types
                .first()
                .copied()
                .filter(|&t| t != 0)
                .unwrap_or(*t)],
            Plan::TypeInfo => catalog::TYPEINFO_PARAMS.to_vec(),
            _ => vec![],
        };
        Ok(Prepared {
            columns: columns(&plan),
            statement: plan,
            param_types,
        })
    }

    async fn execute(
        &mut self,
        statement: &Prepared<Plan>,
        params: &Params,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        run(&statement.statement, params, out).await
    }
}

/// Makes [`Fixture`]s.
pub struct FixtureFactory;

impl HandlerFactory for FixtureFactory {
    type Handler = Fixture;

    fn connect(&self, _session: &Session) -> Result<Fixture, PgError> {
        Ok(Fixture)
    }
}
