//! Chat sessions: one per user, a rust_socketio client talking through that user's wire tap,
//! supervised from what the tap sees rather than from rust_socketio's error strings.
//!
//! - [`guard`]: the storm guard and backoff between connection attempts (pure).
//! - [`outbox`]: messages a user sent, retried until the other user's receipt (pure).
//! - [`tracker`]: what the wire says about the session and its chat traffic (pure).
//! - [`driver`]: the supervisor that runs it all (network).

pub mod driver;
pub mod guard;
pub mod outbox;
pub mod tracker;

use serde::{Deserialize, Serialize};

pub use driver::{ChatSession, SessionConfig};

/// The transport a user's client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Connected to the default namespace on `replica`.
    Connected {
        /// The replica that accepted the Socket.IO connect.
        replica: String,
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
            SessionState::Connected { replica, .. } => Some(replica),
            _ => None,
        }
    }
}
