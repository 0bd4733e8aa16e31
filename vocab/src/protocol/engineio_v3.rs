//! Engine.IO protocol v3 (Socket.IO 2.x servers, the seed's among them): what differs from
//! v4.
//!
//! Packets are the same (`0` open … `6` noop), but the heartbeat runs the other way — the
//! client pings, the server answers pong — and a polling payload frames each packet with
//! its length: `<length>:<packet>`, the length counted as JavaScript counts a string's
//! length (UTF-16 code units), e.g. `97:0{"sid":…}2:40`. A binary packet in a polling
//! payload is `b`, its type digit, then base64. Pure.

use base64::Engine as _;

use super::engineio::{decode_text_packet, invalid, EnginePacket};

/// Whether a polling body is framed as v3 (`<digits>:` first): how a v3 server answers a
/// handshake, whatever protocol the client asked for.
pub fn looks_like_v3(body: &[u8]) -> bool {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && body.get(digits) == Some(&b':')
}

/// Decodes a v3 polling payload. Framing that does not add up gives an invalid packet
/// for the rest; bytes that are not UTF-8 give one invalid packet.
pub fn decode_payload(body: &[u8]) -> Vec<EnginePacket> {
    let Ok(text) = std::str::from_utf8(body) else {
        return vec![invalid("payload is not UTF-8")];
    };
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_once(':') else {
            out.push(invalid(format!("no length before {:?}", cut(rest))));
            break;
        };
        let Ok(length) = length.parse::<usize>() else {
            out.push(invalid(format!("length {:?} is not a number", cut(length))));
            break;
        };
        let Some(end) = utf16_prefix(after, length) else {
            out.push(invalid(format!(
                "packet of length {length} runs past the payload"
            )));
            break;
        };
        let (packet, next) = after.split_at(end);
        out.push(decode_packet(packet));
        rest = next;
    }
    out
}

/// One v3 packet: as v4's, but binary is `b` + type digit + base64.
fn decode_packet(packet: &str) -> EnginePacket {
    match packet.strip_prefix('b') {
        Some(rest) => {
            let data = rest.get(1..).unwrap_or("");
            match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(bytes) => EnginePacket::Binary { len: bytes.len() },
                Err(e) => invalid(format!("binary packet with bad base64: {e}")),
            }
        }
        None => decode_text_packet(packet),
    }
}

/// Encodes text packets as a v3 polling payload.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a str>) -> String {
    packets
        .into_iter()
        .map(|p| format!("{}:{p}", p.encode_utf16().count()))
        .collect()
}

/// The byte index in `text` after its first `units` UTF-16 code units, if it has that many.
fn utf16_prefix(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (index, c) in text.char_indices() {
        if counted == units {
            return Some(index);
        }
        counted += c.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}

fn cut(s: &str) -> &str {
    super::socketio::cut(s, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_a_socket_io_2_server_answers_a_handshake() {
        // socket.io 2.5 (engine.io 3.6), measured.
        let body = br#"95:0{"sid":"oZNPQpi992J4H7sVAAAA","upgrades":["websocket"],"pingInterval":3000,"pingTimeout":7000}2:40"#;
        assert!(looks_like_v3(body));
        let packets = decode_payload(body);
        assert_eq!(packets.len(), 2);
        let EnginePacket::Open(open) = &packets[0] else {
            panic!("{packets:?}")
        };
        assert_eq!(open.sid, "oZNPQpi992J4H7sVAAAA");
        assert_eq!((open.ping_interval, open.max_payload), (3000, 0));
        assert!(matches!(
            &packets[1],
            EnginePacket::Message { socket: Some(_) }
        ));
    }

    #[test]
    fn lengths_count_utf16_units_as_javascript_does() {
        let payload = encode_payload(["42[\"m\",\"😀é\"]", "3"]);
        assert_eq!(payload, "13:42[\"m\",\"😀é\"]1:3");
        let packets = decode_payload(payload.as_bytes());
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[1], EnginePacket::Pong { probe: false });
        assert_eq!(
            decode_payload(b"6:b4AQID"),
            vec![EnginePacket::Binary { len: 3 }]
        );
    }

    #[test]
    fn v4_bodies_and_garbage_are_told_apart_without_a_panic() {
        assert!(!looks_like_v3(b"0{\"sid\":\"x\"}"));
        assert!(!looks_like_v3(b"40"));
        assert!(!looks_like_v3(b""));
        for bad in [
            &b"5:12"[..],
            b"x:1",
            b"99999999999999999999:1",
            b"3:\xff",
            b"2:\xf0\x9f",
        ] {
            let packets = decode_payload(bad);
            assert!(
                packets
                    .iter()
                    .any(|p| matches!(p, EnginePacket::Invalid { .. })),
                "{bad:?}: {packets:?}"
            );
        }
        // A surrogate pair cannot be cut in half.
        assert!(matches!(
            decode_payload("1:😀".as_bytes())[0],
            EnginePacket::Invalid { .. }
        ));
    }
}
