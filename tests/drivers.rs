//! Real Python drivers and ORMs (tests/drivers/*.py, installed by
//! scripts/test.sh) against three targets: real PostgreSQL + pgvector as
//! the control, the embedded binary's proxy, and one `pgvshard shard`.
//! Each script runs its scenario on all three and fails at the first step
//! where a target answers differently from the control (or hangs). The
//! servers are shared by this file's tests: the first test starts them,
//! the last one to finish stops them.

mod embedded_support;
mod pg_support;
mod python_support;
mod shard_support;

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use embedded_support::EmbeddedProxy;
use pg_support::PgServer;
use shard_support::{fresh_dir, Shard};

/// A driver script's limit: far above its run time, so only a hang hits it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(180);

struct Targets {
    control: PgServer,
    proxy: EmbeddedProxy,
    shard: Shard,
}

fn targets() -> Arc<Targets> {
    static SHARED: Mutex<Weak<Targets>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = shared.upgrade() {
        return t;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let targets = Arc::new(Targets {
        control: runtime.block_on(PgServer::start()),
        proxy: EmbeddedProxy::start("drivers"),
        shard: Shard::start(&fresh_dir("drivers")),
    });
    *shared = Arc::downgrade(&targets);
    targets
}

/// Runs `tests/drivers/<driver>_driver.py` on the three targets.
fn agree(driver: &str) {
    let t = targets();
    let out = python_support::run_against(
        &format!("drivers/{driver}_driver.py"),
        &[
            ("control", t.control.port),
            ("proxy", t.proxy.port),
            ("shard", t.shard.port),
        ],
        SCRIPT_DEADLINE,
    );
    assert!(
        out.starts_with(&format!("{driver}: ")) && out.contains(" agree on control, proxy, shard"),
        "{out}"
    );
}

#[test]
fn asyncpg_errors_never_hang_and_match_postgres() {
    agree("asyncpg");
}
