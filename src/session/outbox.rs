//! Messages one user sent, kept until the other user's receipt arrives.
//!
//! One message is in flight at a time (the head): it is emitted, re-emitted when no ack
//! comes or no receipt follows the ack in time, and re-emitted at once on a new session.
//! The next message goes only after the head's receipt, so messages arrive in order per
//! sender; receivers drop copies by id, so each is shown once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::events::OutboxStatus;

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Message id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Emissions so far.
    pub attempts: u32,
    /// Where it stands.
    pub status: OutboxStatus,
    /// When it was last emitted or acked.
    since: Option<Instant>,
}

/// What the session should do for the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Emit the head now (this is attempt N).
    Emit {
        /// Message id.
        id: String,
        /// Text.
        text: String,
        /// Attempt number.
        attempt: u32,
    },
    /// Nothing until this instant.
    Wait(Option<Instant>),
}

/// One user's outbox.
#[derive(Debug)]
pub struct Outbox {
    user: String,
    run: String,
    next: u64,
    queue: VecDeque<Pending>,
    ack_timeout: Duration,
    receipt_timeout: Duration,
}

impl Outbox {
    /// An empty outbox for `user`; `run` makes ids unique across runs.
    pub fn new(user: &str, run: &str, ack_timeout: Duration, receipt_timeout: Duration) -> Self {
        Outbox {
            user: user.to_owned(),
            run: run.to_owned(),
            next: 0,
            queue: VecDeque::new(),
            ack_timeout,
            receipt_timeout,
        }
    }

    /// Queues a message; returns its id.
    pub fn push(&mut self, text: String) -> String {
        self.next += 1;
        let id = format!("{}-{}-{}", self.user, self.run, self.next);
        self.queue.push_back(Pending {
            id: id.clone(),
            text,
            attempts: 0,
            status: OutboxStatus::Queued,
            since: None,
        });
        id
    }

    /// Messages not yet delivered, head first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.queue.iter()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// What to do for the head at `now`, given whether a session is up.
    pub fn due(&self, now: Instant, connected: bool) -> Due {
        let Some(head) = self.queue.front() else {
            return Due::Wait(None);
        };
        if !connected {
            return Due::Wait(None);
        }
        let deadline = match (&head.status, head.since) {
            (OutboxStatus::Queued, _) | (_, None) => now,
            (OutboxStatus::Sent { .. }, Some(t)) => t + self.ack_timeout,
            (OutboxStatus::Acked { .. }, Some(t)) => t + self.receipt_timeout,
            _ => now,
        };
        if deadline <= now {
            Due::Emit {
                id: head.id.clone(),
                text: head.text.clone(),
                attempt: head.attempts + 1,
            }
        } else {
            Due::Wait(Some(deadline))
        }
    }

    /// The head was emitted at `now`.
    pub fn emitted(&mut self, id: &str, now: Instant) -> Option<OutboxStatus> {
        let head = self.queue.front_mut().filter(|h| h.id == id)?;
        head.attempts += 1;
        head.since = Some(now);
        head.status = OutboxStatus::Sent {
            attempt: head.attempts,
        };
        Some(head.status.clone())
    }

    /// A replica acked `id`: accepted by `replica`, or refused with `error`.
    /// Returns the new status, or `None` for a stale ack.
    pub fn acked(
        &mut self,
        id: &str,
        result: Result<String, String>,
        now: Instant,
    ) -> Option<OutboxStatus> {
        let head = self.queue.front_mut().filter(|h| h.id == id)?;
        match result {
            Ok(replica) => {
                if !matches!(head.status, OutboxStatus::Sent { .. }) {
                    return None;
                }
                head.status = OutboxStatus::Acked { replica };
                head.since = Some(now);
                Some(head.status.clone())
            }
            Err(error) => {
                let status = OutboxStatus::Refused { error };
                self.queue.pop_front();
                Some(status)
            }
        }
    }

    /// The other user's receipt for `id` arrived through `replica`.
    pub fn delivered(&mut self, id: &str, replica: String) -> Option<Pending> {
        if self.queue.front().is_some_and(|h| h.id == id) {
            let mut done = self.queue.pop_front()?;
            done.status = OutboxStatus::Delivered { replica };
            return Some(done);
        }
        None
    }

    /// The session broke: the head is emitted again on the next one.
    pub fn session_lost(&mut self) {
        if let Some(head) = self.queue.front_mut() {
            if !matches!(head.status, OutboxStatus::Queued) {
                head.since = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new("agent", "r", Duration::from_secs(3), Duration::from_secs(3))
    }

    #[test]
    fn one_in_flight_until_its_receipt() {
        let t = Instant::now();
        let mut o = outbox();
        let a = o.push("a".into());
        let b = o.push("b".into());
        assert_eq!(a, "agent-r-1");
        assert_eq!(o.due(t, false), Due::Wait(None));
        let Due::Emit { id, attempt, .. } = o.due(t, true) else {
            panic!()
        };
        assert_eq!((id.as_str(), attempt), (a.as_str(), 1));
        o.emitted(&a, t);
        assert_eq!(o.due(t, true), Due::Wait(Some(t + Duration::from_secs(3))));
        o.acked(&a, Ok("2".into()), t);
        assert!(
            o.delivered(&b, "1".into()).is_none(),
            "only the head is delivered"
        );
        let done = o.delivered(&a, "1".into()).unwrap();
        assert_eq!(
            done.status,
            OutboxStatus::Delivered {
                replica: "1".into()
            }
        );
        let Due::Emit { id, .. } = o.due(t, true) else {
            panic!()
        };
        assert_eq!(id, b);
    }

    #[test]
    fn retries_without_ack_or_receipt_and_after_a_lost_session() {
        let t = Instant::now();
        let mut o = outbox();
        let a = o.push("a".into());
        o.emitted(&a, t);
        let later = t + Duration::from_secs(4);
        assert!(matches!(o.due(later, true), Due::Emit { attempt: 2, .. }));
        o.emitted(&a, later);
        o.acked(&a, Ok("1".into()), later);
        assert!(matches!(
            o.due(later + Duration::from_secs(4), true),
            Due::Emit { attempt: 3, .. }
        ));
        o.session_lost();
        assert!(matches!(o.due(later, true), Due::Emit { .. }));
    }

    #[test]
    fn refused_messages_leave_and_stale_acks_are_ignored() {
        let t = Instant::now();
        let mut o = outbox();
        let a = o.push("a".into());
        o.emitted(&a, t);
        assert_eq!(o.acked("other", Ok("1".into()), t), None);
        let s = o.acked(&a, Err("text is empty".into()), t);
        assert_eq!(
            s,
            Some(OutboxStatus::Refused {
                error: "text is empty".into()
            })
        );
        assert!(o.is_empty());
    }
}
