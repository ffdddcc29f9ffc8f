//! The fuzzer's bounded run (issue 10, "keep it so"): generated protocol
//! messages and pgvector SQL against an in-process shard and the proxy
//! with embedded shards; see tests/fuzz_support. `scripts/fuzz.sh
//! --minutes N` runs the same for longer in a release build.

mod fuzz_support;

use fuzz_support::{run, Budget, Target};

/// Seconds each target is fuzzed in the test suite (debug build).
const SUITE_SECONDS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard() {
    let target = Target::shard().await;
    let stats = run(&target, &Budget::from_env(SUITE_SECONDS)).await;
    assert!(stats.cases > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy() {
    let target = Target::proxy().await;
    let stats = run(&target, &Budget::from_env(SUITE_SECONDS)).await;
    assert!(stats.cases > 0);
}
