//! One thing that crossed the wire between a chat user and the gateway: an HTTP exchange
//! (request and response) or one WebSocket message, with what it carried, the replica that
//! handled it, and — for a failure — its exact reason.
//!
//! Serialized one per line this is the capture format (see the README's "Capture format").

use serde::{Deserialize, Serialize};
use stickyscope_contract::RequestKind;

use crate::naming::Source;
use crate::protocol::EnginePacket;
use crate::timing::Timing;

/// Transport of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

/// Which way a WebSocket message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// What kind of record this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireKind {
    /// One HTTP request and its response (101 included, for upgrades).
    Http {
        /// Engine.IO request kind, by the same rule the replicas count with.
        request: RequestKind,
        /// HTTP method.
        method: String,
        /// Response status; absent when no response came.
        status: Option<u16>,
    },
    /// One WebSocket message.
    Ws {
        /// Its direction.
        direction: Direction,
    },
}

/// The class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A replica answered with an HTTP error (e.g. 400 `Session ID unknown`).
    Refused,
    /// A replica answered an upgrade with 101 and then dropped it without a frame.
    UpgradeDropped,
    /// An established WebSocket ended without a close frame.
    Dropped,
    /// The gateway had no replica up (502 without `X-Replica`).
    NoReplica,
    /// The gateway answered with an error of its own (no `X-Replica`), or broke the
    /// connection.
    Gateway,
    /// The answer was not Engine.IO at all (an HTML page, another protocol): no Socket.IO
    /// server behind that address and path.
    NotEngineIo,
    /// Refused by a rate limit (HTTP 429), at the gateway or a replica.
    RateLimited,
    /// The gateway refused the TCP connection.
    ConnectionRefused,
    /// No TCP connection to the gateway came about (timed out, name not resolved, network
    /// unreachable).
    Unreachable,
    /// No answer in time.
    Timeout,
    /// This machine had no local port left to connect from (its ephemeral ports all in use
    /// or in TIME_WAIT): stickyscope's own limit, not the stack's.
    LocalPortsExhausted,
}

/// Why an exchange failed, in the words the wire gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its class.
    pub kind: FailureKind,
    /// The exact reason: the replica's error message, the gateway's text, or the
    /// transport error.
    pub reason: String,
}

/// One record of the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireRecord {
    /// Sequence number within this user's tap, from 1.
    pub seq: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The chat user (`agent`, `visitor`, …).
    pub user: String,
    /// Transport.
    pub transport: Transport,
    /// HTTP exchange or WebSocket message.
    pub kind: WireKind,
    /// Engine.IO session id: from the query, or from the open packet of a handshake.
    pub sid: Option<String>,
    /// The Engine.IO protocol version spoken: what the client asked for (`EIO=`), or 3 when
    /// the server answered with v3's framing whatever was asked.
    #[serde(default)]
    pub engineio: Option<u8>,
    /// The replica that handled it, when something named it (see `replica_source`).
    pub replica: Option<String>,
    /// What named the replica: `X-Replica`, a header the user named, or the sticky cookie
    /// mapped to a server of the balancer; absent when nothing did.
    #[serde(default)]
    pub replica_source: Option<Source>,
    /// Why nothing named the server that answered, and what would (absent when something
    /// named it, or when the answer came from the balancer itself or from nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unnamed: Option<String>,
    /// Local address of that replica (`X-Replica-Addr`).
    pub replica_addr: Option<String>,
    /// Request to response, in microseconds (HTTP only).
    pub latency_us: Option<u64>,
    /// How long the server says it held this long poll before it had a packet to send
    /// (`Server-Timing: held`), in microseconds; absent when it does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_us: Option<u64>,
    /// Bytes sent by the client (body or message payload).
    pub bytes_up: u64,
    /// Bytes sent by the server (body or message payload).
    pub bytes_down: u64,
    /// Engine.IO packets the client sent.
    pub packets_up: Vec<EnginePacket>,
    /// Engine.IO packets the server sent.
    pub packets_down: Vec<EnginePacket>,
    /// Raw client payload (text, cut to 64 KiB).
    pub raw_up: String,
    /// Raw server payload (text, cut to 64 KiB).
    pub raw_down: String,
    /// Set when the exchange failed.
    pub failure: Option<Failure>,
    /// WebSocket-level notes (close code and reason, control frames).
    pub note: Option<String>,
}

/// Milliseconds since the Unix epoch by this machine's clock: how records are stamped
/// (`at_ms`), so that what is compared with a record's time reads the same clock.
pub fn now_ms() -> u64 {
    stickyscope_contract::chat::now_millis()
}

impl WireRecord {
    /// A record of `user`'s exchange or message that began at `at_ms` (ms since the Unix
    /// epoch), not yet numbered, with nothing seen on it yet: no session, no replica, no
    /// bytes, no packets, no failure. Set what was seen with struct update syntax
    /// (`WireRecord { sid, ..WireRecord::new(…) }`) or field by field.
    pub fn new(user: impl Into<String>, at_ms: u64, transport: Transport, kind: WireKind) -> Self {
        WireRecord {
            seq: 0,
            at_ms,
            user: user.into(),
            transport,
            kind,
            sid: None,
            engineio: None,
            replica: None,
            replica_source: None,
            unnamed: None,
            replica_addr: None,
            latency_us: None,
            held_us: None,
            bytes_up: 0,
            bytes_down: 0,
            packets_up: Vec::new(),
            packets_down: Vec::new(),
            raw_up: String::new(),
            raw_down: String::new(),
            failure: None,
            note: None,
        }
    }

    /// What its time was spent on (HTTP exchanges that were answered).
    pub fn timing(&self) -> Option<Timing> {
        let latency = self.latency_us?;
        Some(Timing::of(self.request_kind()?, latency, self.held_us))
    }

    /// The HTTP request kind, for HTTP exchanges.
    pub fn request_kind(&self) -> Option<RequestKind> {
        match self.kind {
            WireKind::Http { request, .. } => Some(request),
            WireKind::Ws { .. } => None,
        }
    }

    /// Every packet, in both directions.
    pub fn packets(&self) -> impl Iterator<Item = &EnginePacket> {
        self.packets_up.iter().chain(&self.packets_down)
    }

    /// Whether this record is only a session keeping itself alive: a successful poll or
    /// WebSocket message carrying nothing but heartbeats (ping, pong, noop). Anything else
    /// (a handshake, a message, an upgrade, a refusal, a close) is news.
    pub fn is_heartbeat_only(&self) -> bool {
        let quiet_exchange = match &self.kind {
            WireKind::Http {
                request, status, ..
            } => {
                matches!(request, RequestKind::PollGet | RequestKind::PollPost)
                    && *status == Some(200)
            }
            WireKind::Ws { .. } => true,
        };
        let mut packets = self.packets().peekable();
        quiet_exchange
            && self.failure.is_none()
            && self.note.is_none()
            && packets.peek().is_some()
            && packets.all(|p| {
                matches!(
                    p,
                    EnginePacket::Ping { probe: false }
                        | EnginePacket::Pong { probe: false }
                        | EnginePacket::Noop
                )
            })
    }
}
