//! Pure decoding of what crosses the wire: Engine.IO v4 payloads and packets
//! ([`engineio`]), what Engine.IO v3 does otherwise ([`engineio_v3`]), which framing a
//! polling payload is read in ([`framing`]), the Socket.IO
//! packets inside them ([`socketio`]), and WebSocket frames ([`websocket`]). Nothing here
//! does I/O; nothing here panics, whatever the input.

pub mod engineio;
pub mod engineio_v3;
pub mod framing;
pub mod socketio;
pub mod websocket;

pub use engineio::{decode_payload, decode_text_packet, EnginePacket, OpenInfo};
pub use socketio::{SocketKind, SocketPacket};
