//! When the window may rest. After a spell with nothing on the wire but heartbeats and no
//! hand on the mouse or keyboard, heartbeats are counted instead of animated and the window
//! repaints only to refresh those counts: an idle window then costs next to no CPU. Any
//! news (a message, a handshake, a refusal, a session changing state) or any input wakes it.
//! Times are real seconds (resting has nothing to do with the presentation clock).

/// Seconds of nothing but heartbeats before the window rests.
pub const REST_AFTER_SECS: f64 = 15.0;
/// While resting, heartbeats are folded in and drawn at most this often.
pub const REST_REFRESH_SECS: f64 = 10.0;

/// Tracks the last news.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rest {
    last_news: Option<f64>,
}

impl Rest {
    /// Something worth watching happened at `now`.
    pub fn news(&mut self, now: f64) {
        self.last_news = Some(self.last_news.map_or(now, |t| t.max(now)));
    }

    /// Whether the window rests at `now`. It never rests before the first news.
    pub fn resting(&self, now: f64) -> bool {
        self.last_news
            .is_some_and(|last| now - last >= REST_AFTER_SECS)
    }

    /// Seconds until it rests, while awake.
    pub fn rests_in(&self, now: f64) -> Option<f64> {
        let last = self.last_news?;
        let left = last + REST_AFTER_SECS - now;
        (left > 0.0).then_some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flights::tests::sample_wire;
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::protocol::decode_payload;
    use stickyscope_vocab::record::{Direction, WireKind};

    #[test]
    fn it_rests_after_a_quiet_spell_and_news_wakes_it() {
        let mut rest = Rest::default();
        assert!(!rest.resting(1000.0), "never before the first news");
        rest.news(10.0);
        assert!(!rest.resting(10.0 + REST_AFTER_SECS - 0.1));
        assert_eq!(rest.rests_in(10.0), Some(REST_AFTER_SECS));
        assert!(rest.resting(10.0 + REST_AFTER_SECS));
        assert_eq!(rest.rests_in(10.0 + REST_AFTER_SECS), None);
        rest.news(40.0);
        assert!(!rest.resting(41.0));
        rest.news(20.0);
        assert!(
            !rest.resting(41.0),
            "older news does not move the clock back"
        );
    }

    #[test]
    fn only_successful_heartbeat_traffic_lets_it_rest() {
        // A poll answered with a ping, a post carrying a pong, a websocket ping.
        let ping_poll = sample_wire();
        assert!(ping_poll.is_heartbeat_only());
        let mut pong_post = sample_wire();
        pong_post.kind = WireKind::Http {
            request: RequestKind::PollPost,
            method: "POST".into(),
            status: Some(200),
        };
        pong_post.packets_up = decode_payload(b"3");
        pong_post.packets_down.clear();
        assert!(pong_post.is_heartbeat_only());
        let mut ws_ping = sample_wire();
        ws_ping.kind = WireKind::Ws {
            direction: Direction::Down,
        };
        assert!(ws_ping.is_heartbeat_only());

        // News: a chat message, a refusal, the upgrade probe, a handshake, a close note.
        let mut chat = sample_wire();
        chat.packets_down = decode_payload(b"42[\"chat\",{}]");
        assert!(!chat.is_heartbeat_only());
        let mut refused = sample_wire();
        refused.kind = WireKind::Http {
            request: RequestKind::PollGet,
            method: "GET".into(),
            status: Some(400),
        };
        assert!(!refused.is_heartbeat_only());
        let mut probe = ws_ping.clone();
        probe.packets_down = decode_payload(b"2probe");
        assert!(!probe.is_heartbeat_only());
        let mut handshake = sample_wire();
        handshake.kind = WireKind::Http {
            request: RequestKind::HandshakePolling,
            method: "GET".into(),
            status: Some(200),
        };
        assert!(!handshake.is_heartbeat_only());
        let mut closed = ws_ping.clone();
        closed.packets_down.clear();
        closed.note = Some("closed".into());
        assert!(!closed.is_heartbeat_only());
        let mut empty = sample_wire();
        empty.packets_down.clear();
        assert!(
            !empty.is_heartbeat_only(),
            "nothing carried is not a heartbeat"
        );
    }
}
