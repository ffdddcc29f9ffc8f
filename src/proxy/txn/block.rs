//! A client's transaction block (BEGIN … COMMIT) over any number of
//! shards.
//!
//! BEGIN itself sends nothing. The first write that reaches a shard
//! (DDL reaches every shard) opens the block's transaction there: BEGIN,
//! then the block's savepoints so far, replayed in order; the connection
//! then stays with the session, so later statements on that shard —
//! reads included — see the block's own writes. Shards the block has not
//! written are read through pooled connections (read committed, as each
//! statement of a PostgreSQL read-committed transaction takes a new
//! snapshot).
//!
//! SAVEPOINT, RELEASE and ROLLBACK TO go to every shard the block wrote.
//! COMMIT commits them all at once ([`super::commit`]): one shard plainly,
//! several with two-phase commit. ROLLBACK, an error without a savepoint
//! to return to, and a session that ends close them, which rolls them
//! back.
//!
//! Invariant: every open shard transaction has every savepoint of the
//! block that existed when it opened, plus all set since; `depth` is how
//! many it got by replay, so ROLLBACK TO one of those undoes all of that
//! shard's writes.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;

use super::commit;
use crate::proxy::backend::run_simple;
use crate::proxy::backend::ShardChannel;
use crate::proxy::cluster::{Cluster, TableInfo};
use crate::sql::{self, DdlAction, TableName, TransactionControl};
use crate::wire::PgError;

/// One shard's open transaction.
struct Pin {
    /// Its connection between statements (taken while one runs; still
    /// `None` after a statement that failed midway: lost).
    chan: Option<Box<dyn ShardChannel>>,
    /// How many of the block's savepoints existed when it opened.
    depth: usize,
}

/// The open transaction block of a session.
#[derive(Default)]
pub struct Block {
    pins: BTreeMap<usize, Pin>,
    /// The block's savepoints, oldest first.
    savepoints: Vec<String>,
    /// The smallest `depth` of a shard whose connection was lost in a
    /// failed statement: its writes are gone, so only a savepoint older
    /// than that can still be rolled back to.
    lost: Option<usize>,
    /// Tables the block created or altered: the proxy learned their keys
    /// and columns through the block's own connection, and forgets them
    /// when the block ends (committed or not).
    tables: Vec<TableName>,
    /// Tables created in the block, as their CREATE TABLE declared them.
    created: HashMap<String, TableInfo>,
}

impl Block {
    /// True once the block wrote on some shard.
    pub fn wrote(&self) -> bool {
        !self.pins.is_empty()
    }

    /// True when the block has an open transaction on `shard`.
    pub fn holds(&self, shard: usize) -> bool {
        self.pins.contains_key(&shard)
    }

    /// Takes `shard`'s connection for a statement (give it back with
    /// [`Block::put_back`]).
    pub fn take(&mut self, shard: usize) -> Option<Box<dyn ShardChannel>> {
        self.pins.get_mut(&shard)?.chan.take()
    }

    /// Gives back `shard`'s connection after a statement that read its
    /// reply to the end.
    pub fn put_back(&mut self, shard: usize, chan: Box<dyn ShardChannel>) {
        if let Some(pin) = self.pins.get_mut(&shard) {
            if pin.chan.is_none() {
                pin.chan = Some(chan);
            }
        }
    }

    /// Opens the block's transaction on `shard` unless it is open.
    pub async fn join(&mut self, cluster: &Cluster, shard: usize) -> Result<(), PgError> {
        if self.holds(shard) {
            return Ok(());
        }
        let mut chan = cluster.shards[shard].checkout().await?;
        super::begin_one(chan.as_mut()).await?;
        for name in &self.savepoints {
            let sql = format!("SAVEPOINT {}", sql::quote_ident(name));
            run_simple(chan.as_mut(), &sql).await?;
        }
        self.pins.insert(
            shard,
            Pin {
                chan: Some(chan),
                depth: self.savepoints.len(),
            },
        );
        Ok(())
    }

    /// After DDL `statement` on `tables` in the block: routes them by what
    /// the block sees (no other session sees them yet) — a table created
    /// in the block by its definition (again after each later DDL on it,
    /// which makes the proxy forget what it knew), an altered one by the
    /// block's own connection to the first shard.
    pub async fn learn_tables(
        &mut self,
        cluster: &Cluster,
        statement: &sql::Statement,
        action: DdlAction,
        tables: &[TableName],
    ) -> Result<(), PgError> {
        self.tables.extend(tables.iter().cloned());
        if let (Some((columns, key)), [table]) = (sql::created_table(statement), tables) {
            let info = TableInfo { key, columns };
            cluster.remember(table, info.clone());
            self.created.insert(table.to_string(), info);
            return Ok(());
        }
        for table in tables {
            if let Some(info) = self.created.get(&table.to_string()) {
                cluster.remember(table, info.clone());
            }
        }
        if action != DdlAction::AlterTable {
            return Ok(());
        }
        let Some(mut chan) = self.take(0) else {
            return Ok(());
        };
        let mut result = Ok(());
        for table in tables {
            result = cluster.learn_through(table, chan.as_mut()).await.map(drop);
            if result.is_err() {
                break;
            }
        }
        self.put_back(0, chan);
        result
    }

    /// After a failed statement: without savepoints the block can only
    /// roll back, so every shard's connection goes (closing it rolls
    /// back); with savepoints those that came back clean stay for
    /// ROLLBACK TO SAVEPOINT, and the lost ones are forgotten.
    pub fn after_error(&mut self) {
        if self.savepoints.is_empty() {
            self.pins.clear();
            return;
        }
        let lost: Vec<usize> = self
            .pins
            .iter()
            .filter(|(_, p)| p.chan.is_none())
            .map(|(s, _)| *s)
            .collect();
        for shard in lost {
            if let Some(pin) = self.pins.remove(&shard) {
                self.lost = Some(self.lost.map_or(pin.depth, |d| d.min(pin.depth)));
            }
        }
    }

    /// SAVEPOINT, RELEASE and ROLLBACK TO `tc`: on every shard the block
    /// wrote, then in the block's list. Returns the command tag and the
    /// savepoint's place in the list (0 = oldest).
    pub async fn savepoint(
        &mut self,
        tc: &TransactionControl,
    ) -> Result<(&'static str, usize), PgError> {
        let (what, name) = match tc {
            TransactionControl::Savepoint(n) => ("SAVEPOINT", n),
            TransactionControl::Release(n) => ("RELEASE SAVEPOINT", n),
            TransactionControl::RollbackTo(n) => ("ROLLBACK TO SAVEPOINT", n),
            _ => return Err(PgError::internal("not a savepoint command")),
        };
        let at = match tc {
            TransactionControl::Savepoint(_) => self.savepoints.len(),
            _ => self
                .savepoints
                .iter()
                .rposition(|n| n == name)
                .ok_or_else(|| {
                    PgError::new("3B001", format!("savepoint \"{name}\" does not exist"))
                })?,
        };
        let rolling_back = matches!(tc, TransactionControl::RollbackTo(_));
        if rolling_back {
            if self.lost.is_some_and(|depth| at >= depth) {
                return Err(PgError::new(
                    "25P02",
                    format!("cannot roll back to savepoint \"{name}\": a shard connection of this transaction was lost"),
                )
                .with_hint("Roll back the whole transaction."));
            }
            self.lost = None;
        }
        let sql = format!("{what} {}", sql::quote_ident(name));
        let sent = self
            .pins
            .values_mut()
            .filter_map(|p| p.chan.as_mut())
            .map(|c| run_simple(c.as_mut(), &sql));
        for result in join_all(sent).await {
            result?;
        }
        if rolling_back {
            // The shards undid the settings brought to them since the
            // savepoint; which those were, the record does not say.
            for pin in self.pins.values_mut() {
                if let Some(c) = pin.chan.as_mut() {
                    c.settings().mark_unknown();
                }
            }
        }
        match tc {
            TransactionControl::Savepoint(_) => self.savepoints.push(name.clone()),
            TransactionControl::Release(_) => self.savepoints.truncate(at),
            _ => self.savepoints.truncate(at + 1),
        }
        let len = self.savepoints.len();
        for pin in self.pins.values_mut() {
            pin.depth = pin.depth.min(len);
        }
        self.lost = self.lost.map(|d| d.min(len));
        let tag = if rolling_back {
            "ROLLBACK"
        } else {
            what.split(' ').next().unwrap_or(what)
        };
        Ok((tag, at))
    }

    /// Ends the block: commits every shard's transaction atomically
    /// (`commit`), or rolls them all back. The block is empty afterwards.
    pub async fn end(&mut self, cluster: &Cluster, commit_it: bool) -> Result<(), PgError> {
        let chans: Vec<(usize, Box<dyn ShardChannel>)> = std::mem::take(&mut self.pins)
            .into_iter()
            .filter_map(|(s, p)| Some((s, p.chan?)))
            .collect();
        self.savepoints.clear();
        self.lost = None;
        for table in self.tables.drain(..) {
            cluster.forget(&table);
        }
        self.created.clear();
        if commit_it {
            return commit(cluster, chans).await;
        }
        // A connection that fails to roll back is closed, which rolls back.
        // The rollback also undoes the settings the block brought it to,
        // so it goes back to the pool with them reset and known.
        join_all(chans.into_iter().map(|(_, mut c)| async move {
            let done = run_simple(c.as_mut(), "ROLLBACK; RESET ALL").await;
            *c.settings() = Default::default();
            done
        }))
        .await;
        Ok(())
    }
}
