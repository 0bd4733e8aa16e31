//! Chat sessions: one per user, a Socket.IO client (rust_socketio for Engine.IO v4, our own
//! for v3) talking through that user's wire tap, supervised from what the tap sees rather
//! than from the client's error strings.
//!
//! - [`guard`]: the storm guard and backoff between connection attempts (pure).
//! - [`outbox`]: messages a user sent, retried until the other user's receipt or given up
//!   after a few tries (pure).
//! - [`tracker`]: what the wire says about the session and its chat traffic (pure).
//! - [`driver`]: the supervisor that runs it all (network).
//! - [`client`]: the Socket.IO client of one attempt, v4 or v3 (network).
//! - [`v3`]: a small Engine.IO v3 / Socket.IO 2 client (network).
//!
//! A session's state and transport are words of the event stream
//! ([`stickyscope_vocab::events::SessionState`], [`stickyscope_vocab::events::TransportChoice`]).

pub mod client;
pub mod driver;
pub mod guard;
pub mod outbox;
pub mod tracker;
pub mod v3;

pub use driver::{ChatSession, SessionConfig, SessionHandle};
