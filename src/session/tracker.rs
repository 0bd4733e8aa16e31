//! What the wire says about one user's session: when it formed and on which replica, when
//! it broke and why, and which chat messages and receipts reached this user.
//!
//! Fed the user's [`WireRecord`]s in order; failures of sessions this user has already left
//! (other session ids) are ignored. Pure: time is passed in.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use stickyscope_contract::chat::{
    seed, ChatBroadcast, ReceiptBroadcast, CHAT_EVENT, RECEIPT_EVENT, USERS,
};

use stickyscope_vocab::events::ChatDialect;

use stickyscope_vocab::protocol::{EnginePacket, SocketKind};
use stickyscope_vocab::record::{Direction, Transport, WireKind, WireRecord};

/// How many received message ids are remembered for deduplication.
const SEEN_CAPACITY: usize = 100_000;
/// Grace on top of pingInterval + pingTimeout before a silent session counts as lost.
const HEARTBEAT_GRACE: Duration = Duration::from_secs(1);

/// Something the wire showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The Socket.IO connect was accepted.
    Connected {
        /// By this replica, when something named it.
        replica: Option<String>,
        /// Engine.IO session id.
        sid: String,
        /// Over WebSocket.
        websocket: bool,
    },
    /// The session moved to WebSocket.
    Upgraded,
    /// The server answered in Engine.IO v3 (a Socket.IO 2 server) while the session spoke v4.
    SpeaksV3,
    /// The connected session's server is now known (it was not when it connected).
    Identified {
        /// Its name.
        replica: String,
    },
    /// The session (or the attempt) is gone, for this reason.
    Broken {
        /// As the wire said it.
        reason: String,
    },
    /// A chat message reached this user.
    Chat {
        /// The message.
        message: ChatBroadcast,
        /// The replica that handed it over.
        delivered_by: Option<String>,
        /// False for a copy of a message already seen.
        first_time: bool,
    },
    /// A delivery receipt reached this user.
    Receipt(ReceiptBroadcast),
    /// The seed's chat: the server sent this user's own message back (to everyone).
    Echo {
        /// The text.
        text: String,
        /// The replica that sent it, when something named it.
        replica: Option<String>,
    },
    /// A replica answered this user's `chat` emit.
    Acked {
        /// The message id.
        id: String,
        /// `Ok(replica)` when accepted, `Err(error)` when refused.
        result: Result<String, String>,
    },
}

/// The wire-derived view of one user's session.
#[derive(Debug)]
pub struct WireTracker {
    user: String,
    /// Whether the session speaks Engine.IO v3.
    v3: bool,
    dialect: ChatDialect,
    /// The namespace the user joins (`/`).
    namespace: String,
    /// The seed's chat has no ids: received messages are numbered here.
    seed_received: u64,
    current_sid: Option<String>,
    /// Sessions this user had before the current one (newest last, a few): a connection
    /// left behind may still be open for a moment, and what it hears is not the user's.
    left_behind: VecDeque<String>,
    attempting: bool,
    /// The current session has opened a WebSocket beside its polling (the upgrade probe
    /// comes before the upgrade): the server may close the polling transport it leaves
    /// behind, which ends that transport, not the session.
    websocket_opened: bool,
    connected: Option<(Option<String>, String)>,
    heartbeat: Option<Duration>,
    last_server_activity: Option<Instant>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    /// Ack id of an emitted `chat` → its message id, learnt from the wire.
    awaiting_ack: VecDeque<(u64, String)>,
    /// Acks (ack id, data) that arrived before the emit they answer: an ack can ride the
    /// long-poll GET, whose record may come before the POST's.
    early_acks: VecDeque<(u64, String)>,
}

/// How many emitted-but-unanswered chat acks are remembered.
const ACK_CAPACITY: usize = 1024;
/// How many sessions left behind are remembered.
const LEFT_BEHIND_CAPACITY: usize = 16;
/// How many acks are remembered that came before their emit was recorded.
const EARLY_ACK_CAPACITY: usize = 64;

/// How long a connected session may hear nothing from its server before it counts as lost:
/// pingInterval + pingTimeout from the open packet, plus a grace; saturating, whatever
/// numbers a server sends.
pub fn heartbeat_limit(ping_interval_ms: u64, ping_timeout_ms: u64) -> Duration {
    Duration::from_millis(ping_interval_ms.saturating_add(ping_timeout_ms))
        .saturating_add(HEARTBEAT_GRACE)
}

impl WireTracker {
    /// A tracker for `user`.
    pub fn new(user: &str) -> Self {
        WireTracker {
            user: user.to_owned(),
            v3: false,
            dialect: ChatDialect::default(),
            namespace: "/".to_owned(),
            seed_received: 0,
            current_sid: None,
            left_behind: VecDeque::new(),
            attempting: false,
            websocket_opened: false,
            connected: None,
            heartbeat: None,
            last_server_activity: None,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            awaiting_ack: VecDeque::new(),
            early_acks: VecDeque::new(),
        }
    }

    /// Whether the session speaks Engine.IO v3 (else v4).
    pub fn set_v3(&mut self, v3: bool) {
        self.v3 = v3;
    }

    /// The namespace the user joins: its `CONNECT` answer says connected (or refused).
    pub fn set_namespace(&mut self, namespace: &str) {
        self.namespace = namespace.to_owned();
    }

    /// Which chat to read off the wire.
    pub fn set_dialect(&mut self, dialect: ChatDialect) {
        self.dialect = dialect;
    }

    /// A new connection attempt starts: the next handshake names the session.
    pub fn attempt_started(&mut self) {
        self.leave_current();
        self.websocket_opened = false;
        self.attempting = true;
        self.connected = None;
        self.last_server_activity = None;
        self.early_acks.clear();
    }

    /// The session was given up (by the supervisor).
    pub fn abandoned(&mut self) {
        self.leave_current();
        self.websocket_opened = false;
        self.attempting = false;
        self.connected = None;
    }

    /// The current session, if any, becomes one left behind.
    fn leave_current(&mut self) {
        if let Some(sid) = self.current_sid.take() {
            self.left_behind.retain(|s| *s != sid);
            self.left_behind.push_back(sid);
            if self.left_behind.len() > LEFT_BEHIND_CAPACITY {
                self.left_behind.pop_front();
            }
        }
    }

    /// The current session id.
    pub fn sid(&self) -> Option<&str> {
        self.current_sid.as_deref()
    }

    /// Whether the session is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.is_some()
    }

    /// Interprets one wire event.
    pub fn observe(&mut self, ev: &WireRecord, now: Instant) -> Vec<Observation> {
        let mut out = Vec::new();
        let handshake_of_attempt = self.attempting && self.current_sid.is_none();
        let left_behind = ev
            .sid
            .as_ref()
            .is_some_and(|sid| self.left_behind.contains(sid));
        let ours = !left_behind
            && match (&ev.sid, &self.current_sid) {
                (Some(sid), Some(current)) => sid == current,
                (None, None) => self.attempting,
                (Some(_), None) => handshake_of_attempt,
                (None, Some(_)) => false,
            };

        // A v3 server answers a v4 handshake in its own protocol: v3's polling framing, or an
        // open packet without v4's maxPayload.
        if ours && handshake_of_attempt && !self.v3 {
            let v3_open = ev
                .packets_down
                .iter()
                .any(|p| matches!(p, EnginePacket::Open(open) if open.max_payload == 0));
            if ev.engineio == Some(3) || v3_open {
                self.abandoned();
                out.push(Observation::SpeaksV3);
                return out;
            }
        }
        if ours && handshake_of_attempt {
            if let Some(open) = ev.packets_down.iter().find_map(|p| match p {
                EnginePacket::Open(open) => Some(open),
                _ => None,
            }) {
                self.current_sid = Some(open.sid.clone());
                self.websocket_opened = false;
                self.heartbeat = Some(heartbeat_limit(open.ping_interval, open.ping_timeout));
            }
        }
        let ours = ours || (ev.sid.is_some() && ev.sid == self.current_sid);
        if ours && ev.transport == Transport::Websocket {
            self.websocket_opened = true;
        }

        if ours && ev.failure.is_none() && from_server(ev) {
            self.last_server_activity = Some(now);
            // A session connected before anything named its server (the balancer's server
            // list arrived later): the first record that names it tells.
            if let (Some((replica @ None, _)), Some(named)) = (&mut self.connected, &ev.replica) {
                *replica = Some(named.clone());
                out.push(Observation::Identified {
                    replica: named.clone(),
                });
            }
        }
        if ours {
            if let Some(failure) = &ev.failure {
                out.push(self.broken(failure.reason.clone()));
                return out;
            }
        }

        self.chats_sent(ev, &mut out);
        for packet in &ev.packets_down {
            let EnginePacket::Message { socket: Some(sp) } = packet else {
                let left_behind_polling =
                    self.websocket_opened && ev.transport == Transport::Polling;
                if ours && !left_behind_polling && matches!(packet, EnginePacket::Close) {
                    out.push(self.broken(format!(
                        "replica {} closed the session",
                        ev.replica.as_deref().unwrap_or("?")
                    )));
                }
                continue;
            };
            match sp.kind {
                SocketKind::Connect if ours && sp.namespace == self.namespace => {
                    // The protocol alone says connected; which replica is a separate
                    // question, answered when something named it.
                    let Some(sid) = self.current_sid.clone() else {
                        continue;
                    };
                    let replica = ev.replica.clone();
                    self.attempting = false;
                    self.connected = Some((replica.clone(), sid.clone()));
                    out.push(Observation::Connected {
                        replica,
                        sid,
                        websocket: ev.transport == Transport::Websocket,
                    });
                }
                SocketKind::Disconnect if ours => out.push(self.broken(format!(
                    "replica {} disconnected the socket",
                    ev.replica.as_deref().unwrap_or("?")
                ))),
                // The server's middleware said no (`io.use(…)`, a namespace it does not
                // serve): the app refused the user, whichever replica it was.
                SocketKind::ConnectError if ours => out.push(self.broken(format!(
                    "{REFUSED_BY_THE_APP}: {}",
                    connect_error_words(&sp.data)
                ))),
                // What a session left behind hears (still open for a moment) is not the
                // user's. The seed's chat has no ids to tell a message from its copy: only
                // the current session's count. stickyscope's chat drops copies by id.
                SocketKind::Event
                    if ours || (self.dialect != ChatDialect::Seed && !left_behind) =>
                {
                    if let Some(o) = self.event(&sp.data, ev) {
                        out.push(o);
                    }
                }
                SocketKind::Ack => {
                    let Some(ack_id) = sp.ack_id else { continue };
                    let Some(pos) = self.awaiting_ack.iter().position(|(n, _)| *n == ack_id) else {
                        self.early_acks.retain(|(n, _)| *n != ack_id);
                        self.early_acks.push_back((ack_id, sp.data.clone()));
                        if self.early_acks.len() > EARLY_ACK_CAPACITY {
                            self.early_acks.pop_front();
                        }
                        continue;
                    };
                    let Some((_, id)) = self.awaiting_ack.remove(pos) else {
                        continue;
                    };
                    out.push(Observation::Acked {
                        id,
                        result: ack_result(&sp.data),
                    });
                }
                _ => {}
            }
        }
        if ours
            && ev
                .packets_up
                .iter()
                .any(|p| matches!(p, EnginePacket::Upgrade))
        {
            out.push(Observation::Upgraded);
        }
        out
    }

    /// Chat messages sent with an ack id: remembered until their ack, or acked at once by
    /// an ack that came before the request's record did.
    fn chats_sent(&mut self, ev: &WireRecord, out: &mut Vec<Observation>) {
        for packet in &ev.packets_up {
            if let EnginePacket::Message { socket: Some(sp) } = packet {
                if let (SocketKind::Event, Some(ack_id)) = (sp.kind, sp.ack_id) {
                    if let Some(id) = chat_id(&sp.data) {
                        if let Some(pos) = self.early_acks.iter().position(|(n, _)| *n == ack_id) {
                            if let Some((_, data)) = self.early_acks.remove(pos) {
                                out.push(Observation::Acked {
                                    id,
                                    result: ack_result(&data),
                                });
                            }
                            continue;
                        }
                        self.awaiting_ack.retain(|(n, _)| *n != ack_id);
                        self.awaiting_ack.push_back((ack_id, id));
                        if self.awaiting_ack.len() > ACK_CAPACITY {
                            self.awaiting_ack.pop_front();
                        }
                    }
                }
            }
        }
    }

    /// The first moment at which [`WireTracker::stalled`] would say the session is lost,
    /// if nothing comes from its server before then (`None` while not connected or before
    /// the heartbeat is known).
    pub fn stalls_after(&self) -> Option<Instant> {
        self.connected.as_ref()?;
        let limit = self.heartbeat?;
        Some(self.last_server_activity? + limit + Duration::from_millis(1))
    }

    /// Why the session counts as lost at `now`, if its server went silent too long.
    pub fn stalled(&self, now: Instant) -> Option<String> {
        let (replica, _) = self.connected.as_ref()?;
        let limit = self.heartbeat?;
        let last = self.last_server_activity?;
        let silent = now.checked_duration_since(last)?;
        let from = replica
            .as_deref()
            .map_or_else(|| "the server".to_owned(), |r| format!("replica {r}"));
        (silent > limit).then(|| {
            format!(
                "heartbeat lost: nothing from {from} for {:.1} s",
                silent.as_secs_f32()
            )
        })
    }

    fn broken(&mut self, reason: String) -> Observation {
        self.abandoned();
        Observation::Broken { reason }
    }

    fn event(&mut self, data: &str, ev: &WireRecord) -> Option<Observation> {
        let args: serde_json::Value = serde_json::from_str(data).ok()?;
        let name = args.get(0)?.as_str()?;
        let payload = args.get(1)?.clone();
        match self.dialect {
            ChatDialect::Stickyscope => self.stickyscope_event(name, payload, ev),
            ChatDialect::Seed => self.seed_event(name, payload, ev),
            ChatDialect::None => None,
        }
    }

    /// The seed's chat: the other user's messages, and this user's own coming back.
    fn seed_event(
        &mut self,
        name: &str,
        payload: serde_json::Value,
        ev: &WireRecord,
    ) -> Option<Observation> {
        let (_, own) = seed::events_of(&self.user)?;
        let text = match payload {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        if name == own {
            return Some(Observation::Echo {
                text,
                replica: ev.replica.clone(),
            });
        }
        let from = USERS.iter().find(|u| {
            **u != self.user && seed::events_of(u).is_some_and(|(_, to_all)| to_all == name)
        })?;
        self.seed_received += 1;
        Some(Observation::Chat {
            message: ChatBroadcast {
                id: format!("seed-{}-{}", self.user, self.seed_received),
                from: (*from).to_owned(),
                text,
                replica: String::new(),
                at: 0,
            },
            delivered_by: ev.replica.clone(),
            first_time: true,
        })
    }

    /// stickyscope's chat: messages by id (each once) and receipts.
    fn stickyscope_event(
        &mut self,
        name: &str,
        payload: serde_json::Value,
        ev: &WireRecord,
    ) -> Option<Observation> {
        match name {
            CHAT_EVENT => {
                let message: ChatBroadcast = serde_json::from_value(payload).ok()?;
                if message.from == self.user {
                    return None;
                }
                let first_time = self.remember(&message.id);
                Some(Observation::Chat {
                    message,
                    delivered_by: ev.replica.clone(),
                    first_time,
                })
            }
            RECEIPT_EVENT => {
                let receipt: ReceiptBroadcast = serde_json::from_value(payload).ok()?;
                (receipt.by != self.user).then_some(Observation::Receipt(receipt))
            }
            _ => None,
        }
    }

    fn remember(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_owned()) {
            return false;
        }
        self.seen_order.push_back(id.to_owned());
        if self.seen_order.len() > SEEN_CAPACITY {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// How a session refused by the server's own middleware (`CONNECT_ERROR`) is named: the
/// app said no, which no stickiness can change.
pub const REFUSED_BY_THE_APP: &str = "refused by the app";

/// The words of a `CONNECT_ERROR`: v4's `{"message":…}`, v3's JSON string, else as sent.
fn connect_error_words(data: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::String(words)) => words,
        Ok(value) => match value.get("message").and_then(|m| m.as_str()) {
            Some(message) => message.to_owned(),
            None => data.to_owned(),
        },
        Err(_) if data.is_empty() => "no reason given".to_owned(),
        Err(_) => data.to_owned(),
    }
}

/// The `id` of a `chat` emit's payload: `["chat", {"id": …}]`.
fn chat_id(data: &str) -> Option<String> {
    let args: serde_json::Value = serde_json::from_str(data).ok()?;
    (args.get(0)?.as_str()? == CHAT_EVENT).then_some(())?;
    args.get(1)?.get("id")?.as_str().map(str::to_owned)
}

/// The result in a chat ack's data: `[{"ok":true,"replica":…}]` or `[{"ok":false,"error":…}]`.
fn ack_result(data: &str) -> Result<String, String> {
    let args: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    let ack = &args[0];
    if ack["ok"] == true {
        Ok(ack["replica"].as_str().unwrap_or("?").to_owned())
    } else {
        Err(ack["error"]
            .as_str()
            .unwrap_or("refused without a reason")
            .to_owned())
    }
}

fn from_server(ev: &WireRecord) -> bool {
    match ev.kind {
        WireKind::Http { status, .. } => status.is_some(),
        WireKind::Ws { direction } => direction == Direction::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::protocol::decode_payload;
    use stickyscope_vocab::record::{Failure, FailureKind};

    fn http(sid: Option<&str>, replica: &str, down: &str) -> WireRecord {
        WireRecord {
            sid: sid.map(str::to_owned),
            engineio: Some(4),
            replica: Some(replica.into()),
            packets_down: decode_payload(down.as_bytes()),
            ..WireRecord::new(
                "visitor",
                0,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(200),
                },
            )
        }
    }

    const OPEN: &str =
        r#"0{"sid":"S1","upgrades":[],"pingInterval":200,"pingTimeout":400,"maxPayload":100000}"#;

    #[test]
    fn handshake_then_connect_means_connected_on_that_replica() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        t.attempt_started();
        assert!(t.observe(&http(Some("S1"), "2", OPEN), now).is_empty());
        let got = t.observe(&http(Some("S1"), "2", r#"40{"sid":"X"}"#), now);
        assert_eq!(
            got,
            [Observation::Connected {
                replica: Some("2".into()),
                sid: "S1".into(),
                websocket: false
            }]
        );
        assert!(t.stalled(now + Duration::from_millis(500)).is_none());
        assert!(t
            .stalled(now + Duration::from_secs(3))
            .unwrap()
            .contains("heartbeat lost"));
    }

    #[test]
    fn a_close_of_the_polling_left_behind_by_an_upgrade_does_not_end_the_session() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        t.attempt_started();
        t.observe(&http(Some("S1"), "1", OPEN), now);
        t.observe(&http(Some("S1"), "1", "40"), now);
        // Before any WebSocket, a close on polling ends the session.
        let mut before = WireTracker::new("visitor");
        before.attempt_started();
        before.observe(&http(Some("S1"), "1", OPEN), now);
        assert!(matches!(
            before.observe(&http(Some("S1"), "1", "1"), now).as_slice(),
            [Observation::Broken { .. }]
        ));
        // After the upgrade probe went over a WebSocket, it only ends the old transport.
        let mut probe = http(Some("S1"), "1", "3probe");
        probe.transport = Transport::Websocket;
        t.observe(&probe, now);
        assert!(t.observe(&http(Some("S1"), "1", "1"), now).is_empty());
        // A close over the WebSocket still ends it.
        let mut closed = http(Some("S1"), "1", "1");
        closed.transport = Transport::Websocket;
        assert!(matches!(
            t.observe(&closed, now).as_slice(),
            [Observation::Broken { .. }]
        ));
    }

    #[test]
    fn the_seeds_chat_counts_only_what_reaches_the_current_session() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        t.set_dialect(ChatDialect::Seed);
        t.attempt_started();
        t.observe(&http(Some("S1"), "1", OPEN), now);
        t.observe(&http(Some("S1"), "1", "40"), now);
        let message = r#"42["message_from_kaushik","hello visitor"]"#;
        // A connection left behind by an earlier attempt hears the same broadcast.
        assert!(t.observe(&http(Some("OLD"), "1", message), now).is_empty());
        assert!(matches!(
            t.observe(&http(Some("S1"), "1", message), now).as_slice(),
            [Observation::Chat { .. }]
        ));
    }

    #[test]
    fn what_a_session_left_behind_hears_is_not_the_users() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        t.attempt_started();
        t.observe(&http(Some("S1"), "1", OPEN), now);
        t.observe(&http(Some("S1"), "1", "40"), now);
        // Pinned elsewhere: a new attempt; the old session's last poll still answers.
        t.attempt_started();
        let chat = "42[\"chat\",{\"id\":\"a-1\",\"from\":\"agent\",\"text\":\"are you there?\",\"replica\":\"1\",\"at\":5}]";
        assert!(t.observe(&http(Some("S1"), "1", chat), now).is_empty());
        // Nor is it taken for the new attempt's handshake.
        assert_eq!(t.sid(), None);
        let open2 = OPEN.replace("S1", "S2");
        t.observe(&http(Some("S2"), "2", &open2), now);
        t.observe(&http(Some("S2"), "2", "40"), now);
        assert_eq!(t.sid(), Some("S2"));
        assert!(t.observe(&http(Some("S1"), "1", chat), now).is_empty());
        assert!(matches!(
            t.observe(&http(Some("S2"), "2", chat), now).as_slice(),
            [Observation::Chat { .. }]
        ));
    }

    #[test]
    fn failures_of_the_current_session_break_it_and_others_do_not() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        t.attempt_started();
        t.observe(&http(Some("S1"), "1", OPEN), now);
        let mut stale = http(Some("OLD"), "3", "");
        stale.failure = Some(Failure {
            kind: FailureKind::Refused,
            reason: "Session ID unknown".into(),
        });
        assert!(t.observe(&stale, now).is_empty());
        let mut bad = http(Some("S1"), "2", "");
        bad.failure = Some(Failure {
            kind: FailureKind::Refused,
            reason: "Session ID unknown".into(),
        });
        assert_eq!(
            t.observe(&bad, now),
            [Observation::Broken {
                reason: "Session ID unknown".into()
            }]
        );
        assert_eq!(t.sid(), None);
    }

    #[test]
    fn acks_are_matched_to_messages_through_the_ack_id_on_the_wire() {
        let now = Instant::now();
        let mut t = WireTracker::new("agent");
        let mut up = http(None, "1", "");
        up.packets_up =
            decode_payload(br#"42417["chat",{"id":"agent-x-1","from":"agent","text":"hi"}]"#);
        assert!(t.observe(&up, now).is_empty());
        let got = t.observe(&http(None, "1", r#"43417[{"ok":true,"replica":"1"}]"#), now);
        assert_eq!(
            got,
            [Observation::Acked {
                id: "agent-x-1".into(),
                result: Ok("1".into())
            }]
        );
        assert!(t
            .observe(&http(None, "1", r#"43417[{"ok":true,"replica":"1"}]"#), now)
            .is_empty());
    }

    #[test]
    fn an_ack_recorded_before_its_emit_still_reaches_the_message() {
        let now = Instant::now();
        let mut t = WireTracker::new("agent");
        assert!(t
            .observe(&http(None, "1", r#"43417[{"ok":true,"replica":"1"}]"#), now)
            .is_empty());
        let mut up = http(None, "1", "");
        up.packets_up =
            decode_payload(br#"42417["chat",{"id":"agent-x-1","from":"agent","text":"hi"}]"#);
        assert_eq!(
            t.observe(&up, now),
            [Observation::Acked {
                id: "agent-x-1".into(),
                result: Ok("1".into())
            }]
        );
    }

    #[test]
    fn a_session_connected_unnamed_is_named_by_the_first_record_that_knows() {
        let now = Instant::now();
        let mut t = WireTracker::new("agent");
        t.attempt_started();
        let mut open = http(Some("S1"), "x", OPEN);
        open.replica = None;
        t.observe(&open, now);
        let mut connect = http(Some("S1"), "x", "40");
        connect.replica = None;
        assert_eq!(
            t.observe(&connect, now),
            [Observation::Connected {
                replica: None,
                sid: "S1".into(),
                websocket: false
            }]
        );
        assert!(
            t.stalled(now + Duration::from_millis(500)).is_none(),
            "an unnamed server's answers still count as heartbeats"
        );
        assert!(t.stalled(now + Duration::from_secs(3)).is_some());
        let named = http(Some("S1"), "10.0.1.7:3000", "2");
        assert_eq!(
            t.observe(&named, now),
            [Observation::Identified {
                replica: "10.0.1.7:3000".into()
            }]
        );
        assert!(t.observe(&named, now).is_empty(), "named once");
    }

    #[test]
    fn the_heartbeat_limit_saturates_on_any_numbers_a_server_sends() {
        assert_eq!(heartbeat_limit(200, 400), Duration::from_millis(1_600));
        let most = Duration::from_millis(u64::MAX) + HEARTBEAT_GRACE;
        assert_eq!(heartbeat_limit(u64::MAX, u64::MAX), most);
        assert_eq!(heartbeat_limit(u64::MAX, 1), most);
    }

    proptest::proptest! {
        /// Whatever heartbeat numbers an open packet carries, and however much later the
        /// session is checked, the tracker neither panics nor calls a fresh session lost.
        #[test]
        fn extreme_open_packets_never_panic_the_tracker(
            interval in proptest::prelude::any::<u64>(),
            timeout in proptest::prelude::any::<u64>(),
            later_ms in proptest::prelude::any::<u64>(),
        ) {
            let now = Instant::now();
            let mut t = WireTracker::new("visitor");
            t.attempt_started();
            let open = format!(
                r#"0{{"sid":"S1","upgrades":[],"pingInterval":{interval},"pingTimeout":{timeout},"maxPayload":1}}"#
            );
            t.observe(&http(Some("S1"), "2", &open), now);
            t.observe(&http(Some("S1"), "2", "40"), now);
            proptest::prop_assert!(t.is_connected());
            let limit = heartbeat_limit(interval, timeout);
            let later = now.checked_add(Duration::from_millis(later_ms));
            if let Some(later) = later {
                let lost = t.stalled(later).is_some();
                proptest::prop_assert_eq!(lost, Duration::from_millis(later_ms) > limit);
            }
            proptest::prop_assert!(t.stalled(now).is_none());
        }
    }

    #[test]
    fn chats_from_the_peer_are_seen_once_and_receipts_pass() {
        let now = Instant::now();
        let mut t = WireTracker::new("visitor");
        let chat = "42[\"chat\",{\"id\":\"a-1\",\"from\":\"agent\",\"text\":\"hi\",\"replica\":\"1\",\"at\":5}]";
        let got = t.observe(&http(Some("S9"), "3", &format!("{chat}\u{1e}{chat}")), now);
        let firsts: Vec<bool> = got
            .iter()
            .map(|o| match o {
                Observation::Chat {
                    first_time,
                    delivered_by,
                    ..
                } => {
                    assert_eq!(delivered_by.as_deref(), Some("3"));
                    *first_time
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(firsts, [true, false]);
        let own = "42[\"chat\",{\"id\":\"v-1\",\"from\":\"visitor\",\"text\":\"me\",\"replica\":\"1\",\"at\":5}]";
        assert!(t.observe(&http(None, "1", own), now).is_empty());
        let receipt = "42[\"receipt\",{\"id\":\"v-1\",\"by\":\"agent\",\"replica\":\"2\"}]";
        assert!(matches!(
            t.observe(&http(None, "2", receipt), now)[..],
            [Observation::Receipt(_)]
        ));
    }
}
