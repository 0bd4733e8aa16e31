//! Crowd mode: up to 10,000 background sessions (light ones: stickyscope's own client
//! calling a tap without a listener), to show how a balancer spreads many users.
//! Their wire records never reach the UI one by one: a summary (sessions per replica,
//! connecting, failures) is sent twice a second instead, so the window stays smooth.
//! A crowd grows in steps ([`Crowd::grow_step`], [`GROWTH_PER_STEP`] every
//! [`GROWTH_EVERY`]) rather than all at once, as a ramp does, and never beyond what the
//! process's open-file limit can hold ([`Crowd::most`]).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::event_sink::EventSink;
use crate::session::{ChatSession, SessionConfig};
use crate::wire::Naming;
use stickyscope_vocab::events::{CrowdSummary, EngineIoChoice, Event};
use stickyscope_vocab::events::{SessionState, TransportChoice};

pub use stickyscope_vocab::events::MAX_CROWD;
/// Replicas whose address a crowd remembers (a stack has at most 64).
const MAX_ADDRESSES: usize = 256;
/// How often the summary is sent.
const SUMMARY_EVERY: Duration = Duration::from_millis(500);
/// Sessions a growing crowd opens at each step: with [`GROWTH_EVERY`], 200 a second.
pub const GROWTH_PER_STEP: usize = 100;
/// How often a growing crowd takes a step.
pub const GROWTH_EVERY: Duration = Duration::from_millis(500);

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
    /// more. Returns whether the crowd has reached it.
    pub async fn grow_step(
        &mut self,
        size: usize,
        transport: TransportChoice,
        sticky: bool,
    ) -> bool {
        let step = size.min(self.sessions.len() + GROWTH_PER_STEP);
        self.resize(step, transport, sticky).await;
        self.sessions.len() >= size.min(MAX_CROWD)
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

    /// Folds what arrived; returns the summary.
    pub fn summarise(&mut self) -> CrowdSummary {
        while let Ok(event) = self.events.try_recv() {
            match event {
                Event::Session { user, state } => {
                    self.states.insert(user, state);
                }
                Event::Wire(w) => {
                    if w.failure.is_some() {
                        self.failures += 1;
                    }
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
        }
    }

    /// Stops every session.
    pub async fn shutdown(&mut self) {
        self.resize(0, TransportChoice::Polling, true).await;
    }
}

/// Sends the summary every half second while the crowd is not empty (and once more when
/// it becomes empty).
pub async fn report_loop(crowd: std::sync::Arc<tokio::sync::Mutex<Crowd>>, sink: EventSink) {
    let mut last: Option<CrowdSummary> = None;
    loop {
        tokio::time::sleep(SUMMARY_EVERY).await;
        let summary = crowd.lock().await.summarise();
        if last.as_ref() != Some(&summary) {
            last = Some(summary.clone());
            sink.send(Event::Crowd(summary)).await;
        }
    }
}
