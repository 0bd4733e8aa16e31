//! How an Engine.IO HTTP request is classified: from its method and query string alone, so
//! that any observer (a replica, or a proxy in front of it) applying the same function counts
//! the same things.

use serde::{Deserialize, Serialize};

/// The kind of an Engine.IO HTTP request, decided from its method and query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `GET ?transport=polling` without `sid`: opens a long-polling session.
    HandshakePolling,
    /// `GET ?transport=websocket` without `sid`: opens a WebSocket-only session.
    HandshakeWebsocket,
    /// `GET ?transport=polling&sid=…`: a long poll for server packets.
    PollGet,
    /// `POST ?transport=polling&sid=…`: client packets sent over polling.
    PollPost,
    /// `GET ?transport=websocket&sid=…`: upgrade of a polling session to WebSocket.
    Upgrade,
    /// Anything else under the Engine.IO path (unknown transport, bad method, …).
    Other,
}

impl RequestKind {
    /// All kinds, in display order.
    pub const ALL: [RequestKind; 6] = [
        RequestKind::HandshakePolling,
        RequestKind::HandshakeWebsocket,
        RequestKind::PollGet,
        RequestKind::PollPost,
        RequestKind::Upgrade,
        RequestKind::Other,
    ];

    /// Classifies an Engine.IO request from its HTTP method and raw query string.
    pub fn classify(method: &str, query: Option<&str>) -> RequestKind {
        let params = EngineQuery::parse(query.unwrap_or(""));
        match (params.transport, params.sid.is_some(), method) {
            (Some("polling"), false, "GET") => RequestKind::HandshakePolling,
            (Some("websocket"), false, "GET") => RequestKind::HandshakeWebsocket,
            (Some("polling"), true, "GET") => RequestKind::PollGet,
            (Some("polling"), true, "POST") => RequestKind::PollPost,
            (Some("websocket"), true, "GET") => RequestKind::Upgrade,
            _ => RequestKind::Other,
        }
    }

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::HandshakePolling => "handshake_polling",
            RequestKind::HandshakeWebsocket => "handshake_websocket",
            RequestKind::PollGet => "poll_get",
            RequestKind::PollPost => "poll_post",
            RequestKind::Upgrade => "upgrade",
            RequestKind::Other => "other",
        }
    }

    /// Position in [`RequestKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The Engine.IO parameters of a query string (`transport`, `sid`), borrowed from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineQuery<'a> {
    /// `transport=` value, if present.
    pub transport: Option<&'a str>,
    /// `sid=` value, if present and non-empty.
    pub sid: Option<&'a str>,
    /// `EIO=` value (the Engine.IO protocol version the client speaks), if present.
    pub eio: Option<&'a str>,
}

impl<'a> EngineQuery<'a> {
    /// Parses the parameters Engine.IO routing depends on; anything else is ignored.
    ///
    /// Values are taken verbatim: Engine.IO session ids and transport names never need
    /// percent-decoding, and a value that would is not a valid one anyway.
    pub fn parse(query: &'a str) -> Self {
        let mut out = EngineQuery::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "transport" => out.transport = Some(value),
                "sid" if !value.is_empty() => out.sid = Some(value),
                "EIO" => out.eio = Some(value),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_engine_io_request_shape() {
        use RequestKind::*;
        let cases = [
            ("GET", "EIO=4&transport=polling&t=N8", HandshakePolling),
            ("GET", "EIO=4&transport=websocket", HandshakeWebsocket),
            ("GET", "EIO=4&transport=polling&sid=abc", PollGet),
            ("POST", "EIO=4&transport=polling&sid=abc", PollPost),
            ("GET", "EIO=4&transport=websocket&sid=abc", Upgrade),
            ("GET", "EIO=4&transport=carrier-pigeon", Other),
            ("PUT", "EIO=4&transport=polling&sid=abc", Other),
            ("POST", "EIO=4&transport=polling", Other),
            ("GET", "", Other),
            ("GET", "transport=polling&sid=", HandshakePolling),
        ];
        for (method, query, want) in cases {
            assert_eq!(
                RequestKind::classify(method, Some(query)),
                want,
                "{method} ?{query}"
            );
        }
        assert_eq!(RequestKind::classify("GET", None), Other);
    }
}
