//! Engine.IO protocol v4: packets and HTTP long-polling payloads.
//!
//! A packet is a type digit (`0` open … `6` noop) followed by data. A polling payload holds
//! packets separated by the record separator `\x1e`; a binary packet in a polling payload is
//! `b` followed by base64. Over WebSocket each text frame is one packet and each binary frame
//! is one binary packet, without prefix.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::socketio::{self, SocketPacket};

/// The record separator between packets of a polling payload.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// One decoded Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EnginePacket {
    /// `0{…}`: the handshake answer.
    Open(OpenInfo),
    /// `1`: close the session.
    Close,
    /// `2` (or `2probe` during an upgrade).
    Ping {
        /// Whether this is the upgrade probe.
        probe: bool,
    },
    /// `3` (or `3probe`).
    Pong {
        /// Whether this is the upgrade probe.
        probe: bool,
    },
    /// `4…`: a message, normally a Socket.IO packet.
    Message {
        /// The Socket.IO packet inside, when it decodes as one.
        socket: Option<SocketPacket>,
    },
    /// `5`: the upgrade is complete.
    Upgrade,
    /// `6`: nothing (used to end a pending poll during an upgrade).
    Noop,
    /// Binary data (a Socket.IO attachment, usually).
    Binary {
        /// Its length in bytes.
        len: usize,
    },
    /// Something that is not an Engine.IO packet.
    Invalid {
        /// What is wrong with it.
        reason: String,
    },
}

/// The handshake data of an open packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    /// Session id.
    pub sid: String,
    /// Transports the session may upgrade to.
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between server pings.
    #[serde(default)]
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    #[serde(default)]
    pub ping_timeout: u64,
    /// Largest payload the server accepts.
    #[serde(default)]
    pub max_payload: u64,
}

impl EnginePacket {
    /// A short lowercase name for display and counting: `handshake`, `ping`, `pong`,
    /// `message`, `upgrade`, …
    pub fn kind_name(&self) -> &'static str {
        match self {
            EnginePacket::Open(_) => "handshake",
            EnginePacket::Close => "close",
            EnginePacket::Ping { probe: false } => "ping",
            EnginePacket::Ping { probe: true } => "ping probe",
            EnginePacket::Pong { probe: false } => "pong",
            EnginePacket::Pong { probe: true } => "pong probe",
            EnginePacket::Message { .. } => "message",
            EnginePacket::Upgrade => "upgrade",
            EnginePacket::Noop => "noop",
            EnginePacket::Binary { .. } => "binary",
            EnginePacket::Invalid { .. } => "invalid",
        }
    }
}

/// Decodes one text packet (a WebSocket text frame, or one record of a polling payload).
pub fn decode_text_packet(text: &str) -> EnginePacket {
    let mut chars = text.chars();
    let Some(kind) = chars.next() else {
        return invalid("empty packet");
    };
    let data = chars.as_str();
    match kind {
        '0' => match serde_json::from_str::<OpenInfo>(data) {
            Ok(open) => EnginePacket::Open(open),
            Err(e) => invalid(format!("open packet with bad handshake data: {e}")),
        },
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping {
            probe: data == "probe",
        },
        '3' => EnginePacket::Pong {
            probe: data == "probe",
        },
        '4' => EnginePacket::Message {
            socket: socketio::decode(data).ok(),
        },
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        'b' => match base64::engine::general_purpose::STANDARD.decode(data) {
            Ok(bytes) => EnginePacket::Binary { len: bytes.len() },
            Err(e) => invalid(format!("binary packet with bad base64: {e}")),
        },
        other => invalid(format!("unknown packet type {other:?}")),
    }
}

/// Decodes an HTTP long-polling payload into its packets. Bytes that are not UTF-8 give
/// one invalid packet; an empty body gives none.
pub fn decode_payload(body: &[u8]) -> Vec<EnginePacket> {
    let Ok(text) = std::str::from_utf8(body) else {
        return vec![invalid("payload is not UTF-8")];
    };
    if text.is_empty() {
        return Vec::new();
    }
    text.split(RECORD_SEPARATOR)
        .map(decode_text_packet)
        .collect()
}

/// A packet that could not be decoded, and why.
pub(super) fn invalid(reason: impl Into<String>) -> EnginePacket {
    EnginePacket::Invalid {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::SocketKind;

    // Examples from the Engine.IO v4 protocol specification.
    #[test]
    fn decodes_the_specification_examples() {
        let open = decode_text_packet(
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        );
        let EnginePacket::Open(info) = open else {
            panic!("{open:?}")
        };
        assert_eq!(info.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!((info.ping_interval, info.ping_timeout), (25000, 20000));
        assert_eq!(info.upgrades, ["websocket"]);

        assert_eq!(decode_text_packet("2"), EnginePacket::Ping { probe: false });
        assert_eq!(
            decode_text_packet("3probe"),
            EnginePacket::Pong { probe: true }
        );
        assert_eq!(decode_text_packet("5"), EnginePacket::Upgrade);
        assert_eq!(decode_text_packet("6"), EnginePacket::Noop);
        assert_eq!(decode_text_packet("1"), EnginePacket::Close);
    }

    #[test]
    fn splits_polling_payloads_on_the_record_separator() {
        let packets = decode_payload("4hello\u{1e}2\u{1e}bAQIDBA==".as_bytes());
        assert_eq!(packets.len(), 3);
        assert!(matches!(packets[0], EnginePacket::Message { socket: None }));
        assert_eq!(packets[1], EnginePacket::Ping { probe: false });
        assert_eq!(packets[2], EnginePacket::Binary { len: 4 });
        assert!(decode_payload(b"").is_empty());
        assert!(matches!(
            decode_payload(b"\xff")[0],
            EnginePacket::Invalid { .. }
        ));
    }

    #[test]
    fn messages_carry_their_socket_io_packet() {
        let EnginePacket::Message { socket: Some(p) } =
            decode_text_packet(r#"42["chat",{"id":"1"}]"#)
        else {
            panic!()
        };
        assert_eq!(p.kind, SocketKind::Event);
        assert_eq!(p.event.as_deref(), Some("chat"));
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        for bad in ["", "9", "0{", "0[]", "bé", "x"] {
            assert!(
                matches!(decode_text_packet(bad), EnginePacket::Invalid { .. }),
                "{bad:?}"
            );
        }
    }
}
