//! Per-shard timings of one statement, for the slow-statement log.
//!
//! The metered channels ([`crate::proxy::backend::metered`]) already time
//! every request to a node (send to ReadyForQuery); each such time is also
//! [`note`]d into the statement's collection when the statement runs
//! inside [`collect`]. The collection is task-local: a statement's shard
//! requests are awaited on its session's task, so it sees exactly its own,
//! and nothing is kept (or costs more than a check) outside a statement
//! being collected.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    static TIMINGS: RefCell<Vec<(String, Duration)>>;
}

/// Runs `fut`, returning its output and the time each node spent on its
/// requests (summed per node, in order of first request).
pub async fn collect<T>(fut: impl Future<Output = T>) -> (T, Vec<(String, Duration)>) {
    TIMINGS
        .scope(RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let times = TIMINGS.with(|t| t.take());
            (out, times)
        })
        .await
}

/// Adds `took` to `node`'s time in the statement being collected, if any.
pub fn note(node: &str, took: Duration) {
    TIMINGS
        .try_with(|t| {
            let mut t = t.borrow_mut();
            match t.iter_mut().find(|(n, _)| n == node) {
                Some((_, sum)) => *sum += took,
                None => t.push((node.to_string(), took)),
            }
        })
        .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_collected_statement_sees_its_timings() {
        note("outside", Duration::from_millis(1));
        let ((), times) = collect(async {
            note("s0", Duration::from_millis(2));
            note("s1", Duration::from_millis(3));
            note("s0", Duration::from_millis(4));
        })
        .await;
        assert_eq!(
            times,
            [
                ("s0".to_string(), Duration::from_millis(6)),
                ("s1".to_string(), Duration::from_millis(3))
            ]
        );
    }
}
