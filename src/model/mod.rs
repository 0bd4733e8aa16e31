//! What the window shows, as plain data: the view model. It folds the conductor's events into
//! the topology, chat panes, packet log, packet flights and plot series, and the doctor's
//! checklist, with every buffer bounded; the timeline keeps the events and copies of the
//! model so any moment can be shown again ([`timeline`], [`review`]). Pure: no egui, no
//! sockets; time is passed in.

pub mod chat;
pub mod doctor;
pub mod flights;
pub mod log;
pub mod rest;
pub mod review;
pub mod series;
pub mod shared_deque;
pub mod timeline;

use std::collections::BTreeMap;
use std::sync::Arc;

use stickyscope_vocab::events::{CrowdSummary, Event};
use stickyscope_vocab::events::{SessionState, TransportChoice};
use stickyscope_vocab::protocol::EnginePacket;
use stickyscope_vocab::record::WireRecord;
use stickyscope_vocab::topology::Topology;

pub use chat::{ChatEntry, ChatLog};
pub use doctor::DoctorView;
pub use flights::{Flight, Flights, Leg, RejectMark};
pub use log::PacketLog;
pub use rest::Rest;
pub use series::Series;

/// Seconds after which a replica known only from the wire, and silent since, leaves the
/// topology (a scaled-down or renamed replica does not stay for ever).
pub const REPLICA_AGE_OUT_SECS: f64 = 30.0;

/// The view model. A copy is cheap enough for the timeline to keep one every few seconds:
/// what grows with the traffic (the packet log, the chat panes, the heartbeat counts, the
/// flights) is shared between copies, chunk by chunk or node by node, and a copy that
/// changes afterwards copies only what it changes.
#[derive(Debug, Clone)]
pub struct ViewModel {
    /// Topology from the API, merged with the replicas seen on the wire.
    pub topology: Topology,
    api_topology: Topology,
    /// Replicas seen on the wire (id, address) and when last (presentation time).
    seen_replicas: BTreeMap<(String, Option<String>), f64>,
    /// Last state per user.
    pub sessions: BTreeMap<String, SessionState>,
    /// Chat pane per user.
    pub chats: BTreeMap<String, ChatLog>,
    /// Every wire record, bounded.
    pub log: PacketLog,
    /// Packets travelling, and refusals marked at replicas.
    pub flights: Flights,
    /// Plot series.
    pub series: Series,
    /// Stickiness per user, as the conductor last said ([`Event::Sticky`]).
    pub sticky: BTreeMap<String, bool>,
    /// Transport per user, as the conductor last said ([`Event::Transport`]).
    pub transport: BTreeMap<String, TransportChoice>,
    /// The crowd of background sessions.
    pub crowd: CrowdSummary,
    /// Per user, why nothing named the server of their latest answer that came from one
    /// unnamed (gone once an answer names its server).
    pub unnamed: BTreeMap<String, String>,
    /// Per user, the Engine.IO version of their latest handshake's answer.
    pub engineio: BTreeMap<String, u8>,
    /// Heartbeat packets (pings and pongs) seen per user: a persistent map, so the
    /// timeline's copy of a crowd's thousands is one pointer and a count that changes after
    /// copies only the few nodes on its path.
    pub heartbeats: imbl::OrdMap<Arc<str>, u64>,
    /// Whether heartbeat-only records fly across the topology (off while the window rests;
    /// they are still logged, plotted and counted).
    pub animate_heartbeats: bool,
    /// The doctor's checklist, as the last run goes or went.
    pub doctor: DoctorView,
}

/// Heartbeat counts as the topology shows them: the named users (chat users first) and the
/// rest summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatLine {
    /// (user, pings + pongs), chat users first.
    pub named: Vec<(String, u64)>,
    /// Users not named.
    pub others: usize,
    /// Their pings + pongs.
    pub others_beats: u64,
}

impl ViewModel {
    /// Heartbeat counts with at most `named` users named: the chat users first, then the
    /// rest in name order; any more are summed up.
    pub fn heartbeat_line(&self, named: usize) -> HeartbeatLine {
        // Users with a session first, then the rest, each in name order; the first `named`
        // by name, the others summed. No sort, nothing collected: a crowd's thousands of
        // users cost a frame two looks each.
        let has_session = |(user, _): &(&Arc<str>, &u64)| self.sessions.contains_key(&***user);
        let with_session = self.heartbeats.iter().filter(has_session);
        let without = self.heartbeats.iter().filter(|entry| !has_session(entry));
        let mut line = HeartbeatLine {
            named: Vec::new(),
            others: 0,
            others_beats: 0,
        };
        for (user, beats) in with_session.into_iter().chain(without) {
            if line.named.len() < named {
                line.named.push((user.to_string(), *beats));
            } else {
                line.others += 1;
                line.others_beats += beats;
            }
        }
        line
    }

    /// Whether every user is sticky; `None` when nothing says (a browser's HAR).
    pub fn all_sticky(&self) -> Option<bool> {
        (!self.sticky.is_empty()).then(|| self.sticky.values().all(|s| *s))
    }

    /// The users' transport, when they all have the same one.
    pub fn common_transport(&self) -> Option<TransportChoice> {
        let mut values = self.transport.values();
        let first = *values.next()?;
        values.all(|t| *t == first).then_some(first)
    }

    /// An empty model for `users`.
    pub fn new(users: &[&str], sticky: bool, transport: TransportChoice) -> Self {
        ViewModel {
            topology: Topology::default(),
            api_topology: Topology::default(),
            seen_replicas: BTreeMap::new(),
            sessions: BTreeMap::new(),
            chats: users
                .iter()
                .map(|u| (u.to_string(), ChatLog::default()))
                .collect(),
            log: PacketLog::default(),
            flights: Flights::default(),
            series: Series::default(),
            sticky: users.iter().map(|u| (u.to_string(), sticky)).collect(),
            transport: users.iter().map(|u| (u.to_string(), transport)).collect(),
            crowd: CrowdSummary::default(),
            unnamed: BTreeMap::new(),
            engineio: BTreeMap::new(),
            heartbeats: imbl::OrdMap::new(),
            animate_heartbeats: true,
            doctor: DoctorView::default(),
        }
    }

    /// Folds one event in; `now` is the presentation clock.
    pub fn apply(&mut self, event: Event, now: f64) {
        match event {
            Event::Wire(wire) => self.apply_wire(wire, now),
            Event::Session { user, state } => {
                self.sessions.insert(user, state);
            }
            Event::Outbox(update) => self
                .chats
                .entry(update.user.clone())
                .or_default()
                .outbox(update),
            Event::Received(received) => self
                .chats
                .entry(received.user.clone())
                .or_default()
                .received(received),
            Event::Topology(topology) => {
                self.api_topology = topology;
                self.rebuild_topology();
            }
            Event::Crowd(summary) => {
                // The crowd meets replicas the chat users may not have: their addresses
                // join the API's servers (listed by URL) with their names.
                for (replica, addr) in &summary.addresses {
                    self.saw_replica(replica, Some(addr), now);
                }
                self.crowd = summary;
            }
            Event::Doctor(update) => self.doctor.apply(update),
            Event::Sticky { user, on } => {
                self.sticky.insert(user, on);
            }
            Event::Transport { user, transport } => {
                self.transport.insert(user, transport);
            }
            // Banners are the window's (it shows notices as they come); counters and the
            // ends of replica operations are for whoever asked for them.
            Event::Notice(_) | Event::Stats(_) | Event::StackDone { .. } => {}
        }
    }

    fn apply_wire(&mut self, wire: Arc<WireRecord>, now: f64) {
        match (&wire.replica, &wire.unnamed) {
            (Some(_), _) => {
                self.unnamed.remove(&wire.user);
            }
            (None, Some(why)) => {
                self.unnamed.insert(wire.user.clone(), why.clone());
            }
            (None, None) => {}
        }
        let handshake = wire
            .packets_down
            .iter()
            .any(|p| matches!(p, EnginePacket::Open(_)));
        if let (true, Some(version)) = (handshake, wire.engineio) {
            self.engineio.insert(wire.user.clone(), version);
        }
        if let Some(replica) = &wire.replica {
            self.saw_replica(replica, wire.replica_addr.as_deref(), now);
        }
        let beats = wire
            .packets()
            .filter(|p| matches!(p, EnginePacket::Ping { .. } | EnginePacket::Pong { .. }))
            .count() as u64;
        if beats > 0 {
            match self.heartbeats.get_mut(wire.user.as_str()) {
                Some(count) => *count += beats,
                None => {
                    self.heartbeats.insert(Arc::from(wire.user.as_str()), beats);
                }
            }
        }
        self.series.record(&wire);
        if self.animate_heartbeats || !wire.is_heartbeat_only() {
            self.flights.launch(&wire, now);
        }
        self.log.push(wire);
    }

    /// Notes that `replica` (answering from `addr`) was heard from at `now`; one not heard
    /// from before joins the topology.
    fn saw_replica(&mut self, replica: &str, addr: Option<&str>, now: f64) {
        let key = (replica.to_owned(), addr.map(str::to_owned));
        if self.seen_replicas.insert(key, now).is_none() {
            self.rebuild_topology();
        }
    }

    fn rebuild_topology(&mut self) {
        let mut topology = self.api_topology.clone();
        if topology.hops.is_empty() {
            topology.hops.push("gateway".into());
        }
        for (id, addr) in self.seen_replicas.keys() {
            topology.observe(id, addr.as_deref());
        }
        self.topology = topology;
    }

    /// Forgets replicas not heard from for [`REPLICA_AGE_OUT_SECS`] at `now` (presentation
    /// time): those known only from the wire leave the topology; the API's stay as it
    /// lists them. A replica holding crowd sessions is heard from as long as the crowd's
    /// latest summary says so (a summary comes only when something changed).
    pub fn age_out(&mut self, now: f64) {
        let crowd = &self.crowd;
        let holds_crowd = |id: &str, addr: Option<&str>| {
            crowd.per_replica.get(id).is_some_and(|n| *n > 0)
                && crowd.addresses.get(id).map(String::as_str) == addr
        };
        let before = self.seen_replicas.len();
        self.seen_replicas.retain(|(id, addr), last| {
            if holds_crowd(id, addr.as_deref()) {
                *last = now;
            }
            now - *last < REPLICA_AGE_OUT_SECS
        });
        if self.seen_replicas.len() != before {
            self.rebuild_topology();
        }
    }

    /// How many sessions are connected to `replica` now: our users' and the crowd's.
    pub fn sessions_on(&self, replica: &str) -> usize {
        let users = self
            .sessions
            .values()
            .filter(|s| s.replica() == Some(replica))
            .count();
        users + self.crowd.per_replica.get(replica).copied().unwrap_or(0)
    }

    /// A standing problem every user suffers from, worth a banner while it lasts: the
    /// gateway refusing connections or having no replica up.
    pub fn gateway_problem(&self) -> Option<String> {
        let reasons: Vec<&str> = self
            .sessions
            .values()
            .filter_map(|s| match s {
                SessionState::Reconnecting { reason, .. } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        if reasons.len() < self.chats.len().max(1) {
            return None;
        }
        let gateway_down = |r: &&str| {
            [
                "connection refused by the gateway",
                "no TCP connection to the gateway",
                "cannot connect to the gateway",
                "the gateway closed the connection without answering",
                "the gateway reset the connection without answering",
                "not Engine.IO:",
                stickyscope_vocab::traefik_model::NO_SERVER,
            ]
            .iter()
            .any(|start| r.starts_with(start))
        };
        reasons.into_iter().find(gateway_down).map(|reason| {
            format!("{reason}: both users keep retrying, at most twice a second, backing off to every 5 s")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_vocab::topology::ReplicaNode;

    #[test]
    fn replicas_seen_on_the_wire_join_the_api_topology() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        m.apply(
            Event::Topology(Topology {
                hops: vec!["balancer".into()],
                replicas: vec![ReplicaNode {
                    id: None,
                    url: Some("http://127.0.0.1:5000".into()),
                    up: true,
                    listed: true,
                }],
                sticky_cookie: Some("sticky_replica".into()),
            }),
            0.0,
        );
        let mut wire = flights::tests::sample_wire();
        wire.replica = Some("1".into());
        wire.replica_addr = Some("127.0.0.1:5000".into());
        m.apply(Event::Wire(std::sync::Arc::new(wire)), 0.0);
        assert_eq!(m.topology.replicas.len(), 1);
        assert_eq!(m.topology.replicas[0].id.as_deref(), Some("1"));
        assert_eq!(m.log.len(), 1);
        assert_eq!(m.flights.active(0.1).count(), 1);
        assert_eq!(
            m.heartbeats.get("agent"),
            Some(&1),
            "the poll carried a ping"
        );
    }

    /// A model whose balancer's API lists two servers by URL only (127.0.0.1:5001, :5002).
    fn listed_by_url() -> ViewModel {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        let server = |port: u16| ReplicaNode {
            id: None,
            url: Some(format!("http://127.0.0.1:{port}")),
            up: true,
            listed: true,
        };
        m.apply(
            Event::Topology(Topology {
                hops: vec!["nginx".into(), "traefik".into()],
                replicas: vec![server(5001), server(5002)],
                sticky_cookie: Some("sticky_replica".into()),
            }),
            0.0,
        );
        m
    }

    #[test]
    fn the_crowd_names_replicas_the_api_lists_by_url_that_no_chat_user_met() {
        let mut m = listed_by_url();
        m.apply(
            Event::Crowd(CrowdSummary {
                size: 10,
                per_replica: [("2".to_owned(), 10)].into(),
                addresses: [("2".to_owned(), "127.0.0.1:5002".to_owned())].into(),
                ..CrowdSummary::default()
            }),
            0.0,
        );
        let ids: Vec<Option<&str>> = m
            .topology
            .replicas
            .iter()
            .map(|r| r.id.as_deref())
            .collect();
        assert_eq!(ids, [None, Some("2")], "joined by address, no node added");
    }

    #[test]
    fn a_replicas_sessions_are_the_users_and_the_crowds() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        m.apply(
            Event::Session {
                user: "agent".into(),
                state: SessionState::Connected {
                    replica: Some("2".into()),
                    sid: "s1".into(),
                    websocket: false,
                },
            },
            0.0,
        );
        assert_eq!(m.sessions_on("2"), 1);
        m.apply(
            Event::Crowd(CrowdSummary {
                size: 10,
                per_replica: [("2".to_owned(), 7), ("3".to_owned(), 3)].into(),
                ..CrowdSummary::default()
            }),
            0.0,
        );
        assert_eq!((m.sessions_on("2"), m.sessions_on("3")), (8, 3));
        assert_eq!(m.sessions_on("1"), 0);
    }

    #[test]
    fn a_replica_only_the_crowd_meets_stays_named_while_its_sessions_last() {
        let mut m = listed_by_url();
        let crowd = |on_2: usize| CrowdSummary {
            size: 10,
            per_replica: [("2".to_owned(), on_2)].into(),
            addresses: [("2".to_owned(), "127.0.0.1:5002".to_owned())].into(),
            ..CrowdSummary::default()
        };
        m.apply(Event::Crowd(crowd(10)), 0.0);
        let named = |m: &ViewModel| {
            m.topology
                .replicas
                .iter()
                .any(|r| r.id.as_deref() == Some("2"))
        };
        assert!(named(&m));
        // Nothing changed, so no summary came: still named long after.
        m.age_out(REPLICA_AGE_OUT_SECS * 3.0);
        assert!(named(&m), "its crowd sessions are still on it");
        // Its sessions gone: it ages out as any replica does.
        m.apply(Event::Crowd(crowd(0)), REPLICA_AGE_OUT_SECS * 3.0);
        m.age_out(REPLICA_AGE_OUT_SECS * 5.0);
        assert!(!named(&m), "{:?}", m.topology.replicas);
    }

    #[test]
    fn replicas_known_only_from_the_wire_age_out_when_silent() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        let mut wire = flights::tests::sample_wire();
        wire.replica = Some("7".into());
        wire.replica_addr = None;
        m.apply(Event::Wire(std::sync::Arc::new(wire.clone())), 0.0);
        assert_eq!(m.topology.replicas.len(), 1);
        assert!(
            !m.topology.replicas[0].listed,
            "the wire names it; no API lists it"
        );
        m.age_out(REPLICA_AGE_OUT_SECS - 1.0);
        assert_eq!(m.topology.replicas.len(), 1, "not yet");
        m.apply(Event::Wire(std::sync::Arc::new(wire)), 20.0);
        m.age_out(20.0 + REPLICA_AGE_OUT_SECS - 1.0);
        assert_eq!(m.topology.replicas.len(), 1, "heard from again");
        m.age_out(20.0 + REPLICA_AGE_OUT_SECS);
        assert!(m.topology.replicas.is_empty(), "gone after a silence");
    }

    #[test]
    fn the_heartbeat_line_names_chat_users_first_and_sums_the_rest() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        m.sessions
            .insert("visitor".into(), SessionState::Connecting);
        for (user, n) in [
            ("agent", 1),
            ("bot-a", 2),
            ("bot-b", 3),
            ("visitor", 4),
            ("zed", 5),
        ] {
            m.heartbeats.insert(user.into(), n);
        }
        let line = m.heartbeat_line(3);
        let named: Vec<&str> = line.named.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(named, ["visitor", "agent", "bot-a"]);
        assert_eq!((line.others, line.others_beats), (2, 8));
        let all = m.heartbeat_line(10);
        assert_eq!((all.named.len(), all.others, all.others_beats), (5, 0, 0));
    }

    #[test]
    fn a_resting_window_counts_heartbeats_without_flying_them_but_flies_news() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        m.animate_heartbeats = false;
        m.apply(
            Event::Wire(std::sync::Arc::new(flights::tests::sample_wire())),
            0.0,
        );
        assert_eq!(m.flights.active(0.1).count(), 0);
        assert_eq!(m.heartbeats.get("agent"), Some(&1));
        assert_eq!(m.log.len(), 1, "still logged");
        let mut chat = flights::tests::sample_wire();
        chat.packets_down = stickyscope_vocab::protocol::decode_payload(b"42[\"chat\",{}]");
        m.apply(Event::Wire(std::sync::Arc::new(chat)), 0.0);
        assert_eq!(m.flights.active(0.1).count(), 1, "a message always flies");
    }

    #[test]
    fn a_gateway_every_user_cannot_reach_is_a_standing_problem() {
        let mut m = ViewModel::new(&["agent", "visitor"], true, TransportChoice::Polling);
        let down = SessionState::Reconnecting {
            reason: "connection refused by the gateway at 127.0.0.1:9".into(),
            attempt: 2,
        };
        m.apply(
            Event::Session {
                user: "agent".into(),
                state: down.clone(),
            },
            0.0,
        );
        assert_eq!(m.gateway_problem(), None, "one user is not everyone");
        m.apply(
            Event::Session {
                user: "visitor".into(),
                state: down,
            },
            0.0,
        );
        assert!(m
            .gateway_problem()
            .unwrap()
            .starts_with("connection refused by the gateway"));
    }
}
