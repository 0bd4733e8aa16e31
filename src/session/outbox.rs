//! Messages one user sent, kept until the other user's receipt arrives — or, after a bounded
//! number of tries, given up as not delivered.
//!
//! One message is in flight at a time (the head): it is emitted, re-emitted when no ack
//! comes or no receipt follows the ack in time, and re-emitted at once on a new session. A
//! try that times out while the session is up is a *strike*; a session lost is not (the
//! message simply goes again on the next one). After [`Outbox::new`]'s `max_tries` strikes
//! the head is given up — `not delivered`, with the reason the wire suggests — and the next
//! message goes, so a message that cannot be delivered (no adapter between the replicas,
//! the other user away) holds the later ones back for a few seconds, never for ever. The
//! next message goes only after the head's receipt or give-up, so messages arrive in order
//! per sender; receivers drop copies by id, so each is shown once. A receipt that arrives
//! after the give-up still marks the message delivered.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stickyscope_contract::chat::USERS;

use stickyscope_vocab::events::OutboxStatus;

/// How many tries a message gets by default before it is given up.
pub const DEFAULT_TRIES: u32 = 3;
/// How many given-up messages are remembered, so a late receipt still counts.
const GIVEN_UP_MEMORY: usize = 256;

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Message id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Emissions so far.
    pub attempts: u32,
    /// Tries that timed out while the session was up.
    pub strikes: u32,
    /// Where it stands.
    pub status: OutboxStatus,
    /// When it was last emitted or acked; `None` until emitted on the current session.
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
    /// The head's last try timed out: give it up ([`Outbox::give_up`]).
    GiveUp,
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
    given_up: VecDeque<(String, String)>,
    ack_timeout: Duration,
    receipt_timeout: Duration,
    max_tries: u32,
}

impl Outbox {
    /// An empty outbox for `user`; `run` makes ids unique across runs. A try waits
    /// `ack_timeout` for a replica's ack and then `receipt_timeout` for the other user's
    /// receipt; a message gets `max_tries` (at least 1) tries that time out.
    pub fn new(
        user: &str,
        run: &str,
        ack_timeout: Duration,
        receipt_timeout: Duration,
        max_tries: u32,
    ) -> Self {
        Outbox {
            user: user.to_owned(),
            run: run.to_owned(),
            next: 0,
            queue: VecDeque::new(),
            given_up: VecDeque::new(),
            ack_timeout,
            receipt_timeout,
            max_tries: max_tries.max(1),
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
            strikes: 0,
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

    fn timeout_of(&self, status: &OutboxStatus) -> Duration {
        match status {
            OutboxStatus::Acked { .. } => self.receipt_timeout,
            _ => self.ack_timeout,
        }
    }

    /// What to do for the head at `now`, given whether a session is up.
    pub fn due(&self, now: Instant, connected: bool) -> Due {
        let Some(head) = self.queue.front() else {
            return Due::Wait(None);
        };
        if !connected {
            return Due::Wait(None);
        }
        let Some(since) = head.since else {
            return Due::Emit {
                id: head.id.clone(),
                text: head.text.clone(),
                attempt: head.attempts + 1,
            };
        };
        let deadline = since + self.timeout_of(&head.status);
        if deadline > now {
            Due::Wait(Some(deadline))
        } else if head.strikes + 1 >= self.max_tries {
            Due::GiveUp
        } else {
            Due::Emit {
                id: head.id.clone(),
                text: head.text.clone(),
                attempt: head.attempts + 1,
            }
        }
    }

    /// When the head will be given up if nothing more arrives, as wall-clock milliseconds
    /// (for a countdown): the current try's deadline plus the tries left.
    fn gives_up_at_ms(&self, head: &Pending, now: Instant) -> Option<u64> {
        let since = head.since?;
        let current = (since + self.timeout_of(&head.status)).saturating_duration_since(now);
        let tries_left = self.max_tries.saturating_sub(head.strikes + 1);
        let later = self
            .ack_timeout
            .max(self.receipt_timeout)
            .saturating_mul(tries_left);
        let left = current.saturating_add(later);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(wall.saturating_add(left).as_millis()).ok()
    }

    /// The head was emitted at `now`. A re-emission after a try timed out is a strike.
    pub fn emitted(&mut self, id: &str, now: Instant) -> Option<OutboxStatus> {
        let head = self.queue.front_mut().filter(|h| h.id == id)?;
        if head.since.is_some() {
            head.strikes += 1;
        }
        head.attempts += 1;
        head.since = Some(now);
        head.status = OutboxStatus::Sent {
            attempt: head.attempts,
            gives_up_at_ms: None,
        };
        let head = self.queue.front()?;
        let at = self.gives_up_at_ms(head, now);
        let head = self.queue.front_mut()?;
        head.status = OutboxStatus::Sent {
            attempt: head.attempts,
            gives_up_at_ms: at,
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
                head.status = OutboxStatus::Acked {
                    replica: replica.clone(),
                    gives_up_at_ms: None,
                };
                head.since = Some(now);
                let head = self.queue.front()?;
                let at = self.gives_up_at_ms(head, now);
                let head = self.queue.front_mut()?;
                head.status = OutboxStatus::Acked {
                    replica,
                    gives_up_at_ms: at,
                };
                Some(head.status.clone())
            }
            Err(error) => {
                let status = OutboxStatus::Refused { error };
                self.queue.pop_front();
                Some(status)
            }
        }
    }

    /// The other user's receipt for `id` arrived through `replica`: the head leaves, or a
    /// message given up earlier turns out delivered after all.
    pub fn delivered(&mut self, id: &str, replica: String) -> Option<Pending> {
        if self.queue.front().is_some_and(|h| h.id == id) {
            let mut done = self.queue.pop_front()?;
            done.status = OutboxStatus::Delivered { replica };
            return Some(done);
        }
        let at = self.given_up.iter().position(|(given, _)| given == id)?;
        let (id, text) = self.given_up.remove(at)?;
        Some(Pending {
            id,
            text,
            attempts: 0,
            strikes: 0,
            status: OutboxStatus::Delivered { replica },
            since: None,
        })
    }

    /// Gives the head up after its last try timed out; returns it, marked not delivered
    /// with the reason the wire suggests.
    pub fn give_up(&mut self) -> Option<Pending> {
        let mut head = self.queue.pop_front()?;
        let peer = USERS
            .iter()
            .find(|u| **u != self.user)
            .filter(|_| USERS.contains(&self.user.as_str()))
            .map_or("the other user", |u| *u);
        let tries = head.attempts;
        let reason = match &head.status {
            OutboxStatus::Acked { replica, .. } => format!(
                "not delivered — accepted by replica {replica}, but no receipt from {peer} after {tries} {} (adapter off? {peer} away?)",
                plural(tries, "try", "tries")
            ),
            _ => format!(
                "not delivered — no replica acknowledged it after {tries} {}",
                plural(tries, "try", "tries")
            ),
        };
        head.status = OutboxStatus::NotDelivered { reason };
        self.given_up
            .push_back((head.id.clone(), head.text.clone()));
        if self.given_up.len() > GIVEN_UP_MEMORY {
            self.given_up.pop_front();
        }
        Some(head)
    }

    /// Gives up every waiting message (the chat changed), marked not delivered with
    /// `reason`.
    pub fn give_up_all(&mut self, reason: &str) -> Vec<Pending> {
        self.queue
            .drain(..)
            .map(|mut p| {
                p.status = OutboxStatus::NotDelivered {
                    reason: reason.to_owned(),
                };
                p
            })
            .collect()
    }

    /// The session broke: the head goes again on the next one (not a strike). Returns the
    /// head's id, text and new status when it changed (it waits for a session again).
    pub fn session_lost(&mut self) -> Option<(String, String, OutboxStatus)> {
        let head = self.queue.front_mut()?;
        if matches!(head.status, OutboxStatus::Queued) {
            return None;
        }
        head.since = None;
        head.status = OutboxStatus::Queued;
        Some((head.id.clone(), head.text.clone(), head.status.clone()))
    }
}

fn plural<'a>(n: u32, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(
            "agent",
            "r",
            Duration::from_secs(3),
            Duration::from_secs(3),
            3,
        )
    }

    fn emit_due(o: &mut Outbox, at: Instant) -> String {
        let Due::Emit { id, .. } = o.due(at, true) else {
            panic!("expected an emission at {at:?}: {:?}", o.due(at, true))
        };
        o.emitted(&id, at);
        id
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
        let (id, _, status) = o.session_lost().expect("the head waits again");
        assert_eq!((id.as_str(), status), (a.as_str(), OutboxStatus::Queued));
        assert!(matches!(o.due(later, true), Due::Emit { attempt: 3, .. }));
        assert_eq!(
            o.pending().next().unwrap().strikes,
            1,
            "a lost session is no strike"
        );
    }

    #[test]
    fn a_message_without_receipt_is_given_up_after_its_tries_and_the_next_goes() {
        let t = Instant::now();
        let mut o = outbox();
        let first = o.push("first".into());
        let second = o.push("second".into());
        let mut at = t;
        for attempt in 1..=3 {
            assert_eq!(emit_due(&mut o, at), first, "try {attempt}");
            let Some(OutboxStatus::Acked { gives_up_at_ms, .. }) =
                o.acked(&first, Ok("2".into()), at)
            else {
                panic!("acked")
            };
            let left_ms = gives_up_at_ms.unwrap() as i128 - wall_ms() as i128;
            let expected_ms = 3_000 * (4 - attempt) as i128;
            assert!(
                (left_ms - expected_ms).abs() < 500,
                "countdown {left_ms} ms at try {attempt}, expected about {expected_ms}"
            );
            at += Duration::from_secs(3);
        }
        assert_eq!(o.due(at, true), Due::GiveUp);
        let given_up = o.give_up().unwrap();
        assert_eq!(given_up.id, first);
        let OutboxStatus::NotDelivered { reason } = &given_up.status else {
            panic!("{:?}", given_up.status)
        };
        assert_eq!(
            reason,
            "not delivered — accepted by replica 2, but no receipt from visitor after 3 tries (adapter off? visitor away?)"
        );
        assert_eq!(emit_due(&mut o, at), second, "the next message is not held");
        // A late receipt for the given-up message still marks it delivered.
        let late = o.delivered(&first, "3".into()).unwrap();
        assert_eq!(late.text, "first");
        assert!(matches!(late.status, OutboxStatus::Delivered { .. }));
    }

    #[test]
    fn a_message_no_replica_acks_is_given_up_too() {
        let t = Instant::now();
        let mut o = Outbox::new(
            "visitor",
            "r",
            Duration::from_secs(1),
            Duration::from_secs(1),
            2,
        );
        o.push("x".into());
        emit_due(&mut o, t);
        emit_due(&mut o, t + Duration::from_secs(1));
        assert_eq!(o.due(t + Duration::from_secs(2), true), Due::GiveUp);
        let OutboxStatus::NotDelivered { reason } = o.give_up().unwrap().status else {
            panic!()
        };
        assert_eq!(
            reason,
            "not delivered — no replica acknowledged it after 2 tries"
        );
        assert!(o.is_empty());
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

    fn wall_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }
}
