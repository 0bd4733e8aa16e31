//! When the next connection attempt may start: never more than two a second per user (the
//! storm guard), and further apart after consecutive failures (backoff, capped).

use std::time::{Duration, Instant};

/// Least time between two attempt starts: at most 2 attempts per second.
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// Longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Attempt pacing for one user.
#[derive(Debug, Clone, Default)]
pub struct AttemptGuard {
    last_start: Option<Instant>,
    failures: u32,
}

impl AttemptGuard {
    /// When the next attempt may start, given `now`.
    pub fn next_allowed(&self, now: Instant) -> Instant {
        let Some(last) = self.last_start else {
            return now;
        };
        let backoff = match self.failures {
            0 | 1 => MIN_GAP,
            n => MIN_GAP.saturating_mul(1 << (n - 1).min(8)).min(MAX_BACKOFF),
        };
        (last + backoff.max(MIN_GAP)).max(now)
    }

    /// Records that an attempt starts at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// Records that the attempt (or the session it made) failed.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Records a session that formed: backoff starts over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Forgets backoff (the user changed something), keeping the storm guard.
    pub fn reset_backoff(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_two_attempts_within_half_a_second() {
        let t0 = Instant::now();
        let mut g = AttemptGuard::default();
        assert_eq!(g.next_allowed(t0), t0);
        g.started(t0);
        assert_eq!(g.next_allowed(t0), t0 + MIN_GAP);
        g.reset_backoff();
        assert_eq!(
            g.next_allowed(t0 + Duration::from_millis(100)),
            t0 + MIN_GAP
        );
    }

    #[test]
    fn backs_off_exponentially_to_a_cap_and_resets_on_success() {
        let t0 = Instant::now();
        let mut g = AttemptGuard::default();
        g.started(t0);
        let gaps: Vec<Duration> = (0..7)
            .map(|_| {
                g.failed();
                g.next_allowed(t0) - t0
            })
            .collect();
        assert_eq!(gaps[0], MIN_GAP);
        assert_eq!(gaps[1], Duration::from_secs(1));
        assert_eq!(gaps[2], Duration::from_secs(2));
        assert_eq!(gaps[6], MAX_BACKOFF);
        g.succeeded();
        assert_eq!(g.next_allowed(t0) - t0, MIN_GAP);
    }
}
