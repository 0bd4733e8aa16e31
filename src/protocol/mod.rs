//! Pure decoding of what crosses the wire: Engine.IO v4 payloads and packets
//! ([`engineio`]), the Socket.IO v5 packets inside them ([`socketio`]), and WebSocket frames
//! ([`websocket`]). Nothing here does I/O; nothing here panics, whatever the input.

pub mod engineio;
pub mod socketio;
pub mod websocket;

pub use engineio::{decode_payload, decode_text_packet, EnginePacket, OpenInfo};
pub use socketio::{SocketKind, SocketPacket};
