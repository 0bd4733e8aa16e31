//! How a long-polling payload is framed — Engine.IO v3's `<length>:<packet>` or v4's
//! `\x1e`-separated packets — and decoding it so. One rule for every reader of the wire
//! (the live tap, a browser's HAR): a request is read in the framing its `EIO=` asks for,
//! and an answer in that framing unless what crossed the wire says otherwise. Pure.

use super::engineio::{decode_payload, EnginePacket};
use super::engineio_v3;

/// A polling payload's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Engine.IO v3: `<length>:<packet>` after one another.
    V3,
    /// Engine.IO v4: packets separated by `\x1e`.
    V4,
}

impl Framing {
    /// The framing a request asks for: v3 for `EIO=3`, else v4.
    pub fn asked(engineio: Option<u8>) -> Framing {
        if engineio == Some(3) {
            Framing::V3
        } else {
            Framing::V4
        }
    }

    /// The framing an answer is read with: the one asked for, but what crossed the wire
    /// decides — a v3 server frames its answer as v3 whatever the client asked for
    /// (`socket.io@2` answers even `EIO=4` with `97:0{"sid":…}`).
    pub fn answering(self, body: &[u8]) -> Framing {
        match self {
            Framing::V4 if engineio_v3::looks_like_v3(body) => Framing::V3,
            framing => framing,
        }
    }

    /// A polling payload's packets.
    pub fn decode(self, body: &[u8]) -> Vec<EnginePacket> {
        match self {
            Framing::V3 => engineio_v3::decode_payload(body),
            Framing::V4 => decode_payload(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v3_answer_to_a_v4_request_is_read_as_v3_and_a_v4_one_as_v4() {
        let asked = Framing::asked(Some(4));
        assert_eq!(asked, Framing::V4);
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
        let v3 = format!("{}:{open}", open.len());
        let v3 = v3.as_bytes();
        assert_eq!(asked.answering(v3), Framing::V3);
        assert!(matches!(
            asked.answering(v3).decode(v3).as_slice(),
            [EnginePacket::Open(_)]
        ));
        // Read as v4, the same bytes hold no open packet.
        assert!(!Framing::V4
            .decode(v3)
            .iter()
            .any(|p| matches!(p, EnginePacket::Open(_))));
        assert_eq!(asked.answering(b"2\x1e3"), Framing::V4);
        assert_eq!(Framing::asked(Some(3)).answering(b"1:2"), Framing::V3);
        assert_eq!(Framing::asked(None), Framing::V4);
    }
}
