//! Fuzzes every protocol decoder the tap runs on bytes a peer sends: Engine.IO polling
//! payloads, single text packets, Socket.IO packets, and the WebSocket frame decoder fed
//! the same bytes whole and in two pieces (which must agree).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stickyscope_vocab::protocol::websocket::FrameDecoder;
use stickyscope_vocab::protocol::{decode_payload, decode_text_packet, socketio};

fuzz_target!(|data: &[u8]| {
    let _ = decode_payload(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_text_packet(text);
        let _ = socketio::decode(text);
    }

    let mut whole = FrameDecoder::new();
    let at_once = whole.push(data);
    let split = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
    let mut pieces = FrameDecoder::new();
    let mut in_two = pieces.push(&data[..split]);
    in_two.extend(pieces.push(&data[split..]));
    assert_eq!(at_once, in_two, "frames must not depend on how the stream is split");
});
