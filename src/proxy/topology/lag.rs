//! How far a standby is behind its primary, in bytes and in time.
//!
//! Bytes: the primary's WAL insert position minus the standby's replay
//! position, both from the same poll round. Time: how long the oldest WAL
//! the standby has not replayed has existed, as the proxy saw it — the
//! proxy keeps the primary's positions of recent polls with the (monotonic)
//! instant each was seen, and a standby replaying up to `R` is behind
//! since the first poll that saw the primary past `R`. No clocks of two
//! machines are compared (`pg_last_xact_replay_timestamp()` would compare
//! the primary's commit clock with the proxy's, and grows while the
//! primary is idle), and a standby with nothing to replay has lag 0.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A shard primary's recent WAL positions.
#[derive(Debug, Default)]
pub struct WalHistory {
    /// (when seen, insert LSN), oldest first, LSNs non-decreasing.
    samples: VecDeque<(Instant, u64)>,
}

/// How far behind one standby is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// WAL bytes the primary has and the standby has not replayed.
    pub bytes: u64,
    /// Age of the oldest of those bytes (zero when there are none).
    pub time: Duration,
}

impl WalHistory {
    /// Records the primary's position seen at `at`; keeps samples no
    /// older than `keep` (plus the newest one before that horizon, the
    /// lower bound of anything older).
    pub fn record(&mut self, at: Instant, lsn: u64, keep: Duration) {
        match self.samples.back() {
            Some(&(_, last)) if lsn < last => self.samples.clear(), // a new primary
            Some(&(_, last)) if lsn == last => return,
            _ => {}
        }
        self.samples.push_back((at, lsn));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// The primary's newest known position.
    pub fn latest(&self) -> Option<u64> {
        self.samples.back().map(|s| s.1)
    }

    /// The lag at `now` of a standby that replayed up to `replay`.
    pub fn lag(&self, replay: u64, now: Instant) -> Lag {
        let Some(latest) = self.latest() else {
            return Lag::default();
        };
        let bytes = latest.saturating_sub(replay);
        let time = self
            .samples
            .iter()
            .find(|(_, lsn)| *lsn > replay)
            .map_or(Duration::ZERO, |(t, _)| now.saturating_duration_since(*t));
        Lag { bytes, time }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_unreplayed_position() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let mut h = WalHistory::default();
        let keep = Duration::from_secs(10);
        h.record(s(0), 100, keep);
        h.record(s(100), 100, keep);
        h.record(s(200), 150, keep);
        h.record(s(300), 400, keep);
        assert_eq!(h.lag(400, s(300)), Lag::default());
        assert_eq!(
            h.lag(100, s(350)),
            Lag {
                bytes: 300,
                time: Duration::from_millis(150)
            }
        );
        assert_eq!(h.lag(200, s(350)).time, Duration::from_millis(50));
        // An idle primary: a caught-up standby stays at zero however long.
        h.record(s(60_000), 400, keep);
        assert_eq!(h.lag(400, s(60_000)), Lag::default());
        // Old samples go, but the age keeps growing from the oldest kept.
        h.record(s(70_000), 500, keep);
        assert_eq!(h.samples.len(), 2);
        assert_eq!(h.lag(100, s(70_000)).time, Duration::from_millis(69_700));
        // A position going back is a new primary: start over.
        h.record(s(70_100), 50, keep);
        assert_eq!(h.lag(50, s(70_100)), Lag::default());
    }
}
