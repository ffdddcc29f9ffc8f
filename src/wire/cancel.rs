//! Query cancellation. Each statement gets a fresh [`CancelSignal`] (or the
//! last statement's again, when it never fired and nothing else holds it),
//! kept as its session's current one in a [`SessionCancel`]; the [`CancelRegistry`]
//! maps the (pid, secret) pair sent in BackendKeyData to the session, so a
//! CancelRequest on another connection reaches the running statement. The
//! signal is both an `AtomicBool` (for work on a blocking pool, checked per
//! step as the ann engine does) and an awaitable (for async work, which the
//! connection drops when the signal fires). A statement's signal is never
//! cleared: blocking work that outlives its canceled statement still sees
//! the cancel while the session runs its next statement.
//!
//! `statement_timeout` fires the signal from the runtime's timer
//! ([`StatementTimer`]), not from the session's task: a statement that
//! holds its session's thread (`block_in_place`) is stopped at its next
//! check as a CancelRequest would stop it.
//!
//! The registry uses `std::sync::Mutex`: each critical section is one map
//! operation and never awaits.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::Unconstrained;
use tokio::time::Sleep;

use super::error::PgError;
use super::session::Session;

const REASON_USER: u8 = 1;
const REASON_TIMEOUT: u8 = 2;

/// Why a statement was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// A CancelRequest arrived.
    User,
    /// `statement_timeout` elapsed.
    Timeout,
}

/// The cancel flag of one session's running statement.
#[derive(Debug, Default)]
pub struct CancelSignal {
    /// Shared so that long work can read it at its own check points (see
    /// [`CancelSignal::shared_flag`]).
    canceled: Arc<AtomicBool>,
    reason: AtomicU8,
    notify: Notify,
    shielded: AtomicBool,
    by_user: AtomicBool,
}

impl CancelSignal {
    /// Signals the running statement to stop.
    pub fn cancel(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::User => REASON_USER,
            CancelReason::Timeout => REASON_TIMEOUT,
        };
        if reason == CancelReason::User {
            self.by_user.store(true, Ordering::Release);
        }
        // First reason wins.
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.canceled.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// True once the running statement should stop.
    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::Acquire)
    }

    /// True once a CancelRequest arrived for the statement (whether or not
    /// its timeout fired first). PostgreSQL ends a commit's wait for its
    /// synchronous standbys only so: the timeout is off by then.
    pub fn canceled_by_user(&self) -> bool {
        self.by_user.load(Ordering::Acquire)
    }

    /// The flag itself, for code that takes `&AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.canceled
    }

    /// The flag as a handle of its own (for `ann::BuildProgress::linked_to`,
    /// whose builds and waits read it without a watcher thread).
    pub fn shared_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.canceled)
    }

    /// The 57014 error for the reason the signal fired, if it fired.
    pub fn error(&self) -> Option<PgError> {
        if !self.is_canceled() {
            return None;
        }
        Some(match self.reason.load(Ordering::Acquire) {
            REASON_TIMEOUT => PgError::statement_timeout(),
            _ => PgError::canceled_by_user(),
        })
    }

    /// Tells the connection that the statement has reached work it must
    /// not abandon (a commit, which must end in a reply that says what
    /// became of it): from now on the statement watches the flag itself
    /// and the connection waits for its answer instead of dropping it when
    /// the signal fires.
    pub fn shield(&self) {
        self.shielded.store(true, Ordering::Release);
    }

    /// Waits until the signal fires and returns its error; never returns
    /// once the statement is [shielded](CancelSignal::shield).
    pub async fn canceled(&self) -> PgError {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self
                .error()
                .filter(|_| !self.shielded.load(Ordering::Acquire))
            {
                return e;
            }
            notified.await;
        }
    }
}

/// A statement's `statement_timeout`: the runtime's timer fires the
/// statement's signal at the deadline by waking a waker of its own, on
/// whichever thread runs the timer, so no task has to be polled (nor
/// spawned) for it. Dropped when the statement ends, it is disarmed.
pub(crate) struct StatementTimer {
    /// The registered timer: dropping it deregisters it.
    _sleep: Pin<Box<Unconstrained<Sleep>>>,
}

/// The timer's waker: fires the signal as a timeout.
struct Expiry(Arc<CancelSignal>);

impl Wake for Expiry {
    /// The timer wakes it only when it fires: at the deadline, or when the
    /// runtime shuts down (and the statement's task goes with it).
    fn wake(self: Arc<Self>) {
        self.0.cancel(CancelReason::Timeout);
    }
}

impl StatementTimer {
    /// The timer of a statement starting now under `session`'s
    /// `statement_timeout`, if one is set.
    pub(crate) fn arm(signal: &Arc<CancelSignal>, session: &Session) -> Option<Self> {
        session
            .statement_timeout()
            .map(|timeout| StatementTimer::start(signal, timeout))
    }

    /// Arms a timer that fires `signal` after `timeout`.
    fn start(signal: &Arc<CancelSignal>, timeout: Duration) -> Self {
        // Unconstrained: with the task's cooperative budget used up, a
        // poll would wake the waker at once instead of registering it.
        let mut sleep = Box::pin(tokio::task::unconstrained(tokio::time::sleep(timeout)));
        let waker = Waker::from(Arc::new(Expiry(Arc::clone(signal))));
        if sleep
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            signal.cancel(CancelReason::Timeout);
        }
        StatementTimer { _sleep: sleep }
    }
}

/// A session's cancel target: the signal of the statement running now.
#[derive(Debug, Default)]
pub struct SessionCancel {
    current: Mutex<Arc<CancelSignal>>,
}

impl SessionCancel {
    /// Installs and returns a fresh signal for the next statement (a cancel
    /// that arrives between statements does nothing, as in PostgreSQL).
    /// The last statement's signal serves again when it never fired, was
    /// not shielded, and only this session and its connection hold it (no
    /// blocking work that outlived its statement reads it): it is then as
    /// good as fresh, and the statement allocates nothing here.
    pub(crate) fn begin_statement(&self) -> Arc<CancelSignal> {
        let mut current = self.lock();
        let unused = !current.is_canceled()
            && !current.shielded.load(Ordering::Acquire)
            && Arc::strong_count(&current) <= 2
            && Arc::strong_count(&current.canceled) == 1;
        if !unused {
            *current = Arc::new(CancelSignal::default());
        }
        Arc::clone(&current)
    }

    /// Cancels the running statement.
    pub fn cancel(&self, reason: CancelReason) {
        self.lock().cancel(reason);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<CancelSignal>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sessions by their (pid, secret) keys.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    sessions: Mutex<HashMap<Key, Arc<SessionCancel>>>,
}

/// A cancel key: process id and secret.
type Key = (i32, Vec<u8>);

/// The registry's map, locked.
type Sessions<'a> = std::sync::MutexGuard<'a, HashMap<Key, Arc<SessionCancel>>>;

impl CancelRegistry {
    /// Registers a session's signal under a new random secret, 32 bytes
    /// when `long` (protocol 3.2) else 4; the returned key unregisters it
    /// when dropped.
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        long: bool,
        signal: Arc<SessionCancel>,
    ) -> CancelKey {
        let secret = if long {
            super::scram::random_bytes::<32>().to_vec()
        } else {
            super::scram::random_bytes::<4>().to_vec()
        };
        self.lock().insert((pid, secret.clone()), signal);
        CancelKey {
            registry: Arc::clone(self),
            pid,
            secret,
        }
    }

    /// Cancels the statement of the session with this key; an unknown key
    /// is ignored (PostgreSQL answers nothing either way).
    pub fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        let signal = self.lock().get(&(pid, secret.to_vec())).cloned();
        signal.map(|s| s.cancel(CancelReason::User)).is_some()
    }

    fn lock(&self) -> Sessions<'_> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A registration in the [`CancelRegistry`]; sent to the client as
/// BackendKeyData.
#[derive(Debug)]
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    /// Process id.
    pub pid: i32,
    /// Secret key.
    pub secret: Vec<u8>,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        let key = (self.pid, std::mem::take(&mut self.secret));
        self.registry.lock().remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_reaches_the_registered_signal_once() {
        let registry = Arc::new(CancelRegistry::default());
        let session = Arc::new(SessionCancel::default());
        let signal = session.begin_statement();
        let key = registry.register(7, true, Arc::clone(&session));
        assert_eq!(key.secret.len(), 32);
        assert!(!registry.cancel(7, &key.secret[..4]));
        let waiter = {
            let s = Arc::clone(&signal);
            tokio::spawn(async move { s.canceled().await })
        };
        tokio::task::yield_now().await;
        assert!(registry.cancel(7, &key.secret));
        assert_eq!(
            waiter.await.unwrap().message,
            "canceling statement due to user request"
        );
        signal.cancel(CancelReason::Timeout);
        assert_eq!(signal.error().unwrap().code, "57014");
        assert_eq!(
            signal.error().unwrap().message,
            "canceling statement due to user request"
        );
        // The next statement starts clean; the old one stays canceled.
        let next = session.begin_statement();
        assert!(next.error().is_none());
        assert!(signal.is_canceled());
        let (pid, secret) = (key.pid, key.secret.clone());
        drop(key);
        assert!(!registry.cancel(pid, &secret));
    }

    #[test]
    fn only_an_unused_signal_serves_the_next_statement() {
        let session = SessionCancel::default();
        let mut signal = session.begin_statement();
        // Never fired, held by the session and its connection only.
        let next = session.begin_statement();
        assert!(Arc::ptr_eq(&signal, &next));
        drop(next);
        // Work that outlived its statement still holds it or its flag.
        let held = Arc::clone(&signal);
        signal = session.begin_statement();
        assert!(!Arc::ptr_eq(&signal, &held));
        let flag = signal.shared_flag();
        let next = session.begin_statement();
        assert!(!Arc::ptr_eq(&signal, &next));
        drop((flag, held));
        signal = next;
        signal.shield();
        let next = session.begin_statement();
        assert!(!Arc::ptr_eq(&signal, &next));
        next.cancel(CancelReason::User);
        signal = session.begin_statement();
        assert!(!Arc::ptr_eq(&signal, &next) && !signal.is_canceled());
    }
}
