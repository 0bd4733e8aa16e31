//! Whether a step's expectations hold, from what the event stream says happened since the
//! step began: each expectation pending, passed or failed, with what was observed. Pure:
//! the runner and the window feed it the same events.
//!
//! An expectation that something happens (connected, delivered, at least N failures)
//! passes as soon as it is seen and fails when the step's time is up; one that something
//! does not happen (never connects, not delivered, at most N) fails as soon as it does and
//! passes when the time is up.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use stickyscope_contract::stats::StatsSnapshot;

use super::format::{Bounds, Counter, Expectation};
use stickyscope_vocab::events::Event;
use stickyscope_vocab::events::SessionState;

/// Where an expectation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not decided yet.
    Pending,
    /// Seen to hold.
    Passed,
    /// Seen not to hold.
    Failed,
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The expectation, in words.
    pub expectation: String,
    /// Where it stands.
    pub status: Status,
    /// What was observed, in words.
    pub observed: String,
}

/// What one step has seen so far.
#[derive(Debug, Clone)]
pub struct StepCheck {
    expect: Vec<Expectation>,
    /// Each user's state now.
    states: BTreeMap<String, SessionState>,
    /// The replica each user was last on before the step.
    before: BTreeMap<String, Option<String>>,
    /// Users connected at some moment of the step, with the replicas they connected to.
    connected_to: BTreeMap<String, BTreeSet<Option<String>>>,
    /// Users whose session an action of the step restarts: a connection counts only once
    /// the old one is seen to end.
    restarting: BTreeSet<String>,
    /// Replicas named by answers to each user during the step.
    answered_by: BTreeMap<String, BTreeSet<String>>,
    /// Failures on the users' wire, by reason.
    failures: BTreeMap<String, u64>,
    /// Texts each user received.
    received: BTreeMap<String, Vec<String>>,
    /// When the step began, in milliseconds since the Unix epoch: a wire record of a
    /// request started before then belongs to what came before the step (the restore, an
    /// earlier step), however late its answer arrives.
    began_ms: u64,
    /// `/stats` when the step began, and the latest.
    stats_start: Option<BTreeMap<String, StatsSnapshot>>,
    stats_now: Option<BTreeMap<String, StatsSnapshot>>,
}

impl StepCheck {
    /// A check of `expect` starting now: `states` are the users' states at the start and
    /// `before` the replica each was last on.
    pub fn new(
        expect: Vec<Expectation>,
        states: BTreeMap<String, SessionState>,
        before: BTreeMap<String, Option<String>>,
    ) -> Self {
        let mut connected_to: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
        for (user, state) in &states {
            if let SessionState::Connected { replica, .. } = state {
                connected_to
                    .entry(user.clone())
                    .or_default()
                    .insert(replica.clone());
            }
        }
        StepCheck {
            expect,
            states,
            before,
            connected_to,
            restarting: BTreeSet::new(),
            answered_by: BTreeMap::new(),
            failures: BTreeMap::new(),
            received: BTreeMap::new(),
            began_ms: 0,
            stats_start: None,
            stats_now: None,
        }
    }

    /// Counts only wire records of requests started at or after `began_ms` (milliseconds
    /// since the Unix epoch).
    pub fn since_ms(mut self, began_ms: u64) -> Self {
        self.began_ms = began_ms;
        self
    }

    /// An action of the step starts `user`'s session again: the connection it had no
    /// longer counts, and the next one counts once the old one is seen to end.
    pub fn restarts(&mut self, user: &str) {
        self.connected_to.remove(user);
        if matches!(self.states.get(user), Some(SessionState::Connected { .. })) {
            self.restarting.insert(user.to_owned());
        }
    }

    /// Whether any expectation reads `/stats`.
    pub fn needs_stats(&self) -> bool {
        self.expect.iter().any(Expectation::needs_stats)
    }

    /// Whether the counters at the step's start are known.
    pub fn has_stats_baseline(&self) -> bool {
        self.stats_start.is_some()
    }

    /// Folds one event in.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Session { user, state } => {
                match state {
                    SessionState::Connected { replica, .. } if !self.restarting.contains(user) => {
                        self.connected_to
                            .entry(user.clone())
                            .or_default()
                            .insert(replica.clone());
                    }
                    SessionState::Connected { .. } => {}
                    _ => {
                        self.restarting.remove(user);
                    }
                }
                self.states.insert(user.clone(), state.clone());
            }
            Event::Wire(w) if w.at_ms < self.began_ms => {}
            Event::Wire(w) => {
                if let Some(f) = &w.failure {
                    *self.failures.entry(f.reason.clone()).or_default() += 1;
                }
                if let (Some(replica), None) = (&w.replica, &w.failure) {
                    self.answered_by
                        .entry(w.user.clone())
                        .or_default()
                        .insert(replica.clone());
                }
            }
            Event::Received(r) => self
                .received
                .entry(r.user.clone())
                .or_default()
                .push(r.message.text.clone()),
            Event::Stats(stats) => {
                if self.stats_start.is_none() {
                    self.stats_start = Some(stats.clone());
                }
                self.stats_now = Some(stats.clone());
            }
            _ => {}
        }
    }

    /// Every expectation's outcome; `time_up` once the step's time is over.
    pub fn outcomes(&self, time_up: bool) -> Vec<Outcome> {
        self.expect
            .iter()
            .map(|e| {
                let (status, observed) = self.judge(e, time_up);
                Outcome {
                    expectation: e.to_string(),
                    status,
                    observed,
                }
            })
            .collect()
    }

    /// Whether every expectation is decided before the time is up.
    pub fn decided(&self) -> bool {
        self.outcomes(false)
            .iter()
            .all(|o| o.status != Status::Pending)
    }

    fn state_words(&self, user: &str) -> String {
        match self.states.get(user) {
            Some(SessionState::Connected { replica, .. }) => format!(
                "{user} connected to {}",
                replica.as_deref().map_or_else(
                    || "a replica nothing named".to_owned(),
                    stickyscope_vocab::topology::replica_name
                )
            ),
            Some(SessionState::Reconnecting { reason, .. }) => {
                format!("{user} reconnecting: {reason}")
            }
            Some(SessionState::Failed { reason }) => format!("{user} not connected: {reason}"),
            Some(SessionState::Connecting) | None => format!("{user} connecting"),
        }
    }

    fn judge(&self, e: &Expectation, time_up: bool) -> (Status, String) {
        // Something that must happen: passed once seen, failed when the time is up.
        let must = |seen: bool, observed: String| match (seen, time_up) {
            (true, _) => (Status::Passed, observed),
            (false, true) => (Status::Failed, observed),
            (false, false) => (Status::Pending, observed),
        };
        // Something that must not happen: failed once seen, passed when the time is up.
        let must_not = |seen: bool, observed: String| match (seen, time_up) {
            (true, _) => (Status::Failed, observed),
            (false, true) => (Status::Passed, observed),
            (false, false) => (Status::Pending, observed),
        };
        match e {
            Expectation::Connected(who) => {
                let users = who.users();
                let seen = users.iter().all(|u| self.connected_to.contains_key(u));
                must(seen, self.states_words(&users))
            }
            Expectation::NeverConnects(who) => {
                let users = who.users();
                let seen = users.iter().any(|u| self.connected_to.contains_key(u));
                must_not(seen, self.states_words(&users))
            }
            Expectation::OnReplica { user, replica } => {
                let seen = self
                    .connected_to
                    .get(user)
                    .is_some_and(|set| set.contains(&Some(replica.clone())));
                must(seen, self.state_words(user))
            }
            Expectation::Moved(user) => {
                let before = self.before.get(user).cloned().flatten();
                let seen = self.connected_to.get(user).is_some_and(|set| {
                    set.iter()
                        .any(|r| r.is_some() && before.is_some() && *r != before)
                });
                let from = before.as_deref().map_or_else(
                    || "no replica known before".to_owned(),
                    |b| format!("was on {}", stickyscope_vocab::topology::replica_name(b)),
                );
                must(seen, format!("{}; {from}", self.state_words(user)))
            }
            Expectation::OneReplica(user) => {
                let set = self.answered_by.get(user).cloned().unwrap_or_default();
                let observed = match set.len() {
                    0 => format!("no answer to {user} named a replica"),
                    _ => format!(
                        "answers to {user} from {}",
                        set.iter()
                            .map(|r| stickyscope_vocab::topology::replica_name(r))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                match (set.len(), time_up) {
                    (n, _) if n > 1 => (Status::Failed, observed),
                    (1, true) => (Status::Passed, observed),
                    (_, true) => (Status::Failed, observed),
                    _ => (Status::Pending, observed),
                }
            }
            Expectation::Failures { reason, bounds } => {
                let matching: BTreeMap<&String, &u64> = self
                    .failures
                    .iter()
                    .filter(|(r, _)| reason.as_ref().is_none_or(|want| r.contains(want.as_str())))
                    .collect();
                let n: u64 = matching.values().copied().sum();
                let observed = if matching.is_empty() {
                    "no failures".to_owned()
                } else {
                    matching
                        .iter()
                        .map(|(r, n)| format!("{n}× {r}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                counted(*bounds, n, time_up, observed)
            }
            Expectation::Delivered { text, to } => {
                let seen = self.received_text(to, text);
                must(seen, self.received_words(to))
            }
            Expectation::NotDelivered { text, to } => {
                let seen = self.received_text(to, text);
                must_not(seen, self.received_words(to))
            }
            Expectation::Stats {
                counter,
                replica,
                bounds,
            } => {
                let (Some(start), Some(now)) = (&self.stats_start, &self.stats_now) else {
                    return (
                        if time_up {
                            Status::Failed
                        } else {
                            Status::Pending
                        },
                        "no /stats read yet".to_owned(),
                    );
                };
                let n = stats_count(counter, replica.as_deref(), start, now);
                let gauge = *counter == Counter::SocketsConnected;
                let observed = format!("{counter} = {n}");
                if gauge {
                    // A gauge is read as it is now: it holds once it is in bounds.
                    must(bounds.holds(n), observed)
                } else {
                    counted(*bounds, n, time_up, observed)
                }
            }
        }
    }

    fn states_words(&self, users: &[String]) -> String {
        users
            .iter()
            .map(|u| self.state_words(u))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn received_text(&self, user: &str, text: &str) -> bool {
        self.received
            .get(user)
            .is_some_and(|texts| texts.iter().any(|t| t == text))
    }

    fn received_words(&self, user: &str) -> String {
        match self.received.get(user) {
            Some(texts) if !texts.is_empty() => format!(
                "{user} received {}",
                texts
                    .iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("{user} received nothing"),
        }
    }
}

/// A count that only grows: it passes once it reaches `at_least` (if it stays within
/// `at_most`), fails once past `at_most`, and is judged as it stands when the time is up.
fn counted(bounds: Bounds, n: u64, time_up: bool, observed: String) -> (Status, String) {
    if bounds.at_most.is_some_and(|m| n > m) {
        return (Status::Failed, observed);
    }
    let reached = bounds.at_least.is_none_or(|l| n >= l);
    match (reached, bounds.at_most.is_some(), time_up) {
        (true, false, _) => (Status::Passed, observed),
        (true, true, true) => (Status::Passed, observed),
        (_, _, true) => (Status::Failed, observed),
        _ => (Status::Pending, observed),
    }
}

/// A counter's growth since `start` (its value now, for the `sockets.connected` gauge), on
/// one replica or summed over all.
fn stats_count(
    counter: &Counter,
    replica: Option<&str>,
    start: &BTreeMap<String, StatsSnapshot>,
    now: &BTreeMap<String, StatsSnapshot>,
) -> u64 {
    let value = |s: &StatsSnapshot| -> u64 {
        match counter {
            Counter::Requests(kind) => s.requests_of(*kind),
            Counter::Rejected(reason) => s.rejected_for(reason),
            Counter::SocketsConnected => s.sockets.connected,
            Counter::SocketsTotal => s.sockets.total,
            Counter::ChatAccepted => s.chat.accepted,
            Counter::ChatRepeats => s.chat.repeats,
            Counter::ChatRefused => s.chat.refused,
        }
    };
    now.iter()
        .filter(|(id, _)| replica.is_none_or(|r| r == id.as_str()))
        .map(|(id, s)| {
            if *counter == Counter::SocketsConnected {
                value(s)
            } else {
                // A replica process restarted since counts from zero again: a counter
                // lower than at the start has been reset, and all of it is new.
                let (now, then) = (value(s), start.get(id).map_or(0, value));
                if now >= then {
                    now - then
                } else {
                    now
                }
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::format::{Bounds, Who};

    fn connected(replica: &str) -> SessionState {
        SessionState::Connected {
            replica: Some(replica.into()),
            sid: "s".into(),
            websocket: false,
        }
    }

    fn session(user: &str, state: SessionState) -> Event {
        Event::Session {
            user: user.into(),
            state,
        }
    }

    fn statuses(check: &StepCheck, time_up: bool) -> Vec<Status> {
        check.outcomes(time_up).iter().map(|o| o.status).collect()
    }

    #[test]
    fn what_must_happen_passes_when_seen_and_what_must_not_fails_when_seen() {
        let mut check = StepCheck::new(
            vec![
                Expectation::Connected(Who::One("agent".into())),
                Expectation::NeverConnects(Who::One("visitor".into())),
                Expectation::Failures {
                    reason: Some("Session ID unknown".into()),
                    bounds: Bounds {
                        at_least: None,
                        at_most: Some(1),
                    },
                },
            ],
            BTreeMap::new(),
            BTreeMap::new(),
        );
        assert_eq!(
            statuses(&check, false),
            [Status::Pending, Status::Pending, Status::Pending]
        );
        check.observe(&session("agent", connected("1")));
        assert_eq!(
            statuses(&check, false),
            [Status::Passed, Status::Pending, Status::Pending]
        );
        assert!(!check.decided(), "the negatives wait for the time to be up");
        assert_eq!(
            statuses(&check, true),
            [Status::Passed, Status::Passed, Status::Passed]
        );
        check.observe(&session("visitor", connected("2")));
        assert_eq!(statuses(&check, false)[1], Status::Failed);
        assert!(check.outcomes(false)[1]
            .observed
            .contains("visitor connected to replica 2"));
    }

    #[test]
    fn a_restarted_session_counts_only_after_the_old_one_ends() {
        let states = BTreeMap::from([("agent".to_owned(), connected("3"))]);
        let before = BTreeMap::from([("agent".to_owned(), Some("3".to_owned()))]);
        let mut check = StepCheck::new(
            vec![
                Expectation::OnReplica {
                    user: "agent".into(),
                    replica: "3".into(),
                },
                Expectation::Moved("agent".into()),
            ],
            states,
            before,
        );
        assert_eq!(statuses(&check, false)[0], Status::Passed, "already there");
        check.restarts("agent");
        assert_eq!(statuses(&check, false)[0], Status::Pending);
        // The old session named again (late identification) is still the old one.
        check.observe(&session("agent", connected("3")));
        assert_eq!(statuses(&check, false)[0], Status::Pending);
        check.observe(&session(
            "agent",
            SessionState::Reconnecting {
                reason: "killed".into(),
                attempt: 1,
            },
        ));
        check.observe(&session("agent", connected("1")));
        let got = check.outcomes(true);
        assert_eq!(got[0].status, Status::Failed, "{:?}", got[0]);
        assert_eq!(got[1].status, Status::Passed, "{:?}", got[1]);
        assert!(got[1].observed.contains("was on replica 3"));
    }

    #[test]
    fn stats_count_from_the_step_start_and_gauges_as_they_are() {
        let snapshot = |accepted: u64, connected: u64| {
            let mut s: StatsSnapshot = serde_json::from_value(serde_json::json!({
                "replica": "1", "requests": {}, "rejected": {},
                "sockets": {"connected": connected, "total": 9},
                "chat": {"accepted": accepted, "refused": 0}, "restarts": 0
            }))
            .unwrap();
            s.replica = "1".into();
            BTreeMap::from([("1".to_owned(), s)])
        };
        let mut check = StepCheck::new(
            vec![
                Expectation::Stats {
                    counter: Counter::ChatAccepted,
                    replica: Some("1".into()),
                    bounds: Bounds {
                        at_least: Some(2),
                        at_most: None,
                    },
                },
                Expectation::Stats {
                    counter: Counter::SocketsConnected,
                    replica: None,
                    bounds: Bounds {
                        at_least: Some(2),
                        at_most: Some(2),
                    },
                },
            ],
            BTreeMap::new(),
            BTreeMap::new(),
        );
        assert!(check.needs_stats() && !check.has_stats_baseline());
        check.observe(&Event::Stats(snapshot(10, 2)));
        assert_eq!(statuses(&check, false), [Status::Pending, Status::Passed]);
        check.observe(&Event::Stats(snapshot(12, 2)));
        assert_eq!(statuses(&check, false), [Status::Passed, Status::Passed]);
        assert_eq!(check.outcomes(false)[0].observed, "chat.accepted = 2");
    }

    #[test]
    fn a_request_started_before_the_step_is_not_the_steps_however_late_it_is_seen() {
        use stickyscope_contract::RequestKind;
        use stickyscope_vocab::record::{Failure, FailureKind, Transport, WireKind, WireRecord};
        let refused = |at_ms: u64, replica: &str| {
            let mut w = WireRecord::new(
                "agent",
                at_ms,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(400),
                },
            );
            w.replica = Some(replica.into());
            w.failure = Some(Failure {
                kind: FailureKind::Refused,
                reason: "Session ID unknown".into(),
            });
            Event::Wire(std::sync::Arc::new(w))
        };
        let mut check = StepCheck::new(
            vec![
                Expectation::OneReplica("agent".into()),
                Expectation::Failures {
                    reason: None,
                    bounds: Bounds {
                        at_least: None,
                        at_most: Some(0),
                    },
                },
            ],
            BTreeMap::new(),
            BTreeMap::new(),
        )
        .since_ms(1_000);
        check.observe(&refused(999, "2"));
        assert_eq!(statuses(&check, true)[1], Status::Passed, "from before");
        check.observe(&refused(1_000, "2"));
        assert_eq!(statuses(&check, false)[1], Status::Failed, "from the step");
    }
}
