//! One timer per relayed connection instead of one per wait. Every wait the relay makes (a
//! request's head, the gateway's answer, a write to a slow client) has a deadline; giving
//! each its own tokio timer costs more than it looks: a timer earlier than any the runtime
//! knows of wakes the runtime's parked driver to re-arm it — a system call and a thread's
//! wake-up on the path of nearly every request. A [`Watchdog`] keeps one timer that is
//! moved only forward, and only when it fires (at most every [`WATCH_EVERY`]): each wait is
//! raced against it and, when it fires, ends if its own deadline has passed or goes on with
//! the timer set again. A deadline nearer than the timer is set (moving it back) as it must
//! be, so no wait outlives its deadline.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How far ahead the timer is set when it fires: the deadlines the relay uses (20 s for a
/// head, the tap's timeout for an answer) are longer, so it never has to be moved back.
pub(super) const WATCH_EVERY: Duration = Duration::from_secs(5);

/// A connection's one timer.
pub(super) struct Watchdog {
    timer: Pin<Box<Sleep>>,
    /// How far ahead the timer is set when it fires.
    every: Duration,
}

/// A wait that reached its deadline.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Elapsed;

impl Watchdog {
    pub(super) fn new() -> Self {
        Watchdog::every(WATCH_EVERY)
    }

    fn every(every: Duration) -> Self {
        Watchdog {
            timer: Box::pin(tokio::time::sleep(every)),
            every,
        }
    }

    /// Runs `wait` until it ends, or until `deadline` has passed.
    pub(super) async fn within<F: Future>(
        &mut self,
        deadline: Instant,
        wait: F,
    ) -> Result<F::Output, Elapsed> {
        if self.timer.deadline() > deadline {
            self.timer.as_mut().reset(deadline);
        }
        let mut wait = std::pin::pin!(wait);
        loop {
            tokio::select! {
                biased;
                out = &mut wait => return Ok(out),
                () = &mut self.timer => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Set again for the connection's next wait.
                        self.timer.as_mut().reset(now + self.every);
                        return Err(Elapsed);
                    }
                    self.timer.as_mut().reset(deadline.min(now + self.every));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_not_at_the_timers_next_firing() {
        let mut watch = Watchdog::every(SECOND);
        let started = Instant::now();
        let deadline = started + SECOND.mul_f64(1.3);
        let out = watch.within(deadline, std::future::pending::<()>()).await;
        assert_eq!(out, Err(Elapsed));
        // Fired at 1 s, set for 1.3 s: ended then, not at 2 s.
        let took = Instant::now() - started;
        assert!(took >= SECOND.mul_f64(1.3) && took < 2 * SECOND, "{took:?}");
    }

    #[tokio::test]
    async fn a_deadline_nearer_than_the_timer_moves_it_back() {
        let mut watch = Watchdog::every(10 * SECOND);
        let started = Instant::now();
        let out = watch
            .within(started + SECOND / 2, std::future::pending::<()>())
            .await;
        assert_eq!(out, Err(Elapsed));
        let took = Instant::now() - started;
        assert!(took >= SECOND / 2 && took < 5 * SECOND, "{took:?}");
    }

    #[tokio::test]
    async fn a_wait_that_ends_in_time_gives_its_output_and_the_next_wait_is_bounded_too() {
        let mut watch = Watchdog::every(SECOND / 2);
        let started = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Answered after the timer has fired once (and been set again).
        let answer = async move {
            let _ = tokio::time::sleep(SECOND).await;
            let _ = tx.send("answered");
        };
        let waited = watch.within(started + 20 * SECOND, rx);
        let (out, ()) = tokio::join!(waited, answer);
        assert_eq!(out, Ok(Ok("answered")));
        let deadline = Instant::now() + SECOND;
        let out = watch.within(deadline, std::future::pending::<()>()).await;
        assert_eq!(out, Err(Elapsed));
        let now = Instant::now();
        assert!(
            now >= deadline && now < deadline + SECOND,
            "{:?}",
            now - deadline
        );
    }
}
