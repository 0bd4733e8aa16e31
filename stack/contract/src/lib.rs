//! What stickyscope's replicas, its balancer and its observers (the wire taps, the probe)
//! agree on, so that none of them owns a format the others read:
//!
//! - [`request`]: how an Engine.IO HTTP request is classified, by method and query alone —
//!   the replicas count with it and the taps record with it, so their counts can be compared;
//! - [`names`]: the header and cookie names of the stack's routing contract;
//! - [`refusal`]: the reason a refused Engine.IO request gives;
//! - [`chat`]: the chat protocol between the two users and the replicas;
//! - [`heartbeat`]: Engine.IO's heartbeat as the replicas run it, and the bounds on it;
//! - [`stats`]: the counters a replica serves on `/stats`.
//!
//! Pure: no I/O.

pub mod chat;
pub mod heartbeat;
pub mod names;
pub mod refusal;
pub mod request;
pub mod stats;

pub use request::{EngineQuery, RequestKind};
