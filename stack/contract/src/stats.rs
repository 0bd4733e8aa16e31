//! The counters a replica serves on `/stats`, as JSON: what the replicas write and the app,
//! the probe and the tests read to hold their own observations against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::RequestKind;

/// The JSON document served on `/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The replica id (`X-Replica`).
    pub replica: String,
    /// Engine.IO requests per kind, refused ones included.
    pub requests: BTreeMap<RequestKind, u64>,
    /// Refused requests per reason.
    pub rejected: BTreeMap<String, u64>,
    /// Socket.IO sockets on the default namespace.
    pub sockets: SocketCounts,
    /// Chat messages handled.
    pub chat: ChatCounts,
    /// How often this replica was restarted (embedded stack only; 0 for a process).
    pub restarts: u64,
}

impl StatsSnapshot {
    /// Requests of one kind.
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// All Engine.IO requests this replica answered.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Refused requests with exactly this reason.
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected.get(reason).copied().unwrap_or(0)
    }
}

/// Socket counts in [`StatsSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketCounts {
    /// Connected right now.
    pub connected: u64,
    /// Ever connected.
    pub total: u64,
}

/// Chat counts in [`StatsSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCounts {
    /// Distinct messages accepted and broadcast.
    pub accepted: u64,
    /// Re-sends of messages already accepted here (broadcast again, not counted as new).
    #[serde(default)]
    pub repeats: u64,
    /// Messages refused with an error ack.
    pub refused: u64,
}
