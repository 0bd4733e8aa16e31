//! The one event stream from the network side to the UI, and the one command channel back:
//! the types both sides share, below both (the sessions, the conductor, the probe and the view
//! model all use them). Pure data, no I/O, no UI types; the stream's sending end lives with
//! the network side (`stickyscope::event_sink`).

use serde::{Deserialize, Serialize};
use stickyscope_contract::chat::ChatBroadcast;
use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_contract::stats::StatsSnapshot;

use crate::record::WireRecord;
use crate::stack::Adapter;
use crate::topology::Topology;

/// Something that happened on the network side.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A record of the wire.
    Wire(std::sync::Arc<WireRecord>),
    /// A user's session changed state.
    Session {
        /// The user.
        user: String,
        /// The new state.
        state: SessionState,
    },
    /// A user's stickiness is now `on`: the session carries it (the balancer's cookie sent
    /// or withheld) from its next request. Sent at start and after each change.
    Sticky {
        /// The user.
        user: String,
        /// On or off.
        on: bool,
    },
    /// A user's transport is now `transport` (the session reconnects with it). Sent at start
    /// and after each change.
    Transport {
        /// The user.
        user: String,
        /// The transport.
        transport: TransportChoice,
    },
    /// A message a user sent changed status.
    Outbox(OutboxUpdate),
    /// A user received a chat message (shown once per id).
    Received(Received),
    /// The topology changed.
    Topology(Topology),
    /// Something worth a banner: what failed and what the app does about it.
    Notice(Notice),
    /// How the crowd of background sessions is spread.
    Crowd(CrowdSummary),
    /// Every replica's `/stats`, by id, as asked for with [`Command::FetchStats`] (replicas
    /// that did not answer are left out).
    Stats(std::collections::BTreeMap<String, StatsSnapshot>),
    /// How the checklist asked for with [`Command::RunDoctor`] goes.
    Doctor(crate::doctor::DoctorUpdate),
    /// A replica operation (add, stop, kill, restart, health, heartbeat, adapter) is done,
    /// in the order they were asked for, or a pin was given; `error` says why it failed.
    StackDone {
        /// Which operation.
        op: StackOperation,
        /// Why it failed, if it did.
        error: Option<String>,
    },
}

/// A replica operation, as [`Event::StackDone`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackOperation {
    /// A replica added.
    Add,
    /// An action on one replica.
    Replica(String, ReplicaAction),
    /// Heartbeat or adapter changed (every replica restarted).
    Configure,
    /// A user pinned to a replica (its cookie found and given; the session restarts).
    Pin(String),
}

/// The largest crowd (background sessions) a window runs.
pub const MAX_CROWD: usize = 10_000;

/// The crowd at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrowdSummary {
    /// Background sessions running.
    pub size: usize,
    /// Connected sessions per replica.
    pub per_replica: std::collections::BTreeMap<String, usize>,
    /// Sessions not connected right now.
    pub connecting: usize,
    /// Failures seen on their wire so far.
    pub failures: u64,
    /// The address each replica answered from (its `X-Replica-Addr`), as the crowd's wire
    /// showed it: how a replica a balancer's API lists only by URL gets its name, when no
    /// chat user has met it.
    #[serde(default)]
    pub addresses: std::collections::BTreeMap<String, String>,
    /// The gateway's rate limit, once the crowd has run into it: how many of `failures` it
    /// refused, and the rate of new sessions that tripped it.
    #[serde(default)]
    pub rate_limited: Option<CrowdRateLimit>,
    /// New sessions a second while the crowd grows slower than it would (the gateway's
    /// rate limit refused some); `None` once it has its size, or while it grows at full pace.
    #[serde(default)]
    pub held_back_to_per_s: Option<u32>,
}

/// A gateway's rate limit as a crowd ran into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrowdRateLimit {
    /// The status it answered with: 429, or a 503 that was not the balancer's "no
    /// available server" (nginx's `limit_req` answers 503 unless told otherwise).
    pub status: u16,
    /// `true` for a 429, which says it is a rate limit; `false` for a 503, which may be one.
    pub certain: bool,
    /// Refusals like it so far.
    pub refusals: u64,
    /// Sessions opened a second in the second before the first refusal, rounded.
    pub openings_per_s: u32,
}

/// Status of a message a user sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for a session.
    Queued,
    /// Emitted, attempt N, no ack yet.
    Sent {
        /// Attempt number, from 1.
        attempt: u32,
        /// When it will be given up if nothing more arrives (wall clock, ms since the
        /// Unix epoch), for a countdown.
        gives_up_at_ms: Option<u64>,
    },
    /// A replica accepted it; the other user's receipt is awaited.
    Acked {
        /// That replica.
        replica: String,
        /// When it will be given up if no receipt arrives (wall clock, ms since the Unix
        /// epoch), for a countdown.
        gives_up_at_ms: Option<u64>,
    },
    /// The other user received it.
    Delivered {
        /// The replica that relayed the receipt.
        replica: String,
    },
    /// A replica refused it; it will not be retried.
    Refused {
        /// The replica's reason.
        error: String,
    },
    /// Given up after its tries: no receipt (or no ack) came. Later messages go on.
    NotDelivered {
        /// Why, as far as the wire tells.
        reason: String,
    },
    /// The seed's chat: the server sent it back to everyone, the sender included — all that
    /// chat lets anyone know (no acks, no receipts).
    Echoed {
        /// The replica that sent it back, when something named it.
        replica: Option<String>,
    },
}

/// A change of one sent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxUpdate {
    /// The sender.
    pub user: String,
    /// Message id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// New status.
    pub status: OutboxStatus,
}

/// A message as one user received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The receiving user.
    pub user: String,
    /// The message (in the seed's chat, which has no ids, its id is made up here and its
    /// `replica` empty).
    pub message: ChatBroadcast,
    /// The replica that accepted it, when the chat says (stickyscope's does, the seed's
    /// does not).
    pub accepted_by: Option<String>,
    /// The replica that handed it to this user.
    pub delivered_by: Option<String>,
}

/// Which Engine.IO protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum EngineIoChoice {
    /// v4, switching to v3 when the server answers in v3 (Socket.IO 2 servers).
    #[default]
    Auto,
    /// v3 only (Socket.IO 2 servers).
    #[cfg_attr(feature = "clap", value(name = "3"))]
    V3,
    /// v4 only (Socket.IO 3 and later).
    #[cfg_attr(feature = "clap", value(name = "4"))]
    V4,
}

/// Which chat the two users speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ChatDialect {
    /// stickyscope's: ids, acks from the replica that accepted, receipts from the other
    /// user, re-sends until a receipt.
    #[default]
    Stickyscope,
    /// The seed's: the agent emits `chat_message`, the visitor `chat_user`, with the text;
    /// the server emits `message_from_kaushik` / `message_from_user` to everyone. No acks:
    /// a message is sent once, and its echo back to the sender is all that can be known.
    Seed,
    /// None: the sessions only keep their heartbeats.
    None,
}

impl ChatDialect {
    /// Every dialect, in display order.
    pub const ALL: [ChatDialect; 3] = [
        ChatDialect::Stickyscope,
        ChatDialect::Seed,
        ChatDialect::None,
    ];

    /// Its name.
    pub fn label(self) -> &'static str {
        match self {
            ChatDialect::Stickyscope => "stickyscope",
            ChatDialect::Seed => "seed",
            ChatDialect::None => "none",
        }
    }
}

/// How serious a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeLevel {
    /// Information.
    Info,
    /// Something failed; the app is coping.
    Warning,
    /// Something failed and needs the user.
    Error,
}

/// A banner-worthy message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Severity.
    pub level: NoticeLevel,
    /// What failed and what the app is doing about it.
    pub text: String,
}

/// A replica operation (stacks stickyscope runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaAction {
    /// Stop gracefully.
    Stop,
    /// Kill abruptly.
    Kill,
    /// Start again.
    Restart,
    /// Make `/healthz` fail.
    Unhealthy,
    /// Make `/healthz` pass.
    Healthy,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a chat message as `user`.
    Send {
        /// Sender.
        user: String,
        /// Text.
        text: String,
    },
    /// Stickiness on or off, for one user or (None) both.
    SetSticky {
        /// The user, or all.
        user: Option<String>,
        /// On or off.
        on: bool,
    },
    /// Transport, for one user or (None) both; reconnects.
    SetTransport {
        /// The user, or all.
        user: Option<String>,
        /// The transport.
        transport: TransportChoice,
    },
    /// Which chat both users speak.
    SetChat {
        /// The dialect.
        dialect: ChatDialect,
    },
    /// Drop the session and connect again.
    Reconnect {
        /// The user.
        user: String,
    },
    /// Run this many background sessions (0..=500).
    SetCrowd {
        /// Crowd size.
        size: usize,
    },
    /// Add a replica (stacks stickyscope runs).
    AddReplica,
    /// Operate on a replica (stacks stickyscope runs).
    Replica {
        /// Replica id.
        id: String,
        /// What to do.
        action: ReplicaAction,
    },
    /// Change the replicas' heartbeat and/or adapter (stacks stickyscope runs; restarts them).
    ConfigureStack {
        /// New heartbeat, if any.
        heartbeat: Option<Heartbeat>,
        /// New adapter, if any.
        adapter: Option<Adapter>,
    },
    /// Send a user to a replica: the sticky cookie the balancer gives it (Traefik's value
    /// for that server), stickiness on, and a new session. `replica` is an id of a stack
    /// stickyscope started, or a server's address (`host:port`) at any Traefik.
    Pin {
        /// The user.
        user: String,
        /// The replica.
        replica: String,
    },
    /// Read every replica's `/stats` (stacks stickyscope started); answered with
    /// [`Event::Stats`].
    FetchStats,
    /// Run `stickyscope doctor`'s checklist on the stack; answered with
    /// [`Event::Doctor`] as each check is known.
    RunDoctor {
        /// The page's origin, for the CORS check (none: skipped).
        origin: Option<String>,
    },
    /// Stop everything.
    Shutdown,
}

/// The transport a user's client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum TransportChoice {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only.
    Websocket,
    /// Long-polling first, then upgrade to WebSocket.
    Upgrade,
}

impl TransportChoice {
    /// All choices, in display order.
    pub const ALL: [TransportChoice; 3] = [
        TransportChoice::Polling,
        TransportChoice::Websocket,
        TransportChoice::Upgrade,
    ];

    /// Name for people.
    pub fn label(self) -> &'static str {
        match self {
            TransportChoice::Polling => "polling",
            TransportChoice::Websocket => "websocket",
            TransportChoice::Upgrade => "polling, then websocket",
        }
    }
}

/// A session's state, derived from the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    /// First connection attempt under way.
    Connecting,
    /// Connected to the default namespace (the Engine.IO handshake and the Socket.IO
    /// CONNECT crossed the wire), whatever the server.
    Connected {
        /// The replica that accepted the Socket.IO connect, when something named it.
        replica: Option<String>,
        /// Engine.IO session id.
        sid: String,
        /// Whether the session now runs over WebSocket.
        websocket: bool,
    },
    /// Lost or never formed; trying again.
    Reconnecting {
        /// Why the last session or attempt failed, as the wire said.
        reason: String,
        /// Consecutive failed attempts.
        attempt: u32,
    },
    /// Given up until the user asks again.
    Failed {
        /// Why.
        reason: String,
    },
}

impl SessionState {
    /// The replica, when connected.
    pub fn replica(&self) -> Option<&str> {
        match self {
            SessionState::Connected { replica, .. } => replica.as_deref(),
            _ => None,
        }
    }
}
