//! Places in the commit protocol where a test may crash the proxy
//! process: with the `failpoints` feature (tests only; the `fail` crate),
//! `FAILPOINTS='txn::after_decision=return'` makes the process SIGKILL
//! itself there — no destructor, no connection closed politely, as a
//! machine lost — and any other action of the `fail` crate (`sleep(ms)`,
//! …) does what it says. Without the feature this is nothing at all.

/// A named place; see the module documentation.
#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    fail::fail_point!(name, |_| {
        tracing::warn!(failpoint = name, "killing the process at a failpoint");
        let pid = std::process::id().to_string();
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .ok();
        std::process::abort();
    });
}

/// A named place; see the module documentation.
#[cfg(not(feature = "failpoints"))]
pub fn point(_name: &str) {}
