//! Property tests of the protocol decoders: no input, however malformed, panics; frames
//! decode the same however the byte stream is split.

use proptest::prelude::*;
use stickyscope_vocab::protocol::websocket::{encode_frame, FrameDecoder, WsMessage};
use stickyscope_vocab::protocol::{decode_payload, decode_text_packet, socketio};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn polling_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_payload(&bytes);
    }

    #[test]
    fn text_packets_never_panic(text in ".{0,256}") {
        let _ = decode_text_packet(&text);
        let _ = socketio::decode(&text);
    }

    #[test]
    fn protocol_shaped_text_never_panics(
        text in "[0-6b]{1,2}(-|[0-9]{0,25}|/[a-z]{0,4},)?(\\[|\\{|\"|[a-z0-9,:]){0,40}"
    ) {
        let _ = decode_text_packet(&text);
        let _ = socketio::decode(&text);
        let _ = decode_payload(format!("{text}\u{1e}{text}").as_bytes());
    }

    #[test]
    fn frame_decoder_never_panics(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..64), 0..16)
    ) {
        let mut decoder = FrameDecoder::new();
        for chunk in chunks {
            let _ = decoder.push(&chunk);
        }
    }

    #[test]
    fn frames_decode_the_same_however_split(
        texts in proptest::collection::vec("[ -~]{0,300}", 1..6),
        mask in proptest::option::of(any::<[u8; 4]>()),
        split in any::<prop::sample::Index>(),
    ) {
        let stream: Vec<u8> = texts
            .iter()
            .flat_map(|t| encode_frame(true, 0x1, t.as_bytes(), mask))
            .collect();
        let at = split.index(stream.len() + 1);
        let mut decoder = FrameDecoder::new();
        let mut got = decoder.push(&stream[..at]);
        got.extend(decoder.push(&stream[at..]));
        let want: Vec<WsMessage> = texts.into_iter().map(WsMessage::Text).collect();
        prop_assert_eq!(got, want);
    }
}
