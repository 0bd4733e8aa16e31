//! Chat sessions: one per user, a Socket.IO client (rust_socketio for the two users on
//! Engine.IO v4, our own for v3 and for background sessions) talking through that user's
//! wire tap, supervised from what the tap sees rather than from the client's error strings.
//!
//! - [`guard`]: the storm guard and backoff between connection attempts (pure).
//! - [`outbox`]: messages a user sent, retried until the other user's receipt or given up
//!   after a few tries (pure).
//! - [`tracker`]: what the wire says about the session and its chat traffic (pure).
//! - [`driver`]: the supervisor that runs it all (network).
//! - [`client`]: the Socket.IO client of one attempt (network).
//! - [`engine_client`]: stickyscope's own small Socket.IO client, Engine.IO v3 or v4
//!   (network).
//!
//! A session's state and transport are words of the event stream
//! ([`stickyscope_vocab::events::SessionState`], [`stickyscope_vocab::events::TransportChoice`]).

pub mod client;
pub mod driver;
pub mod engine_client;
pub mod guard;
pub mod outbox;
pub mod tracker;

pub use driver::{ChatSession, SessionConfig, SessionHandle};
