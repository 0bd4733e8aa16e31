//! The stickyscope replica: a Socket.IO chat server (socketioxide on hyper) built to be
//! observed behind load balancers.
//!
//! Every HTTP response carries `X-Replica` and `X-Replica-Addr` ([`observe`]); `/stats`
//! serves ground-truth counters ([`stats`]); the chat protocol, the heartbeat and the `/stats`
//! document live in the `stickyscope-contract` crate, which clients share; replicas broadcast
//! to each other through an [`adapter`] over Redis or the in-process [`bus`]; the lifecycle
//! (start, graceful stop, kill) is in [`server`]; pages on other origins are allowed by
//! [`cors`].

pub mod adapter;
pub mod bus;
pub mod cli;
pub mod conn;
pub mod cors;
pub mod observe;
pub mod server;
pub mod sessions;
pub mod stats;

pub use adapter::AdapterChoice;
pub use bus::MemoryBus;
pub use server::{Replica, ReplicaConfig, ReplicaError, ReplicaHandle, HEADER_READ_TIMEOUT};
pub use stats::Stats;
