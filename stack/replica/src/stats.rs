//! Ground-truth counters of what one replica saw on the wire.
//!
//! Every Engine.IO request is classified once, by [`RequestKind::classify`], from its method
//! and query string alone, so any observer (this replica, or a proxy in front of it) that
//! applies the same function counts the same things. The counters are served as JSON on
//! `/stats`; tests and the app compare their own observations against them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use stickyscope_contract::stats::{ChatCounts, SocketCounts, StatsSnapshot};
use stickyscope_contract::RequestKind;

/// Live counters of one replica. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Stats {
    requests: [AtomicU64; RequestKind::ALL.len()],
    rejected: Mutex<BTreeMap<String, u64>>,
    sockets_connected: AtomicU64,
    sockets_total: AtomicU64,
    chat_accepted: AtomicU64,
    chat_repeats: AtomicU64,
    chat_refused: AtomicU64,
    chat_ids: Mutex<SeenIds>,
    restarts: AtomicU64,
}

impl Stats {
    /// Counts one request of `kind`.
    pub fn record_request(&self, kind: RequestKind) {
        self.requests[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one refused request with its reason (the Engine.IO error message, or a
    /// description such as [`stickyscope_contract::refusal::UPGRADE_UNKNOWN_SESSION`]).
    pub fn record_rejection(&self, reason: &str) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *rejected.entry(reason.to_owned()).or_default() += 1;
    }

    /// A Socket.IO socket joined the default namespace.
    pub fn socket_connected(&self) {
        self.sockets_connected.fetch_add(1, Ordering::Relaxed);
        self.sockets_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A Socket.IO socket left.
    pub fn socket_disconnected(&self) {
        // Saturating: a kill may race with late disconnect callbacks of the old instance.
        let _ = self
            .sockets_connected
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Forgets live sockets (the instance holding them is gone).
    pub fn sockets_reset(&self) {
        self.sockets_connected.store(0, Ordering::Relaxed);
    }

    /// Counts a chat message this replica accepted: a new one, or a client's re-send of
    /// one it accepted before (same id), which is not another chat.
    pub fn record_chat_accepted(&self, id: &str) {
        let first = self
            .chat_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        let counter = if first {
            &self.chat_accepted
        } else {
            &self.chat_repeats
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a chat message refused with an error ack (or whose broadcast failed).
    pub fn record_chat_refused(&self) {
        self.chat_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a restart of the replica behind these counters.
    pub fn record_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy for serving as JSON.
    pub fn snapshot(&self, replica: &str) -> StatsSnapshot {
        let requests = RequestKind::ALL
            .iter()
            .map(|kind| (*kind, self.requests[kind.index()].load(Ordering::Relaxed)))
            .collect();
        StatsSnapshot {
            replica: replica.to_owned(),
            requests,
            rejected: self
                .rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            sockets: SocketCounts {
                connected: self.sockets_connected.load(Ordering::Relaxed),
                total: self.sockets_total.load(Ordering::Relaxed),
            },
            chat: ChatCounts {
                accepted: self.chat_accepted.load(Ordering::Relaxed),
                repeats: self.chat_repeats.load(Ordering::Relaxed),
                refused: self.chat_refused.load(Ordering::Relaxed),
            },
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// Most chat ids remembered per replica for telling re-sends from new messages.
const CHAT_ID_MEMORY: usize = 16_384;

/// A bounded set of message ids, oldest forgotten first.
#[derive(Debug, Default)]
struct SeenIds {
    ids: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl SeenIds {
    /// Remembers `id`; true when it is new.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > CHAT_ID_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_through_json() {
        let stats = Stats::default();
        stats.record_request(RequestKind::PollGet);
        stats.record_request(RequestKind::PollGet);
        stats.record_rejection("Session ID unknown");
        stats.socket_connected();
        stats.socket_disconnected();
        stats.socket_disconnected();
        stats.record_chat_accepted("m1");
        stats.record_chat_accepted("m1");
        stats.record_chat_accepted("m2");
        let snap = stats.snapshot("r1");
        assert_eq!(
            (snap.chat.accepted, snap.chat.repeats),
            (2, 1),
            "a re-send is no new chat"
        );
        assert_eq!(snap.requests_of(RequestKind::PollGet), 2);
        assert_eq!(snap.rejected_for("Session ID unknown"), 1);
        assert_eq!(
            snap.sockets,
            SocketCounts {
                connected: 0,
                total: 1
            }
        );
        let json = serde_json::to_string(&snap).unwrap();
        assert!(json.contains("\"poll_get\":2"), "{json}");
        let back: StatsSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }
}
