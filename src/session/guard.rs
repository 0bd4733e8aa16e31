//! When the next connection attempt may start: never more than two a second per user (the
//! storm guard), and further apart after consecutive failures (backoff, capped), each wait
//! after a failure up to half as long again, at random — as Socket.IO's own clients spread
//! their reconnections (`randomizationFactor` 0.5) — so that sessions refused together (a
//! rate limit, a replica gone) do not all come back in the same instant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Least time between two attempt starts: at most 2 attempts per second.
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// Longest backoff (before its spread).
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How much longer than its backoff a wait after a failure may be: up to half again.
pub const MAX_SPREAD: f64 = 0.5;

/// Attempt pacing for one user.
#[derive(Debug, Clone)]
pub struct AttemptGuard {
    last_start: Option<Instant>,
    failures: u32,
    /// This wait's spread: a fraction of the backoff added to it, in `0..MAX_SPREAD`.
    spread: f64,
    /// The state of the spreads' generator (xorshift64; never 0).
    random: u64,
}

impl Default for AttemptGuard {
    /// A guard whose spreads differ from every other guard's.
    fn default() -> Self {
        static GUARDS: AtomicU64 = AtomicU64::new(0);
        let nth = GUARDS.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        AttemptGuard::seeded(now ^ nth.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

impl AttemptGuard {
    /// A guard whose spreads come from `seed`.
    pub fn seeded(seed: u64) -> Self {
        AttemptGuard {
            last_start: None,
            failures: 0,
            spread: 0.0,
            random: seed | 1,
        }
    }

    /// When the next attempt may start, given `now`.
    pub fn next_allowed(&self, now: Instant) -> Instant {
        let Some(last) = self.last_start else {
            return now;
        };
        let backoff = match self.failures {
            0 | 1 => MIN_GAP,
            n => MIN_GAP.saturating_mul(1 << (n - 1).min(8)).min(MAX_BACKOFF),
        };
        let backoff = backoff.max(MIN_GAP).mul_f64(1.0 + self.spread);
        (last + backoff).max(now)
    }

    /// Records that an attempt starts at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// Records that the attempt (or the session it made) failed.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.spread = (self.random >> 11) as f64 / (1u64 << 53) as f64 * MAX_SPREAD;
    }

    /// Records a session that formed: backoff starts over.
    pub fn succeeded(&mut self) {
        self.reset_backoff();
    }

    /// Forgets backoff (the user changed something), keeping the storm guard.
    pub fn reset_backoff(&mut self) {
        self.failures = 0;
        self.spread = 0.0;
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
    fn backs_off_exponentially_to_a_cap_spread_up_to_half_again_and_resets_on_success() {
        let t0 = Instant::now();
        let mut g = AttemptGuard::seeded(7);
        g.started(t0);
        let gaps: Vec<Duration> = (0..7)
            .map(|_| {
                g.failed();
                g.next_allowed(t0) - t0
            })
            .collect();
        let within = |gap: Duration, backoff: Duration| {
            gap >= backoff && gap < backoff.mul_f64(1.0 + MAX_SPREAD)
        };
        assert!(within(gaps[0], MIN_GAP), "{gaps:?}");
        assert!(within(gaps[1], Duration::from_secs(1)), "{gaps:?}");
        assert!(within(gaps[2], Duration::from_secs(2)), "{gaps:?}");
        assert!(within(gaps[6], MAX_BACKOFF), "{gaps:?}");
        // The same wait asked again is the same wait.
        assert_eq!(g.next_allowed(t0) - t0, gaps[6]);
        g.succeeded();
        assert_eq!(g.next_allowed(t0) - t0, MIN_GAP);
    }

    #[test]
    fn users_refused_together_come_back_spread_out() {
        let t0 = Instant::now();
        let mut waits: Vec<Duration> = (0..100)
            .map(|_| {
                let mut g = AttemptGuard::default();
                g.started(t0);
                g.failed();
                g.next_allowed(t0) - t0
            })
            .collect();
        waits.sort();
        waits.dedup();
        assert!(waits.len() > 90, "{} different waits of 100", waits.len());
        // Spread over most of the half-again: none shorter than the gap, none as long as 1.5×.
        let (first, last) = (waits[0], waits[waits.len() - 1]);
        assert!(first >= MIN_GAP && last < MIN_GAP.mul_f64(1.0 + MAX_SPREAD));
        assert!(
            last - first > MIN_GAP.mul_f64(MAX_SPREAD * 0.8),
            "{first:?}..{last:?}"
        );
    }
}
