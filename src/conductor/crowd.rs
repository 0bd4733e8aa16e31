//! Crowd mode: up to 10,000 background sessions (light ones: stickyscope's own client
//! calling a tap without a listener), to show how a balancer spreads many users.
//! Their wire records never reach the UI one by one: a summary (sessions per replica,
//! connecting, failures) is sent twice a second instead, so the window stays smooth.
//! A crowd grows in steps ([`Crowd::grow_step`], up to [`GROWTH_PER_STEP`] every
//! [`GROWTH_EVERY`]) rather than all at once, as a ramp does, and never beyond what the
//! process's open-file limit can hold ([`Crowd::most`]). A gateway whose rate limit refuses
//! its new sessions is named (with the rate that tripped it) and slows it: [`Growth`] takes
//! smaller steps while refusals come, so the crowd grows about as fast as the gateway admits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};
use crate::wire::Naming;
use stickyscope_vocab::events::{CrowdRateLimit, CrowdSummary, EngineIoChoice, Event};
use stickyscope_vocab::events::{Notice, NoticeLevel};
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::rate_limit::{RateLimitWatch, RateLimited};

pub use stickyscope_vocab::events::MAX_CROWD;
/// Replicas whose address a crowd remembers (a stack has at most 64).
const MAX_ADDRESSES: usize = 256;
/// How often the summary is sent.
const SUMMARY_EVERY: Duration = Duration::from_millis(500);
/// Sessions a growing crowd opens at each step: with [`GROWTH_EVERY`], 200 a second.
pub const GROWTH_PER_STEP: usize = 100;
/// How often a growing crowd takes a step.
pub const GROWTH_EVERY: Duration = Duration::from_millis(500);
/// The smallest step a crowd held back by a rate limit takes: 10 sessions a second.
const MIN_STEP: usize = 5;
/// How much larger each step is than the last, once a step met no new refusals.
const STEP_RECOVERY: usize = 5;

/// How many sessions a growing crowd opens at its next step: [`GROWTH_PER_STEP`] until a
/// gateway's rate limit refuses some, then half as many after each step that met new
/// refusals (at least [`MIN_STEP`]) and [`STEP_RECOVERY`] more after each that met none —
/// so a crowd grows about as fast as the gateway admits, its refused sessions' retries
/// included. Pure.
#[derive(Debug)]
pub struct Growth {
    step: usize,
    refusals_seen: u64,
}

impl Default for Growth {
    fn default() -> Self {
        Growth {
            step: GROWTH_PER_STEP,
            refusals_seen: 0,
        }
    }
}

impl Growth {
    /// The next step's size, given the rate limit's refusals so far.
    pub fn next_step(&mut self, refusals: u64) -> usize {
        self.step = if refusals > self.refusals_seen {
            (self.step / 2).max(MIN_STEP)
        } else {
            (self.step + STEP_RECOVERY).min(GROWTH_PER_STEP)
        };
        self.refusals_seen = refusals;
        self.step
    }

    /// Whether it is taking smaller steps than it would.
    pub fn held_back(&self) -> bool {
        self.step < GROWTH_PER_STEP
    }

    /// Sessions a second, at this step.
    pub fn per_s(&self) -> u32 {
        (self.step as f64 / GROWTH_EVERY.as_secs_f64()).round() as u32
    }
}

/// The background sessions and what they look like.
pub struct Crowd {
    gateway: String,
    naming: Naming,
    engineio: EngineIoChoice,
    access: stickyscope_vocab::access::Access,
    sessions: Vec<ChatSession>,
    sink: EventSink,
    events: mpsc::Receiver<Event>,
    states: BTreeMap<String, SessionState>,
    failures: u64,
    next_id: usize,
    /// Whether the stack runs in this process (its connections count against the same
    /// open-file limit).
    stack_in_process: bool,
    /// Each replica's address, as its answers gave it (at most [`MAX_ADDRESSES`]).
    addresses: BTreeMap<String, String>,
    /// When the crowd was made: its records' arrival times count from here.
    made: Instant,
    /// The gateway's rate limit, if its sessions ran into one.
    rate: RateLimitWatch,
    /// Whether the rate limit found has been told (see [`Crowd::newly_rate_limited`]).
    limit_told: bool,
    growth: Growth,
    /// Whether the last step left the crowd short of its size.
    growing: bool,
}

impl Crowd {
    /// An empty crowd for `gateway`, naming replicas as `naming` says, speaking the
    /// Engine.IO `engineio` asks for, where and as `access` says.
    pub fn new(
        gateway: &str,
        naming: Naming,
        engineio: EngineIoChoice,
        access: stickyscope_vocab::access::Access,
        stack_in_process: bool,
    ) -> Self {
        let (sink, events) = EventSink::new(1 << 16, std::sync::Arc::new(|_| {}));
        Crowd {
            engineio,
            access,
            gateway: gateway.to_owned(),
            naming,
            sessions: Vec::new(),
            sink,
            events,
            states: BTreeMap::new(),
            failures: 0,
            addresses: BTreeMap::new(),
            next_id: 0,
            stack_in_process,
            made: Instant::now(),
            rate: RateLimitWatch::default(),
            limit_told: false,
            growth: Growth::default(),
            growing: false,
        }
    }

    /// The largest crowd this process's open-file limit holds (beside the two users), and
    /// the limit, when it can be read.
    pub fn most(&self) -> Option<(usize, u64)> {
        let (soft, _) = crate::open_files::limits().ok()?;
        Some((
            crate::open_files::most_sessions(soft, self.stack_in_process)
                .saturating_sub(2)
                .min(MAX_CROWD),
            soft,
        ))
    }

    /// One step toward `size`: shrinks to it at once, or opens up to [`GROWTH_PER_STEP`]
    /// more (fewer while a rate limit refuses them; see [`Growth`]). Returns whether the
    /// crowd has reached it.
    pub async fn grow_step(
        &mut self,
        size: usize,
        transport: TransportChoice,
        sticky: bool,
    ) -> bool {
        self.fold_arrived();
        let step = self.growth.next_step(self.rate.refusals());
        let next = size.min(self.sessions.len() + step);
        self.resize(next, transport, sticky).await;
        let reached = self.sessions.len() >= size.min(MAX_CROWD);
        self.growing = !reached;
        reached
    }

    /// The gateway's rate limit, the first time one is found; `None` after.
    pub fn newly_rate_limited(&mut self) -> Option<RateLimited> {
        if self.limit_told {
            return None;
        }
        self.fold_arrived();
        let found = self.rate.finding()?;
        self.limit_told = true;
        Some(found)
    }

    /// Grows or shrinks the crowd to `size` (at most [`MAX_CROWD`]).
    pub async fn resize(&mut self, size: usize, transport: TransportChoice, sticky: bool) {
        let size = size.min(MAX_CROWD);
        if self.sessions.len() > size {
            let leaving = self.sessions.split_off(size);
            for s in &leaving {
                self.states.remove(s.user());
            }
            futures_util::future::join_all(leaving.into_iter().map(ChatSession::shutdown)).await;
        }
        while self.sessions.len() < size {
            self.next_id += 1;
            let mut config = SessionConfig::new(&format!("crowd-{}", self.next_id), &self.gateway);
            config.transport = transport;
            config.sticky = sticky;
            config.naming = self.naming.clone();
            config.engineio = self.engineio;
            config.access = self.access.clone();
            config.light = true;
            match ChatSession::start(config, self.sink.clone()).await {
                Ok(s) => self.sessions.push(s),
                Err(e) => {
                    tracing::warn!("crowd session could not start: {e}");
                    break;
                }
            }
        }
    }

    /// Applies a stickiness change to every crowd session.
    pub fn set_sticky(&self, on: bool) {
        self.sessions.iter().for_each(|s| s.set_sticky(on));
    }

    /// Applies a transport change to every crowd session.
    pub fn set_transport(&self, transport: TransportChoice) {
        self.sessions
            .iter()
            .for_each(|s| s.set_transport(transport));
    }

    /// Folds the events that arrived since the last call.
    fn fold_arrived(&mut self) {
        let at_s = self.made.elapsed().as_secs_f64();
        while let Ok(event) = self.events.try_recv() {
            match event {
                Event::Session { user, state } => {
                    self.states.insert(user, state);
                }
                Event::Wire(w) => {
                    if w.failure.is_some() {
                        self.failures += 1;
                    }
                    self.rate.fold(at_s, &w);
                    // A peer names replicas: keep the first few, not whatever it sends; and
                    // copy nothing for the thousands of records that say what is known.
                    if let (Some(replica), Some(addr)) = (&w.replica, &w.replica_addr) {
                        let known = self.addresses.get(replica);
                        let room = known.is_some() || self.addresses.len() < MAX_ADDRESSES;
                        if known != Some(addr) && room {
                            self.addresses.insert(replica.clone(), addr.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Folds what arrived; returns the summary.
    pub fn summarise(&mut self) -> CrowdSummary {
        self.fold_arrived();
        let mut per_replica: BTreeMap<String, usize> = BTreeMap::new();
        let mut connecting = 0;
        for session in &self.sessions {
            match self.states.get(session.user()) {
                Some(SessionState::Connected { replica, .. }) => {
                    *per_replica
                        .entry(replica.clone().unwrap_or_else(|| "?".to_owned()))
                        .or_default() += 1
                }
                _ => connecting += 1,
            }
        }
        CrowdSummary {
            size: self.sessions.len(),
            per_replica,
            connecting,
            failures: self.failures,
            addresses: self.addresses.clone(),
            rate_limited: self.rate.finding().map(|found| CrowdRateLimit {
                status: found.status,
                certain: found.certain,
                refusals: found.refusals,
                openings_per_s: found.openings_per_s.round() as u32,
            }),
            held_back_to_per_s: (self.growing && self.growth.held_back())
                .then(|| self.growth.per_s()),
        }
    }

    /// Stops every session.
    pub async fn shutdown(&mut self) {
        self.resize(0, TransportChoice::Polling, true).await;
    }
}

/// Sends the summary every half second while the crowd is not empty (and once more when
/// it becomes empty), and a notice the first time the gateway's rate limit refused it.
pub async fn report_loop(crowd: std::sync::Arc<tokio::sync::Mutex<Crowd>>, sink: EventSink) {
    let mut last: Option<CrowdSummary> = None;
    loop {
        tokio::time::sleep(SUMMARY_EVERY).await;
        let (summary, limit) = {
            let mut crowd = crowd.lock().await;
            (crowd.summarise(), crowd.newly_rate_limited())
        };
        if let Some(limit) = limit {
            let notice = Notice {
                level: NoticeLevel::Warning,
                text: rate_limit_words(&limit),
            };
            sink.send(Event::Notice(notice)).await;
        }
        if last.as_ref() != Some(&summary) {
            last = Some(summary.clone());
            sink.send(Event::Crowd(summary)).await;
        }
    }
}

/// What the window says when a crowd first runs into the gateway's rate limit.
fn rate_limit_words(limit: &RateLimited) -> String {
    let what = if limit.certain {
        format!(
            "the gateway's rate limit refused the crowd's new sessions (HTTP {})",
            limit.status
        )
    } else {
        format!(
            "the gateway answered the crowd's new sessions HTTP {}, perhaps a rate limit (nginx's limit_req answers 503 unless limit_req_status says otherwise)",
            limit.status
        )
    };
    format!(
        "{what} when they came at {:.0} a second: the crowd now grows slower, about as fast as the gateway admits",
        limit.openings_per_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_takes_full_steps_until_refused_then_halves_and_recovers_slowly() {
        let mut growth = Growth::default();
        assert_eq!(growth.next_step(0), GROWTH_PER_STEP);
        assert!(!growth.held_back());
        // Refusals since the last step: half the step, each time they go on coming.
        assert_eq!(growth.next_step(30), GROWTH_PER_STEP / 2);
        assert_eq!(growth.next_step(31), GROWTH_PER_STEP / 4);
        assert!(growth.held_back());
        assert_eq!(growth.per_s(), (GROWTH_PER_STEP / 4 * 2) as u32);
        // Never below the least step, however many come.
        for refusals in 32..50 {
            assert!(growth.next_step(refusals) >= MIN_STEP);
        }
        assert_eq!(growth.next_step(50), MIN_STEP);
        // None since: a little larger each step, back to full.
        assert_eq!(growth.next_step(50), MIN_STEP + STEP_RECOVERY);
        let mut step = 0;
        for _ in 0..GROWTH_PER_STEP {
            step = growth.next_step(50);
        }
        assert_eq!(step, GROWTH_PER_STEP);
        assert!(!growth.held_back());
    }

    #[test]
    fn the_rate_limit_notice_says_the_status_and_the_rate_and_whether_it_is_certain() {
        let mut watch = RateLimitWatch::default();
        let at_ms = 1_000_000;
        for i in 0..40 {
            let mut w = stickyscope_vocab::record::WireRecord::new(
                format!("crowd-{i}"),
                at_ms + i * 10,
                stickyscope_vocab::record::Transport::Polling,
                stickyscope_vocab::record::WireKind::Http {
                    request: stickyscope_contract::RequestKind::HandshakePolling,
                    method: "GET".into(),
                    status: Some(if i < 39 { 200 } else { 429 }),
                },
            );
            if i == 39 {
                w.failure = Some(stickyscope_vocab::record::Failure {
                    kind: stickyscope_vocab::record::FailureKind::RateLimited,
                    reason: "rate-limited by the gateway (HTTP 429 Too Many Requests)".into(),
                });
            }
            watch.fold(1.0, &w);
        }
        let limit = watch.finding().expect("a 429 is a rate limit");
        let words = rate_limit_words(&limit);
        assert!(
            words.contains("rate limit refused the crowd's new sessions (HTTP 429)"),
            "{words}"
        );
        // 40 handshakes started in the 390 ms before the refusal.
        assert!(words.contains("at 103 a second"), "{words}");
        let mut uncertain = limit.clone();
        uncertain.status = 503;
        uncertain.certain = false;
        assert!(rate_limit_words(&uncertain).contains("HTTP 503, perhaps a rate limit"));
    }
}
