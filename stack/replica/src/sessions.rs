//! The Engine.IO session ids this replica has issued and not yet seen close.
//!
//! engineioxide answers a WebSocket upgrade for a session it does not hold with `101` and
//! then drops the connection, so the refusal never shows as an HTTP status. Knowing which
//! ids this replica handed out lets it count those refusals like any other rejection.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Most ids remembered; the oldest are forgotten first. Sessions that never join a
/// namespace are not reported closed, so the set must be bounded.
const CAPACITY: usize = 65_536;

/// A bounded set of session ids.
#[derive(Debug, Default)]
pub struct KnownSessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl KnownSessions {
    /// Remembers an id this replica issued.
    pub fn insert(&self, sid: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.ids.insert(sid.to_owned()) {
            inner.order.push_back(sid.to_owned());
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.ids.remove(&old);
            }
        }
    }

    /// Forgets a closed session.
    pub fn remove(&self, sid: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.ids.remove(sid) {
            inner.order.retain(|id| id != sid);
        }
    }

    /// Whether this replica issued `sid` and still holds it.
    pub fn contains(&self, sid: &str) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.ids.contains(sid)
    }
}

/// Extracts the `sid` from an Engine.IO open packet body such as `0{"sid":"…",…}`.
pub fn sid_from_open_packet(body: &[u8]) -> Option<String> {
    let json = body.strip_prefix(b"0")?;
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    value.get("sid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let known = KnownSessions::default();
        known.insert("a");
        known.insert("a");
        assert!(known.contains("a"));
        known.remove("a");
        assert!(!known.contains("a"));
    }

    #[test]
    fn stays_bounded() {
        let known = KnownSessions::default();
        for i in 0..CAPACITY + 10 {
            known.insert(&i.to_string());
        }
        assert!(!known.contains("0"));
        assert!(known.contains(&(CAPACITY + 9).to_string()));
    }

    #[test]
    fn reads_the_sid_of_an_open_packet() {
        let body = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            sid_from_open_packet(body).as_deref(),
            Some("lv_VI97HAXpY6yYWAAAC")
        );
        assert_eq!(sid_from_open_packet(b"garbage"), None);
        assert_eq!(sid_from_open_packet(b"0{\"sid\":3}"), None);
        assert_eq!(sid_from_open_packet(b""), None);
    }
}
