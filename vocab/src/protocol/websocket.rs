//! An incremental WebSocket frame decoder (RFC 6455) for watching a byte stream that is
//! passed on unchanged: feed it whatever arrived, get back the complete messages.
//!
//! Fragmented messages are reassembled; masked (client) payloads are unmasked. After a
//! protocol violation or an oversized message the decoder reports it once and stops
//! decoding that stream; it never panics and its buffer stays bounded.

use bytes::{Buf, BytesMut};

/// Largest message decoded; larger ones end decoding of the stream.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A complete WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(String),
    /// A binary message of this many bytes.
    Binary(usize),
    /// A close frame.
    Close {
        /// Status code, if given.
        code: Option<u16>,
        /// Reason text, if given.
        reason: String,
    },
    /// A WebSocket-level ping (not Engine.IO's).
    Ping,
    /// A WebSocket-level pong.
    Pong,
    /// Decoding stopped here, for this reason.
    Invalid(String),
}

/// Decodes one direction of a WebSocket connection.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Bytes not yet decoded; a whole frame leaves it in O(1), however many follow.
    buf: BytesMut,
    fragments: Option<(u8, Vec<u8>)>,
    stopped: bool,
}

struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the messages they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<WsMessage> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(message) = self.assemble(frame) {
                        let stop = matches!(message, WsMessage::Invalid(_));
                        out.push(message);
                        if stop {
                            self.stop();
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(reason) => {
                    out.push(WsMessage::Invalid(reason));
                    self.stop();
                    break;
                }
            }
        }
        out
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.buf = BytesMut::new();
        self.fragments = None;
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err("compressed or extended frame (RSV bits set): not decoded".into());
        }
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(eight), 10)
            }
            short => (u64::from(short), 2),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_MESSAGE)
            .ok_or_else(|| format!("frame of {len} bytes exceeds {MAX_MESSAGE}"))?;
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let key = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        if b.len() < at + len {
            return Ok(None);
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(key) = mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= key[i % 4];
            }
        }
        self.buf.advance(at + len);
        Ok(Some(Frame {
            fin,
            opcode,
            payload,
        }))
    }

    fn assemble(&mut self, frame: Frame) -> Option<WsMessage> {
        match frame.opcode {
            0x8 => {
                let code = (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                let reason = frame
                    .payload
                    .get(2..)
                    .map(|r| String::from_utf8_lossy(r).into_owned())
                    .unwrap_or_default();
                Some(WsMessage::Close { code, reason })
            }
            0x9 => Some(WsMessage::Ping),
            0xA => Some(WsMessage::Pong),
            0x0 => {
                let Some((opcode, mut data)) = self.fragments.take() else {
                    return Some(WsMessage::Invalid("continuation without a start".into()));
                };
                if data.len() + frame.payload.len() > MAX_MESSAGE {
                    return Some(WsMessage::Invalid(format!(
                        "message exceeds {MAX_MESSAGE} bytes"
                    )));
                }
                data.extend_from_slice(&frame.payload);
                if frame.fin {
                    Some(finish(opcode, data))
                } else {
                    self.fragments = Some((opcode, data));
                    None
                }
            }
            0x1 | 0x2 => {
                if self.fragments.is_some() {
                    return Some(WsMessage::Invalid(
                        "new message inside a fragmented one".into(),
                    ));
                }
                if frame.fin {
                    Some(finish(frame.opcode, frame.payload))
                } else {
                    self.fragments = Some((frame.opcode, frame.payload));
                    None
                }
            }
            other => Some(WsMessage::Invalid(format!("unknown opcode {other:#x}"))),
        }
    }
}

fn finish(opcode: u8, data: Vec<u8>) -> WsMessage {
    if opcode == 0x1 {
        match String::from_utf8(data) {
            Ok(text) => WsMessage::Text(text),
            Err(_) => WsMessage::Invalid("text message is not UTF-8".into()),
        }
    } else {
        WsMessage::Binary(data.len())
    }
}

/// Encodes one frame (for tests and tools): `mask` masks it as a client would.
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_masked_text_split_across_pushes() {
        let frame = encode_frame(true, 0x1, b"2probe", Some([1, 2, 3, 4]));
        let mut d = FrameDecoder::new();
        assert!(d.push(&frame[..3]).is_empty());
        assert_eq!(d.push(&frame[3..]), [WsMessage::Text("2probe".into())]);
    }

    #[test]
    fn reassembles_fragments_around_control_frames() {
        let mut bytes = encode_frame(false, 0x1, b"4hel", None);
        bytes.extend(encode_frame(true, 0x9, b"", None));
        bytes.extend(encode_frame(true, 0x0, b"lo", None));
        bytes.extend(encode_frame(true, 0x2, &[0; 300], None));
        bytes.extend(encode_frame(
            true,
            0x8,
            &[0x03, 0xe8, b'b', b'y', b'e'],
            None,
        ));
        let got = FrameDecoder::new().push(&bytes);
        assert_eq!(
            got,
            [
                WsMessage::Ping,
                WsMessage::Text("4hello".into()),
                WsMessage::Binary(300),
                WsMessage::Close {
                    code: Some(1000),
                    reason: "bye".into()
                },
            ]
        );
    }

    #[test]
    fn many_small_frames_in_one_push_all_come_out() {
        let one = encode_frame(true, 0x1, b"2", Some([1, 2, 3, 4]));
        let stream: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 50_000)
            .collect();
        let mut d = FrameDecoder::new();
        let messages = d.push(&stream);
        assert_eq!(messages.len(), 50_000);
        assert!(messages.iter().all(|m| *m == WsMessage::Text("2".into())));
        assert!(d.push(&[]).is_empty());
    }

    #[test]
    fn stops_once_on_garbage_or_huge_frames() {
        let mut d = FrameDecoder::new();
        let got = d.push(&[0x83, 0x00, 0x81, 0x01, b'x']);
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0], WsMessage::Invalid(_)));
        assert!(d.push(&encode_frame(true, 1, b"2", None)).is_empty());

        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            FrameDecoder::new().push(&huge)[0],
            WsMessage::Invalid(_)
        ));
    }
}
