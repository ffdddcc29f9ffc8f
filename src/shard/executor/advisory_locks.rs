//! PostgreSQL's exclusive advisory locks (`pg_advisory_lock`,
//! `pg_advisory_xact_lock`, the `pg_try_` forms, `pg_advisory_unlock`,
//! `pg_advisory_unlock_all`), shared by every session of one shard.
//!
//! A lock is keyed by one bigint or by two integers (distinct key spaces,
//! as in PostgreSQL). A session may take a lock it holds again: session
//! and transaction holds are counted apart; the lock is free when both
//! counts are zero. Transaction holds end with the transaction (the
//! statement, outside a block), session holds with `pg_advisory_unlock*`,
//! `DISCARD ALL` or the session's end. A waiter wakes when a lock is
//! released, stops at a cancel (57014), and a wait that would close a
//! cycle of sessions waiting on each other fails with 40P01, as
//! PostgreSQL's deadlock detector decides.
//!
//! `std::sync::Mutex` + `Condvar`: waits happen on the executor's
//! blocking threads, never on the async workers.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::wire::{CancelSignal, PgError};

/// An advisory lock's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// `pg_advisory_lock(bigint)`.
    Single(i64),
    /// `pg_advisory_lock(int, int)`.
    Pair(i32, i32),
}

/// Whether a hold lasts for the session or for the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Until unlocked or the session ends.
    Session,
    /// Until the transaction ends.
    Transaction,
}

#[derive(Debug, Default)]
struct Holder {
    session: i32,
    session_count: u32,
    xact_count: u32,
}

#[derive(Debug, Default)]
struct State {
    held: HashMap<LockKey, Holder>,
    /// Which lock each waiting session waits for.
    waiting: HashMap<i32, LockKey>,
}

impl State {
    /// True when `session` waiting for `key` would wait for itself
    /// through the chain of holders and their own waits.
    fn closes_cycle(&self, session: i32, key: LockKey) -> bool {
        let mut next = Some(key);
        for _ in 0..=self.waiting.len() {
            let Some(holder) = next.and_then(|k| self.held.get(&k)) else {
                return false;
            };
            if holder.session == session {
                return true;
            }
            next = self.waiting.get(&holder.session).copied();
        }
        false
    }

    fn take(&mut self, session: i32, key: LockKey, scope: Scope) -> bool {
        let holder = self.held.entry(key).or_insert_with(|| Holder {
            session,
            ..Holder::default()
        });
        if holder.session != session {
            return false;
        }
        match scope {
            Scope::Session => holder.session_count += 1,
            Scope::Transaction => holder.xact_count += 1,
        }
        true
    }
}

/// The advisory locks of one shard.
#[derive(Debug, Default)]
pub struct AdvisoryLocks {
    state: Mutex<State>,
    released: Condvar,
}

/// How often a waiter looks at its cancel flag.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

impl AdvisoryLocks {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `key` for `session`, waiting while another session holds it.
    pub fn lock(
        &self,
        session: i32,
        key: LockKey,
        scope: Scope,
        cancel: &CancelSignal,
    ) -> Result<(), PgError> {
        let mut state = self.state();
        loop {
            if state.take(session, key, scope) {
                state.waiting.remove(&session);
                return Ok(());
            }
            if state.closes_cycle(session, key) {
                state.waiting.remove(&session);
                return Err(PgError::new("40P01", "deadlock detected").with_detail(format!(
                    "Process {session} waits for ExclusiveLock on advisory lock {}; blocked by process {}.",
                    describe(key),
                    state.held.get(&key).map_or(0, |h| h.session)
                )));
            }
            if let Some(e) = cancel.error() {
                state.waiting.remove(&session);
                return Err(e);
            }
            state.waiting.insert(session, key);
            state = self
                .released
                .wait_timeout(state, CANCEL_CHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes `key` for `session` if no other session holds it.
    pub fn try_lock(&self, session: i32, key: LockKey, scope: Scope) -> bool {
        self.state().take(session, key, scope)
    }

    /// Drops one session hold of `key`; false (with PostgreSQL's warning
    /// for the caller to send) when `session` holds none.
    pub fn unlock(&self, session: i32, key: LockKey) -> bool {
        let mut state = self.state();
        let Some(holder) = state.held.get_mut(&key) else {
            return false;
        };
        if holder.session != session || holder.session_count == 0 {
            return false;
        }
        holder.session_count -= 1;
        if holder.session_count == 0 && holder.xact_count == 0 {
            state.held.remove(&key);
            self.released.notify_all();
        }
        true
    }

    /// Ends every hold of `scope` (or of both, `None`) by `session`.
    pub fn release_all(&self, session: i32, scope: Option<Scope>) {
        let mut state = self.state();
        let before = state.held.len();
        state.held.retain(|_, h| {
            if h.session != session {
                return true;
            }
            if scope != Some(Scope::Transaction) {
                h.session_count = 0;
            }
            if scope != Some(Scope::Session) {
                h.xact_count = 0;
            }
            h.session_count + h.xact_count > 0
        });
        if state.held.len() != before {
            self.released.notify_all();
        }
    }
}

fn describe(key: LockKey) -> String {
    match key {
        LockKey::Single(k) => k.to_string(),
        LockKey::Pair(a, b) => format!("{a},{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn holds_count_per_scope_and_free_the_lock_at_zero() {
        let locks = AdvisoryLocks::default();
        let key = LockKey::Single(7);
        assert!(locks.try_lock(1, key, Scope::Session));
        assert!(locks.try_lock(1, key, Scope::Transaction));
        assert!(!locks.try_lock(2, key, Scope::Session));
        assert!(locks.unlock(1, key));
        assert!(!locks.unlock(1, key), "no session hold left");
        assert!(
            !locks.try_lock(2, key, Scope::Session),
            "the transaction still holds it"
        );
        locks.release_all(1, Some(Scope::Transaction));
        assert!(locks.try_lock(2, key, Scope::Session));
        assert!(!locks.try_lock(1, LockKey::Single(7), Scope::Session));
        assert!(
            locks.try_lock(1, LockKey::Pair(0, 7), Scope::Session),
            "pairs are another key space"
        );
    }

    #[test]
    fn a_waiter_wakes_at_release_and_a_cycle_is_a_deadlock() {
        let locks = Arc::new(AdvisoryLocks::default());
        let never = CancelSignal::default();
        locks
            .lock(1, LockKey::Single(1), Scope::Session, &never)
            .unwrap();
        locks
            .lock(2, LockKey::Single(2), Scope::Session, &never)
            .unwrap();
        let waiter = {
            let locks = Arc::clone(&locks);
            std::thread::spawn(move || {
                locks.lock(
                    2,
                    LockKey::Single(1),
                    Scope::Session,
                    &CancelSignal::default(),
                )
            })
        };
        while locks.state().waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = locks
            .lock(1, LockKey::Single(2), Scope::Session, &never)
            .unwrap_err();
        assert_eq!(e.code, "40P01");
        locks.release_all(1, None);
        waiter.join().unwrap().unwrap();
        let canceled = CancelSignal::default();
        canceled.cancel(crate::wire::CancelReason::User);
        let e = locks
            .lock(3, LockKey::Single(1), Scope::Transaction, &canceled)
            .unwrap_err();
        assert_eq!(e.code, "57014");
    }
}
