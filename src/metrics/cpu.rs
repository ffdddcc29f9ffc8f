//! The calling thread's CPU time, for splitting a shard's CPU between
//! its parts (the ANN engine, the recall monitor) in CPU seconds rather
//! than wall time, which on a busy machine also counts waiting for a core.

use std::cell::Cell;
use std::time::Duration;

/// CPU time the calling thread has used (user and system); zero if the
/// clock cannot be read.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One search in this many has its CPU time read (see [`sampled_cpu_time`]).
pub const SAMPLE_ONE_IN: u32 = 8;

/// Runs `f`, and on a random one in [`SAMPLE_ONE_IN`] calls reads its CPU
/// time and returns it multiplied by [`SAMPLE_ONE_IN`]; zero on the others.
/// Summed over many calls it estimates their total. The thread's CPU
/// clock is a system call (no vDSO path), two per read: ~0.4 µs each on a
/// KVM guest, where an ANN read on a shard takes ~150 µs in all.
pub fn sampled_cpu_time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    thread_local! {
        static STATE: Cell<u64> =
            Cell::new(u64::from_ne_bytes(crate::wire::scram::random_bytes::<8>()) | 1);
    }
    // xorshift64: a draw costs a few instructions.
    let draw = STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    });
    if !draw.is_multiple_of(u64::from(SAMPLE_ONE_IN)) {
        return (f(), Duration::ZERO);
    }
    let started = thread_cpu_time();
    let out = f();
    (
        out,
        thread_cpu_time().saturating_sub(started) * SAMPLE_ONE_IN,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_sees_its_cpu_time_grow() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() < before + Duration::from_millis(2) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(x > 0);
    }

    #[test]
    fn sampled_cpu_time_estimates_the_total() {
        let spin = || {
            let before = thread_cpu_time();
            while thread_cpu_time() < before + Duration::from_micros(200) {}
        };
        let calls = 800;
        let started = thread_cpu_time();
        let (estimate, sampled) = (0..calls).fold((Duration::ZERO, 0), |(sum, n), _| {
            let ((), cpu) = sampled_cpu_time(spin);
            (sum + cpu, n + u32::from(!cpu.is_zero()))
        });
        let total = thread_cpu_time() - started;
        // ~100 sampled of 800: the estimate is within a third of the total.
        assert!((50..=160).contains(&sampled), "{sampled} sampled");
        let ratio = estimate.as_secs_f64() / total.as_secs_f64();
        assert!((0.6..=1.4).contains(&ratio), "estimate / total = {ratio}");
    }
}
